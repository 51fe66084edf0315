#!/usr/bin/python3
"""A fault-injecting HTTP proxy for tests: forwards to an upstream server on
127.0.0.1 and, by the rules in a control file re-read at every request,
answers some requests itself: with S3's 503 SlowDown, or with replies that
lie (a 200 that stored nothing, a short read, a listing that pages forever).

  fault_proxy.py PORT UPSTREAM_PORT CONTROL_FILE

Control file lines (all optional):
  rate=0.2          fail this fraction of requests (seeded, reproducible)
  fail_key=TEXT     fail every PUT/POST whose path contains TEXT
  refuse_key=TEXT   answer every PUT/POST whose path contains TEXT with
                    403 AccessDenied (a final refusal, not retried)
  max_size=N        answer a PUT of more than N bytes with 400
                    EntityTooLarge (the store's size limit)
  hang=1            swallow every request: never answer while this holds
                    (a server that never answers)
  hold_key=TEXT     hold every PUT/POST whose path contains TEXT until the
                    line is gone (noted in CONTROL_FILE.held; testhttp.hold)
  hold_delete=TEXT  the same for every DELETE whose path contains TEXT
  hold_head=TEXT    the same for every HEAD whose path contains TEXT
                    (noted as "HEAD <path>")
  slow_put=TEXT     read the body of every PUT whose path contains TEXT at
                    slow_rate bytes/s (slow_rate=N; default 1 MiB/s;
                    prints "SLOW PUT <path>" as it starts); a
                    client that hangs up meanwhile prints "CLOSED slow_put
                    PUT <path> after N of M bytes", and nothing is forwarded
  seed=N
  delay_ms=LO-HI    wait a random LO..HI ms (or exactly N: delay_ms=N)
                    before forwarding each request: a slow server
  delay_write_ms=LO-HI  the same, added, for PUT/POST/DELETE/PATCH only (an
                    upload in flight for longer)
Lies, deterministic (every Nth request of a kind, counted from the proxy's
start, or by key); each one prints "LIE <rule> <method> <path>" on stdout:
  put_error_every=N   every Nth object PUT (not a part, not a copy) is not
                      forwarded: answered 200 with an <Error> body
  put_noetag_every=M  every Mth object PUT is not forwarded: answered 200
                      without an ETag (put_error_every wins when both match)
  part_noetag_every=N every Nth part PUT is forwarded, its ETag removed
  get_error_every=N   every Nth ranged GET: 200 with an <Error> body
  get_short_every=N   every Nth ranged GET: forwarded, half the body sent
                      with a matching Content-Length (the headers kept)
  get_error_key=TEXT  every ranged GET whose path contains TEXT: as above
  list_cycle=PREFIX   a ListObjectsV2 of PREFIX: an empty truncated page
                      whose next token cycles A, B, A, ...
  list_endless=PREFIX a ListObjectsV2 of PREFIX: after list_delay seconds
                      (default 0.2), an empty truncated page whose next
                      token is new each time (t1, t2, ...): pages forever
  list_hold=PREFIX    a ListObjectsV2 of PREFIX is answered 200 and then a
                      byte every 0.5 s (up to 300 s) while the control file
                      still says so: a page that never ends; prints
                      "CLOSED list_hold ..." when the client hangs up
  list_late=PREFIX    a ListObjectsV2 of PREFIX: forwarded at once, its
                      true reply held (up to 60 s) while the line stays
                      (noted in CONTROL_FILE.held as "LIST <path>"): a
                      listing the server made before what lands meanwhile
  list_nul=PREFIX     a ListObjectsV2 of PREFIX: forwarded, with an extra
                      key PREFIX + "bad%00name" (URL-encoded listing)
  complete_garble=TEXT a CompleteMultipartUpload whose path contains TEXT:
                      forwarded, then answered 200 with half its body
  reset_once=TEXT     the first POST/PUT per path containing TEXT: forwarded,
                      then the connection is reset without an answer
  reset_key=TEXT      every POST/PUT (not a copy) whose path contains TEXT: forwarded,
                      then the connection reset without an answer (each
                      attempt lands; the client sees only failures)
  lose_reply=TEXT     a POST whose path contains TEXT: forwarded, then no
                      answer (up to 300 s) while the control file still
                      says so, then the connection is reset
  hold=TEXT           a PUT whose path contains TEXT waits (up to 300 s)
                      while the control file still says so
Headers and bodies pass through unchanged (the Host header too, so SigV4
signatures still verify upstream). Prints "ready" when listening.
"""
import http.client
import http.server
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

from testhttp import QuietHandler, hold, read_control

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown'
            b'</Code><Message>Please reduce your request rate.</Message>'
            b'</Error>')
INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
            b'InternalError</Code><Message>We encountered an internal '
            b'error. Please try again.</Message></Error>')


rules = read_control


def lie(rule, method, path):
    print('LIE %s %s %s' % (rule, method, path), flush=True)


class Handler(QuietHandler):
    lock = threading.Lock()
    rnd = random.Random(1)
    upstream = None
    control = None
    injected = 0
    counts = {}
    reset_done = set()

    @classmethod
    def nth(cls, kind):
        """Count one request of kind; its 1-based number."""
        with cls.lock:
            cls.counts[kind] = cls.counts.get(kind, 0) + 1
            return cls.counts[kind]

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack('ii', 1, 0))
        self.close_connection = True

    def forward(self, body):
        c = http.client.HTTPConnection('127.0.0.1', self.upstream,
                                       timeout=120)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ('connection', 'keep-alive')}
        c.putrequest(self.command, self.path, skip_host=True,
                     skip_accept_encoding=True)
        for k, v in hdrs.items():
            c.putheader(k, v)
        c.endheaders(body if body else None)
        resp = c.getresponse()
        data = resp.read()
        self.head_length = resp.getheader('Content-Length') or '0'
        c.close()
        hdrs = [(k, v) for k, v in resp.getheaders()
                if k.lower() not in ('connection', 'keep-alive',
                                     'transfer-encoding', 'content-length')]
        return resp.status, resp.reason, hdrs, data

    def lies(self, r, body):
        """Answer with a lie if a rule says so; True when answered."""
        m, path = self.command, self.path
        url = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        is_part = 'partNumber' in q
        is_copy = 'x-amz-copy-source' in self.headers
        ranged = m == 'GET' and 'Range' in self.headers
        listing = m == 'GET' and q.get('list-type') == ['2']
        if r.get('hold') and m == 'PUT' and r['hold'] in path:
            lie('hold', m, path)
            t0 = time.time()
            while time.time() - t0 < 300 and \
                    rules(self.control).get('hold') == r['hold']:
                time.sleep(0.1)
            r = rules(self.control)
        if m == 'PUT' and not is_part and not is_copy and \
                (r.get('put_error_every') or r.get('put_noetag_every')):
            n = self.nth('put')
            every_e = int(r.get('put_error_every') or 0)
            every_n = int(r.get('put_noetag_every') or 0)
            if every_e and n % every_e == 0:
                lie('put_error', m, path)
                self.reply(200, [('Content-Type', 'application/xml')],
                           INTERNAL)
                return True
            if every_n and n % every_n == 0:
                lie('put_noetag', m, path)
                self.reply(200, [], b'')
                return True
        if m == 'PUT' and is_part and r.get('part_noetag_every'):
            n = self.nth('part')
            if n % int(r['part_noetag_every']) == 0:
                st, reason, hdrs, data = self.forward(body)
                lie('part_noetag', m, path)
                self.reply(st, [(k, v) for k, v in hdrs
                                if k.lower() != 'etag'], data)
                return True
        if ranged and r.get('get_error_key') and r['get_error_key'] in path:
            lie('get_error', m, path)
            self.reply(200, [('Content-Type', 'application/xml')], INTERNAL)
            return True
        if ranged and (r.get('get_error_every') or r.get('get_short_every')):
            n = self.nth('get')
            every_e = int(r.get('get_error_every') or 0)
            every_s = int(r.get('get_short_every') or 0)
            if every_e and n % every_e == 0:
                lie('get_error', m, path)
                self.reply(200, [('Content-Type', 'application/xml')],
                           INTERNAL)
                return True
            if every_s and n % every_s == 0:
                st, reason, hdrs, data = self.forward(body)
                if st in (200, 206) and len(data) > 1:
                    lie('get_short', m, path)
                    self.reply(st, hdrs, data[:len(data) // 2])
                    return True
                self.reply(st, hdrs, data)
                return True
        if listing and r.get('list_cycle') and \
                q.get('prefix', [''])[0] == r['list_cycle']:
            tok = q.get('continuation-token', [''])[0]
            nxt = 'B' if tok == 'A' else 'A'
            lie('list_cycle', m, path)
            enc = urllib.parse.quote(r['list_cycle'], safe='')
            self.reply(200, [('Content-Type', 'application/xml')], (
                '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b'
                '</Name><Prefix>%s</Prefix><KeyCount>0</KeyCount><MaxKeys>'
                '1000</MaxKeys><Delimiter>%%2F</Delimiter><EncodingType>url'
                '</EncodingType><IsTruncated>true</IsTruncated>'
                '<NextContinuationToken>%s</NextContinuationToken>'
                '</ListBucketResult>' % (enc, nxt)).encode())
            return True
        if listing and r.get('list_hold') and \
                q.get('prefix', [''])[0] == r['list_hold']:
            # a page that never ends: headers, then a byte every 0.5 s (so
            # no stall timeout fires) until the client goes or the line does
            lie('list_hold', m, path)
            self.send_response(200)
            self.send_header('Content-Type', 'application/xml')
            self.send_header('Content-Length', '1000000')
            self.end_headers()
            t0 = time.time()
            try:
                while time.time() - t0 < 300 and rules(self.control).get(
                        'list_hold') == r['list_hold']:
                    self.wfile.write(b' ')
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                print('CLOSED list_hold %s %s' % (m, path), flush=True)
            self.close_connection = True
            return True
        if listing and r.get('list_endless') and \
                q.get('prefix', [''])[0] == r['list_endless']:
            tok = q.get('continuation-token', ['t0'])[0]
            try:
                nxt = 't%d' % (int(tok[1:]) + 1)
            except ValueError:
                nxt = 't1'
            lie('list_endless', m, path)
            time.sleep(float(r.get('list_delay') or 0.2))
            enc = urllib.parse.quote(r['list_endless'], safe='')
            self.reply(200, [('Content-Type', 'application/xml')], (
                '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b'
                '</Name><Prefix>%s</Prefix><KeyCount>0</KeyCount><MaxKeys>'
                '1000</MaxKeys><Delimiter>%%2F</Delimiter><EncodingType>url'
                '</EncodingType><IsTruncated>true</IsTruncated>'
                '<NextContinuationToken>%s</NextContinuationToken>'
                '</ListBucketResult>' % (enc, nxt)).encode())
            return True
        if listing and r.get('list_late') and \
                q.get('prefix', [''])[0] == r['list_late']:
            st, reason, hdrs, data = self.forward(body)
            lie('list_late', m, path)
            with open(self.control + '.held', 'a') as f:
                f.write('LIST %s\n' % path)
            t0 = time.time()
            while time.time() - t0 < 60 and rules(self.control).get(
                    'list_late') == r['list_late']:
                time.sleep(0.05)
            self.reply(st, hdrs, data)
            return True
        if listing and r.get('list_nul') and \
                q.get('prefix', [''])[0] == r['list_nul']:
            st, reason, hdrs, data = self.forward(body)
            if st == 200 and b'</ListBucketResult>' in data:
                enc = urllib.parse.quote(r['list_nul'], safe='')
                extra = ('<Contents><Key>%sbad%%00name</Key><LastModified>'
                         '2024-01-01T00:00:00.000Z</LastModified><ETag>'
                         '&quot;0f0f&quot;</ETag><Size>1</Size>'
                         '<StorageClass>STANDARD</StorageClass></Contents>'
                         % enc).encode()
                data = data.replace(b'</ListBucketResult>',
                                    extra + b'</ListBucketResult>')
                lie('list_nul', m, path)
            self.reply(st, hdrs, data)
            return True
        if m == 'POST' and 'uploadId' in q and r.get('complete_garble') \
                and r['complete_garble'] in path:
            st, reason, hdrs, data = self.forward(body)
            lie('complete_garble', m, path)
            self.reply(200, [('Content-Type', 'application/xml')],
                       data[:len(data) // 2])
            return True
        if m == 'POST' and r.get('lose_reply') and \
                r['lose_reply'] in path:
            self.forward(body)
            lie('lose_reply', m, path)
            t0 = time.time()
            while time.time() - t0 < 300 and rules(self.control).get(
                    'lose_reply') == r['lose_reply']:
                time.sleep(0.1)
            self.reset()
            return True
        if m in ('POST', 'PUT') and r.get('reset_once') and \
                r['reset_once'] in path:
            with Handler.lock:
                first = url.path not in Handler.reset_done
                Handler.reset_done.add(url.path)
            if first:
                self.forward(body)
                lie('reset', m, path)
                self.reset()
                return True
        if m in ('POST', 'PUT') and r.get('reset_key') and \
                r['reset_key'] in path and not is_copy:
            self.forward(body)
            lie('reset_key', m, path)
            self.reset()
            return True
        return False

    def refuse(self, status, code, message):
        body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s'
                '</Code><Message>%s</Message></Error>' %
                (code, message)).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/xml')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    @classmethod
    def delay(cls, spec):
        """Seconds to wait for a "LO-HI" or "N" milliseconds rule."""
        if not spec:
            return 0.0
        lo, _, hi = spec.partition('-')
        with cls.lock:
            return cls.rnd.uniform(float(lo), float(hi or lo)) / 1000.0

    def read_slowly(self, n, rate):
        """The body at rate bytes/s, or None when the client hung up
        first."""
        got = []
        have = 0
        # a small window: the client cannot get megabytes ahead into
        # this socket's buffer, which would still be read after it hung up
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        print('SLOW PUT %s' % self.path, flush=True)
        while have < n:
            try:
                chunk = self.rfile.read(min(65536, n - have))
            except OSError:     # reset
                chunk = b''
            if not chunk:
                print('CLOSED slow_put PUT %s after %d of %d bytes' %
                      (self.path, have, n), flush=True)
                self.close_connection = True
                return None
            got.append(chunk)
            have += len(chunk)
            time.sleep(len(chunk) / rate)
        return b''.join(got)

    def handle_one(self):
        n = int(self.headers.get('Content-Length') or 0)
        r = rules(self.control)
        slow = r.get('slow_put')
        if n and slow and self.command == 'PUT' and slow in self.path:
            body = self.read_slowly(n, float(r.get('slow_rate') or 1048576))
            if body is None:
                return
        else:
            body = self.rfile.read(n) if n else b''
        hold(self.control, self.command, self.path)
        r = rules(self.control)
        while r.get('hang') == '1':     # swallowed: no answer
            time.sleep(0.2)
            r = rules(self.control)
        if r.get('refuse_key') and self.command in ('PUT', 'POST') and \
                r['refuse_key'] in self.path:
            return self.refuse(403, 'AccessDenied', 'Access Denied')
        if r.get('max_size') and self.command == 'PUT' and \
                n > int(r['max_size']):
            return self.refuse(400, 'EntityTooLarge', 'Your proposed '
                               'upload exceeds the maximum allowed size')
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
            self.reply(503, [('Content-Type', 'application/xml')], SLOWDOWN)
            return
        wait = self.delay(r.get('delay_ms'))
        if self.command in ('PUT', 'POST', 'DELETE', 'PATCH'):
            wait += self.delay(r.get('delay_write_ms'))
        if wait:
            time.sleep(wait)
        if self.lies(r, body):
            return
        st, reason, hdrs, data = self.forward(body)
        self.send_response(st, reason)
        for k, v in hdrs:
            self.send_header(k, v)
        # a HEAD keeps the object's length (it has no body to measure)
        self.send_header('Content-Length', self.head_length
                         if self.command == 'HEAD' else str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_one


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
