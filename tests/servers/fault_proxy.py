#!/usr/bin/python3
"""A fault-injecting HTTP proxy for tests: forwards to an upstream server on
127.0.0.1 and, by the rules in a control file re-read at every request,
answers some requests itself with S3's 503 SlowDown instead.

  fault_proxy.py PORT UPSTREAM_PORT CONTROL_FILE

Control file lines (all optional):
  rate=0.2          fail this fraction of requests (seeded, reproducible)
  fail_key=TEXT     fail every PUT/POST whose path contains TEXT
  hold_key=TEXT     hold every PUT/POST whose path contains TEXT until the
                    line is gone (noted in CONTROL_FILE.held; testhttp.hold)
  seed=N
Headers and bodies pass through unchanged (the Host header too, so SigV4
signatures still verify upstream). Prints "ready" when listening.
"""
import http.client
import http.server
import random
import sys
import threading

from testhttp import QuietHandler, hold, read_control

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown'
            b'</Code><Message>Please reduce your request rate.</Message>'
            b'</Error>')


rules = read_control


class Handler(QuietHandler):
    lock = threading.Lock()
    rnd = random.Random(1)
    upstream = None
    control = None
    injected = 0

    def handle_one(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else b''
        hold(self.control, self.command, self.path)
        r = rules(self.control)
        fail = False
        with Handler.lock:
            if 'seed' in r and not getattr(Handler, 'seeded', False):
                Handler.rnd.seed(int(r['seed']))
                Handler.seeded = True
            if float(r.get('rate', 0)) > Handler.rnd.random():
                fail = True
            if r.get('fail_key') and self.command in ('PUT', 'POST') and \
                    r['fail_key'] in self.path:
                fail = True
            if fail:
                Handler.injected += 1
        if fail:
            self.send_response(503)
            self.send_header('Content-Type', 'application/xml')
            self.send_header('Content-Length', str(len(SLOWDOWN)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(SLOWDOWN)
            return
        c = http.client.HTTPConnection('127.0.0.1', self.upstream,
                                       timeout=120)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ('connection', 'keep-alive')}
        c.putrequest(self.command, self.path, skip_host=True,
                     skip_accept_encoding=True)
        for k, v in hdrs.items():
            c.putheader(k, v)
        c.endheaders(body if n else None)
        resp = c.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ('connection', 'keep-alive',
                                 'transfer-encoding', 'content-length'):
                self.send_header(k, v)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def main():
    port, up, control = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    Handler.upstream = up
    Handler.control = control
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
    srv.daemon_threads = True
    print('ready', flush=True)
    srv.serve_forever()


if __name__ == '__main__':
    main()
