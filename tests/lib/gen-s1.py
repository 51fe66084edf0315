#!/usr/bin/python3
"""Generate scenario S1's inputs from a seed (tests/integration/test_examples.sh):
an S3 backup tree, the two ID maps and the application's SQLite database,
plus what a correct migration must produce (for the test only).

  gen-s1.py OUT --seed N [--users N] [--services N]

OUT/backup/   Profile-Pics/{buyer|stylist|salon}/{oldUserId} (no extension),
              Service-Images/{oldServiceId}/{imageId} (no extension),
              Chat-Images/{chatId}/{file}.jpeg
OUT/data/     user-id-mapping.json, services-created.json, app.db
OUT/expect.tsv  one line per source: rel, outcome (a target key or
              skip:REASON), owner, service, content type
Images are real (ImageMagick's convert for JPEG/WebP/TIFF, a few variants
each; PNG and GIF written here); some sources are not images: an S3
AccessDenied XML document and raw bytes (both must become .bin,
application/octet-stream). Which user is mapped, which service migrated,
which role, which type: all drawn from the seed; every seed has an
unmapped salon user with a picture (skipped as salon: salon wins over
unmapped_user) and at least 5 planned files.
"""
import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import tempfile
import uuid
import zlib


def png(w, h, rnd):
    r0, g0, b0 = rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)
    rows = b''.join(bytes([0]) + b''.join(
        bytes(((r0 + x) & 255, (g0 + y) & 255, (b0 + x * y) & 255))
        for x in range(w)) for y in range(h))

    def chunk(t, d):
        c = struct.pack('>I', len(d)) + t + d
        return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(rows, 1)) + chunk(b'IEND', b''))


def gif(rnd):
    c = bytes([rnd.randrange(256) for _ in range(3)])
    return (b'GIF89a\x01\x00\x01\x00\x80\x00\x00' + c + b'\x00\x00\x00'
            b',\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;')


XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied'
       b'</Code><Message>Access Denied</Message><RequestId>%s</RequestId>'
       b'</Error>')


def pool(rnd, tmp):
    """A few real JPEG, WebP and TIFF images, by ImageMagick."""
    out = {'jpeg': [], 'webp': [], 'tiff': []}
    for kind, ext in (('jpeg', 'jpg'), ('webp', 'webp'), ('tiff', 'tiff')):
        for i in range(3):
            f = os.path.join(tmp, '%s%d.%s' % (kind, i, ext))
            subprocess.run(['/usr/local/bin/convert' if os.path.exists(
                '/usr/local/bin/convert') else 'convert', '-size',
                '%dx%d' % (rnd.randrange(40, 120), rnd.randrange(40, 120)),
                'plasma:fractal', '-seed', str(rnd.randrange(1 << 20)),
                '-quality', '95', f], check=True)
            out[kind].append(open(f, 'rb').read())
    return out


TYPES = {'png': 'image/png', 'jpeg': 'image/jpeg', 'gif': 'image/gif',
         'webp': 'image/webp', 'tiff': 'image/tiff', 'xml': None,
         'raw': None}
EXT = {'png': 'png', 'jpeg': 'jpg', 'gif': 'gif', 'webp': 'webp',
       'tiff': 'tiff'}


def main():
    out = sys.argv[1]
    arg = lambda n, d: int(sys.argv[sys.argv.index(n) + 1]) \
        if n in sys.argv else d
    seed = arg('--seed', 1)
    nusers, nsvc = arg('--users', 30), arg('--services', 10)
    rnd = random.Random(seed)
    u = lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    backup, data = os.path.join(out, 'backup'), os.path.join(out, 'data')
    os.makedirs(backup)
    os.makedirs(data)
    with tempfile.TemporaryDirectory() as tmp:
        imgs = pool(rnd, tmp)

    # the first planned files take every kind once (in an order the seed
    # draws), so each seed's plan holds an XML page and raw bytes too
    deck = list(TYPES)
    rnd.shuffle(deck)
    deck.remove('jpeg')
    deck.append('jpeg')		# the first: a JPEG to compress in every seed

    def content(planned=False):
        kind = rnd.choices(list(TYPES), [5, 5, 2, 2, 1, 1, 1])[0]
        if planned and deck:
            kind = deck.pop()
        if kind == 'png':
            return kind, png(rnd.randrange(8, 48), rnd.randrange(8, 48), rnd)
        if kind == 'gif':
            return kind, gif(rnd)
        if kind == 'xml':
            return kind, XML % u().encode()
        if kind == 'raw':
            return kind, b'MFSRAW\x00\xff' + bytes(
                rnd.randrange(256) for _ in range(rnd.randrange(16, 400)))
        return kind, rnd.choice(imgs[kind])

    def write(rel, data_):
        p = os.path.join(backup, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, 'wb').write(data_)

    expect = []
    users, mapping, db_users = [], {}, []
    for i in range(nusers):
        old, new = u(), u()
        role = rnd.choice(['buyer', 'stylist', 'salon'])
        mapped = rnd.random() < 0.75
        # every seed has an unmapped salon (its reason must be salon, not
        # unmapped_user) and a mapped stylist with a picture
        if i < 2:
            role, mapped = ('salon', False) if i == 0 else ('stylist', True)
        users.append((old, new, role, mapped))
        if mapped:
            mapping[old] = new
            db_users.append((new, old, role))
        if rnd.random() < 0.8 or i < 2:		# has a profile picture
            kind, b = content(mapped and role != 'salon')
            rel = 'Profile-Pics/%s/%s' % (role, old)
            write(rel, b)
            if role == 'salon':
                expect.append((rel, 'skip:salon', '', '', ''))
            elif not mapped:
                expect.append((rel, 'skip:unmapped_user', '', '', ''))
            else:
                ext = EXT.get(kind, 'bin')
                expect.append((rel, 'avatars/%s/%s.%s' % (new, old, ext),
                               new, '', TYPES[kind] or
                               'application/octet-stream'))
    stylists = [x for x in db_users if x[2] == 'stylist'] or db_users[:1]
    if not stylists:	# every user unmapped: one stylist the services use
        s = (u(), u(), 'stylist')
        db_users.append(s)
        stylists = [s]
    created = []
    for j in range(nsvc):
        old, new = u(), u()
        # the first service is migrated with 4 images: every seed plans at
        # least 5 files, more than the copy's 4 jobs (a kill mid-copy has
        # files on both sides)
        migrated = rnd.random() < 0.6 or j == 0
        stylist = rnd.choice(stylists)[0]
        if migrated:
            created.append({'oldId': old, 'newId': new, 'stylistId': stylist})
        for _ in range(4 if j == 0 else rnd.randrange(1, 5)):
            kind, b = content(migrated)
            img = u()
            rel = 'Service-Images/%s/%s' % (old, img)
            write(rel, b)
            if migrated:
                ext = EXT.get(kind, 'bin')
                expect.append((rel, 'service-media/%s/%s.%s' % (new, img, ext),
                               stylist, new, TYPES[kind] or
                               'application/octet-stream'))
            else:
                expect.append((rel, 'skip:unmigrated_service', '', '', ''))
    for _ in range(rnd.randrange(1, 4)):
        chat = u()
        for i in range(rnd.randrange(1, 3)):
            rel = 'Chat-Images/%s/%d.jpeg' % (chat, i)
            write(rel, rnd.choice(imgs['jpeg']))
            expect.append((rel, 'skip:chat', '', '', ''))
    json.dump(mapping, open(os.path.join(data, 'user-id-mapping.json'), 'w'),
              indent=1)
    json.dump(created, open(os.path.join(data, 'services-created.json'), 'w'),
              indent=1)
    db = sqlite3.connect(os.path.join(data, 'app.db'))
    db.executescript('''
        CREATE TABLE users(id TEXT PRIMARY KEY, old_id TEXT, role TEXT);
        CREATE TABLE services(id TEXT PRIMARY KEY, old_id TEXT,
            stylist_id TEXT REFERENCES users(id));
        CREATE TABLE media(id INTEGER PRIMARY KEY, created_at,
            owner_id REFERENCES users(id), file_path, media_type,
            service_id REFERENCES services(id), is_preview_image);
    ''')
    db.executemany('INSERT INTO users VALUES(?,?,?)', db_users)
    db.executemany('INSERT INTO services VALUES(?,?,?)',
                   [(c['newId'], c['oldId'], c['stylistId']) for c in created])
    db.commit()
    with open(os.path.join(out, 'expect.tsv'), 'w') as f:
        for e in sorted(expect):
            f.write('\t'.join(e) + '\n')


if __name__ == '__main__':
    main()
