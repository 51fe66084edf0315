#!/usr/bin/python3
"""check-s3-venues.py DIR BEFORE NOW IKMANIFEST IKIDS DONE LIMIT: scenario
S3's store and venue arrays against the generator's list (DIR/expect,
DIR/cdn, DIR/bucket). The images of the venues done (countries in DONE,
'|'-separated; the first LIMIT venues of each, 0 for all) must be on
ImageKit under /venues/<slug>/<name>, byte for byte; their elements carry
the ImageKit URL and fileId; every other element and array is as BEFORE.
Prints up to 6 differences; exit 1 when there is any. Used by
test_examples_s3 (SQLite) and test_examples_s3_pg (PostgreSQL)."""
import hashlib, json, sys
t, before, now, man, ids, done, limit = sys.argv[1:8]
done, limit = done.split('|') if done else [], int(limit)
cdn = open(t + '/cdn').read()
first = {}
want = {}
for l in open(t + '/expect'):
    country, v, slug, name = l.rstrip('\n').split('\t')
    if country in done:
        first.setdefault(country, []).append(int(v))
for c in first:
    first[c] = sorted(set(first[c]))[:limit] if limit else first[c]
for l in open(t + '/expect'):
    country, v, slug, name = l.rstrip('\n').split('\t')
    if country in first and int(v) in first[country]:
        data = open(t + '/bucket/uploads/' + name, 'rb').read()
        want['/venues/%s/%s' % (slug, name)] = (len(data), hashlib.md5(data).hexdigest(), cdn + 'uploads/' + name)
got = {l.split()[0]: l.split() for l in open(man) if l.strip()}
fid = {l.split()[0]: l.split()[1:] for l in open(ids) if l.strip()}
bad = []
if set(got) != set(want):
    bad.append('ImageKit: missing %s extra %s' % (sorted(set(want) - set(got))[:2], sorted(set(got) - set(want))[:2]))
for p in set(got) & set(want):
    if (int(got[p][1]), got[p][2]) != want[p][:2]:
        bad.append('%s: bytes differ' % p)
newurl = {want[p][2]: (fid[p][1], fid[p][0]) for p in want if p in fid}
b4 = {l.split('\t')[0]: l.rstrip('\n').split('\t', 2)[2] for l in open(before)}
for l in open(now):
    vid, country, arr = l.rstrip('\n').split('\t', 2)
    old = json.loads(b4[vid])
    if not any(e['url'] in newurl for e in old):
        if arr != b4[vid]:
            bad.append('venue %s changed: %s' % (vid, arr[:200]))
        continue
    new = json.loads(arr)
    if len(new) != len(old):
        bad.append('venue %s: %d elements, was %d' % (vid, len(new), len(old)))
        continue
    for o, n in zip(old, new):
        if o['url'] not in newurl:
            if o != n:
                bad.append('venue %s: element %s changed' % (vid, o['url']))
            continue
        u, f = newurl[o['url']]
        x = dict(o, url=u, upload_status='completed', imagekit_file_id=f, original_tigris_url=o['url'])
        ts = n.pop('imagekit_uploaded_at', '')
        if n != x or not ts.startswith('20'):
            bad.append('venue %s: %s, want %s' % (vid, json.dumps(n)[:200], json.dumps(x)[:200]))
print('\n'.join(bad[:6]))
sys.exit(1 if bad else 0)
