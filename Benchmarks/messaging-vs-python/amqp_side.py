# The aio-pika side of Benchmarks/messaging-vs-python/run: the same RabbitMQ cases as MessagingBenchmark.
#   python amqp_side.py URL N   (URL: amqp://user:pass@host:port/%2F?management=...; the query is ignored)
import asyncio, sys, time, uuid
import aio_pika


async def main(url, count):
    url = url.split("?")[0]
    payload = b"x" * 128
    connection = await aio_pika.connect(url)
    # Unconfirmed publishes on one channel, then one round trip.
    channel = await connection.channel(publisher_confirms=False)
    scratch = await channel.declare_queue("", exclusive=True)
    for _ in range(1000):
        await channel.default_exchange.publish(aio_pika.Message(payload), routing_key=scratch.name)
    await scratch.purge()
    start = time.perf_counter()
    for _ in range(count):
        await channel.default_exchange.publish(aio_pika.Message(payload), routing_key=scratch.name)
    await channel.declare_queue(scratch.name, passive=True)
    print(f"RESULT aio-pika rabbitmq-publish-unconfirmed {int(count / (time.perf_counter() - start))}")
    await channel.close()
    # A fanout exchange and one quorum queue; persistent messages, publisher confirms, 100 in flight.
    channel = await connection.channel(publisher_confirms=True)
    name = "benchpy-" + uuid.uuid4().hex
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange)

    def message():
        return aio_pika.Message(payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=uuid.uuid4().hex)

    for _ in range(5):
        await asyncio.gather(*(exchange.publish(message(), routing_key="") for _ in range(100)))
    start = time.perf_counter()
    for _ in range(count // 100):
        await asyncio.gather(*(exchange.publish(message(), routing_key="") for _ in range(100)))
    print(f"RESULT aio-pika rabbitmq-confirmed-publish-100-in-flight {int(count / (time.perf_counter() - start))}")
    # Receive and ack everything (prefetch 100).
    await channel.set_qos(prefetch_count=100)
    total = count + 500
    received = 0
    start = time.perf_counter()
    async with queue.iterator() as messages:
        async for incoming in messages:
            await incoming.ack()
            received += 1
            if received == total:
                break
    print(f"RESULT aio-pika rabbitmq-receive-ack {int(total / (time.perf_counter() - start))}")
    await queue.delete(if_unused=False, if_empty=False)
    await exchange.delete()
    await connection.close()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
