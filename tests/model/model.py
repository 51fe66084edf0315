#!/usr/bin/python3
"""Reference-model tester for mediafs (issue #15), after mountpoint-s3's
reftests: random operation sequences from a seed are applied to a real
mount and to a model of what a POSIX-ish media filesystem must show; after
every step the mounted tree (names, kinds, sizes, bytes, modes) must equal
the model, and at settle points (queue drained, polled through the journal
and `mediactl status --json`) the store itself must too (keys, bytes,
content types as mediafs defines them: the xattr, else libmagic on the
first 4,096 bytes with the final name's extension as a tie-break).

  model.py run --backend s3|supabase|imagekit|local --seed N [--ops N]
               [--mode safe|full]
  model.py replay CASE.json [CASE.json ...]
  model.py soak --seconds N [--backends s3,supabase,imagekit,local]

Environment: MEDIAFS (the daemon; mediactl beside it), T (scratch dir),
S3_PORT (Swift s3api), SB_PORT/SB_KEY/SB_DIR (the Supabase fake); the
ImageKit fake is started by the tester itself (one a run), local needs
nothing. MODEL_TIMING=1 prints where the time went ('# time' lines).
Prints PASS:/FAIL:/SKIP: lines; a failure prints the seed, the step, the
operations so far and writes a shrunk replay case.

Modes: 'safe' never generates an operation variant that can trigger a
defect listed in known_open.json (fixed seeds must pass on main); 'full'
generates everything (soak). A replay case of a known-open defect that
still fails prints "SKIP: #15.N open: ...".
"""
import argparse
import ctypes
import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), 'lib')
sys.path.insert(0, LIB)

SETTLE_DEADLINE = float(os.environ.get('MODEL_SETTLE_S', '180'))
LIVE_QUEUE = os.environ.get('MODEL_LIVE_QUEUE') == '1'
# files whose bytes a step reads besides those it touched (MODEL_FULL_READ=1:
# every file's bytes after every step, as before)
TIMING = os.environ.get('MODEL_TIMING') == '1'
ROTATE = int(os.environ.get('MODEL_ROTATE', '2'))
FULL_READ = os.environ.get('MODEL_FULL_READ') == '1'
# slow mode (--slow, MODEL_SLOW=1): a delaying proxy before the server and
# random waits before steps (docs/MODEL.md, "Slow mode")
SLOW_WAIT_P = float(os.environ.get('MODEL_SLOW_WAIT_P', '0.3'))
SLOW_DELAY_MS = os.environ.get('MODEL_SLOW_DELAY_MS', '0-80')
SLOW_WRITE_MS = os.environ.get('MODEL_SLOW_WRITE_MS', '100-700')
# MODEL_DEBUG=upq+http: the daemon's debug log of those subsystems (in each
# mount's mediafs.log), to read what a failing case did
DEBUG_OPT = (',debug=' + os.environ['MODEL_DEBUG']
             if os.environ.get('MODEL_DEBUG') else '')
SNIFF_BYTES = 4096
FILE_NAMES = ['a.txt', 'b.bin', 'c', 'd.png', 'e.json', 'f.jpg', 'g']
DIR_NAMES = ['d1', 'd2', 'x', 'y', 'deep']
EXT_CLASS = {}	# filled from sniff's extension table below
OUTSIDE_TYPE = 'application/x-model-outside'
XATTR_TYPES = ['text/markdown', 'application/x-model-test', 'image/webp']


def load_known_open(table=False):
    with open(os.path.join(HERE, 'known_open.json')) as f:
        j = json.load(f)
    known = {int(k): v for k, v in j['open'].items()}
    return (known, j.get('cases', {})) if table else known


def load_held():
    """Fixed defects whose generator variants safe mode still leaves out
    ('held' in known_open.json): their replay cases run and must pass."""
    with open(os.path.join(HERE, 'known_open.json')) as f:
        j = json.load(f)
    return {int(k) for k in j.get('held', {})}


# ---------------------------------------------------------------- types
# The same rule as src/meta/sniff.c sniff_type(), over the same libmagic.
BY_EXT = {
    'html': 'text/html', 'htm': 'text/html', 'css': 'text/css',
    'js': 'text/javascript', 'mjs': 'text/javascript',
    'json': 'application/json', 'csv': 'text/csv', 'txt': 'text/plain',
    'md': 'text/markdown', 'xml': 'application/xml',
    'svg': 'image/svg+xml', 'webmanifest': 'application/manifest+json',
    'jpg': 'image/jpeg', 'jpeg': 'image/jpeg', 'png': 'image/png',
    'gif': 'image/gif', 'webp': 'image/webp', 'avif': 'image/avif',
    'heic': 'image/heic', 'tif': 'image/tiff', 'tiff': 'image/tiff',
    'ico': 'image/vnd.microsoft.icon', 'mp4': 'video/mp4',
    'webm': 'video/webm', 'mov': 'video/quicktime', 'mp3': 'audio/mpeg',
    'pdf': 'application/pdf', 'woff2': 'font/woff2', 'woff': 'font/woff',
}


class Magic:
    def __init__(self):
        lib = ctypes.CDLL('libmagic.so.1')
        lib.magic_open.restype = ctypes.c_void_p
        lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.magic_buffer.restype = ctypes.c_char_p
        lib.magic_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.c_size_t]
        MIME_TYPE, ERROR, NO_CHECK_COMPRESS = 0x10, 0x200, 0x1000
        self.lib = lib
        self.cookie = lib.magic_open(MIME_TYPE | ERROR | NO_CHECK_COMPRESS)
        lib.magic_load(self.cookie, None)

    def raw(self, data):
        r = self.lib.magic_buffer(self.cookie, data, len(data))
        return r.decode() if r else None


MAGIC = None


def textual(t):
    return t.startswith('text/') or 'json' in t or 'xml' in t


def generic(t):
    return (not t or t in ('application/octet-stream', 'text/plain',
                           'application/x-empty', 'inode/x-empty')
            or t.startswith('text/x-'))


def ext_type(name):
    if '.' not in name:
        return None
    return BY_EXT.get(name.rsplit('.', 1)[1].lower())


def sniff(data, name):
    global MAGIC
    if MAGIC is None:
        MAGIC = Magic()
    head = bytes(data[:SNIFF_BYTES])
    t = MAGIC.raw(head) if head else None
    e = ext_type(name)
    if e and t and t.startswith('text/') and not textual(e):
        e = None
    if generic(t) and e:
        return e
    if not t or t in ('application/x-empty', 'inode/x-empty'):
        return 'application/octet-stream'
    return t


def _text_slow(r, n):
    words = []
    size = 0
    while size < n:
        w = ''.join(r.choice('abcdefghijklmnopqrstuvwxyz')
                    for _ in range(r.randint(1, 9)))
        w += '\n' if r.random() < 0.1 else ' '
        words.append(w)
        size += len(w)
    return ''.join(words).encode()[:n]


def _text_fast(r, n):
    """_text_slow's bytes, 3x sooner: r.randint(1, 9) and r.choice of 26
    letters spelled as the getrandbits draws they make (_randbelow)."""
    words = []
    size = 0
    bits = r.getrandbits
    rnd = r.random
    letters = 'abcdefghijklmnopqrstuvwxyz'
    while size < n:
        k = bits(4)
        while k >= 9:
            k = bits(4)
        chars = []
        for _ in range(k + 1):
            c = bits(5)
            while c >= 26:
                c = bits(5)
            chars.append(letters[c])
        w = ''.join(chars) + ('\n' if rnd() < 0.1 else ' ')
        words.append(w)
        size += len(w)
    return ''.join(words).encode()[:n]


_TEXT = []	# the text generator, once checked against the slow one
_DATA = {}	# (kind, n, seed) -> bytes: an op's bytes are made 2-3 times


def gen_data(spec):
    """Deterministic bytes from {'k': kind, 'n': length, 's': seed}."""
    key = (spec['k'], spec['n'], spec['s'])
    got = _DATA.get(key)
    if got is not None:
        return got
    r = random.Random(spec['s'])
    n = spec['n']
    if spec['k'] == 'text':
        if not _TEXT:
            same = all(_text_fast(random.Random(s), 3000) ==
                       _text_slow(random.Random(s), 3000) for s in (1, 2))
            _TEXT.append(_text_fast if same else _text_slow)
        out = _TEXT[0](r, n)
    elif spec['k'] == 'png':
        head = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10'
                b'\x00\x00\x00\x10\x08\x06\x00\x00\x00')
        out = (head + r.randbytes(max(0, n - len(head))))[:max(n, 0)]
    else:
        out = r.randbytes(n)
    if len(_DATA) > 64:
        _DATA.clear()
    _DATA[key] = out
    return out


# ---------------------------------------------------------------- model
class File:
    def __init__(self, data=b'', mode=0o644):
        self.data = bytearray(data)
        self.mode = mode
        self.attrs_known = True
        self.xtype = None	# content type given by xattr or outside writer
        self.outside = False	# xtype came from an outside writer

    def copy(self):
        f = File(self.data, self.mode)
        f.attrs_known, f.xtype = self.attrs_known, self.xtype
        f.outside = self.outside
        return f

    def written(self):
        """The mount changed the bytes: a type given by setfattr or an
        outside writer described the old ones and goes; the upload sniffs
        the new bytes (mediafs's rule, README "Content types")."""
        self.xtype, self.outside = None, False


class Model:
    """What the mount must show: files (path -> File) and directories
    (set of paths; '' is the root)."""

    def __init__(self):
        self.files = {}
        self.dirs = {''}
        self.settled_empty = set()	# dirs seen empty at a settle point

    @staticmethod
    def parent(p):
        return p.rsplit('/', 1)[0] if '/' in p else ''

    def exists(self, p):
        return p in self.files or p in self.dirs

    def children(self, d):
        pre = d + '/' if d else ''
        out = set()
        for p in list(self.files) + list(self.dirs):
            if p and p.startswith(pre) and '/' not in p[len(pre):]:
                out.add(p)
        return out

    def under(self, d):
        pre = d + '/'
        return [p for p in list(self.files) + list(self.dirs)
                if p.startswith(pre)]

    def depth_below(self, d):
        n = 0
        for p in self.under(d):
            n = max(n, p[len(d) + 1:].count('/') + 1)
        return n

    def expected_type(self, p):
        f = self.files[p]
        if f.xtype and f.xtype not in ('application/octet-stream',
                                       'binary/octet-stream'):
            return f.xtype
        return sniff(f.data, p.rsplit('/', 1)[-1])


# ---------------------------------------------------------------- stores
class S3Store:
    name = 's3'
    dport = None	# the daemon's port: a slow-mode proxy's

    def __init__(self, bucket):
        import s3tool
        self.port = int(os.environ['S3_PORT'])
        self.c = s3tool.client(self.port)
        self.bucket = bucket
        self.c.create_bucket(Bucket=bucket)

    def conf(self):
        return ('[s3t]\ntype = s3\nendpoint = http://127.0.0.1:%d\n'
                'region = us-east-1\nbucket = %s\naccess_key_id = test:tester\n'
                'secret_access_key = testing\nretry_base_ms = 50\n'
                % (self.dport or self.port, self.bucket)), 's3t:'

    def listing(self):
        """{key: (bytes, content type)} of files, set of marker dirs."""
        files, markers = {}, set()
        pag = self.c.get_paginator('list_objects_v2')
        for page in pag.paginate(Bucket=self.bucket):
            for o in page.get('Contents', []):
                k = o['Key']
                if k.endswith('/'):
                    markers.add(k[:-1])
                    continue
                r = self.c.get_object(Bucket=self.bucket, Key=k)
                files[k] = (r['Body'].read(), r.get('ContentType'))
        return files, markers

    def put(self, key, data, ctype):
        self.c.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                          ContentType=ctype)

    def delete(self, key):
        self.c.delete_object(Bucket=self.bucket, Key=key)

    def fault(self, on):
        return False	# no fault injection on this store here


class SupabaseStore:
    name = 'supabase'
    dport = None	# the daemon's port: a slow-mode proxy's
    PLACEHOLDER = '.emptyFolderPlaceholder'

    def __init__(self, bucket):
        self.port = int(os.environ['SB_PORT'])
        self.key = os.environ['SB_KEY']
        self.dir = os.environ['SB_DIR']
        self.bucket = bucket
        self.call('POST', '/bucket', {'name': bucket, 'id': bucket,
                                      'public': False})

    def call(self, method, path, body=None, headers=None, raw=False):
        h = {'apikey': self.key}
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h['Content-Type'] = 'application/json'
        h.update(headers or {})
        req = urllib.request.Request(
            'http://127.0.0.1:%d/storage/v1%s' % (self.port, path),
            data=body, headers=h, method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            return (data, r.headers) if raw else json.loads(data)

    def q(self, s):
        return urllib.parse.quote(s, safe='/')

    def conf(self):
        return ('[supa]\ntype = supabase\nurl = http://127.0.0.1:%d\n'
                'key = %s\nretry_base_ms = 20\nretries = 2\n'
                % (self.dport or self.port, self.key)), 'supa:' + self.bucket

    def listing(self):
        keys, cursor = [], None
        while True:
            body = {'prefix': '', 'limit': 1000, 'with_delimiter': False}
            if cursor:
                body['cursor'] = cursor
            r = self.call('POST', '/object/list-v2/' + self.q(self.bucket),
                          body)
            keys += [o['name'] for o in r['objects']]
            if not r.get('hasNext'):
                break
            cursor = r['nextCursor']
        files, markers = {}, set()
        for k in keys:
            base = k.rsplit('/', 1)[-1]
            if base == self.PLACEHOLDER:
                markers.add(k.rsplit('/', 1)[0] if '/' in k else '')
                continue
            data, _ = self.call('GET', '/object/authenticated/%s/%s' %
                                (self.q(self.bucket), self.q(k)), raw=True)
            info = self.call('GET', '/object/info/authenticated/%s/%s' %
                             (self.q(self.bucket), self.q(k)))
            files[k] = (data, info.get('content_type'))
        return files, markers

    def put(self, key, data, ctype):
        import base64
        meta = base64.b64encode(b'{}').decode()
        self.call('POST', '/object/%s/%s' % (self.q(self.bucket), self.q(key)),
                  bytes(data), {'x-metadata': meta, 'Content-Type': ctype,
                                'x-upsert': 'true'})

    def delete(self, key):
        self.call('DELETE', '/object/%s/%s' % (self.q(self.bucket),
                                               self.q(key)))

    def fault(self, on):
        """Fail every request to this bucket (500) or stop: only this
        bucket's, as other runs share the server and its control file
        (read, changed and written under a lock)."""
        import fcntl
        path = os.path.join(self.dir, 'control')
        mine = '/%s/' % self.bucket
        with open(path + '.lock', 'a') as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                lines = open(path).read().splitlines()
            except FileNotFoundError:
                lines = []
            keep, texts = [], []
            for ln in lines:
                if ln.startswith('fail500='):
                    texts += [t for t in ln[8:].split(',') if t]
                else:
                    keep.append(ln)
            texts = [t for t in texts if t != mine] + ([mine] if on else [])
            if texts:
                keep.append('fail500=' + ','.join(texts))
            with open(path + '.tmp', 'w') as f:
                f.write(''.join(ln + '\n' for ln in keep))
            os.replace(path + '.tmp', path)
        return True


class ImageKitStore:
    """The ImageKit fake (tests/servers/fake_imagekit.py), one server per
    run (the fake is one media library, no buckets): the outside writer
    uses ImageKit's upload API, the comparison its list API and the
    original bytes (?tr=orig-true). ImageKit decides content types itself
    (README, "Limits"): types are not compared. Folders are objects of
    their own: the store's folders must equal the model's directories.
    Modes travel in custom metadata, so they survive a lost cache."""
    name = 'imagekit'
    dport = None	# the daemon's port: a slow-mode proxy's
    types = False
    keeps_modes = True
    explicit_dirs = True

    def __init__(self, bucket):
        import tempfile
        self.key = 'private_model-%s' % bucket
        base = os.environ.get('T') or None
        self.dir = tempfile.mkdtemp(prefix='ik-%s-' % bucket, dir=base)
        import socket
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        self.port = s.getsockname()[1]
        s.close()
        with open(os.path.join(self.dir, 'server.out'), 'w') as out:
            self.proc = subprocess.Popen(
                ['/usr/bin/python3', os.path.join(
                    os.path.dirname(HERE), 'servers', 'fake_imagekit.py'),
                 str(self.port), self.key, self.dir, 'demo'],
                stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        up = False
        while time.time() < deadline and self.proc.poll() is None:
            with open(os.path.join(self.dir, 'server.out')) as f:
                up = 'ready' in f.read()
            if up:
                break
            time.sleep(0.05)
        if not up:
            self.close()
            raise Mismatch('fake ImageKit server did not start')

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self):
        return ('[ik]\ntype = imagekit\nprivate_key = %s\n'
                'url_endpoint = http://127.0.0.1:%d/demo\n'
                'api_url = http://127.0.0.1:%d\nupload_url = '
                'http://127.0.0.1:%d\nretry_base_ms = 20\n'
                % ((self.key,) + (self.dport or self.port,) * 3)), 'ik:'

    def call(self, method, path, body=None, headers=None):
        import base64
        h = {'Authorization': 'Basic ' +
             base64.b64encode((self.key + ':').encode()).decode()}
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h['Content-Type'] = 'application/json'
        h.update(headers or {})
        req = urllib.request.Request('http://127.0.0.1:%d%s' %
                                     (self.port, path), data=body,
                                     headers=h, method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def walk(self, folder='/'):
        out = self.call('GET', '/v1/files?' + urllib.parse.urlencode(
            {'path': folder, 'type': 'all', 'limit': 1000}))
        for o in list(out):
            if o['type'] == 'folder':
                out += self.walk(o['folderPath'])
        return out

    def listing(self):
        """{key: (bytes, None)} of files, set of folders."""
        import uuid
        files, folders = {}, set()
        for o in self.walk():
            if o['type'] == 'folder':
                folders.add(o['folderPath'].strip('/'))
                continue
            with urllib.request.urlopen(o['url'] + '?tr=orig-true&nocache='
                                        + uuid.uuid4().hex,
                                        timeout=60) as r:
                files[o['filePath'].lstrip('/')] = (r.read(), None)
        return files, folders

    def put(self, key, data, ctype):
        import uuid
        folder, _, name = ('/' + key).rpartition('/')
        bound = 'model' + uuid.uuid4().hex
        parts = [('--%s\r\nContent-Disposition: form-data; name="%s"\r\n'
                  '\r\n%s\r\n' % (bound, k, v)).encode()
                 for k, v in (('fileName', name), ('folder', folder or '/'),
                              ('useUniqueFileName', 'false'))]
        parts.append(('--%s\r\nContent-Disposition: form-data; name="file"; '
                      'filename="%s"\r\n\r\n' % (bound, name)).encode() +
                     bytes(data) + b'\r\n')
        parts.append(('--%s--\r\n' % bound).encode())
        self.call('POST', '/api/v1/files/upload', b''.join(parts), {
            'Content-Type': 'multipart/form-data; boundary=' + bound})

    def delete(self, key):
        for o in self.walk(Model.parent('/' + key) or '/'):
            if o['type'] == 'file' and o['filePath'] == '/' + key:
                self.call('DELETE', '/v1/files/' + o['fileId'])
                return
        raise Mismatch('outside delete: %s not on ImageKit' % key)

    def fault(self, on):
        return False


class LocalStore:
    """type = local: a directory on disk. The outside writer writes the
    directory itself (a temporary file renamed into place); no content
    types; directories are the store's own, modes the files' own."""
    name = 'local'
    types = False
    keeps_modes = True
    explicit_dirs = True

    def __init__(self, bucket):
        import tempfile
        base = os.environ.get('T') or None
        self.dir = tempfile.mkdtemp(prefix='local-%s-' % bucket, dir=base)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self):
        return '[loc]\ntype = local\npath = %s\n' % self.dir, 'loc:'

    def listing(self):
        files, dirs = {}, set()
        for top, ds, fs in os.walk(self.dir):
            rel = os.path.relpath(top, self.dir)
            rel = '' if rel == '.' else rel + '/'
            dirs.update(rel + d for d in ds)
            for n in fs:
                if n.startswith('.mediafs-tmp-'):
                    continue
                with open(os.path.join(top, n), 'rb') as f:
                    files[rel + n] = (f.read(), None)
        return files, dirs

    def put(self, key, data, ctype):
        path = os.path.join(self.dir, key)
        # a folder made through the mount may not be on disk yet (its
        # mkdir waits in the queue, as a marker would): the outside
        # writer makes it, as a writer to a plain directory would
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(os.path.dirname(path), '.mediafs-tmp-outside')
        with open(tmp, 'wb') as f:
            f.write(bytes(data))
        os.replace(tmp, path)

    def delete(self, key):
        os.unlink(os.path.join(self.dir, key))

    def fault(self, on):
        return False


class Proxy:
    """Slow mode: tests/servers/fault_proxy.py in front of a store's
    server, for the daemon only (the outside writer and the comparisons
    go straight to the server), each request held a random time first
    (SLOW_DELAY_MS, SLOW_WRITE_MS more for PUT/POST/DELETE/PATCH): a far
    or loaded server, so uploads stay in flight across later steps."""

    def __init__(self, upstream, workdir, seed):
        import socket
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        self.port = s.getsockname()[1]
        s.close()
        self.control = os.path.join(workdir, 'proxy.control')
        with open(self.control, 'w') as f:
            f.write('seed=%d\ndelay_ms=%s\ndelay_write_ms=%s\n' %
                    (seed, SLOW_DELAY_MS, SLOW_WRITE_MS))
        out = os.path.join(workdir, 'proxy.out')
        env = dict(os.environ, PYTHONPATH=os.path.join(
            os.path.dirname(HERE), 'servers'))
        with open(out, 'w') as o:
            self.proc = subprocess.Popen(
                ['/usr/bin/python3', os.path.join(
                    os.path.dirname(HERE), 'servers', 'fault_proxy.py'),
                 str(self.port), str(upstream), self.control],
                stdout=o, stderr=subprocess.STDOUT, env=env,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            with open(out) as f:
                if 'ready' in f.read():
                    return
            time.sleep(0.05)
        self.close()
        raise Mismatch('the slow-mode proxy did not start')

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


STORES = {'s3': S3Store, 'supabase': SupabaseStore,
          'imagekit': ImageKitStore, 'local': LocalStore}


# ---------------------------------------------------------------- mount
class Mismatch(Exception):
    def __init__(self, what, defect=None):
        super().__init__(what)
        self.defect = defect


class Mount:
    def __init__(self, workdir, store):
        self.w = workdir
        self.store = store
        self.mnt = os.path.join(workdir, 'mnt')
        self.cache = os.path.join(workdir, 'cache')
        self.journal = os.path.join(workdir, 'journal.db')
        self.log = os.path.join(workdir, 'mediafs.log')
        self.conf = os.path.join(workdir, 'mediafs.conf')
        self.mediafs = os.environ['MEDIAFS']
        self.mediactl = os.path.join(os.path.dirname(self.mediafs),
                                     'mediactl')
        text, self.remote = store.conf()
        with open(self.conf, 'w') as f:
            f.write(text)
        os.chmod(self.conf, 0o600)
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)

    def start(self):
        logf = open(self.log, 'ab')
        self.proc = subprocess.Popen(
            # landing_grace: a dead daemon's request the slow-mode proxy
            # still holds (at most 780 ms) lands within it (#15.57)
            [self.mediafs, '-f', '-o',
             'config=%s,cache_dir=%s,journal=%s,landing_grace=3' %
             (self.conf, self.cache, self.journal) + DEBUG_OPT,
             self.remote, self.mnt],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise Mismatch('mount failed: ' + self.tail())

    def tail(self, n=8):
        try:
            with open(self.log, errors='replace') as f:
                return ' | '.join(f.read().splitlines()[-n:])
        except OSError:
            return ''

    def sanitizer(self):
        try:
            with open(self.log, errors='replace') as f:
                for line in f:
                    if ('AddressSanitizer' in line or 'LeakSanitizer' in line
                            or 'runtime error:' in line):
                        return line.strip()
        except OSError:
            pass
        return None

    def unmounts_logged(self):
        try:
            with open(self.log, errors='replace') as f:
                return f.read().count('info: unmounting ')
        except OSError:
            return 0

    def stop(self, check=True, failed_ok=False):
        n0 = self.unmounts_logged()
        subprocess.run(['fusermount3', '-u', self.mnt],
                       stderr=subprocess.DEVNULL)
        rc = None
        if self.proc:
            t0 = time.time()
            termed = False
            while True:
                try:
                    rc = self.proc.wait(timeout=2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.time() > t0 + SETTLE_DEADLINE:
                    self.proc.kill()
                    rc = self.proc.wait()
                    break
                # Gone from this mount namespace but the FUSE loop never
                # ended (no "unmounting" line): a process that unshared
                # its mounts while this one was mounted holds a copy and
                # keeps the connection open (seen on the shared test
                # host). What a user does then: SIGTERM, a clean stop.
                if not termed and time.time() > t0 + 15 and \
                        not os.path.ismount(self.mnt) and \
                        self.unmounts_logged() == n0:
                    print('# %s: unmounted here, FUSE loop still running '
                          '(a copy of the mount in another mount '
                          'namespace?): SIGTERM' % self.mnt, flush=True)
                    self.proc.send_signal(signal.SIGTERM)
                    termed = True
            self.proc = None
        if os.path.ismount(self.mnt):
            subprocess.run(['umount', '-l', self.mnt],
                           stderr=subprocess.DEVNULL)
        s = self.sanitizer()
        if check and s:
            raise Mismatch('sanitizer report: ' + s)
        if check and rc not in (0, None) and not failed_ok:
            raise Mismatch('mediafs exited %s at unmount: %s' %
                           (rc, self.tail()), defect=4)

    def kill9(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        # lazily: a dead mount can be busy for a moment, and ismount()
        # says False for it (stat fails with ENOTCONN) while it is there
        subprocess.run(['fusermount3', '-u', '-z', self.mnt],
                       stderr=subprocess.DEVNULL)
        if os.path.ismount(self.mnt):
            subprocess.run(['umount', '-l', self.mnt],
                           stderr=subprocess.DEVNULL)

    def alive(self):
        if self.proc and self.proc.poll() is not None:
            raise Mismatch('mediafs exited %s: %s' %
                           (self.proc.returncode, self.tail()), defect=4)

    def jrows(self, sql):
        for _ in range(50):
            try:
                db = sqlite3.connect('file:%s?mode=ro' % self.journal,
                                     uri=True, timeout=10)
                try:
                    return db.execute(sql).fetchall()
                finally:
                    db.close()
            except sqlite3.OperationalError:
                time.sleep(0.1)
        return []

    def live_queue(self):
        r = subprocess.run([self.mediactl, '--journal', self.journal,
                            '--config', self.conf, 'status', '--json'],
                           capture_output=True, text=True, timeout=60)
        try:
            o = json.loads(r.stdout)
        except ValueError:
            return None
        n = 0
        for d in o.get('daemons') or []:
            n += int(d.get('queued', 0)) + int(d.get('running', 0))
        return n

    def upload_state(self, path=None):
        """The daemon's own answer (user.mediafs.upload_state, what
        `mediactl wait` polls): 'done', 'pending: ...', 'uploading',
        'failed: ...'; for a file written but not yet released, 'pending'.
        One getxattr, no process start."""
        try:
            v = os.getxattr(path or self.mnt, 'user.mediafs.upload_state')
        except OSError as e:
            if path and e.errno == errno.ENOENT:
                return 'done'
            raise Mismatch('upload_state of %s: %s' % (path or '/', e))
        return v.decode(errors='replace')

    def settle(self, paths=()):
        """Until no upload is pending in the journal, the daemon's queue
        (user.mediafs.upload_state of the root: markers, renames and
        deletes too) is empty and none of paths (the model's files) is
        written but not yet queued, twice in a row; then failed rows are
        a mismatch. MODEL_LIVE_QUEUE=1 also asks `mediactl status --json`
        (a process start each) as before."""
        deadline = time.time() + SETTLE_DEADLINE
        calm = 0
        busy = lambda v: v.startswith('pending') or \
            v.startswith('uploading')
        while time.time() < deadline:
            self.alive()
            p = self.jrows("select count(*) from uploads where "
                           "state='pending'")
            pend = p[0][0] if p else 0
            if pend == 0 and self.proc:
                if busy(self.upload_state()) or any(
                        busy(self.upload_state(os.path.join(self.mnt, q)))
                        for q in paths):
                    pend = 1
            if pend == 0 and self.proc and LIVE_QUEUE:
                pend = self.live_queue()
            if pend == 0:
                calm += 1
                if calm >= 2:
                    break
            else:
                calm = 0
            time.sleep(0.1 if calm else 0.05)
        else:
            raise Mismatch('queue did not drain in %d s' % SETTLE_DEADLINE)
        bad = self.jrows("select key, error from uploads where "
                         "state='failed'")
        if bad:
            raise Mismatch('failed uploads: %s' % bad[:3])


# ---------------------------------------------------------------- runner
class Runner:
    serial = 0
    def __init__(self, backend, workdir, known_open, ops=None, slow=False):
        self.backend = backend
        self.slow = slow
        self.proxy = None
        self.w = workdir
        self.known = known_open
        self.model = Model()
        self.ops = ops or []
        self.done = []
        self.stats = {'ops': 0, 'settles': 0, 'reads': 0}
        self.turn = 0
        self.notes = []

    # ---- environment
    def setup(self):
        shutil.rmtree(self.w, ignore_errors=True)
        os.makedirs(self.w)
        Runner.serial += 1
        bucket = 'm%d-%d-%d' % (os.getpid(), int(time.time()) % 100000,
                                Runner.serial)
        self.store = STORES[self.backend](bucket)
        if self.slow and hasattr(self.store, 'dport'):
            self.proxy = Proxy(self.store.port, self.w, Runner.serial)
            self.store.dport = self.proxy.port
        self.mount = Mount(self.w, self.store)
        os.umask(0o022)
        self.mount.start()

    def teardown(self, check=True):
        try:
            self.store.fault(False)
        except Exception:
            pass
        try:
            if self.mount.proc:
                self.mount.stop(check=check)
        finally:
            if self.proxy:
                self.proxy.close()
            if hasattr(self.store, 'close'):
                self.store.close()	# a server or directory of its own

    def P(self, p):
        return os.path.join(self.mount.mnt, p)

    # ---- comparisons
    def compare_mount(self, read=None):
        """The mounted tree against the model: names and kinds (one
        os.scandir walk), sizes and modes of every file; the bytes of the
        files in read (None: of every file) and of ROTATE more files in
        turn, so that a file's bytes are read a few steps after any step
        even when no step touches it."""
        m = self.model
        seen_files, seen_dirs = {}, set()
        stack = ['']
        while stack:
            d = stack.pop()
            try:
                with os.scandir(self.P(d) if d else self.mount.mnt) as it:
                    ents = list(it)
            except OSError as e:
                raise Mismatch('listdir %r: %s' % (d, e))
            for ent in ents:
                p = d + '/' + ent.name if d else ent.name
                try:
                    st = ent.stat(follow_symlinks=False)
                except OSError as e:
                    raise Mismatch('stat %r (listed): %s' % (p, e))
                if stat.S_ISDIR(st.st_mode):
                    seen_dirs.add(p)
                    stack.append(p)
                else:
                    seen_files[p] = st
        want_dirs = m.dirs - {''}
        if seen_dirs != want_dirs:
            raise Mismatch('directories: mount has extra %s, lacks %s' % (
                sorted(seen_dirs - want_dirs), sorted(want_dirs - seen_dirs)))
        if set(seen_files) != set(m.files):
            raise Mismatch('files: mount has extra %s, lacks %s' % (
                sorted(set(seen_files) - set(m.files)),
                sorted(set(m.files) - set(seen_files))))
        names = sorted(m.files)
        if read is None:
            read = set(names)
        else:
            read = set(read) & set(names)
            rest = [p for p in names if p not in read]
            for _ in range(min(ROTATE, len(rest))):
                read.add(rest[self.turn % len(rest)])
                self.turn += 1
        for p in names:
            f = m.files[p]
            st = seen_files[p]
            if not stat.S_ISREG(st.st_mode):
                raise Mismatch('%s: not a regular file (mode %o)' %
                               (p, st.st_mode))
            if st.st_size != len(f.data):
                raise Mismatch('%s: size %d, model %d' %
                               (p, st.st_size, len(f.data)))
            if f.attrs_known and (st.st_mode & 0o7777) != f.mode:
                raise Mismatch('%s: mode %o, model %o' %
                               (p, st.st_mode & 0o7777, f.mode))
            if p not in read:
                continue
            self.stats['reads'] += 1
            try:
                with open(self.P(p), 'rb') as fh:
                    got = fh.read()
            except OSError as e:
                raise Mismatch('read %s: %s' % (p, e))
            if got != bytes(f.data):
                i = next((i for i in range(min(len(got), len(f.data)))
                          if got[i] != f.data[i]), min(len(got), len(f.data)))
                raise Mismatch('%s: bytes differ from offset %d (%d read)' %
                               (p, i, len(got)))

    def compare_types_mount(self):
        if not getattr(self.store, 'types', True):
            return	# ImageKit decides types; local keeps none
        for p in self.model.files:
            try:
                got = os.getxattr(self.P(p), 'user.mediafs.content_type')
                got = got.decode()
            except OSError as e:
                raise Mismatch('getxattr %s: %s' % (p, e))
            want = self.model.expected_type(p)
            if got != want:
                raise Mismatch('%s: content type %s through the mount, '
                               'model %s' % (p, got, want), defect=6)

    def compare_store(self):
        m = self.model
        files, markers = self.store.listing()
        if set(files) != set(m.files):
            raise Mismatch('store files: extra %s, lacking %s' % (
                sorted(set(files) - set(m.files)),
                sorted(set(m.files) - set(files))))
        for p, (data, ctype) in files.items():
            if data != bytes(m.files[p].data):
                raise Mismatch('store %s: %d bytes differ from the model\'s '
                               '%d' % (p, len(data), len(m.files[p].data)))
            want = m.expected_type(p) if ctype is not None else None
            if ctype != want:
                raise Mismatch('store %s: content type %s, model %s' %
                               (p, ctype, want), defect=6)
        if getattr(self.store, 'explicit_dirs', False):
            # ImageKit folders, local directories: objects of their own,
            # kept when emptied; the store must hold exactly the model's
            want = m.dirs - {''}
            if markers != want:
                raise Mismatch('store folders: extra %s, lacking %s' % (
                    sorted(markers - want), sorted(want - markers)))
            return
        implied = set()
        # a directory is on the store through a file or a marker below it
        for k in list(files) + [d + '/x' for d in markers if d]:
            d = Model.parent(k)
            while d:
                implied.add(d)
                d = Model.parent(d)
        for d in m.dirs - {''}:
            if d not in implied and d not in markers:
                raise Mismatch('store: directory %s has neither objects nor '
                               'a marker' % d)
        for d in markers - {''}:
            if d not in m.dirs:
                raise Mismatch('store: marker of %s, no such directory' % d)
            if m.children(d) and d not in m.settled_empty:
                self.soft('store: marker object of %s, a folder that '
                               'holds files and was never empty at a settle '
                               'point' % d, defect=7)
        for d in m.dirs:
            if not m.children(d):
                m.settled_empty.add(d)

    def soft(self, what, defect):
        """A mismatch of a known-open defect that does not spoil what
        follows: noted (and reported as that defect) while it is open."""
        if defect in self.known:
            self.notes.append((defect, what))
            return
        raise Mismatch(what, defect=defect)

    def settle(self, store=True):
        self.mount.settle(sorted(self.model.files))
        self.stats['settles'] += 1
        self.compare_mount()
        self.compare_types_mount()
        if store:
            self.compare_store()

    # ---- operations: precondition against the model, then mount + model
    def valid(self, op):
        m = self.model
        t = op['op']
        par = Model.parent
        if t in ('write', 'redirect', 'cp_r', 'outside_put', 'fault_write'):
            p = op['p']
            if t == 'cp_r':
                return par(p) in m.dirs and not m.exists(p)
            return par(p) in m.dirs and p not in m.dirs
        if t == 'reopen_rw' and op.get('chunks'):
            return par(op['p']) in m.dirs and op['p'] not in m.dirs
        if t in ('pwrite', 'append', 'truncate', 'unlink', 'unlink_open',
                 'chmod', 'xtype', 'read', 'outside_delete', 'reopen_rw'):
            return op['p'] in m.files
        if t == 'rename':
            s, d = op['p'], op['d']
            return (s in m.files and par(d) in m.dirs and d not in m.dirs
                    and s != d)
        if t == 'rename_dir':
            s, d = op['p'], op['d']
            return (s in m.dirs and s and par(d) in m.dirs and
                    not m.exists(d) and not (d + '/').startswith(s + '/'))
        if t == 'mkdir':
            return par(op['p']) in m.dirs and not m.exists(op['p'])
        if t == 'rmdir':
            return op['p'] in m.dirs and op['p'] != ''
        return t in ('remount', 'kill9', 'cache_drop', 'settle',
                     'overwrite_delete', 'pause', 'batch')

    def apply(self, op):
        m = self.model
        t = op['op']
        P = self.P
        if t == 'write':
            data = b''.join(gen_data(c) for c in op['chunks'])
            fd = os.open(P(op['p']), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o644)
            try:
                for c in op['chunks']:
                    os.write(fd, gen_data(c))
            finally:
                os.close(fd)
            self.rewritten(op['p'], data)
        elif t == 'redirect':
            # the shell's pattern: open, dup, close the original, write
            data = gen_data(op['data'])
            fd = os.open(P(op['p']), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o644)
            fd2 = os.dup(fd)
            try:
                try:
                    os.close(fd)
                except OSError as e:
                    # ImageKit answers the close of a still-empty file
                    # with EOPNOTSUPP but does not fail the file: what
                    # the other descriptor writes goes up (README,
                    # "Limits"; #15.5); the shell ignores that close
                    if e.errno != errno.EOPNOTSUPP or \
                            self.backend != 'imagekit':
                        raise
                os.write(fd2, data)
            finally:
                os.close(fd2)
            self.rewritten(op['p'], data)
        elif t in ('pwrite', 'reopen_rw'):
            data = gen_data(op['data'])
            if t == 'reopen_rw':
                # close a fresh write, then reopen while it uploads
                if op.get('chunks'):
                    with open(P(op['p']), 'wb') as fh:
                        for c in op['chunks']:
                            fh.write(gen_data(c))
                    self.rewritten(op['p'], b''.join(
                        gen_data(c) for c in op['chunks']))
                time.sleep(op.get('delay', 0.2))
            flags = os.O_RDWR if op.get('rw') or t == 'reopen_rw' \
                else os.O_WRONLY
            fd = os.open(P(op['p']), flags)
            try:
                os.pwrite(fd, data, op['off'])
            finally:
                os.close(fd)
            f = m.files[op['p']]
            off = op['off']
            if data:	# a write of 0 bytes changes nothing
                f.written()
                if off > len(f.data):
                    f.data.extend(b'\0' * (off - len(f.data)))
                f.data[off:off + len(data)] = data
        elif t == 'append':
            data = gen_data(op['data'])
            fd = os.open(P(op['p']), os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            if data:	# a write of 0 bytes changes nothing
                m.files[op['p']].written()
            m.files[op['p']].data.extend(data)
        elif t == 'truncate':
            os.truncate(P(op['p']), op['n'])
            f = m.files[op['p']]
            f.written()
            if op['n'] < len(f.data):
                del f.data[op['n']:]
            else:
                f.data.extend(b'\0' * (op['n'] - len(f.data)))
        elif t == 'rename':
            os.rename(P(op['p']), P(op['d']))
            m.files[op['d']] = m.files.pop(op['p'])
        elif t == 'rename_dir':
            os.rename(P(op['p']), P(op['d']))
            s, d = op['p'], op['d']
            for p in sorted(m.under(s)):
                np = d + p[len(s):]
                if p in m.files:
                    m.files[np] = m.files.pop(p)
                else:
                    m.dirs.discard(p)
                    m.dirs.add(np)
            m.dirs.discard(s)
            m.dirs.add(d)
            m.settled_empty = {x for x in m.settled_empty
                               if not (x + '/').startswith(s + '/')}
        elif t == 'unlink':
            os.unlink(P(op['p']))
            del m.files[op['p']]
        elif t == 'unlink_open':
            # POSIX: the file stays usable through the open descriptor
            data = gen_data(op['data'])
            want = bytes(m.files[op['p']].data) + data
            fd = os.open(P(op['p']), os.O_RDWR)
            try:
                os.unlink(P(op['p']))
                del m.files[op['p']]
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, data)
                try:
                    os.fsync(fd)
                    sz = os.fstat(fd).st_size
                    got = os.pread(fd, len(want) + 10, 0)
                except OSError as e:
                    raise Mismatch('open descriptor of an unlinked file: %s'
                                   % e, defect=3)
                if sz != len(want) or got != want:
                    raise Mismatch('unlinked file through its descriptor: '
                                   'size %d want %d' % (sz, len(want)),
                                   defect=3)
            finally:
                os.close(fd)
        elif t == 'mkdir':
            os.mkdir(P(op['p']), 0o755)
            m.dirs.add(op['p'])
        elif t == 'rmdir':
            want = errno.ENOTEMPTY if m.children(op['p']) else 0
            try:
                os.rmdir(P(op['p']))
                got = 0
            except OSError as e:
                got = e.errno
            if got != want:
                raise Mismatch('rmdir %s: errno %s, model %s' %
                               (op['p'], errno.errorcode.get(got, got),
                                errno.errorcode.get(want, want)))
            if not want:
                m.dirs.discard(op['p'])
                m.settled_empty.discard(op['p'])
        elif t == 'chmod':
            os.chmod(P(op['p']), op['mode'])
            m.files[op['p']].mode = op['mode']
            m.files[op['p']].attrs_known = True
        elif t == 'xtype':
            os.setxattr(P(op['p']), 'user.mediafs.content_type',
                        op['type'].encode())
            m.files[op['p']].xtype = op['type']
            m.files[op['p']].outside = False
        elif t == 'read':
            f = m.files[op['p']]
            fd = os.open(P(op['p']), os.O_RDONLY)
            try:
                got = os.pread(fd, op['n'], op['off'])
            finally:
                os.close(fd)
            if got != bytes(f.data[op['off']:op['off'] + op['n']]):
                raise Mismatch('pread %s [%d, +%d): wrong bytes' %
                               (op['p'], op['off'], op['n']))
        elif t == 'cp_r':
            # cp -r of a small tree into a fresh directory, quickly
            base = op['p']
            os.mkdir(P(base), 0o755)
            m.dirs.add(base)
            for sub in op['subs']:
                os.mkdir(P(base + '/' + sub), 0o755)
                m.dirs.add(base + '/' + sub)
                for i, c in enumerate(op['files']):
                    q = '%s/%s/f%d.txt' % (base, sub, i)
                    data = gen_data(c)
                    with open(P(q), 'wb') as fh:
                        fh.write(data)
                    m.files[q] = File(data)
        elif t == 'outside_put':
            data = gen_data(op['data'])
            self.store.put(op['p'], data, OUTSIDE_TYPE)
            f = File(data)
            f.xtype, f.attrs_known, f.outside = OUTSIDE_TYPE, False, True
            m.files[op['p']] = f
            if op.get('refresh', True):
                self.cache_drop()
            else:
                self.wait_visible(op['p'], data)
        elif t == 'outside_delete':
            self.store.delete(op['p'])
            del m.files[op['p']]
            if op.get('refresh', True):
                self.cache_drop()
            else:
                # what a user does to see it now (README, "How it
                # behaves"): refresh the one path, no remount
                os.setxattr(P(op['p']), 'user.mediafs.refresh', b'1')
        elif t == 'remount':
            self.mount.stop()
            self.mount.start()
        elif t == 'kill9':
            self.mount.kill9()
            self.mount.start()
        elif t == 'cache_drop':
            self.cache_drop()
        elif t == 'settle':
            self.settle()
        elif t == 'batch':
            # a fast program: several operations, compared once at the end
            for sub in op['ops']:
                if self.valid(sub):
                    self.apply(sub)
        elif t == 'pause':
            time.sleep(op['s'])	# a busy machine, for the #15.7 case
        elif t == 'fault_write':
            # an upload that fails for good, then a remount: the file
            # must still read back from its staged copy; then retry
            data = gen_data(op['data'])
            if not self.store.fault(True):
                return
            try:
                with open(P(op['p']), 'wb') as fh:
                    fh.write(data)
                f = File(data)
                m.files[op['p']] = f
                key = op['p']
                deadline = time.time() + SETTLE_DEADLINE
                while time.time() < deadline:
                    if self.mount.jrows("select 1 from uploads where key "
                                        "like '%%%s' and state='failed'" %
                                        key.replace("'", "''")):
                        break
                    time.sleep(0.2)
                else:
                    raise Mismatch('upload of %s did not fail' % key)
            finally:
                self.store.fault(False)
            self.mount.stop(failed_ok=True)	# exits 1: an upload failed
            self.mount.start()
            try:
                with open(P(op['p']), 'rb') as fh:
                    got = fh.read()
            except OSError as e:
                raise Mismatch('read of %s (upload failed) after a remount: '
                               '%s' % (op['p'], e), defect=8)
            if got != data:
                raise Mismatch('%s after a remount: wrong bytes' % op['p'],
                               defect=8)
            r = subprocess.run([self.mount.mediactl, '--journal',
                                self.mount.journal, '--config',
                                self.mount.conf, 'retry', '--all'],
                               capture_output=True, text=True, timeout=120)
            if not r.stdout.startswith('1 queued again in a running'):
                # no control socket (a path over 107 bytes): the row is
                # pending again in the journal, sent at the next start
                self.mount.stop()
                self.mount.start()
            self.mount.settle()
        elif t == 'overwrite_delete':
            # write A and B, mv A B while B uploads, rm B
            a, b = op['a'], op['b']
            # both or neither (a shrunk case may have lost a's or b's
            # folder): a written but not recorded would be a false mismatch
            if any(Model.parent(p) not in m.dirs or p in m.dirs
                   for p in (a, b)):
                return
            for p, c in ((a, op['da']), (b, op['db'])):
                with open(P(p), 'wb') as fh:
                    fh.write(gen_data(c))
            time.sleep(op.get('gap', 0))	# B's upload starts
            os.rename(P(a), P(b))
            os.unlink(P(b))
            m.files.pop(a, None)
            m.files.pop(b, None)
        else:
            raise ValueError('unknown op ' + t)

    def rewritten(self, p, data):
        """An O_TRUNC rewrite: new bytes, the same inode's mode; a type
        given by xattr described the old bytes and goes (the new bytes
        are sniffed, as for a new file)."""
        old = self.model.files.get(p)
        f = File(data)
        if old:
            f.mode, f.attrs_known = old.mode, old.attrs_known
        self.model.files[p] = f

    def cache_drop(self):
        self.mount.stop()
        shutil.rmtree(self.mount.cache, ignore_errors=True)
        keep = getattr(self.store, 'keeps_modes', False)
        for f in self.model.files.values():
            f.attrs_known = f.attrs_known and (keep or f.mode == 0o644)
        self.mount.start()

    def wait_visible(self, p, data, limit=60):
        # negative_ttl (5 s) on each side: the listing's age, the
        # kernel's negative entry; 60 s is the deadline of a loaded host
        deadline = time.time() + limit
        while time.time() < deadline:
            try:
                with open(self.P(p), 'rb') as fh:
                    if fh.read() == bytes(data):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise Mismatch('%s written by an outside client: not seen by name '
                       'within %d s' % (p, limit), defect=9)

    def step(self, op):
        """Apply one op; False when its precondition does not hold."""
        if not self.valid(op):
            return False
        if op.get('wait'):
            time.sleep(op['wait'])	# slow mode: a gap before the step
        t0 = time.time()
        try:
            self.apply(op)
        except Mismatch:
            raise
        except OSError as e:
            raise Mismatch('%s: %s' % (op['op'], e),
                           defect=(op.get('risk') or [None])[0])
        self.mount.alive()
        self.compare_mount(None if FULL_READ else self.touched(op))
        self.stats['ops'] += 1
        if TIMING:
            e = TIMES.setdefault('op ' + op['op'], [0, 0.0])
            e[0] += 1
            e[1] += time.time() - t0
        return True

    def touched(self, op):
        """The model's files whose bytes op may have changed (None: any
        file's, after a restart or a lost cache): their bytes are read
        back after the step; the rest of the tree is compared by names,
        kinds, sizes and modes (and ROTATE files' bytes in turn)."""
        t = op['op']
        if t in ('remount', 'kill9', 'cache_drop', 'fault_write') or \
                (t in ('outside_put', 'outside_delete') and
                 op.get('refresh', True)):
            return None
        if t == 'batch':
            out = set()
            for sub in op['ops']:
                got = self.touched(sub)
                if got is None:
                    return None
                out |= got
            return out
        if t == 'rename':
            return {op['d']}
        if t in ('rename_dir', 'cp_r'):
            pre = (op['d'] if t == 'rename_dir' else op['p']) + '/'
            return {p for p in self.model.files if p.startswith(pre)}
        if t in ('unlink', 'rmdir', 'mkdir', 'outside_delete', 'settle',
                 'overwrite_delete', 'pause'):
            return set()	# settle: compared in full already
        return {op['p']}


# ---------------------------------------------------------------- generator
class Generator:
    """Draws concrete operations from the model's state. In 'safe' mode it
    leaves out every variant whose risk is a known-open defect."""

    def __init__(self, rng, model, backend, mode, known_open, slow=False,
                 restarts=1.0):
        self.slow = slow
        self.restarts = restarts	# weight factor of remount/kill9/drop
        self.r = rng
        self.m = model
        self.backend = backend
        self.open = set(known_open) if mode == 'safe' else set()
        self.n = 0
        self.dirty = set()	# written since the last settle: may upload
        self.moved = set()	# dirty files renamed since the last settle
        self.lost = set()	# defects a kill -9 now would show (12, 13)

    def track(self, op):
        """Which files may have an upload in flight after op."""
        t = op['op']
        if t in ('chmod', 'xtype') and op['p'] in self.dirty:
            self.lost.add(12)
        if t in ('unlink', 'unlink_open') and op['p'] in self.dirty:
            self.lost.add(13)
        if t in ('unlink', 'unlink_open') and op['p'] in self.moved:
            self.lost.add(42)	# mv, rm, kill -9: the new name back
        if t == 'rename' and op['p'] in self.dirty:
            self.moved.discard(op['p'])
            self.moved.add(op['d'])
            self.lost.add(15)
        if t == 'rename_dir' and any(p.startswith(op['p'] + '/')
                                     for p in self.dirty):
            self.lost.add(15)
        if t in ('settle', 'remount', 'cache_drop'):
            self.dirty.clear()
            self.moved.clear()
            self.lost.clear()
        elif t in ('write', 'redirect', 'pwrite', 'append', 'truncate',
                   'reopen_rw', 'fault_write'):
            self.dirty.add(op['p'])
        elif t == 'cp_r':
            for sub in op['subs']:
                for i in range(len(op['files'])):
                    self.dirty.add('%s/%s/f%d.txt' % (op['p'], sub, i))
        elif t == 'rename' and op['p'] in self.dirty:
            self.dirty.discard(op['p'])
            self.dirty.add(op['d'])
        elif t == 'rename_dir':
            pre = op['p'] + '/'
            for p in list(self.dirty):
                if p.startswith(pre):
                    self.dirty.discard(p)
                    self.dirty.add(op['d'] + '/' + p[len(pre):])
        elif t in ('unlink', 'unlink_open', 'outside_delete'):
            self.dirty.discard(op['p'])

    def empties(self, src):
        """Risk of moving the last entry out of a folder (#15.11)."""
        d = Model.parent(src)
        return [11] if d and self.m.children(d) == {src} else []

    def inflight(self, p):
        """Risk of opening p for writing without O_TRUNC (#15.2), and
        of a given type surviving or not (#15.14)."""
        f = self.m.files.get(p)
        return ([2] if p in self.dirty else []) + \
            ([14] if f and f.xtype else [])

    def typerisk(self, p):
        """Risk of rewriting (O_TRUNC) a file that has a given type."""
        f = self.m.files.get(p)
        return [14] if f and f.xtype else []

    def ok(self, risk):
        return not (set(risk) & self.open)

    def data(self, kind=None, big=False):
        r = self.r
        kind = kind or r.choice(['text', 'text', 'noise', 'png'])
        # ImageKit refuses empty files (EOPNOTSUPP at close): no empty
        # writes there, so no file is ever empty (docs/MODEL.md)
        sizes = [0, 1, 100, 3000, 5000, 20000] if self.backend != \
            'imagekit' else [1, 1, 100, 3000, 5000, 20000]
        n = r.choice(sizes) if not big else r.randint(100000, 400000)
        return {'k': kind, 'n': n, 's': r.randrange(1 << 30)}

    def newpath(self, d=None, dirname=False):
        r = self.r
        dirs = sorted(self.m.dirs)
        if d is None:
            d = r.choice([x for x in dirs if x.count('/') < 4] or [''])
        pool = DIR_NAMES if dirname else FILE_NAMES
        n = r.choice(pool)
        if r.random() < 0.3:
            n = '%s%d' % (n.split('.')[0], r.randint(1, 9)) + \
                ('.' + n.split('.')[1] if '.' in n else '')
        return d + '/' + n if d else n

    def same_ext(self, src, d):
        """A destination name in d whose type class equals src's."""
        base = src.rsplit('/', 1)[-1]
        stem = 'r%d' % self.r.randint(1, 99)
        if '.' in base:
            stem += '.' + base.rsplit('.', 1)[1]
        return d + '/' + stem if d else stem

    def next(self):
        r, m = self.r, self.m
        files = sorted(m.files)
        dirs = sorted(m.dirs)
        self.n += 1
        choices = [('write', 8), ('mkdir', 4), ('pwrite', 4), ('append', 3),
                   ('truncate', 2), ('redirect', 2), ('rename', 4),
                   ('rename_dir', 2), ('unlink', 3), ('rmdir', 2),
                   ('chmod', 1), ('xtype', 1), ('read', 2), ('settle', 2),
                   ('remount', 1), ('kill9', 1), ('cache_drop', 1),
                   ('outside_put', 1), ('outside_delete', 1), ('cp_r', 1),
                   ('unlink_open', 1), ('reopen_rw', 1),
                   ('overwrite_delete', 1), ('fault_write', 1),
                   ('batch', 2)]
        if self.restarts != 1.0:
            choices = [(t, w * self.restarts if t in (
                'remount', 'kill9', 'cache_drop') else w)
                for t, w in choices]
        total = sum(w for _, w in choices)
        for _ in range(50):
            x = r.uniform(0, total)
            for t, w in choices:
                x -= w
                if x <= 0:
                    break
            op = self.make(t, files, dirs)
            if op and self.ok(op.get('risk', [])):
                if not op.get('risk'):
                    op.pop('risk', None)
                if t != 'batch':
                    self.track(op)
                if self.slow and r.random() < SLOW_WAIT_P:
                    # a gap of 0-0.8 s before the step: uploads started
                    # by the steps before land during, before or after it
                    op['wait'] = round(r.uniform(0, 0.8), 2)
                return op
        op = {'op': 'settle'}
        self.track(op)
        return op

    def make(self, t, files, dirs):
        r, m = self.r, self.m
        if t == 'batch':
            # a fast program: no comparison (and so no delay) in between
            subs = []
            for _ in range(r.randint(2, 4)):
                t2 = r.choice(['write', 'pwrite', 'append', 'rename',
                               'unlink', 'chmod', 'xtype', 'truncate',
                               'mkdir', 'pause', 'kill9'])
                if t2 == 'pause':
                    sub = {'op': 'pause', 's': round(r.uniform(0.1, 0.5), 2)}
                else:
                    sub = self.make(t2, files, dirs)
                if not sub:
                    continue
                if sub.get('risk'):
                    pass
                elif t2 == 'pwrite':
                    sub['rw'] = True
                self.track(sub)
                subs.append(sub)
            if not subs:
                return None
            risk = sorted({d for sub in subs for d in sub.pop('risk', [])})
            # a write then any non-truncating reopen within the batch is
            # the in-flight case (#15.2)
            written = set()
            for sub in subs:
                if sub['op'] in ('pwrite', 'append', 'truncate') and \
                        sub['p'] in written and 2 not in risk:
                    risk.append(2)
                if sub['op'] == 'write':
                    written.add(sub['p'])
            return {'op': 'batch', 'ops': subs, 'risk': risk}
        if t == 'write':
            p = r.choice(files) if files and r.random() < 0.3 \
                else self.newpath()
            if p in m.dirs:
                return None
            big = r.random() < 0.05
            return {'op': 'write', 'p': p,
                    'chunks': [self.data(big=big)
                               for _ in range(r.randint(1, 3))],
                    'risk': self.typerisk(p)}
        if t == 'mkdir':
            p = self.newpath(dirname=True)
            return None if m.exists(p) else {'op': 'mkdir', 'p': p}
        if t == 'cp_r':
            p = self.newpath(dirname=True)
            if m.exists(p):
                return None
            return {'op': 'cp_r', 'p': p, 'subs': ['s1', 's2'],
                    'files': [self.data('text') for _ in range(2)],
                    'risk': [7]}
        if not files and t in ('pwrite', 'append', 'truncate', 'rename',
                               'unlink', 'chmod', 'xtype', 'read',
                               'unlink_open', 'reopen_rw',
                               'outside_delete'):
            return None
        if t in ('pwrite', 'reopen_rw'):
            p = r.choice(files)
            n = len(m.files[p].data)
            op = {'op': 'pwrite', 'p': p, 'off': r.randint(0, n + 100),
                  'data': self.data(), 'risk': self.inflight(p)}
            op['data']['n'] = min(op['data']['n'], 5000)
            if t == 'reopen_rw':
                # O_RDWR while the upload of that close may be in flight
                big = self.data(big=True)
                return {'op': 'reopen_rw', 'p': p, 'chunks': [big],
                        'off': r.randint(0, big['n']), 'data': op['data'],
                        'delay': r.uniform(0.1, 0.5),
                        'risk': [2] + self.typerisk(p)}
            return op
        if t == 'append':
            p = r.choice(files)
            return {'op': 'append', 'p': p, 'data': self.data(),
                    'risk': self.inflight(p)}
        if t == 'truncate':
            p = r.choice(files)
            return {'op': 'truncate', 'p': p,
                    'n': r.randint(1 if self.backend == 'imagekit' else 0,
                                   len(m.files[p].data) + 3000),
                    'risk': self.inflight(p)}
        if t == 'redirect':
            p = self.newpath()
            if p in m.dirs:
                return None
            return {'op': 'redirect', 'p': p, 'data': self.data(),
                    'risk': ([5] if self.backend == 'imagekit' else []) +
                    self.typerisk(p)}
        if t == 'rename':
            s = r.choice(files)
            d0 = r.choice(dirs)
            if r.random() < 0.3 and len(files) > 1 and \
                    self.backend != 'imagekit':
                # onto an existing file (ImageKit: EEXIST once the
                # source is stored, timing-dependent: not drawn there)
                d = r.choice(files)
            elif r.random() < 0.5:
                d = self.same_ext(s, d0)
            else:
                d = self.newpath(d0)
            if d == s or d in m.dirs or (d in m.files and
                                         self.backend == 'imagekit'):
                return None
            risk = self.empties(s)
            if ext_type(d.rsplit('/', 1)[-1]) != \
                    ext_type(s.rsplit('/', 1)[-1]):
                risk.append(6)
            if d in m.files:
                risk.append(4)	# rename onto a file whose upload may run
            return {'op': 'rename', 'p': s, 'd': d, 'risk': risk}
        if t == 'rename_dir':
            cands = [d for d in dirs if d]
            if not cands:
                return None
            s = r.choice(cands)
            d = self.newpath(r.choice(dirs), dirname=True)
            if m.exists(d) or (d + '/').startswith(s + '/'):
                return None
            return {'op': 'rename_dir', 'p': s, 'd': d,
                    'risk': ([1] if m.depth_below(s) >= 2 else []) +
                    self.empties(s) +
                    ([16] if any(p.startswith(s + '/') for p in self.dirty)
                     else []) +
                    ([30] if self.backend == 'imagekit' and
                     any(p.startswith(s + '/') for p in self.dirty) else [])}
        if t == 'unlink':
            p = r.choice(files)
            return {'op': 'unlink', 'p': p,
                    'risk': [4] if p in self.moved else []}
        if t == 'unlink_open':
            p = r.choice(files)
            return {'op': 'unlink_open', 'p': p, 'data': self.data('text'),
                    'risk': [3] + self.inflight(p)}
        if t == 'rmdir':
            cands = [d for d in dirs if d]
            if not cands:
                return None
            return {'op': 'rmdir', 'p': r.choice(cands)}
        if t == 'chmod':
            p = r.choice(files)
            return {'op': 'chmod', 'p': p,
                    'mode': r.choice([0o600, 0o640, 0o644, 0o755])}
        if t == 'xtype':
            p = r.choice(files)
            return {'op': 'xtype', 'p': p, 'type': r.choice(XATTR_TYPES)}
        if t == 'read':
            p = r.choice(files)
            n = len(m.files[p].data)
            off = r.randint(0, n)
            return {'op': 'read', 'p': p, 'off': off,
                    'n': r.randint(0, n - off + 10)}
        if t == 'kill9':
            return {'op': t, 'risk': sorted(self.lost)}
        if t in ('settle', 'remount', 'cache_drop'):
            return {'op': t}
        if t == 'outside_put':
            p = self.newpath()
            if m.exists(p):
                return None
            refresh = r.random() < 0.5
            return {'op': 'outside_put', 'p': p, 'data': self.data(),
                    'refresh': refresh, 'risk': [] if refresh else [9]}
        if t == 'outside_delete':
            refresh = r.random() < 0.5
            # not a folder's last entry: an outside writer that deletes
            # it deletes the folder from the store too, while the mount
            # keeps showing it until cache_ttl or a refresh of the folder
            # (README, "Other writers"); the model leaves that case out
            clean = [p for p in files if p not in self.dirty and
                     (not Model.parent(p) or
                      len(m.children(Model.parent(p))) > 1)]
            if not clean:
                return None
            return {'op': 'outside_delete', 'p': r.choice(clean),
                    'refresh': refresh, 'risk': [] if refresh else [9]}
        if t == 'overwrite_delete':
            if self.backend == 'imagekit':
                return None	# a rename onto an existing file (above)
            a, b = self.newpath(), self.newpath()
            if a == b or m.exists(a) or m.exists(b):
                return None
            return {'op': 'overwrite_delete', 'a': a, 'b': b,
                    'da': self.data(), 'db': self.data(big=True),
                    'gap': r.uniform(0, 0.5),
                    # local: #15.46 (B stays when the rm lands mid-upload)
                    'risk': [4] + ([46] if self.backend == 'local' else [])}
        if t == 'fault_write':
            if self.backend != 'supabase':
                return None
            p = self.newpath()
            if m.exists(p):
                return None
            return {'op': 'fault_write', 'p': p, 'data': self.data(),
                    'risk': [8]}
        return None


# ---------------------------------------------------------------- driving
def fmt(op):
    return json.dumps(op, sort_keys=True)


def execute(backend, workdir, ops, known, final_settle=True, slow=False):
    """Replay concrete ops; returns (runner, None) or (runner, (i, err))."""
    rn = Runner(backend, workdir, known, slow=slow)
    err = None
    try:
        rn.setup()
        for i, op in enumerate(ops):
            try:
                if rn.step(op):
                    rn.done.append(op)
            except Mismatch as e:
                err = (i, e)
                break
        if err is None and final_settle:
            try:
                rn.settle()
            except Mismatch as e:
                err = (len(ops), e)
        if err is None and rn.notes:
            err = (len(ops), Mismatch(rn.notes[0][1], rn.notes[0][0]))
    except Mismatch as e:
        err = (-1, e)
    finally:
        try:
            rn.teardown(check=err is None)
        except Mismatch as e:
            if err is None:
                err = (len(ops), e)
    return rn, err


def defect_of(ops, err, known):
    """The known-open defect a failure belongs to, if any: the mismatch's
    own tag, else a risky op in the failing sequence."""
    e = err[1]
    if e.defect in known:
        if any(e.defect in op.get('risk', []) for op in ops) or \
                e.defect == 7:
            return e.defect
    for op in ops:
        for d in op.get('risk', []):
            if d in known:
                return d
    return None


def signature(e):
    """A failure's kind: its words without names, numbers and modes."""
    words = [w for w in str(e).replace(',', ' ').split()
             if not any(c in w for c in '/0123456789.\'"[]')]
    return (e.defect, tuple(words[1:4]))


def shrink(backend, workdir, ops, known, budget_s, sig=None, slow=False):
    """Drop chunks, then single ops, while the sequence still fails the
    same way."""
    t_end = time.time() + budget_s
    cur = list(ops)
    n = max(1, len(cur) // 2)
    while n >= 1 and time.time() < t_end:
        i = len(cur) - n
        changed = False
        while i >= 0 and time.time() < t_end:
            cand = cur[:i] + cur[i + n:]
            _, err = execute(backend, workdir, cand, known, slow=slow)
            if err is not None and (sig is None or
                                    signature(err[1]) == sig):
                cur = cand
                changed = True
            i -= n
        if not changed:
            n //= 2
    return cur


def run_seed(a, known, seed):
    rng = random.Random(seed)
    workdir = os.path.join(a.workdir, '%s-%d' % (a.backend, seed))
    rn = Runner(a.backend, workdir, known, slow=a.slow)
    gen = Generator(rng, rn.model, a.backend, a.mode,
                    set(known) | load_held(), slow=a.slow,
                    restarts=a.restarts)
    t0 = time.time()
    rn.setup()
    err = None
    try:
        for i in range(a.ops):
            op = gen.next()
            try:
                if rn.step(op):
                    rn.done.append(op)
            except Mismatch as e:
                rn.done.append(op)
                err = (i, e)
                break
        if err is None:
            try:
                rn.settle()
            except Mismatch as e:
                err = (a.ops, e)
    finally:
        try:
            rn.teardown(check=err is None)
        except Mismatch as e:
            if err is None:
                err = (a.ops, e)
    label = 'model %s seed %d (%s%s)' % (a.backend, seed, a.mode,
                                         ', slow' if a.slow else '')
    for d, what in rn.notes[:1]:
        print('SKIP: #15.%d open: %s: seen in %s (%d times; first: %s)' %
              (d, known[d], label, len(rn.notes), what))
    if err is None:
        dt = time.time() - t0
        print('PASS: %s: %d ops, %d settles with the store compared, 0 '
              'mismatches (%.1f s, %.2f ops/s)' %
              (label, rn.stats['ops'], rn.stats['settles'], dt,
               rn.stats['ops'] / max(dt, 0.001)))
        return rn.stats['ops'], 0, None
    i, e = err
    d = defect_of(rn.done, err, known)
    print('# seed %d backend %s: mismatch at step %d: %s' %
          (seed, a.backend, i, e), flush=True)
    print('# ops so far:')
    for k, op in enumerate(rn.done):
        print('#  %3d %s' % (k, fmt(op)))
    ops = rn.done
    if a.shrink > 0:
        ops = shrink(a.backend, workdir + '-shrink', rn.done, known,
                     a.shrink, signature(e), slow=a.slow)
        print('# shrunk to %d ops:' % len(ops))
        for k, op in enumerate(ops):
            print('#  %3d %s' % (k, fmt(op)))
    case = {'name': 'seed-%s-%d' % (a.backend, seed), 'backend': a.backend,
            'seed': seed, 'mismatch': str(e), 'ops': ops}
    if a.slow:
        case['slow'] = True	# replayed behind the delaying proxy
    if d:
        case['defect'] = d
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, 'seed-%s-%d.json' % (a.backend, seed))
    with open(path, 'w') as f:
        json.dump(case, f, indent=1)
    if d:
        print('SKIP: #15.%d open: %s: %s (seed %d, step %d: %s; case %s)' %
              (d, known[d], label, seed, i, e, path))
    else:
        print('FAIL: %s: step %d: %s (replay: %s)' % (label, i, e, path))
    return rn.stats['ops'], 1, d


def cmd_run(a):
    known = load_known_open()
    total = bad = 0
    for s in a.seed:
        n, b, d = run_seed(a, known, s)
        total += n
        bad += b and not d
    return bad


def cmd_replay(a):
    known, table = load_known_open(table=True)
    rc = 0
    for path in a.cases:
        with open(path) as f:
            case = json.load(f)
        name = os.path.basename(path)
        d = table.get(name, case.get('defect'))
        backend = case['backend']
        if backend not in STORES:
            print('SKIP: %sreplay %s: the %s backend is not in the model '
                  'tester yet' % ('#15.%d open: %s: ' % (d, known[d])
                                  if d in known else '', name, backend))
            continue
        if a.skip_open and d in known:
            print('SKIP: #15.%d open: %s (%s not run: listed open in '
                  'known_open.json; model.py replay runs it)' %
                  (d, known[d], name))
            continue
        env = {'s3': 'S3_PORT', 'supabase': 'SB_PORT'}.get(backend)
        if env and env not in os.environ:
            print('SKIP: replay %s: no %s server' % (name, backend))
            continue
        workdir = os.path.join(a.workdir, 'case-' + name[:-5])
        t0 = time.time()
        rn, err = execute(backend, workdir, case['ops'], known,
                          slow=case.get('slow', False) or a.slow)
        dt = time.time() - t0
        what = ' (#15.%d)' % d if d else ''
        if err is None:
            print('PASS: replay %s%s: %d ops match the model, mount and store '
                  '(%.1f s)' % (name, what, rn.stats['ops'], dt))
            if d in known:
                print('# %s: #15.%d is listed open in known_open.json but '
                      'its case passed this run (flip it once its fix '
                      'has landed)' % (name, d))
        elif d in known:
            print('SKIP: #15.%d open: %s (%s: step %d: %s)' %
                  (d, known[d], name, err[0], err[1]))
        else:
            print('FAIL: replay %s%s: step %d: %s' % (name, what, err[0],
                                                      err[1]))
            rc = 1
    return rc


def cmd_shrink(a):
    """Shrink a recorded case that fails; writes CASE-min.json."""
    known = load_known_open()
    with open(a.case) as f:
        case = json.load(f)
    slow = case.get('slow', False)
    _, err = execute(case['backend'], a.workdir, case['ops'], known,
                     slow=slow)
    if err is None:
        print('# %s passes: nothing to shrink' % a.case)
        return 1
    print('# fails at step %d: %s' % err)
    ops = shrink(case['backend'], a.workdir, case['ops'], known, a.budget,
                 signature(err[1]), slow=slow)
    case['ops'] = ops
    out = a.case[:-5] + '-min.json'
    with open(out, 'w') as f:
        json.dump(case, f, indent=1)
    print('# %d ops -> %s' % (len(ops), out))
    for k, op in enumerate(ops):
        print('#  %3d %s' % (k, fmt(op)))
    return 0


def cmd_soak(a):
    known = load_known_open()
    t_end = time.time() + a.seconds
    seed = a.first_seed or int(time.time()) % 1000000
    per = {}
    found = []
    while time.time() < t_end:
        for b in a.backends.split(','):
            if time.time() >= t_end:
                break
            a.backend = b
            n, bad, d = run_seed(a, known, seed)
            st = per.setdefault(b, [0, 0, 0])
            st[0] += n
            st[1] += 1
            st[2] += bad
            if bad:
                found.append((b, seed, d))
            seed += 1
    print('soak summary (%d s, mode %s):' % (a.seconds, a.mode))
    for b, (n, seeds, bad) in per.items():
        print('  %s: %d ops in %d seeds, %d mismatching seeds' %
              (b, n, seeds, bad))
    for b, s, d in found:
        print('  %s seed %d: %s' % (b, s, '#15.%d (known open)' % d if d
                                    else 'NEW (see the case in --out)'))
    return 0


TIMES = {}	# 'Class.method' -> [calls, seconds] (MODEL_TIMING=1)


def timed(cls, name):
    f = getattr(cls, name)
    key = '%s.%s' % (cls.__name__, name)

    def w(*a, **k):
        t0 = time.time()
        try:
            return f(*a, **k)
        finally:
            e = TIMES.setdefault(key, [0, 0.0])
            e[0] += 1
            e[1] += time.time() - t0
    setattr(cls, name, w)


def print_times():
    """Where the time went (inclusive: a remount's apply holds its
    Mount.stop and Mount.start)."""
    for k, (n, t) in sorted(TIMES.items(), key=lambda x: -x[1][1]):
        print('# time %-28s %5d calls %8.1f s' % (k, n, t))


def main():
    sys.stdout.reconfigure(line_buffering=True)
    if os.environ.get('MODEL_TIMING'):
        import atexit
        for c, n in ((Mount, 'start'), (Mount, 'stop'), (Mount, 'kill9'),
                     (Mount, 'settle'), (Mount, 'live_queue'),
                     (Runner, 'setup'), (Runner, 'teardown'),
                     (Runner, 'apply'), (Runner, 'compare_mount'),
                     (Runner, 'compare_types_mount'),
                     (Runner, 'compare_store'), (Runner, 'cache_drop'),
                     (Runner, 'wait_visible')):
            timed(c, n)
        atexit.register(print_times)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    for name in ('run', 'soak'):
        s = sub.add_parser(name)
        s.add_argument('--ops', type=int, default=40)
        s.add_argument('--mode', choices=['safe', 'full'], default='safe')
        s.add_argument('--shrink', type=float, default=0,
                       help='seconds to spend shrinking a failure')
        s.add_argument('--out', default=os.path.join(
            os.environ.get('T', '/tmp'), 'model-cases'))
        s.add_argument('--workdir', default=os.path.join(
            os.environ.get('T', '/tmp'), 'model'))
        s.add_argument('--slow', action='store_true',
                       default=os.environ.get('MODEL_SLOW') == '1',
                       help='slow mode: a delaying proxy before the '
                       'server, random gaps between steps')
        s.add_argument('--restarts', type=float, default=1.0,
                       help='weight factor of remount, kill -9 and cache '
                       'loss (each a daemon start)')
    s = sub.choices['run']
    s.add_argument('--backend', choices=sorted(STORES), required=True)
    s.add_argument('--seed', type=int, action='append', required=True)
    s = sub.choices['soak']
    s.add_argument('--seconds', type=int, required=True)
    s.add_argument('--backends', default='s3,supabase,imagekit,local')
    s.add_argument('--first-seed', type=int, default=0)
    s = sub.add_parser('shrink')
    s.add_argument('case')
    s.add_argument('--budget', type=float, default=300)
    s.add_argument('--workdir', default=os.path.join(
        os.environ.get('T', '/tmp'), 'model-shrink'))
    s = sub.add_parser('replay')
    s.add_argument('cases', nargs='+')
    s.add_argument('--slow', action='store_true',
                   default=os.environ.get('MODEL_SLOW') == '1',
                   help='replay behind the delaying proxy')
    s.add_argument('--skip-open', action='store_true',
                   help='print a SKIP for cases of open defects, unrun')
    s.add_argument('--workdir', default=os.path.join(
        os.environ.get('T', '/tmp'), 'model'))
    a = p.parse_args()
    sys.exit({'run': cmd_run, 'replay': cmd_replay, 'shrink': cmd_shrink,
              'soak': cmd_soak}[a.cmd](a))


if __name__ == '__main__':
    main()
