#!/usr/bin/python3
"""A fake ImageKit server for tests (python3 stdlib only), faithful to
../shared/docs/API-NOTES.md section C. One port serves the three hosts:

  * the API (https://api.imagekit.io): /v1/files (list and search with
    path, type, searchQuery, sort, skip, limit), /v1/files/{id}/details
    (GET, PATCH), DELETE /v1/files/{id}, /v1/files/batch/deleteByFileIds,
    /v1/files/copy, /v1/files/move, /v1/files/rename, /v1/folder (POST,
    DELETE: recursive), /v1/bulkJobs/{copy,move,rename}Folder and
    /v1/bulkJobs/{id} (jobs stay Pending for job_ms, then apply at once),
    /v1/customMetadataFields (GET, POST);
  * upload (https://upload.imagekit.io): POST /api/v1/files/upload,
    multipart/form-data (file, fileName, folder, useUniqueFileName default
    true, overwriteFile default true, customMetadata, tags, responseFields);
    an overwrite keeps the fileId and adds a version; names are sanitised
    (anything but a-z A-Z 0-9 . - _ becomes '_'); an empty file is refused;
    customMetadata naming a field that was never created is refused;
  * delivery (the URL endpoint, http://HOST:PORT/IKID/<filePath>): without
    tr=orig-true images come back "optimised" (other bytes); answers are
    cached by URL like a CDN, so after an overwrite the old bytes come back
    unless the query changes (a cache-buster); Range is honoured with 206
    unless ignore_range is set (then 200 with everything).

Auth: HTTP Basic, user = the private key, password ignored; else 401
{"message": "Your account cannot be authenticated.", "help": ...}. Every
API answer carries X-RateLimit-Limit, -Interval and -Reset (ms); upload and
delivery are not rate-limited (C2).

  fake_imagekit.py PORT PRIVATE_KEY STATE_DIR [IKID]

STATE_DIR/control (re-read at every request, all lines optional):
  every429=N      every Nth API request answers 429 (Reset: reset_ms)
  limit_uploads=1 ... uploads count too (the real upload API is not
                  rate-limited: the worst case)
  reset_ms=M      X-RateLimit-Reset of a 429, default 150
  upload500=N     every Nth upload stores the file, then answers 500 (a
                  reply lost after the work was done)
  upload_fail=N   every Nth upload answers 500 without storing anything
                  (a failed overwrite: the previous version stays)
  upload_lie=N    every Nth upload stores nothing and answers 200 naming
                  another file (a lying reply)
  upload_fail_first=1, upload_lie_first=1
                  the same for the first upload of each path only (while the
                  line is there): every file fails or is lied about once
  rate500=F       this fraction of API requests answer 500 before acting
  job_ms=M        bulk jobs stay Pending this long, default 400
  ignore_range=1  delivery ignores Range (200 with the whole file)
  shift_pages=1   every listing page after the first starts one entry
                  early (what a file added meanwhile does to skip/limit)
  hold_after=S    a /v1/ request whose "METHOD PATH" contains S does its
                  work, appends that line to STATE_DIR/held, then keeps its
                  reply until the line is gone from the control (60 s at
                  most): a client killed meanwhile never sees it
STATE_DIR/requests.log gets one line per request: "METHOD PATH?QUERY STATUS".
Files live in memory. Prints "ready" when listening.
"""
import base64
import email.parser
import email.policy
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

from testhttp import QuietHandler, read_control

HELP = 'For support kindly contact us at support@imagekit.io .'
BAD_CHAR = re.compile(r'[^A-Za-z0-9._-]')


def now_iso(t=None):
    t = time.time() if t is None else t
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + \
        '.%03dZ' % int((t % 1) * 1000)


def new_id():
    return uuid.uuid4().hex[:24]


class Err(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status = status
        self.body = dict({'message': message, 'help': HELP}, **extra)


def norm_folder(p):
    """'/a/b/' or 'a/b' -> '/a/b'; '' or '/' -> '/'."""
    p = '/' + (p or '').strip('/')
    return re.sub('/+', '/', p)


def join(folder, name):
    return (folder.rstrip('/') + '/' + name) if folder != '/' else '/' + name


def parent_of(path):
    return norm_folder(path.rsplit('/', 1)[0])


class Store:
    def __init__(self, ikid, port):
        self.lock = threading.RLock()
        self.files = {}        # fileId -> dict
        self.by_path = {}      # filePath -> fileId
        self.folders = {}      # folderPath ('/a/b') -> dict
        self.fields = {}       # custom metadata field name -> dict
        self.jobs = {}         # jobId -> dict
        self.cdn = {}          # delivery URL (path+query) -> bytes
        self.ikid = ikid
        self.port = port
        self.seq = 0

    def url(self, path):
        return 'http://127.0.0.1:%d/%s%s' % (self.port, self.ikid,
                                             urllib.parse.quote(path))

    def ensure_folder(self, folder):
        folder = norm_folder(folder)
        while folder != '/' and folder not in self.folders:
            t = now_iso()
            self.folders[folder] = {
                'type': 'folder', 'name': folder.rsplit('/', 1)[1],
                'folderPath': folder, 'folderId': new_id(),
                'createdAt': t, 'updatedAt': t, 'customMetadata': {}}
            folder = parent_of(folder)

    def file_obj(self, f, fields=None):
        o = {k: f[k] for k in (
            'type', 'fileId', 'name', 'filePath', 'size', 'mime',
            'fileType', 'width', 'height', 'hasAlpha', 'isPrivateFile',
            'isPublished', 'tags', 'customMetadata', 'versionInfo',
            'createdAt', 'updatedAt')}
        o['url'] = self.url(f['filePath'])
        o['thumbnail'] = o['url'] + '?tr=n-ik_ml_thumbnail'
        return o

    def add_version(self, f, data, meta):
        f['data'] = data
        f['size'] = len(data)
        f['mime'] = sniff(data)
        f['fileType'] = 'image' if f['mime'].startswith('image/') \
            else 'non-image'
        f['versions'] = f.get('versions', 0) + 1
        f['versionInfo'] = {'id': new_id(),
                            'name': 'Version %d' % f['versions']}
        f['customMetadata'] = meta
        f['updatedAt'] = now_iso()

    def children(self, folder):
        folder = norm_folder(folder)
        out = [d for p, d in self.folders.items() if parent_of(p) == folder]
        out += [self.file_obj(f) for f in self.files.values()
                if parent_of(f['filePath']) == folder]
        return out

    def move_path(self, f, new_path):
        del self.by_path[f['filePath']]
        f['filePath'] = new_path
        f['name'] = new_path.rsplit('/', 1)[1]
        self.by_path[new_path] = f['fileId']

    def run_jobs(self):
        t = time.time()
        for j in self.jobs.values():
            if j['status'] == 'Pending' and t >= j['due']:
                j['apply']()
                j['status'] = 'Completed'


def sniff(b):
    if b.startswith(b'\x89PNG'):
        return 'image/png'
    if b.startswith(b'\xff\xd8'):
        return 'image/jpeg'
    if b.startswith(b'GIF8'):
        return 'image/gif'
    if b[:4] == b'RIFF' and b[8:12] == b'WEBP':
        return 'image/webp'
    return 'application/octet-stream'


def parse_search(q):
    """The searchQuery subset rclone and mediafs send: clauses joined by
    AND, each `field = "v"` (exact) or `field : "v"` (prefix) over type
    and name."""
    clauses = []
    for part in re.split(r'\s+AND\s+', q.strip()):
        m = re.match(r'^\s*(\w+)\s*([=:])\s*"((?:[^"\\]|\\.)*)"\s*$', part)
        if not m or m.group(1) not in ('type', 'name'):
            raise Err(400, 'Your request contains invalid syntax for the searchQuery parameter.')
        clauses.append((m.group(1), m.group(2),
                        re.sub(r'\\(.)', r'\1', m.group(3))))
    return clauses


def matches(o, clauses):
    for field, op, v in clauses:
        have = o.get(field, '')
        if op == '=' and have != v:
            return False
        if op == ':' and not have.startswith(v):
            return False
    return True


SORTS = {
    'ASC_NAME': (lambda o: o['name'], False),
    'DESC_NAME': (lambda o: o['name'], True),
    'ASC_CREATED': (lambda o: o['createdAt'], False),
    'DESC_CREATED': (lambda o: o['createdAt'], True),
    'ASC_UPDATED': (lambda o: o['updatedAt'], False),
    'DESC_UPDATED': (lambda o: o['updatedAt'], True),
    'ASC_SIZE': (lambda o: o.get('size', 0), False),
    'DESC_SIZE': (lambda o: o.get('size', 0), True),
}


class Handler(QuietHandler):
    server_version = 'fake-imagekit'

    # ---- plumbing ----

    def control(self):
        return read_control(os.path.join(STATE, 'control'))

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def hold_after(self, status):
        want = self.control().get('hold_after')
        line = '%s %s' % (self.command, self.path)
        if not want or status >= 300 or want not in line or \
                not self.path.startswith('/v1/'):
            return	# (uploads answer under the store's lock)
        with LOGLOCK:
            with open(os.path.join(STATE, 'held'), 'a') as f:
                f.write(line + '\n')
        end = time.time() + 60
        while time.time() < end and self.control().get('hold_after') == want:
            time.sleep(0.05)

    def reply(self, status, obj=None, raw=None, headers=()):
        data = raw if raw is not None else \
            (json.dumps(obj).encode() if obj is not None else b'')
        self.hold_after(status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if raw is None and obj is not None:
            self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)
        with LOGLOCK:
            with open(os.path.join(STATE, 'requests.log'), 'a') as f:
                f.write('%s %s %d\n' % (self.command, self.path, status))

    def authed(self):
        h = self.headers.get('Authorization', '')
        if not h.startswith('Basic '):
            return False
        try:
            user = base64.b64decode(h[6:]).decode().split(':', 1)[0]
        except Exception:
            return False
        return user == KEY

    def rate_headers(self, reset=0):
        return [('X-RateLimit-Limit', '100'), ('X-RateLimit-Interval', '1000'),
                ('X-RateLimit-Reset', str(reset))]

    def json_body(self):
        b = self.body()
        try:
            return json.loads(b or b'{}')
        except ValueError:
            raise Err(400, 'Your request body is not valid JSON.')

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        c = self.control()
        if path.startswith('/%s/' % STORE.ikid):
            return self.deliver(path[len(STORE.ikid) + 1:], u.query, c)
        upload = path == '/api/v1/files/upload'
        if not upload and not path.startswith('/v1/'):
            return self.reply(404, {'message': 'Not found', 'help': HELP})
        if not self.authed():
            self.body()
            return self.reply(401, {'message': 'Your account cannot be authenticated.',
                                    'help': HELP})
        if not upload or c.get('limit_uploads'):
            global API_COUNT
            with LOGLOCK:
                API_COUNT += 1
                n = API_COUNT
            every = int(c.get('every429', 0) or 0)
            if every and n % every == 0:
                self.body()
                reset = int(c.get('reset_ms', 150))
                return self.reply(429, {'message': 'Too many requests', 'help': HELP},
                                  headers=self.rate_headers(reset))
            if random.random() < float(c.get('rate500', 0) or 0):
                self.body()
                return self.reply(500, {'message': 'We have experienced an internal error while processing your request.',
                                        'help': HELP}, headers=self.rate_headers())
        try:
            with STORE.lock:
                STORE.run_jobs()
                if upload:
                    return self.upload(c)
                status, obj = self.api(path, q)
        except Err as e:
            return self.reply(e.status, e.body, headers=self.rate_headers())
        if status == 204:
            return self.reply(204, headers=self.rate_headers())
        return self.reply(status, obj, headers=self.rate_headers())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    # ---- upload ----

    def upload(self, c):
        ctype = self.headers.get('Content-Type', '')
        raw = self.body()
        if not ctype.startswith('multipart/form-data'):
            raise Err(400, 'Your request is not multipart/form-data.')
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b'Content-Type: ' + ctype.encode() + b'\r\n\r\n' + raw)
        form, data = {}, None
        for part in msg.iter_parts():
            name = part.get_param('name', header='content-disposition')
            value = part.get_payload(decode=True) or b''
            if name == 'file':
                data = value
            else:
                form[name] = value.decode()
        if data is None:
            raise Err(400, 'Missing file parameter for upload')
        if 'fileName' not in form or not form['fileName']:
            raise Err(400, 'Missing fileName parameter for upload')
        if not data:
            raise Err(400, 'File is empty. Empty files cannot be uploaded.')
        meta = {}
        if form.get('customMetadata'):
            try:
                meta = json.loads(form['customMetadata'])
            except ValueError:
                raise Err(400, 'Invalid customMetadata: not JSON')
            for k, v in meta.items():
                fld = STORE.fields.get(k)
                if not fld:
                    raise Err(400, 'Invalid custom metadata: field "%s" does not exist' % k,
                              reason='CUSTOM_METADATA_FIELD_NOT_FOUND')
                if fld['schema']['type'] == 'Number' and \
                        not isinstance(v, (int, float)):
                    raise Err(400, 'Invalid custom metadata: "%s" must be a number' % k)
        global UPLOAD_COUNT
        UPLOAD_COUNT += 1
        fail, lie = int(c.get('upload_fail', 0) or 0), \
            int(c.get('upload_lie', 0) or 0)
        target = join(norm_folder(form.get('folder', '/')),
                      form['fileName'])
        for k in ('upload_fail_first', 'upload_lie_first'):
            if c.get(k) == '1' and (k, target) not in FIRSTS:
                FIRSTS.add((k, target))
                fail, lie = (1, 0) if k == 'upload_fail_first' else (0, 1)
        if fail and UPLOAD_COUNT % fail == 0:
            return self.reply(500, {'message': 'We have experienced an internal error while processing your request.',
                                    'help': HELP})
        if lie and UPLOAD_COUNT % lie == 0:
            others = [f for f in STORE.files.values()
                      if f['filePath'] != target]
            o = STORE.file_obj(others[0]) if others else {
                'fileId': new_id(), 'name': 'other.bin',
                'filePath': '/other.bin', 'url': STORE.url('/other.bin'),
                'size': len(data), 'fileType': 'non-image', 'height': None,
                'width': None, 'versionInfo': {'id': new_id(),
                                               'name': 'Version 1'},
                'thumbnail': ''}
            out = {k: o[k] for k in ('fileId', 'name', 'filePath', 'url',
                                     'size', 'fileType', 'height', 'width',
                                     'versionInfo')}
            return self.reply(200, out)
        name = BAD_CHAR.sub('_', form['fileName'])
        folder = norm_folder('/'.join(BAD_CHAR.sub('_', s) for s in
                                      form.get('folder', '/').split('/')))
        unique = form.get('useUniqueFileName', 'true') != 'false'
        overwrite = form.get('overwriteFile', 'true') != 'false'
        if unique:
            stem, dot, ext = name.rpartition('.')
            name = (stem + '_' + new_id()[:9] + dot + ext) if dot \
                else name + '_' + new_id()[:9]
        path = join(folder, name)
        STORE.ensure_folder(folder)
        fid = STORE.by_path.get(path)
        if fid and not overwrite:
            raise Err(400, 'A file with the same name already exists at the exact location. We could not overwrite it because both overwriteFile and useUniqueFileName are set to false.')
        if fid:
            f = STORE.files[fid]
        else:
            t = now_iso()
            f = {'type': 'file', 'fileId': new_id(), 'name': name,
                 'filePath': path, 'width': None, 'height': None,
                 'hasAlpha': False, 'isPrivateFile': False,
                 'isPublished': True, 'tags': None, 'createdAt': t}
            STORE.files[f['fileId']] = f
            STORE.by_path[path] = f['fileId']
        STORE.add_version(f, data, meta)
        every = int(c.get('upload500', 0) or 0)
        if every and UPLOAD_COUNT % every == 0:
            return self.reply(500, {'message': 'We have experienced an internal error while processing your request.',
                                    'help': HELP})
        o = STORE.file_obj(f)
        wanted = set(filter(None, form.get('responseFields', '').split(',')))
        out = {k: o[k] for k in ('fileId', 'name', 'filePath', 'url', 'size',
                                 'fileType', 'height', 'width', 'versionInfo')}
        out['thumbnailUrl'] = o['thumbnail']
        out['AITags'] = None
        for k in ('tags', 'customMetadata', 'isPrivateFile'):
            if k in wanted:
                out[k] = o[k]
        return self.reply(200, out)

    # ---- the API ----

    def api(self, path, q):
        m = self.command
        if path == '/v1/files' and m == 'GET':
            return 200, self.list_files(q)
        r = re.match(r'^/v1/files/([^/]+)/details$', path)
        if r:
            f = STORE.files.get(r.group(1))
            if not f:
                raise Err(404, 'The requested file does not exist.')
            if m == 'PATCH':
                b = self.json_body()
                if 'customMetadata' in b:
                    cm = dict(f['customMetadata'])
                    for k, v in (b['customMetadata'] or {}).items():
                        if k not in STORE.fields:
                            raise Err(400, 'Invalid custom metadata: field "%s" does not exist' % k)
                        if v is None:
                            cm.pop(k, None)
                        else:
                            cm[k] = v
                    f['customMetadata'] = cm
                if 'tags' in b:
                    f['tags'] = b['tags']
                f['updatedAt'] = now_iso()
            return 200, STORE.file_obj(f)
        r = re.match(r'^/v1/files/([^/]+)$', path)
        if r and m == 'DELETE' and r.group(1) != 'batch':
            f = STORE.files.pop(r.group(1), None)
            if not f:
                raise Err(404, 'The requested file does not exist.')
            del STORE.by_path[f['filePath']]
            return 204, None
        if path == '/v1/files/batch/deleteByFileIds' and m == 'POST':
            ids = self.json_body().get('fileIds') or []
            missing = [i for i in ids if i not in STORE.files]
            if missing:
                raise Err(404, 'The requested file(s) does not exist.',
                          missingFileIds=missing)
            for i in ids:
                f = STORE.files.pop(i)
                del STORE.by_path[f['filePath']]
            return 200, {'successfullyDeletedFileIds': ids}
        if path in ('/v1/files/copy', '/v1/files/move') and m == 'POST':
            b = self.json_body()
            src = b.get('sourceFilePath', '')
            fid = STORE.by_path.get('/' + src.strip('/'))
            if not fid:
                raise Err(404, 'No file found with filePath %s' % src,
                          reason='SOURCE_FILE_MISSING')
            f = STORE.files[fid]
            dest = norm_folder(b.get('destinationPath', ''))
            STORE.ensure_folder(dest)
            target = join(dest, f['name'])
            if target == f['filePath']:
                return 200, {}
            old = STORE.by_path.get(target)
            if old:	# appended as new versions of the destination
                STORE.add_version(STORE.files[old], f['data'],
                                  dict(f['customMetadata']))
            elif path.endswith('copy'):
                t = now_iso()
                g = dict(f, fileId=new_id(), filePath=target, createdAt=t,
                         updatedAt=t, versions=0)
                STORE.add_version(g, f['data'], dict(f['customMetadata']))
                STORE.files[g['fileId']] = g
                STORE.by_path[target] = g['fileId']
            if path.endswith('move'):
                if old:
                    STORE.files.pop(fid)
                    del STORE.by_path[f['filePath']]
                else:
                    STORE.move_path(f, target)
            return 200, {}
        if path == '/v1/files/rename' and m == 'PUT':
            b = self.json_body()
            src = '/' + (b.get('filePath') or '').strip('/')
            fid = STORE.by_path.get(src)
            if not fid:
                raise Err(404, 'No file found with filePath %s' % src)
            new = BAD_CHAR.sub('_', b.get('newFileName') or '')
            if not new:
                raise Err(400, 'newFileName is required')
            target = join(parent_of(src), new)
            if target in STORE.by_path and target != src:
                raise Err(409, 'A file with the name %s already exists in this folder.' % new)
            STORE.move_path(STORE.files[fid], target)
            return 200, {}
        if path == '/v1/folder' and m == 'POST':
            b = self.json_body()
            name = BAD_CHAR.sub('_', b.get('folderName') or '')
            if not name:
                raise Err(400, 'folderName is required')
            STORE.ensure_folder(join(norm_folder(b.get('parentFolderPath')),
                                     name))
            return 201, {}
        if path == '/v1/folder' and m == 'DELETE':
            folder = norm_folder(self.json_body().get('folderPath'))
            if folder not in STORE.folders:
                raise Err(404, 'No folder found with folderPath %s' % folder,
                          reason='FOLDER_NOT_FOUND')
            self.drop_tree(folder)
            return 204, None
        r = re.match(r'^/v1/bulkJobs/(copyFolder|moveFolder|renameFolder)$',
                     path)
        if r and m == 'POST':
            return 200, self.bulk(r.group(1), self.json_body())
        r = re.match(r'^/v1/bulkJobs/([^/]+)$', path)
        if r and m == 'GET':
            j = STORE.jobs.get(r.group(1))
            if not j:
                raise Err(404, 'No job found with this jobId.')
            return 200, {'jobId': j['jobId'], 'type': j['type'],
                         'status': j['status']}
        if path == '/v1/customMetadataFields' and m == 'GET':
            return 200, list(STORE.fields.values())
        if path == '/v1/customMetadataFields' and m == 'POST':
            b = self.json_body()
            name = b.get('name')
            if not name or not isinstance(b.get('schema'), dict):
                raise Err(400, 'name, label and schema are required')
            if name in STORE.fields:
                raise Err(400, 'A custom metadata field with this name already exists.',
                          reason='DUPLICATE_FIELD_NAME')
            fld = {'id': new_id(), 'name': name,
                   'label': b.get('label') or name, 'schema': b['schema']}
            STORE.fields[name] = fld
            return 201, fld
        raise Err(404, 'Not found')

    def list_files(self, q):
        folder = norm_folder(q.get('path', '/'))
        items = STORE.children(folder)
        if q.get('searchQuery'):
            clauses = parse_search(q['searchQuery'])
            items = [o for o in items if matches(o, clauses)]
        else:
            t = q.get('type', 'file')
            if t not in ('file', 'folder', 'all', 'file-version'):
                raise Err(400, 'Invalid type parameter')
            if t != 'all':
                items = [o for o in items if o['type'] == t]
        sort = q.get('sort', 'ASC_CREATED')
        if sort not in SORTS:
            raise Err(400, 'Invalid sort parameter')
        keyf, rev = SORTS[sort]
        items.sort(key=keyf, reverse=rev)
        try:
            skip = int(q.get('skip', 0))
            limit = int(q.get('limit', 1000))
        except ValueError:
            raise Err(400, 'skip and limit must be numbers')
        if limit < 1 or limit > 1000 or skip < 0:
            raise Err(400, 'limit must be between 1 and 1000')
        if skip and self.control().get('shift_pages'):
            skip -= 1	# as if a file was added meanwhile: pages overlap
        return items[skip:skip + limit]

    def drop_tree(self, folder):
        for p in [p for p in STORE.folders
                  if p == folder or p.startswith(folder + '/')]:
            del STORE.folders[p]
        for fid, f in list(STORE.files.items()):
            if f['filePath'].startswith(folder + '/'):
                del STORE.files[fid]
                del STORE.by_path[f['filePath']]

    def bulk(self, kind, b):
        if kind == 'renameFolder':
            src = norm_folder(b.get('folderPath'))
            new = BAD_CHAR.sub('_', b.get('newFolderName') or '')
            if not new:
                raise Err(400, 'newFolderName is required')
            dst = join(parent_of(src), new)
        else:
            src = norm_folder(b.get('sourceFolderPath'))
            dst = join(norm_folder(b.get('destinationPath')),
                       src.rsplit('/', 1)[1])
        if src not in STORE.folders:
            raise Err(404, 'No folder found with folderPath %s' % src,
                      reason='NO_FILES_FOLDER')
        if dst == src or dst.startswith(src + '/'):
            raise Err(400, 'The destination cannot be inside the source.')

        def apply():
            STORE.ensure_folder(parent_of(dst))
            for p in sorted(p for p in list(STORE.folders)
                            if p == src or p.startswith(src + '/')):
                np = dst + p[len(src):]
                if kind == 'copyFolder':
                    STORE.ensure_folder(np)
                    continue
                d = STORE.folders.pop(p)
                if np not in STORE.folders:
                    d = dict(d, folderPath=np, name=np.rsplit('/', 1)[1])
                    STORE.folders[np] = d
            for f in sorted((f for f in list(STORE.files.values())
                             if f['filePath'].startswith(src + '/')),
                            key=lambda f: f['filePath']):
                np = dst + f['filePath'][len(src):]
                old = STORE.by_path.get(np)
                if kind == 'copyFolder':
                    if old:
                        STORE.add_version(STORE.files[old], f['data'],
                                          dict(f['customMetadata']))
                    else:
                        g = dict(f, fileId=new_id(), versions=0)
                        STORE.files[g['fileId']] = g
                        STORE.by_path[np] = g['fileId']
                        g['filePath'] = np
                        STORE.add_version(g, f['data'],
                                          dict(f['customMetadata']))
                elif old:
                    STORE.add_version(STORE.files[old], f['data'],
                                      dict(f['customMetadata']))
                    STORE.files.pop(f['fileId'])
                    del STORE.by_path[f['filePath']]
                else:
                    STORE.move_path(f, np)
        job = {'jobId': new_id(), 'status': 'Pending',
               'type': {'copyFolder': 'COPY_FOLDER', 'moveFolder': 'MOVE_FOLDER',
                        'renameFolder': 'RENAME_FOLDER'}[kind],
               'due': time.time() + int(self.control().get('job_ms', 400)) / 1000.0,
               'apply': apply}
        STORE.jobs[job['jobId']] = job
        return {'jobId': job['jobId']}

    # ---- delivery ----

    def deliver(self, path, query, c):
        q = dict(urllib.parse.parse_qsl(query))
        with STORE.lock:
            STORE.run_jobs()
            cached = STORE.cdn.get((path, query))
            if cached is None:
                fid = STORE.by_path.get(path)
                if not fid:
                    return self.reply(404, raw=b'Not Found',
                                      headers=[('Content-Type', 'text/plain')])
                f = STORE.files[fid]
                data = f['data']
                if q.get('tr') != 'orig-true' and f['fileType'] == 'image':
                    # optimised delivery: other bytes than were uploaded
                    data = b'IK-OPTIMISED' + hashlib.sha256(data).digest()
                cached = STORE.cdn[(path, query)] = data
        rng = self.headers.get('Range', '')
        m = re.match(r'^bytes=(\d+)-(\d*)$', rng)
        hdr = [('Content-Type', sniff(cached)), ('Accept-Ranges', 'bytes')]
        if m and not c.get('ignore_range'):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(cached) - 1
            end = min(end, len(cached) - 1)
            if start >= len(cached):
                return self.reply(416, raw=b'', headers=[
                    ('Content-Range', 'bytes */%d' % len(cached))])
            return self.reply(206, raw=cached[start:end + 1], headers=hdr + [
                ('Content-Range', 'bytes %d-%d/%d' % (start, end, len(cached)))])
        return self.reply(200, raw=cached, headers=hdr)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == '__main__':
    port = int(sys.argv[1])
    KEY = sys.argv[2]
    STATE = sys.argv[3]
    ikid = sys.argv[4] if len(sys.argv) > 4 else 'demo'
    os.makedirs(STATE, exist_ok=True)
    LOGLOCK = threading.Lock()
    API_COUNT = 0
    UPLOAD_COUNT = 0
    FIRSTS = set()      # (control line, path) already failed or lied about
    STORE = Store(ikid, port)
    srv = Server(('127.0.0.1', port), Handler)
    print('ready', flush=True)
    srv.serve_forever()
