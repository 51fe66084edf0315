#!/usr/bin/python3
"""A small HTTP origin for URL-list remotes (a stand-in for CloudFront):
serves the files of ROOT with Content-Length, Last-Modified, ETag and
Content-Type; HEAD; single ranges (206, 416 past the end).

  http_origin.py PORT ROOT STATE_DIR

STATE_DIR/control (re-read at every request, lines optional):
  flaky=PATH,PATH   these paths answer 503 twice, then normally
  norange=1         ignore Range headers (answer 200 with the whole body)
  rate503=0.1       answer this fraction of requests with 503
  get_delay_ms=N    wait 0..N ms (at random) before answering a GET
STATE_DIR/requests.log gets "METHOD PATH STATUS" per request.
Prints "ready" when listening.
"""
import email.utils
import hashlib
import http.server
import mimetypes
import os
import random
import re
import sys
import threading
import time
import urllib.parse

from testhttp import QuietHandler, read_control

PORT, ROOT, STATE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
LOCK = threading.Lock()
FLAKY = {}
RND = random.Random(1)


def control():
    return read_control(os.path.join(STATE, 'control'))


class H(QuietHandler):
    def log(self, status):
        with LOCK:
            with open(os.path.join(STATE, 'requests.log'), 'a') as f:
                f.write('%s %s %d\n' % (self.command, self.path, status))

    def send(self, status, body=b'', headers=None, head=False):
        headers = dict(headers or {})
        headers.setdefault('Content-Length', str(len(body)))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.log(status)

    def do_HEAD(self):
        self.serve(True)

    def do_GET(self):
        self.serve(False)

    def serve(self, head):
        c = control()
        path = urllib.parse.urlsplit(self.path).path
        flaky = set(filter(None, c.get('flaky', '').split(',')))
        with LOCK:
            x = RND.random()
            n = FLAKY.get(path, 0)
            if path in flaky and n < 2:
                FLAKY[path] = n + 1
                fail = True
            else:
                fail = x < float(c.get('rate503', 0))
        if fail:
            return self.send(503, b'Service Unavailable', head=head)
        if not head and float(c.get('get_delay_ms', 0)) > 0:
            time.sleep(random.uniform(0, float(c["get_delay_ms"])) / 1000)
        fs = os.path.join(ROOT, urllib.parse.unquote(path).lstrip('/'))
        if '..' in path or not os.path.isfile(fs):
            return self.send(404, b'Not Found', head=head)
        with open(fs, 'rb') as f:
            data = f.read()
        st = os.stat(fs)
        hdr = {'Last-Modified': email.utils.formatdate(st.st_mtime, usegmt=True),
               'ETag': '"%s"' % hashlib.md5(data).hexdigest(),
               'Content-Type': mimetypes.guess_type(fs)[0] or
               'application/octet-stream',
               'Accept-Ranges': 'bytes'}
        rng = self.headers.get('Range')
        if rng and not c.get('norange'):
            m = re.match(r'bytes=(\d+)-(\d*)$', rng)
            if m:
                a = int(m.group(1))
                b = int(m.group(2)) if m.group(2) else len(data) - 1
                if a >= len(data):
                    hdr['Content-Range'] = 'bytes */%d' % len(data)
                    return self.send(416, b'', hdr, head)
                b = min(b, len(data) - 1)
                hdr['Content-Range'] = 'bytes %d-%d/%d' % (a, b, len(data))
                return self.send(206, data[a:b + 1], hdr, head)
        return self.send(200, data, hdr, head)


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = S(('127.0.0.1', PORT), H)
print('ready', flush=True)
srv.serve_forever()
