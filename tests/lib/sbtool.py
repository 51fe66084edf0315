#!/usr/bin/python3
"""An independent Supabase Storage client for the tests (stdlib only): it
checks what the server holds without going through mediafs.

  sbtool.py --port P --key K buckets            name and public flag
  sbtool.py --port P --key K manifest BUCKET    key, size, md5, content
                                                type, user mtime (sorted)
  sbtool.py --port P --key K put BUCKET KEY FILE
"""
import argparse
import base64
import hashlib
import json
import sys
import urllib.parse
import urllib.request


def call(a, method, path, body=None, headers=None, raw=False):
    h = {'apikey': a.key}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        h['Content-Type'] = 'application/json'
    h.update(headers or {})
    req = urllib.request.Request('http://127.0.0.1:%d/storage/v1%s' %
                                 (a.port, path), data=body, headers=h,
                                 method=method)
    with urllib.request.urlopen(req) as r:
        data = r.read()
        return (data, r.headers) if raw else json.loads(data)


def q(s):
    return urllib.parse.quote(s, safe='/')


def all_keys(a, bucket):
    keys, cursor = [], None
    while True:
        body = {'prefix': '', 'limit': 1000, 'with_delimiter': False}
        if cursor:
            body['cursor'] = cursor
        r = call(a, 'POST', '/object/list-v2/' + q(bucket), body)
        keys += [o['name'] for o in r['objects']]
        if not r.get('hasNext'):
            return keys
        cursor = r['nextCursor']


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--key', required=True)
    p.add_argument('cmd')
    p.add_argument('args', nargs='*')
    a = p.parse_args()
    if a.cmd == 'buckets':
        for b in call(a, 'GET', '/bucket'):
            print(b['name'], 'public' if b['public'] else 'private')
    elif a.cmd == 'manifest':
        b = a.args[0]
        for k in sorted(all_keys(a, b)):
            data, _ = call(a, 'GET', '/object/authenticated/%s/%s' %
                           (q(b), q(k)), raw=True)
            info = call(a, 'GET', '/object/info/authenticated/%s/%s' %
                        (q(b), q(k)))
            mt = (info.get('metadata') or {}).get('mtime', '-')
            print('%s\t%d\t%s\t%s\t%s' % (k, len(data),
                                          hashlib.md5(data).hexdigest(),
                                          info['content_type'],
                                          mt.split('.')[0]))
    elif a.cmd == 'put':
        b, k, f = a.args
        with open(f, 'rb') as fh:
            data = fh.read()
        meta = base64.b64encode(b'{}').decode()
        call(a, 'PUT', '/object/%s/%s' % (q(b), q(k)), data,
             {'x-metadata': meta, 'Content-Type': 'application/octet-stream'})
    elif a.cmd == 'delete':
        b, k = a.args
        call(a, 'DELETE', '/object/%s/%s' % (q(b), q(k)))
    elif a.cmd == 'keys':
        for k in sorted(all_keys(a, a.args[0])):
            print(k)
    else:
        sys.exit('unknown command ' + a.cmd)


if __name__ == '__main__':
    main()
