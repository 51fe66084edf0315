#!/usr/bin/python3
"""Run OpenStack Swift + s3api on 127.0.0.1 as a faithful local S3 server.

Usage: swift_s3.py DIR PORT [--reqlog FILE]
Creates DIR (config, rings, data), starts proxy (the S3 endpoint on PORT) and
object/container/account servers on free ports, prints "ready" on stdout when
the endpoint answers, and runs until SIGTERM. Credentials: access key
"test:tester", secret "testing" (tempauth). Every S3 request is appended to the
request log as "METHOD PATH?QUERY STATUS LENGTH" (one line each; LENGTH is the
response's Content-Length, "-" when it has none) for request and byte counting.
Must run under Debian's /usr/bin/python3 (python3-swift).
"""
import os
import signal
import socket
import sys
import time
import logging.handlers

# Swift logs to syslog or UDP 514; drop that, the request log is ours.
logging.handlers.SysLogHandler.emit = lambda self, record: None


class DictCache(object):
    """In-process stand-in for memcache (proxy runs with workers = 0)."""

    def __init__(self):
        self.d = {}

    def _alive(self, key):
        v = self.d.get(key)
        if v is None:
            return None
        if v[1] and v[1] < time.time():
            del self.d[key]
            return None
        return v

    def get(self, key, raise_on_error=False):
        v = self._alive(key)
        return v[0] if v else None

    def set(self, key, value, serialize=True, time=0, min_compress_len=0,
            raise_on_error=False):
        import time as _t
        exp = 0
        if time:
            exp = time if time > 30 * 86400 else _t.time() + time
        self.d[key] = (value, exp)

    def incr(self, key, delta=1, time=0):
        v = self._alive(key)
        n = (int(v[0]) if v else 0) + delta
        self.set(key, n, time=time)
        return n

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -delta, time)

    def delete(self, key, server_key=None):
        self.d.pop(key, None)

    def set_multi(self, mapping, server_key, serialize=True, time=0,
                  min_compress_len=0):
        for k, v in mapping.items():
            self.set(k, v, time=time)

    def get_multi(self, keys, server_key):
        return [self.get(k) for k in keys]


_CACHE = DictCache()


def cache_filter_factory(global_conf, **local_conf):
    def wrap(app):
        def mw(environ, start_response):
            environ['swift.cache'] = _CACHE
            return app(environ, start_response)
        return mw
    return wrap


def reqlog_filter_factory(global_conf, **local_conf):
    path = local_conf.get('path') or global_conf.get('reqlog')
    f = open(path, 'a', buffering=1) if path else None

    def wrap(app):
        def mw(environ, start_response):
            status = ['-', '-']

            def sr(st, headers, exc_info=None):
                status[0] = st.split(' ', 1)[0]
                for k, v in headers:
                    if k.lower() == 'content-length':
                        status[1] = v
                return start_response(st, headers, exc_info)
            try:
                return app(environ, sr)
            finally:
                if f:
                    q = environ.get('QUERY_STRING', '')
                    m = environ['REQUEST_METHOD']
                    # a CopyObject is a PUT on the wire: name it
                    if m == 'PUT' and 'HTTP_X_AMZ_COPY_SOURCE' in environ:
                        m = 'COPY'
                    f.write('%s %s%s %s %s\n' % (
                        m,
                        environ.get('RAW_PATH_INFO',
                                    environ.get('PATH_INFO', '')),
                        ('?' + q) if q else '', status[0], status[1]))
        return mw
    return wrap


SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = mediafs-test
swift_hash_path_prefix = mediafs-test

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
max_file_size = 5368709122
max_meta_name_length = 2048
max_meta_value_length = 2048
max_meta_count = 90
max_meta_overall_size = 8192
max_header_size = 16384
max_object_name_length = 1100
container_listing_limit = 10000
"""

BACKEND_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
mount_check = false
devices = {dir}/srv
swift_dir = {dir}
log_udp_host = 127.0.0.1
log_udp_port = 9

[pipeline:main]
pipeline = {name}-server

[app:{name}-server]
use = egg:swift#{name}
{extra}
"""

PROXY_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {dir}
log_udp_host = 127.0.0.1
log_udp_port = 9
client_timeout = 120

[pipeline:main]
pipeline = reqlog catch_errors gatekeeper proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[filter:reqlog]
paste.filter_factory = swift_s3:reqlog_filter_factory
path = {reqlog}

[filter:cache]
paste.filter_factory = swift_s3:cache_filter_factory

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000
max_multi_delete_objects = 1000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_admin_admin = admin .admin .reseller_admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
node_timeout = 60
conn_timeout = 5
recoverable_node_timeout = 60
"""


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build_rings(d, ports):
    from swift.common.ring import RingBuilder
    for name, port in ports.items():
        rb = RingBuilder(6, 1, 1)
        rb.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
                    'port': port, 'device': 'd1', 'weight': 100,
                    'meta': ''})
        rb.rebalance()
        rb.get_ring().save(os.path.join(d, '%s.ring.gz' % name))


def no_sync():
    """A test server holds nothing worth a disk flush: a process killed by a
    test (test_server_dies) loses nothing without fsync, only a machine
    crash would. Swift fsyncs every object and directory it writes and drops
    the page cache after each write and read (so every GET went to the
    disk). Both are turned off here: in the object server they were most of
    a PUT's time."""
    from swift.common import utils
    os.fsync = os.fdatasync = lambda fd: None
    utils.drop_buffer_cache = lambda fd, offset, length: None


def serve(conf, section):
    no_sync()
    from swift.common import utils, constraints
    from swift.common.storage_policy import reload_storage_policies
    from swift.common.wsgi import run_wsgi
    d = os.path.dirname(conf)
    utils.set_swift_dir(d)
    constraints.reload_constraints()
    reload_storage_policies()
    sys.exit(run_wsgi(conf, section))


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    d = os.path.abspath(sys.argv[1])
    port = int(sys.argv[2])
    reqlog = os.path.join(d, 'requests.log')
    if '--reqlog' in sys.argv:
        reqlog = os.path.abspath(sys.argv[sys.argv.index('--reqlog') + 1])
    os.makedirs(os.path.join(d, 'srv', 'd1'), exist_ok=True)
    with open(os.path.join(d, 'swift.conf'), 'w') as f:
        f.write(SWIFT_CONF)
    ports = {n: free_port() for n in ('object', 'container', 'account')}
    extra = {'object': 'container_update_timeout = 60\n', 'container': '',
             'account': ''}
    confs = {}
    for n, p in ports.items():
        confs[n] = os.path.join(d, '%s-server.conf' % n)
        with open(confs[n], 'w') as f:
            f.write(BACKEND_CONF.format(port=p, dir=d, name=n,
                                        extra=extra[n]))
    confs['proxy'] = os.path.join(d, 'proxy-server.conf')
    with open(confs['proxy'], 'w') as f:
        f.write(PROXY_CONF.format(port=port, dir=d, reqlog=reqlog))
    build_rings(d, ports)

    kids = []
    for n in ('account', 'container', 'object', 'proxy'):
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0) if False else None
            serve(confs[n], '%s-server' % n)
            os._exit(1)
        kids.append(pid)

    def stop(*_):
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # ready = all four servers accept connections (the proxy alone would
    # answer NoSuchBucket/503 while its backends start)
    deadline = time.time() + 120  # a loaded machine (sanitizer runs)
    for p in [port] + list(ports.values()):
        while True:
            try:
                socket.create_connection(('127.0.0.1', p), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.stderr.write('swift_s3: a server did not start '
                                     '(port %d)\n' % p)
                    stop()
                time.sleep(0.05)
    with open(os.path.join(d, 'pid'), 'w') as f:
        f.write('%d\n' % os.getpid())
    print('ready', flush=True)
    while True:
        pid, st = os.wait()
        if pid in kids:
            sys.stderr.write('swift_s3: a server process exited (%d)\n' % st)
            stop()


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
