#!/usr/bin/python3
"""An independent ImageKit client for the tests (stdlib only): it checks
what the server holds without going through mediafs.

  iktool.py --port P --key K manifest [FOLDER]   filePath size md5 of the
                                                 original bytes, mtime and
                                                 mode from custom metadata
                                                 (recursive, sorted)
  iktool.py --port P --key K ids [FOLDER]        filePath fileId url
  iktool.py --port P --key K folders [FOLDER]    every folder below
  iktool.py --port P --key K put FOLDER NAME FILE
  iktool.py --port P --key K field NAME TYPE     create a custom metadata
                                                 field
"""
import argparse
import base64
import hashlib
import json
import sys
import urllib.parse
import urllib.request
import uuid


def call(a, method, path, body=None):
    h = {'Authorization': 'Basic ' +
         base64.b64encode((a.key + ':').encode()).decode()}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h['Content-Type'] = 'application/json'
    for _ in range(100):	# the fake may be told to rate-limit
        req = urllib.request.Request('http://127.0.0.1:%d%s' % (a.port, path),
                                     data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            import time
            time.sleep(int(e.headers.get('X-RateLimit-Reset', '100')) / 1000)
    raise SystemExit('rate limited for good')


def walk(a, folder):
    out, skip = [], 0
    while True:
        page = call(a, 'GET', '/v1/files?' + urllib.parse.urlencode(
            {'path': folder, 'type': 'all', 'sort': 'ASC_NAME',
             'limit': 1000, 'skip': skip}))
        out += page
        if len(page) < 1000:
            break
        skip += 1000
    for o in list(out):
        if o['type'] == 'folder':
            out += walk(a, o['folderPath'])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--key', required=True)
    p.add_argument('cmd')
    p.add_argument('args', nargs='*')
    a = p.parse_args()
    folder = a.args[0] if a.args else '/'
    if a.cmd == 'manifest':
        for o in sorted((o for o in walk(a, folder) if o['type'] == 'file'),
                        key=lambda o: o['filePath']):
            url = o['url'] + '?tr=orig-true&nocache=' + uuid.uuid4().hex
            with urllib.request.urlopen(url) as r:
                md5 = hashlib.md5(r.read()).hexdigest()
            cm = o.get('customMetadata') or {}
            print(o['filePath'], o['size'], md5, cm.get('mtime', '-'),
                  cm.get('mode', '-'))
    elif a.cmd == 'ids':
        for o in sorted((o for o in walk(a, folder) if o['type'] == 'file'),
                        key=lambda o: o['filePath']):
            print(o['filePath'], o['fileId'], o['url'])
    elif a.cmd == 'folders':
        for o in sorted((o for o in walk(a, folder) if o['type'] == 'folder'),
                        key=lambda o: o['folderPath']):
            print(o['folderPath'])
    elif a.cmd == 'field':
        name, typ = a.args
        call(a, 'POST', '/v1/customMetadataFields',
             {'name': name, 'label': name, 'schema': {'type': typ}})
    elif a.cmd == 'put':
        fold, name, path = a.args
        bound = 'iktool' + uuid.uuid4().hex
        parts = []
        for k, v in (('fileName', name), ('folder', fold),
                     ('useUniqueFileName', 'false')):
            parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"'
                          '\r\n\r\n%s\r\n' % (bound, k, v)).encode())
        parts.append(('--%s\r\nContent-Disposition: form-data; name="file"; '
                      'filename="%s"\r\n\r\n' % (bound, name)).encode() +
                     open(path, 'rb').read() + b'\r\n')
        parts.append(('--%s--\r\n' % bound).encode())
        req = urllib.request.Request(
            'http://127.0.0.1:%d/api/v1/files/upload' % a.port,
            data=b''.join(parts), method='POST', headers={
                'Content-Type': 'multipart/form-data; boundary=' + bound,
                'Authorization': 'Basic ' +
                base64.b64encode((a.key + ':').encode()).decode()})
        with urllib.request.urlopen(req) as r:
            print(json.loads(r.read())['fileId'])
    else:
        sys.exit('unknown command ' + a.cmd)


if __name__ == '__main__':
    main()
