#!/usr/bin/python3
"""Wait until a bucket holds N objects of B bytes under PREFIX (not
counting directory markers); the listing uses max-keys=999 so its requests
can be told apart in the server's log.
  bench-wait.py PORT BUCKET PREFIX N BYTES TIMEOUT
"""
import sys
import time

import boto3
from botocore.config import Config


def main():
    port, bucket, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    n, size, timeout = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    c = boto3.client('s3', endpoint_url='http://127.0.0.1:%d' % port,
                     aws_access_key_id='test:tester',
                     aws_secret_access_key='testing', region_name='us-east-1',
                     config=Config(s3={'addressing_style': 'path'}))
    end = time.time() + timeout
    while time.time() < end:
        cnt = tot = 0
        tok = None
        while True:
            kw = dict(Bucket=bucket, Prefix=prefix, MaxKeys=999)
            if tok:
                kw['ContinuationToken'] = tok
            r = c.list_objects_v2(**kw)
            for o in r.get('Contents', []):
                if not o['Key'].endswith('/'):
                    cnt += 1
                    tot += o['Size']
            if not r.get('IsTruncated'):
                break
            tok = r['NextContinuationToken']
        if cnt >= n and tot >= size:
            return 0
        time.sleep(0.2)
    print('timeout: %d objects, %d bytes' % (cnt, tot), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
