"""The boto3 side of Benchmarks/blob-vs-boto3: s3transfer with the settings Nimbus' Bucket uses
(multipart above 16 MiB, parts of 8 MiB, 4 threads), against the same moto server.

    python s3_side.py put|get ENDPOINT BUCKET SIZE COUNT

put uploads COUNT objects of SIZE bytes from memory (upload_fileobj); get downloads them to files
(download_file). Prints `RESULT boto3 CASE MB/s`.
"""
import io
import os
import random
import shutil
import sys
import tempfile
import time

import boto3
from boto3.s3.transfer import TransferConfig


def size_name(size):
    return f"{size // 1048576}MiB" if size % 1048576 == 0 else f"{size}B"


def main():
    mode, endpoint, bucket, size, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    config = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4, use_threads=True)
    if mode == "put":
        data = random.Random(7).randbytes(size)
        start = time.perf_counter()
        for index in range(count):
            s3.upload_fileobj(io.BytesIO(data), bucket, f"boto3/{size}/{index}", Config=config)
        elapsed = time.perf_counter() - start
    else:
        directory = tempfile.mkdtemp(prefix="blob-bench-boto3-")
        try:
            start = time.perf_counter()
            for index in range(count):
                s3.download_file(bucket, f"boto3/{size}/{index}", os.path.join(directory, str(index)), Config=config)
            elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(directory)
    print(f"RESULT boto3 s3-{mode}-{size_name(size)} {size * count / 1048576 / elapsed:.1f}", flush=True)


if __name__ == "__main__":
    main()
