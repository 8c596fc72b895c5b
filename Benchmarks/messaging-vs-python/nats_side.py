# The nats-py side of Benchmarks/messaging-vs-python/run: the same cases as MessagingBenchmark.
#   python nats_side.py nats-core URL N | nats-jetstream URL N
import asyncio, sys, time, uuid
import nats


async def main(case, url, count):
    nc = await nats.connect(url)
    payload = b"x" * 128
    if case == "nats-core":
        for _ in range(10_000):
            await nc.publish("bench.warmup", payload)
        await nc.flush()
        start = time.perf_counter()
        for _ in range(count):
            await nc.publish("bench.core", payload)
        await nc.flush()
        print(f"RESULT nats-py nats-core-publish {int(count / (time.perf_counter() - start))}")
    else:
        js = nc.jetstream()
        name = "BENCHPY_" + uuid.uuid4().hex
        await js.add_stream(name=name, subjects=[f"benchpy.{name}"], retention="interest")
        await js.add_consumer(name, durable_name="c", ack_policy="explicit")
        for _ in range(500):
            await js.publish(f"benchpy.{name}", payload)
        start = time.perf_counter()
        for _ in range(count):
            await js.publish(f"benchpy.{name}", payload)
        print(f"RESULT nats-py nats-jetstream-acked-publish {int(count / (time.perf_counter() - start))}")
        # 100 in flight: asyncio.gather of 100 publishes, each awaiting its ack.
        start = time.perf_counter()
        for _ in range(count // 100):
            await asyncio.gather(*(js.publish(f"benchpy.{name}", payload) for _ in range(100)))
        print(f"RESULT nats-py nats-jetstream-acked-publish-100-in-flight {int(count / (time.perf_counter() - start))}")
        await js.delete_stream(name)
    await nc.close()


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
