"""botocore's SigV4Auth.add_auth on the same requests as the Swift side (SigV4Benchmark)."""
import sys
import time

from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
json_body = ('{"TableName":"users","Key":{"id":{"S":"42"}}}' * 20).encode()
cases = [
    ("get-query", SigV4Auth(credentials, "sqs", "us-east-1"),
     lambda: AWSRequest(method="GET", url="https://sqs.us-east-1.amazonaws.com/123456789012/queue",
                        params={"Action": "ReceiveMessage", "MaxNumberOfMessages": "10", "WaitTimeSeconds": "20"},
                        headers={"User-Agent": "bench"})),
    ("post-json-1k", SigV4Auth(credentials, "dynamodb", "eu-west-1"),
     lambda: AWSRequest(method="POST", url="https://dynamodb.eu-west-1.amazonaws.com/", data=json_body,
                        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"})),
    ("s3-put", S3SigV4Auth(credentials, "s3", "us-west-2"),
     lambda: AWSRequest(method="PUT", url="https://s3.us-west-2.amazonaws.com/bucket/photos/2024/cat%20picture.jpg", data=b"\x07" * 1024,
                        headers={"Content-Type": "image/jpeg", "Content-Length": "1024"})),
]
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
for name, signer, make in cases:
    request = make()
    for _ in range(500):
        signer.add_auth(request)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            signer.add_auth(request)       # replaces the previous Authorization and X-Amz-Date, as on a retry
        count += 50
    elapsed = time.perf_counter() - start
    print(f"RESULT botocore {name} {int(count / elapsed)}")
