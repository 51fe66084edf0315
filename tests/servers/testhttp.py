"""What the test servers share (python3 stdlib): the control file they
re-read at every request, and a quiet HTTP/1.1 request handler."""
import http.server
import socket


def read_control(path):
    """The "key=value" lines of path as a dict ({} when it is absent)."""
    c = {}
    try:
        with open(path) as f:
            for line in f:
                if '=' in line:
                    k, v = line.strip().split('=', 1)
                    c[k] = v
    except OSError:
        pass
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
