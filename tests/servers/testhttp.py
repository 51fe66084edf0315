"""What the test servers share (python3 stdlib): the control file they
re-read at every request, and a quiet HTTP/1.1 request handler."""
import http.server
import socket


def read_control(path):
    """The "key=value" lines of path as a dict ({} when it is absent).
    A test's `echo rule >control` truncates the file and then writes it: a
    read between the two saw no rule at all, and a held request went on or
    a lie was not told (test_late_landing failed so at load 18). An empty
    file changed in the last second is read again until it is older or
    has its line (a test's own `: >control` is a release, a second late)."""
    import os
    import time
    text = ''
    for _ in range(100):
        try:
            mtime = os.stat(path).st_mtime
            with open(path) as f:
                text = f.read()
        except OSError:
            return {}
        if text or time.time() - mtime > 1.0:
            break
        time.sleep(0.02)
    c = {}
    for line in text.splitlines():
        if '=' in line:
            k, v = line.strip().split('=', 1)
            c[k] = v
    return c


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1, no access log, TCP_NODELAY: headers and body go in two
    writes, and without it Nagle and the client's delayed ACK hold many
    responses ~40 ms."""
    protocol_version = 'HTTP/1.1'

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass


def hold(path, method, url):
    """Hold an upload while the control file at path says so: a PUT or
    POST whose URL contains the text of a "hold_key=TEXT" line (a DELETE:
    of a "hold_delete=TEXT" line, a HEAD: of a "hold_head=TEXT" line)
    waits until that line is gone (tests make "upload in flight" a state,
    not a race). Each held request appends its URL (a HEAD: "HEAD URL") to
    path + '.held' when it starts waiting, so a test can wait for it to
    arrive."""
    import time
    first = True
    line = {'DELETE': 'hold_delete', 'HEAD': 'hold_head'}.get(method,
                                                             'hold_key')
    while method in ('PUT', 'POST', 'PATCH', 'DELETE', 'HEAD'):
        k = read_control(path).get(line)
        if not k or k not in url:
            return
        if first:
            with open(path + '.held', 'a') as f:
                f.write(('HEAD ' if method == 'HEAD' else '') + url + '\n')
            first = False
        time.sleep(0.02)
