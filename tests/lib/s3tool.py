#!/usr/bin/python3
"""Fixture tool for the tests: an independent S3 client (boto3, Debian's
python3-boto3) talking to the test server.

  s3tool.py --port P mkbucket NAME
  s3tool.py --port P tree BUCKET MANIFEST N [--seed S]
        upload a deterministic tree of N objects (nested-only folders, odd
        names, sizes 0..64 KiB) with 16 threads; write "key<TAB>size<TAB>md5"
        lines to MANIFEST
  s3tool.py --port P put BUCKET KEY FILE|- [--meta k=v] [--type MIME]
  s3tool.py --port P putdir BUCKET DIR
        every file under DIR, its key the path relative to DIR (8 threads)
  s3tool.py --port P delete BUCKET KEY
  s3tool.py --port P manifest BUCKET PREFIX
        "relative-key<TAB>size<TAB>md5" of every object under PREFIX (markers
        "dir/" are left out), sorted: the listing's ETag where it is an MD5
        (single-part objects), else downloaded and hashed
  s3tool.py --port P head BUCKET KEY
        Content-Type, Cache-Control and x-amz-meta-* as "name=value" lines
  s3tool.py --port P keys BUCKET [PREFIX]
        every key under PREFIX, one per line
  s3tool.py --port P uploads BUCKET
        multipart uploads still open (not completed nor aborted), one key
        per line
"""
import argparse
import concurrent.futures
import hashlib
import random
import re
import sys

import boto3
from botocore.config import Config


def client(port):
    return boto3.client(
        's3', endpoint_url='http://127.0.0.1:%d' % port,
        aws_access_key_id='test:tester', aws_secret_access_key='testing',
        region_name='us-east-1',
        config=Config(s3={'addressing_style': 'path'},
                      retries={'max_attempts': 5},
                      max_pool_connections=32))


ODD = ['a b', 'plus+sign', 'per%cent', 'hash#tag', 'quest?ion',
       'caf\u00e9', '\u65e5\u672c', 'semi;colon', "quote'", 'amp&er',
       'eq=ual', 'comma,', 'x' * 200]


def tree_keys(n, seed):
    """The S1 backup's shape: Service-Images/<service>/<image> (many small
    folders), Profile-Pics/<role>/<user> (three large ones), a folder of
    1,200 objects (two LIST pages), folders whose objects are only 2+
    levels deep, odd names; the rest at the top."""
    rnd = random.Random(seed)
    keys = ['root-file.txt', 'n' * 251 + '.jpg', 'empty-object']
    keys += ['flat/%05d' % i for i in range(1200)]
    i = 0
    while len(keys) < n:
        odd = ODD[i % len(ODD)]
        kind = i % 4
        if kind == 0:
            keys.append('Service-Images/svc-%03d %s/img-%05d' %
                        (i % 60, ODD[(i // 60) % 3], i))
        elif kind == 1:
            keys.append('Profile-Pics/%s/user-%05d %s' %
                        (['buyer', 'stylist', 'salon'][i % 3], i, odd))
        elif kind == 2:
            keys.append('only-deep/lvl1-%d/lvl2-%s/%05d' %
                        (i % 5, odd[:30], i))
        else:
            keys.append('Chat Images/%05d-%s.jpeg' % (i, odd))
        i += 1
    return keys[:n], rnd


def cmd_tree(c, a):
    keys, rnd = tree_keys(a.n, a.seed)
    bodies = []
    for i, k in enumerate(keys):
        size = 0 if keys[i] == 'empty-object' else rnd.choice([1, 100, 1000, 5000, 20000, 65536])
        bodies.append(bytes(rnd.getrandbits(8) for _ in range(min(size, 64)))
                      * (size // 64 + 1))
        bodies[-1] = bodies[-1][:size]

    def put(i):
        c.put_object(Bucket=a.bucket, Key=keys[i], Body=bodies[i])

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(put, range(len(keys))))
    with open(a.manifest, 'w') as f:
        for k, b in zip(keys, bodies):
            f.write('%s\t%d\t%s\n' % (k, len(b), hashlib.md5(b).hexdigest()))


def all_objects(c, bucket, prefix):
    tok = None
    while True:
        kw = {'Bucket': bucket, 'Prefix': prefix}
        if tok:
            kw['ContinuationToken'] = tok
        r = c.list_objects_v2(**kw)
        for o in r.get('Contents', []):
            yield o
        if not r.get('IsTruncated'):
            return
        tok = r['NextContinuationToken']


def all_keys(c, bucket, prefix):
    return (o['Key'] for o in all_objects(c, bucket, prefix))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('mkbucket')
    s.add_argument('bucket')
    s = sub.add_parser('tree')
    s.add_argument('bucket')
    s.add_argument('manifest')
    s.add_argument('n', type=int)
    s.add_argument('--seed', type=int, default=42)
    s = sub.add_parser('put')
    s.add_argument('bucket')
    s.add_argument('key')
    s.add_argument('file')
    s.add_argument('--meta', action='append', default=[])
    s.add_argument('--type')
    s = sub.add_parser('putdir')
    s.add_argument('bucket')
    s.add_argument('dir')
    s = sub.add_parser('delete')
    s.add_argument('bucket')
    s.add_argument('key')
    s = sub.add_parser('manifest')
    s.add_argument('bucket')
    s.add_argument('prefix')
    s = sub.add_parser('head')
    s.add_argument('bucket')
    s.add_argument('key')
    s = sub.add_parser('get')
    s.add_argument('bucket')
    s.add_argument('key')
    s = sub.add_parser('uploads')
    s.add_argument('bucket')
    s = sub.add_parser('keys')
    s.add_argument('bucket')
    s.add_argument('prefix', nargs='?', default='')
    a = p.parse_args()
    c = client(a.port)
    if a.cmd == 'mkbucket':
        c.create_bucket(Bucket=a.bucket)
    elif a.cmd == 'tree':
        cmd_tree(c, a)
    elif a.cmd == 'put':
        body = sys.stdin.buffer.read() if a.file == '-' else \
            open(a.file, 'rb').read()
        meta = dict(m.split('=', 1) for m in a.meta)
        extra = {'ContentType': a.type} if a.type else {}
        c.put_object(Bucket=a.bucket, Key=a.key, Body=body, Metadata=meta,
                     **extra)
    elif a.cmd == 'putdir':
        import os
        files = [os.path.join(d, f) for d, _, fs in os.walk(a.dir) for f in fs]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda f: c.put_object(
                Bucket=a.bucket, Key=os.path.relpath(f, a.dir),
                Body=open(f, 'rb').read()), files))
    elif a.cmd == 'delete':
        c.delete_object(Bucket=a.bucket, Key=a.key)
    elif a.cmd == 'get':
        sys.stdout.buffer.write(
            c.get_object(Bucket=a.bucket, Key=a.key)['Body'].read())
        sys.stdout.flush()
    elif a.cmd == 'uploads':
        for u in c.list_multipart_uploads(Bucket=a.bucket).get('Uploads', []):
            print(u['Key'])
    elif a.cmd == 'keys':
        for k in all_keys(c, a.bucket, a.prefix):
            print(k)
    elif a.cmd == 'manifest':
        objs = [o for o in all_objects(c, a.bucket, a.prefix)
                if not o['Key'].endswith('/')]

        def one(o):
            k, etag = o['Key'], o.get('ETag', '').strip('"')
            if re.fullmatch('[0-9a-f]{32}', etag):
                # a single-part object: the server's ETag is the MD5 of
                # the bytes it stored
                return '%s\t%d\t%s' % (k[len(a.prefix):], o['Size'], etag)
            b = c.get_object(Bucket=a.bucket, Key=k)['Body'].read()
            return '%s\t%d\t%s' % (k[len(a.prefix):], len(b),
                                    hashlib.md5(b).hexdigest())
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            lines = sorted(ex.map(one, objs))
        for line in lines:
            print(line)
    elif a.cmd == 'head':
        h = c.head_object(Bucket=a.bucket, Key=a.key)
        print('content-type=%s' % h.get('ContentType', ''))
        print('cache-control=%s' % h.get('CacheControl', ''))
        for k, v in sorted(h.get('Metadata', {}).items()):
            print('%s=%s' % (k, v))


if __name__ == '__main__':
    main()
