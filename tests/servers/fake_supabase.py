#!/usr/bin/python3
"""A fake Supabase Storage server for tests (python3 stdlib only), faithful to
../shared/docs/API-NOTES.md sections B and F (F wins where they differ):

  * routes under /storage/v1: /bucket, /object (upload POST/PUT, download
    authenticated/public/plain with Range, info, list v1 and list-v2, move,
    copy, single and batch delete) and /upload/resumable (TUS 1.0.0, 6 MiB
    chunks enforced);
  * the error shapes: HTTP 400 with the real code as a *string* in the body's
    statusCode ("404", "409", ...), KeyAlreadyExists on duplicate upload or
    copy, ResourceAlreadyExists on move, InvalidKey for the refused charset,
    list of a missing bucket = 200 [], HEAD of a missing object = 400 with no
    body, unknown routes = a real 404 with a numeric statusCode, TUS errors as
    real statuses with text/plain bodies;
  * auth: public downloads (/object/public/…) need none; elsewhere
    'apikey' must be the key; with a JWT-style key 'Authorization:
    Bearer <key>' must match too; an sb_secret_ key must not be sent as a
    Bearer token. A bad key answers 400 {"statusCode":"403","code":
    "AccessDenied"}.

  fake_supabase.py PORT KEY STATE_DIR

STATE_DIR/control (re-read at every request, all lines optional):
  rate429=0.1   answer this fraction of requests with 429 SlowDown
  rate500=0.1   ... with 500 InternalError
  fail500=T1,T2 answer every request whose path contains one of these
                texts with 500 InternalError (a fault scoped to a bucket)
  seed=N
  no_list_v2=1  answer list-v2 with 400 FeatureNotEnabled (an old project)
  max_list=N    list-v2 pages hold at most N entries (forces cursor paging)
  no_prefix=1   a server without the API gateway (API-NOTES F16): routes
                at the root (/bucket, /object/..., /upload/resumable);
                /storage/v1/... is an unknown route
  max_size=N    UPLOAD_FILE_SIZE_LIMIT (F20): a larger REST upload answers
                413-coded JSON, a larger TUS upload is refused at its POST
                with 413 text/plain "Maximum size exceeded" (F15)
  put_lie=N     every Nth REST upload stores nothing and answers 200 naming
                another key (a lying reply)
  put_err200=N  every Nth REST upload stores nothing and answers 200 with
                an error body
  put_bad_first=1  the first REST upload of each key (while this line is
                there) answers like put_lie, its second like put_err200
TUS (F12, F14): every request of an upload onto an existing object needs
x-upsert: true -- the POST and each PATCH (409 text/plain "The resource
already exists" otherwise); a wrong Upload-Offset is 409 text/plain
"Upload-Offset conflict"; the object made has the version named in the
upload's id (base64url of bucket/object/version).
  move_ms=N     each move stays in flight N ms before it is done (so two
                moves can overlap)
Two moves of one key at once (F19): a move whose source or destination is
the source or destination of a move still in flight answers 500 (ENOENT,
as the real file backend) and leaves an orphan version: one line
"bucket/key" in STATE_DIR/orphans.
  hold_key=TEXT hold every PUT/POST/PATCH whose path contains TEXT until
                the line is gone (noted in STATE_DIR/control.held); a
                move's or copy's JSON body counts as part of its path
STATE_DIR/requests.log gets one line per request: "METHOD PATH STATUS".
Objects live in memory. Prints "ready" when listening.
"""
import base64
import hashlib
import http.server
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid

from testhttp import QuietHandler, hold, read_control

CHUNK = 6 * 1024 * 1024
KEY_RE = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*$")
PLACEHOLDER = '.emptyFolderPlaceholder'


def now_iso():
    t = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + \
        '.%03dZ' % int((t % 1) * 1000)


def http_date(t):
    return time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(t))


class Err(Exception):
    """A storage error: HTTP 400 (unless status says otherwise) with the
    real code in the body."""

    def __init__(self, code, status_code, error, message, http_status=400):
        super().__init__(message)
        self.body = {'statusCode': str(status_code), 'error': error,
                     'code': code, 'message': message}
        self.http_status = http_status


def no_key():
    return Err('NoSuchKey', 404, 'not_found', 'Object not found')


def no_bucket():
    return Err('NoSuchBucket', 404, 'Bucket not found', 'Bucket not found')


def check_key(key):
    bad = (not key or not KEY_RE.match(key) or
           any(s == '..' for s in key.split('/')))
    if bad:
        raise Err('InvalidKey', 400, 'InvalidKey', 'Invalid key: ' + key)


class Obj:
    def __init__(self, data, ctype, cc, user_meta):
        self.data = data
        self.ctype = ctype or 'application/octet-stream'
        self.cc = cc or 'no-cache'
        self.user_meta = user_meta or {}
        self.id = str(uuid.uuid4())
        self.version = str(uuid.uuid4())
        self.created = now_iso()
        self.updated = self.created
        self.mtime = time.time()

    @property
    def etag(self):
        return '"%s"' % hashlib.md5(self.data).hexdigest()

    def sysmeta(self):
        size = len(self.data)
        return {'eTag': self.etag, 'size': size, 'mimetype': self.ctype,
                'cacheControl': self.cc,
                'lastModified': time.strftime('%Y-%m-%dT%H:%M:%S.000Z',
                                              time.gmtime(self.mtime)),
                'contentLength': size, 'httpStatusCode': 200}


class State:
    def __init__(self, key, statedir):
        self.key = key
        self.dir = statedir
        self.lock = threading.Lock()
        self.buckets = {}       # name -> dict(public, created, objects)
        self.tus = {}           # id -> dict(...)
        self.rnd = random.Random(1)
        self.seeded = False
        self.puts = 0           # REST uploads seen (put_lie, put_err200)
        self.tries = {}         # key -> REST uploads seen (put_bad_first)
        self.moving = set()     # (bucket, key)s of moves in flight (F19)
        self.log = open(os.path.join(statedir, 'requests.log'), 'a',
                        buffering=1)

    def control(self):
        return read_control(os.path.join(self.dir, 'control'))

    def bucket(self, name):
        b = self.buckets.get(name)
        if b is None:
            raise no_bucket()
        return b


class Handler(QuietHandler):
    state = None

    # ---- plumbing ----
    def reply(self, status, body=b'', ctype='application/json',
              headers=None, head=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        # logged before the answer goes out: once a client has its answer
        # the line is there (logged after, a loaded machine let a test's
        # mark miss a request its own sb listing had just made, and count
        # it against the next check: "refused names: 1 requests")
        self.state.log.write('%s %s %d\n' % (self.command, self.path,
                                             status))
        self.send_response(status)
        if body or not head:
            self.send_header('Content-Type', ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            out = b''
            while True:
                n = int(self.rfile.readline().strip().split(b';')[0], 16)
                if n == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def json_body(self, raw):
        if not raw:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'body must be JSON')
        try:
            return json.loads(raw)
        except ValueError:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'body is not valid JSON')

    def auth(self):
        st = self.state
        api = self.headers.get('apikey')
        bearer = self.headers.get('Authorization', '')
        ok = api == st.key
        if st.key.startswith('sb_secret_'):
            ok = ok and not bearer      # not a JWT: never as Bearer
        elif bearer:
            ok = ok and bearer == 'Bearer ' + st.key
        if not ok:
            raise Err('AccessDenied', 403, 'Unauthorized',
                      'invalid signature')

    def inject(self):
        st = self.state
        r = st.control()
        with st.lock:
            if 'seed' in r and not st.seeded:
                st.rnd.seed(int(r['seed']))
                st.seeded = True
            x = st.rnd.random()
        r429, r500 = float(r.get('rate429', 0)), float(r.get('rate500', 0))
        if x < r429:
            raise Err('SlowDown', 429, 'too_many_connections',
                      'Too many connections', http_status=429)
        if x < r429 + r500 or \
                any(t and t in self.path
                    for t in r.get('fail500', '').split(',')):
            raise Err('InternalError', 500, 'Internal', 'Internal error',
                      http_status=500)
        return r

    def dispatch(self):
        raw = self.read_body()
        # a move or copy names its keys in the body, not the URL
        what = self.path
        if self.path.rstrip('/').endswith(('/object/move', '/object/copy')):
            what += ' ' + raw.decode('utf-8', 'replace')
        hold(os.path.join(self.state.dir, 'control'), self.command, what)
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        prefix = '/' if self.state.control().get('no_prefix') == '1' \
            else '/storage/v1/'
        if not path.startswith(prefix) or \
                (prefix == '/' and path.startswith('/storage/v1/')):
            return self.not_found()
        parts = path[len(prefix):].split('/')
        segs = [urllib.parse.unquote(p) for p in parts]
        try:
            ctl = self.inject()
            if segs[0] == 'upload' and len(segs) >= 2 and \
                    segs[1] == 'resumable':
                return self.tus(segs[2:], raw)
            # GET /object/public/{bucket}/{path}: no auth, public
            # buckets only (API-NOTES B11); download() checks the flag
            if not (self.command in ('GET', 'HEAD') and
                    segs[:2] == ['object', 'public']):
                self.auth()
            if segs[0] == 'bucket':
                return self.bucket_route(segs[1:], raw)
            if segs[0] == 'object':
                return self.object_route(segs[1:], raw, url, ctl)
            return self.not_found()
        except Err as e:
            head = self.command == 'HEAD'
            if head and e.http_status == 400:
                return self.reply(400, b'', head=True)
            return self.reply(e.http_status, e.body, head=head)

    def not_found(self):
        return self.reply(404, {'message': 'Route %s:%s not found' %
                                (self.command, self.path),
                                'error': 'Not Found', 'statusCode': 404})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = dispatch

    # ---- buckets ----
    def bucket_json(self, name, b):
        return {'id': name, 'name': name, 'owner': '', 'public': b['public'],
                'file_size_limit': None, 'allowed_mime_types': None,
                'created_at': b['created'], 'updated_at': b['created'],
                'type': 'STANDARD'}

    def bucket_route(self, segs, raw):
        st = self.state
        segs = [s for s in segs if s]
        m = self.command
        with st.lock:
            if m == 'GET' and not segs:
                return self.reply(200, [self.bucket_json(n, b) for n, b in
                                        sorted(st.buckets.items())])
            if m == 'GET' and len(segs) == 1:
                return self.reply(200, self.bucket_json(
                    segs[0], st.bucket(segs[0])))
            if m == 'POST' and not segs:
                j = self.json_body(raw)
                name = j.get('id') or j.get('name')
                if not name or '/' in name or not KEY_RE.match(name) or \
                        len(name) > 100:
                    raise Err('InvalidBucketName', 400, 'Invalid Input',
                              'Bucket name invalid')
                if name in st.buckets:
                    raise Err('BucketAlreadyExists', 409, 'Duplicate',
                              'The resource already exists')
                st.buckets[name] = {'public': bool(j.get('public')),
                                    'created': now_iso(), 'objects': {}}
                return self.reply(200, {'name': name})
            if m == 'DELETE' and len(segs) == 1:
                b = st.bucket(segs[0])
                if b['objects']:
                    raise Err('InvalidRequest', 409, 'Bucket not empty',
                              'The bucket you tried to delete is not empty')
                del st.buckets[segs[0]]
                return self.reply(200, {'message': 'Successfully deleted'})
        return self.not_found()

    # ---- objects ----
    def object_route(self, segs, raw, url, ctl):
        m = self.command
        q = urllib.parse.parse_qs(url.query)
        if m == 'POST' and segs[:1] == ['list'] and len(segs) == 2:
            return self.list_v1(segs[1], self.json_body(raw))
        if m == 'POST' and segs[:1] == ['list-v2'] and len(segs) == 2:
            if ctl.get('no_list_v2') == '1':
                raise Err('FeatureNotEnabled', 400, 'Feature not enabled',
                          'list-v2 is not enabled for this project')
            return self.list_v2(segs[1], self.json_body(raw),
                                int(ctl.get('max_list', 1000)))
        if m == 'POST' and segs == ['move']:
            return self.move(self.json_body(raw))
        if m == 'POST' and segs == ['copy']:
            return self.copy(self.json_body(raw))
        if m in ('GET', 'HEAD') and segs[:1] == ['info']:
            rest = segs[1:]
            if rest[:1] in (['authenticated'], ['public']):
                rest = rest[1:]
            if len(rest) < 2:
                return self.not_found()
            return self.info(rest[0], '/'.join(rest[1:]))
        if m in ('GET', 'HEAD'):
            rest = segs
            public = False
            if rest[:1] == ['authenticated']:
                rest = rest[1:]
            elif rest[:1] == ['public']:
                rest, public = rest[1:], True
            if len(rest) < 2:
                return self.not_found()
            return self.download(rest[0], '/'.join(rest[1:]), public, q)
        if m in ('POST', 'PUT') and len(segs) >= 2:
            return self.upload(segs[0], '/'.join(segs[1:]), raw)
        if m == 'DELETE' and len(segs) == 1:
            return self.delete_many(segs[0], raw)
        if m == 'DELETE' and len(segs) >= 2:
            return self.delete(segs[0], '/'.join(segs[1:]))
        return self.not_found()

    def user_meta(self, header):
        v = self.headers.get(header)
        if not v:
            return None
        try:
            j = json.loads(base64.b64decode(v))
        except ValueError:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'x-metadata is not base64 JSON')
        if not isinstance(j, dict):
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'x-metadata must be a JSON object')
        return j

    def upload(self, bucket, key, raw):
        st = self.state
        check_key(key)
        meta = self.user_meta('x-metadata')
        upsert = self.command == 'PUT' or \
            self.headers.get('x-upsert', '').lower() == 'true'
        ctl = st.control()
        limit = int(ctl.get('max_size', 0) or 0)
        if limit and len(raw) > limit:
            raise Err('EntityTooLarge', 413, 'Payload too large',
                      'The object exceeded the maximum allowed size')
        with st.lock:
            st.puts += 1
            n = st.puts
            tries = 0
            if ctl.get('put_bad_first') == '1':
                tries = st.tries[(bucket, key)] = \
                    st.tries.get((bucket, key), 0) + 1
        lie, e200 = int(ctl.get('put_lie', 0) or 0), \
            int(ctl.get('put_err200', 0) or 0)
        if tries in (1, 2):
            lie, e200 = (1, 0) if tries == 1 else (0, 1)
        if lie and n % lie == 0:
            return self.reply(200, {'Id': str(uuid.uuid4()),
                                    'Key': bucket + '/other-' + key})
        if e200 and n % e200 == 0:
            return self.reply(200, {'statusCode': '500', 'code':
                                    'InternalError', 'error': 'internal',
                                    'message': 'Internal Server Error'})
        with st.lock:
            b = st.bucket(bucket)
            if key in b['objects'] and not upsert:
                raise Err('KeyAlreadyExists', 409, 'Duplicate',
                          'The resource already exists')
            o = Obj(raw, self.headers.get('Content-Type'),
                    self.headers.get('Cache-Control'), meta)
            if key.endswith('/' + PLACEHOLDER) or key == PLACEHOLDER:
                o.data = b''
            b['objects'][key] = o
        return self.reply(200, {'Id': o.version, 'Key': bucket + '/' + key})

    def info(self, bucket, key):
        st = self.state
        with st.lock:
            o = st.bucket(bucket)['objects'].get(key)
            if o is None:
                raise no_key()
            j = {'id': o.id, 'name': key, 'version': o.version,
                 'bucket_id': bucket, 'size': len(o.data),
                 'content_type': o.ctype, 'cache_control': o.cc,
                 'etag': o.etag, 'metadata': o.user_meta,
                 'last_modified': o.updated, 'created_at': o.created}
        return self.reply(200, j)

    def download(self, bucket, key, public, q):
        st = self.state
        head = self.command == 'HEAD'
        with st.lock:
            b = st.bucket(bucket)
            if public and not b['public']:
                raise no_bucket()
            o = b['objects'].get(key)
            if o is None:
                raise no_key()
            data, etag = o.data, o.etag
            hdr = {'ETag': etag, 'Last-Modified': http_date(o.mtime),
                   'Cache-Control': o.cc, 'Accept-Ranges': 'bytes'}
            ctype = 'text/plain' if o.ctype.startswith('text/html') \
                else o.ctype
        if self.headers.get('If-None-Match') == etag:
            return self.reply(304, b'', headers=hdr, head=True)
        rng = self.headers.get('Range')
        if rng:
            mm = re.match(r'bytes=(\d+)-(\d*)$', rng)
            if not mm:
                raise Err('InvalidRange', 416, 'invalid_range',
                          'Invalid range', http_status=416)
            start = int(mm.group(1))
            end = int(mm.group(2)) if mm.group(2) else len(data) - 1
            if start >= len(data):
                raise Err('InvalidRange', 416, 'invalid_range',
                          'Invalid range', http_status=416)
            end = min(end, len(data) - 1)
            hdr['Content-Range'] = 'bytes %d-%d/%d' % (start, end, len(data))
            return self.reply(206, data[start:end + 1], ctype, hdr, head)
        return self.reply(200, data, ctype, hdr, head)

    def entry_v2(self, name, o, prefix):
        return {'id': o.id, 'name': name, 'key': name[len(prefix):],
                'metadata': o.sysmeta(), 'updated_at': o.updated,
                'created_at': o.created, 'last_accessed_at': o.updated}

    def list_v2(self, bucket, j, cap):
        st = self.state
        prefix = j.get('prefix') or ''
        limit = min(int(j.get('limit') or 1000), 1000, cap)
        delim = bool(j.get('with_delimiter'))
        cursor = j.get('cursor')
        after = base64.b64decode(cursor).decode() if cursor else None
        with st.lock:
            b = st.bucket(bucket)
            items = {}
            for k, o in b['objects'].items():
                if not k.startswith(prefix):
                    continue
                rest = k[len(prefix):]
                if delim and '/' in rest:
                    f = prefix + rest.split('/')[0] + '/'
                    items[f] = None
                else:
                    items[k] = o
            names = sorted(items)
            if after is not None:
                names = [n for n in names if n > after]
            page = names[:limit]
            folders, objects = [], []
            for n in page:
                if items[n] is None:
                    folders.append({'id': None, 'name': n,
                                    'key': n[len(prefix):],
                                    'bucket_id': bucket})
                else:
                    objects.append(self.entry_v2(n, items[n], prefix))
        out = {'hasNext': len(names) > limit, 'folders': folders,
               'objects': objects}
        if out['hasNext']:
            out['nextCursor'] = base64.b64encode(page[-1].encode()).decode()
            out['nextCursorKey'] = page[-1]
        return self.reply(200, out)

    def list_v1(self, bucket, j):
        st = self.state
        if 'prefix' not in j:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      "body must have required property 'prefix'")
        prefix = j['prefix'] or ''
        if prefix and not prefix.endswith('/'):
            prefix += '/'
        limit = min(int(j.get('limit') or 100), 1500)
        offset = int(j.get('offset') or 0)
        search = (j.get('search') or '').lower()
        with st.lock:
            b = st.buckets.get(bucket)
            if b is None:
                return self.reply(200, [])
            items = {}
            for k, o in b['objects'].items():
                if not k.lower().startswith(prefix.lower()):
                    continue
                rest = k[len(prefix):]
                first = rest.split('/')[0]
                if not first.lower().startswith(search):
                    continue
                items[first] = None if '/' in rest else o
            rows = []
            for n in sorted(items):
                o = items[n]
                if o is None:
                    rows.append({'name': n, 'id': None, 'updated_at': None,
                                 'created_at': None, 'last_accessed_at': None,
                                 'metadata': None})
                else:
                    rows.append({'name': n, 'id': o.id,
                                 'updated_at': o.updated,
                                 'created_at': o.created,
                                 'last_accessed_at': o.updated,
                                 'metadata': o.sysmeta()})
        return self.reply(200, rows[offset:offset + limit])

    @staticmethod
    def move_args(j):
        """(source bucket, source key, destination bucket, key) of a move
        or copy body."""
        sb, sk, dk = j.get('bucketId'), j.get('sourceKey'), \
            j.get('destinationKey')
        if not sb or not sk or not dk:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'bucketId, sourceKey and destinationKey required')
        check_key(dk)
        return sb, sk, j.get('destinationBucket') or sb, dk

    def move(self, j):
        st = self.state
        sb, sk, db, dk = self.move_args(j)
        keys = {(sb, sk), (db, dk)}
        with st.lock:
            if keys & st.moving:
                # F19: the real file backend renames a version file the
                # other move renamed first; its copy stays behind
                with open(os.path.join(st.dir, 'orphans'), 'a') as f:
                    f.write('%s/%s\n' % (sb, sk))
                raise Err('InternalError', 500, 'Internal',
                          "ENOENT: no such file or directory, rename '%s/%s'"
                          % (sb, sk), http_status=500)
            st.moving |= keys
        try:
            time.sleep(int(st.control().get('move_ms', 0)) / 1000.0)
            self.move_now(sb, sk, db, dk)
        finally:
            # out of flight before the answer leaves: a client that
            # moves the key again after it is not concurrent
            with st.lock:
                st.moving -= keys
        return self.reply(200, {'message': 'Successfully moved'})

    def move_now(self, sb, sk, db, dk):
        st = self.state
        with st.lock:
            src, dst = st.bucket(sb), st.bucket(db)
            o = src['objects'].get(sk)
            if o is None:
                raise no_key()
            if dk in dst['objects']:
                raise Err('ResourceAlreadyExists', 409, 'Duplicate',
                          'The resource already exists')
            del src['objects'][sk]
            o.updated = now_iso()
            dst['objects'][dk] = o

    def copy(self, j):
        st = self.state
        sb, sk, db, dk = self.move_args(j)
        upsert = self.headers.get('x-upsert', '').lower() == 'true'
        copy_meta = j.get('copyMetadata', True)
        newmeta = self.user_meta('x-metadata')
        sysm = j.get('metadata') or {}
        with st.lock:
            src, dst = st.bucket(sb), st.bucket(db)
            o = src['objects'].get(sk)
            if o is None:
                raise no_key()
            if dk in dst['objects'] and not upsert:
                raise Err('KeyAlreadyExists', 409, 'Duplicate',
                          'The resource already exists')
            um = dict(o.user_meta) if copy_meta or newmeta is None \
                else newmeta
            n = Obj(o.data, sysm.get('mimetype') or o.ctype,
                    sysm.get('cacheControl') or o.cc, um)
            dst['objects'][dk] = n
            row = {'Key': db + '/' + dk, 'Id': n.version, 'name': dk,
                   'bucket_id': db, 'version': n.version,
                   'metadata': n.sysmeta(), 'user_metadata': n.user_meta,
                   'updated_at': n.updated, 'created_at': n.created}
        return self.reply(200, row)

    def delete(self, bucket, key):
        st = self.state
        with st.lock:
            b = st.bucket(bucket)
            if key not in b['objects']:
                raise no_key()
            del b['objects'][key]
        return self.reply(200, {'message': 'Successfully deleted'})

    def delete_many(self, bucket, raw):
        st = self.state
        j = self.json_body(raw)
        keys = j.get('prefixes')
        if not isinstance(keys, list) or len(keys) > 1000:
            raise Err('InvalidRequest', 400, 'Bad Request',
                      'prefixes must be an array of at most 1000 keys')
        out = []
        with st.lock:
            b = st.bucket(bucket)
            for k in keys:
                o = b['objects'].pop(k, None)
                if o is not None:
                    out.append({'name': k, 'bucket_id': bucket, 'id': o.id,
                                'metadata': o.sysmeta()})
        return self.reply(200, out)

    # ---- TUS ----
    def tus_err(self, status, text):
        return self.reply(status, text, 'text/plain')

    def tus(self, segs, raw):
        st = self.state
        m = self.command
        hdr = {'Tus-Resumable': '1.0.0'}
        if self.headers.get('Tus-Resumable') != '1.0.0' and m != 'OPTIONS':
            return self.tus_err(412, 'Unsupported version')
        try:
            self.auth()
        except Err:
            return self.tus_err(403, 'invalid signature')
        if m == 'POST' and not [s for s in segs if s]:
            md = {}
            for pair in (self.headers.get('Upload-Metadata') or '').split(','):
                pair = pair.strip()
                if not pair:
                    continue
                k, _, v = pair.partition(' ')
                md[k] = base64.b64decode(v).decode() if v else ''
            try:
                length = int(self.headers.get('Upload-Length'))
            except (TypeError, ValueError):
                return self.tus_err(400, 'Upload-Length required')
            bucket, key = md.get('bucketName'), md.get('objectName')
            if not bucket or not key:
                return self.tus_err(400, 'bucketName and objectName required')
            try:
                check_key(key)
            except Err:
                return self.tus_err(400, 'Invalid key: ' + key)
            upsert = self.headers.get('x-upsert', '').lower() == 'true'
            limit = int(st.control().get('max_size', 0) or 0)
            if limit and length > limit:
                return self.tus_err(413, 'Maximum size exceeded')
            with st.lock:
                b = st.buckets.get(bucket)
                if b is None:
                    return self.tus_err(404, 'Bucket not found')
                if key in b['objects'] and not upsert:
                    return self.tus_err(409, 'The resource already exists')
                ver = str(uuid.uuid4())
                uid = base64.urlsafe_b64encode(
                    ('%s/%s/%s' % (bucket, key, ver)).encode()).decode()
                try:
                    um = json.loads(md['metadata']) if md.get('metadata') \
                        else None
                except ValueError:
                    return self.tus_err(400, 'metadata is not JSON')
                st.tus[uid] = {'bucket': bucket, 'key': key, 'len': length,
                               'data': bytearray(), 'version': ver,
                               'ctype': md.get('contentType'),
                               'cc': md.get('cacheControl'), 'meta': um}
            host = self.headers.get('Host')
            root = '' if st.control().get('no_prefix') == '1' \
                else '/storage/v1'
            hdr['Location'] = 'http://%s%s/upload/resumable/%s' % (
                host, root, uid)
            return self.reply(201, b'', 'text/plain', hdr)
        if len(segs) != 1:
            return self.tus_err(404, 'Not found')
        with st.lock:
            u = st.tus.get(segs[0])
        if u is None:
            return self.tus_err(404, 'Upload not found')
        if m == 'HEAD':
            hdr.update({'Upload-Offset': str(len(u['data'])),
                        'Upload-Length': str(u['len']),
                        'Cache-Control': 'no-store'})
            return self.reply(200, b'', 'text/plain', hdr, head=True)
        if m != 'PATCH':
            return self.tus_err(405, 'Method not allowed')
        if self.headers.get('Content-Type') != \
                'application/offset+octet-stream':
            return self.tus_err(415, 'Wrong content type')
        upsert = self.headers.get('x-upsert', '').lower() == 'true'
        with st.lock:
            b = st.buckets.get(u['bucket'])
            if b is None:
                return self.tus_err(404, 'Bucket not found')
            # F14: each PATCH onto an existing object needs x-upsert
            if u['key'] in b['objects'] and not upsert:
                return self.tus_err(409, 'The resource already exists')
            off = int(self.headers.get('Upload-Offset', -1))
            if off != len(u['data']):
                return self.tus_err(409, 'Upload-Offset conflict')
            end = off + len(raw)
            if end > u['len']:
                return self.tus_err(413, 'Upload-Length exceeded')
            if end < u['len'] and len(raw) != CHUNK:
                return self.tus_err(400, 'chunks other than the last must be '
                                    '%d bytes, not %d' % (CHUNK, len(raw)))
            u['data'] += raw
            if end == u['len']:
                o = Obj(bytes(u['data']), u['ctype'], u['cc'], u['meta'])
                o.version = u['version']
                b['objects'][u['key']] = o
                del st.tus[segs[0]]
        hdr['Upload-Offset'] = str(end)
        return self.reply(204, b'', 'text/plain', hdr, head=True)


def main():
    port, key, statedir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.makedirs(statedir, exist_ok=True)
    Handler.state = State(key, statedir)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
    srv.daemon_threads = True
    print('ready', flush=True)
    srv.serve_forever()


if __name__ == '__main__':
    main()
