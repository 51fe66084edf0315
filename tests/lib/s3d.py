#!/usr/bin/python3
"""tests/lib/s3tool.py without its start-up cost on every call.

  s3d.py SOCKET OWNER s3tool.py-ARGS...

runs `s3tool.py ARGS` in the helper listening on the unix socket SOCKET,
starting the helper first when none answers there. The helper
(s3d.py --serve SOCKET OWNER) has imported boto3 once (0.37 of the 0.55
CPU seconds a call of s3tool.py costs) and forks a child per call; the
child gets the caller's stdin, stdout, stderr (passed over the socket),
working directory, environment and arguments, runs s3tool's main() with a
client of its own and answers with the exit code, which the caller exits
with. So a call does what `s3tool.py ARGS` does, at the cost of starting
this small client (about 0.03 s). The helper ends when the process OWNER
(the test's shell) has ended, or is killed with the test's other
processes (its command line names SOCKET, below the test's directory).

A call that cannot reach a helper (none starts, the path is too long for a
socket) or is made from another network or mount namespace than OWNER's
(unshare) runs s3tool.py itself, as before. MFS_S3_DIRECT=1 always does.
"""
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ACK = b'+'


def direct(args):
    os.execv(sys.executable, [sys.executable, os.path.join(HERE, 's3tool.py')]
             + args)


def namespaces(pid='self'):
    return '%s %s' % (os.readlink('/proc/%s/ns/net' % pid),
                      os.readlink('/proc/%s/ns/mnt' % pid))


def owners_namespaces(owner):
    """Whether this caller is in OWNER's network and mount namespaces: a
    helper started from another mount namespace (unshare -m) would keep
    that namespace, and the copies of mounts in it, for the whole test."""
    try:
        return namespaces() == namespaces(owner)
    except (OSError, ValueError):
        return False


def recv_exact(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def pack(fields):
    data = b'\0'.join(os.fsencode(f) for f in fields)
    return b'%08d' % len(data) + data


def connect(path):
    """A connection the helper has taken on (its child sent ACK), or None."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        if recv_exact(s, 1) == ACK:
            return s
    except (OSError, EOFError):
        pass
    s.close()
    return None


def start(path, owner):
    """Start a helper for PATH (one caller at a time: a lock file) and
    connect to it."""
    import fcntl
    import time
    with open(path + '.lock', 'w') as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        s = connect(path)	# another caller may have started it
        if s:
            return s
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        pid = os.fork()
        if pid == 0:	# detached from the caller's pipes: $(s3 ...) ends
            try:
                if os.fork():
                    os._exit(0)
                null = os.open(os.devnull, os.O_RDWR)
                log = os.open(path + '.log', os.O_WRONLY | os.O_CREAT |
                              os.O_APPEND, 0o644)
                os.dup2(null, 0)
                os.dup2(null, 1)
                os.dup2(log, 2)
                os.closerange(3, 65536)
                # not the caller's directory: one in a mount would keep
                # that mount busy (umount fails) for the rest of the test
                os.chdir('/')
                os.execv(sys.executable, [sys.executable,
                                          os.path.abspath(__file__),
                                          '--serve', path, owner])
            finally:
                os._exit(127)
        os.waitpid(pid, 0)
        # the helper binds the socket before its imports: up to 60 s
        for _ in range(600):
            if os.path.exists(path):
                break
            time.sleep(0.1)
        return connect(path)


def call(path, owner, args):
    s = connect(path) if os.path.exists(path) else None
    if not s:
        s = start(path, owner)
    if not s:
        direct(args)
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(-1)
    try:
        cwd = os.getcwd()
    except OSError:	# a directory removed: s3tool.py runs there itself
        s.close()
        direct(args)
    fields = [namespaces(), cwd, ' '.join(str(f) for f in fds),
              str(len(args))] + args
    fields += ['%s=%s' % kv for kv in os.environ.items()]
    socket.send_fds(s, [pack(fields)], [f for f in fds if f >= 0])
    r = b''
    while True:
        try:
            d = s.recv(64)
        except OSError:
            d = b''
        if not d:
            break
        r += d
    if r == b'ns':	# another namespace than the helper's: nothing was done
        s.close()
        direct(args)
    if not r:
        sys.stderr.write('s3d.py: the helper at %s ended during: s3tool.py %s\n'
                         % (path, ' '.join(args)))
        return 1
    return int(r)


def child(conn):
    """Run one call of s3tool.py in this forked child; returns its code."""
    conn.sendall(ACK)
    msg, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    n = int(msg[:8])
    data = msg[8:]
    while len(data) < n:
        d = conn.recv(n - len(data))
        if not d:
            raise EOFError
        data += d
    fields = [os.fsdecode(f) for f in data.split(b'\0')]
    ns, cwd, which, argc = fields[:4]
    if ns != namespaces():
        conn.sendall(b'ns')
        return None
    argc = int(argc)
    args = fields[4:4 + argc]
    env = dict(kv.split('=', 1) for kv in fields[4 + argc:] if '=' in kv)
    got = iter(fds)
    for target, f in zip((0, 1, 2), which.split()):
        if int(f) >= 0:
            fd = next(got)
            os.dup2(fd, target)
            os.close(fd)
        else:
            os.close(target)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [os.path.join(HERE, 's3tool.py')] + args
    import s3tool
    import traceback
    code = 0
    try:
        s3tool.main()
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            sys.stderr.write('%s\n' % e.code)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            code = code or 120
    conn.sendall(b'%d' % code)
    return code


def serve(path, owner):
    import signal
    owner = int(owner)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:	# left by a helper killed while it started
        os.unlink(path + '.new')
    except FileNotFoundError:
        pass
    ls.bind(path + '.new')
    ls.listen(64)
    os.rename(path + '.new', path)	# callers connect from here on
    sys.path.insert(0, HERE)
    import s3tool
    s3tool.client(1)	# boto3 imported and its S3 model loaded, once
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)	# children reaped
    ls.settimeout(1)
    calls = 0
    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            break
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        calls += 1
        try:
            pid = os.fork()
        except OSError:	# the caller sees no ACK: it starts a helper anew
            conn.close()
            continue
        if pid == 0:
            try:
                ls.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                child(conn)
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(0)
        conn.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sys.stderr.write('s3d.py: %d calls; process %d has ended\n' % (calls, owner))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == '--serve':
        serve(sys.argv[2], sys.argv[3])
        return 0
    path, owner, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if os.environ.get('MFS_S3_DIRECT') or len(os.fsencode(path)) > 100 or \
            not owners_namespaces(owner):
        direct(args)
    return call(path, owner, args)


if __name__ == '__main__':
    sys.exit(main())
