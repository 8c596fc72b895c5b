# The kafka-python side of Benchmarks/messaging-vs-python/run: record batches v2 encoded with kafka-python's
# DefaultRecordBatchBuilder (its default install: no compression, its own CRC-32C), the same records as
# `MessagingBenchmark kafka-batch`.   python kafka_side.py N
import sys, time
from kafka.record.default_records import DefaultRecordBatchBuilder

count = int(sys.argv[1])
key, value, headers = b"k" * 10, b"v" * 100, [("source", b"bench")]
base = 1_700_000_000_000
total = 0
start = time.perf_counter()
for batch_start in range(0, count, 1000):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=1, producer_epoch=0,
                                        base_sequence=batch_start, batch_size=1 << 30)
    for index in range(min(1000, count - batch_start)):
        builder.append(index, timestamp=base + index, key=key, value=value, headers=headers)
    total += len(builder.build())
elapsed = time.perf_counter() - start
print(f"RESULT kafka-python kafka-record-batch-encode-MBps {total / 1_000_000 / elapsed:.2f}")
