#!/bin/bash
# examples/s5-supabase-to-s3.sh end to end, on data generated from a seed
# (a fresh seed each run, printed; EXAMPLES_SEED=N replays one): three Supabase buckets whose objects carry
# types their bytes would not sniff to, four tables whose URL columns name
# stored objects, objects no bucket holds, other URLs and NULLs. The script
# is killed with kill -9 mid-copy and run again; then the S3 buckets are
# checked through boto3 (keys, bytes, Content-Type), the columns against
# what the generator says, the summary and report.json counts, a third run
# that changes nothing, and the rollback (columns back, objects gone).
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"
. "$LIB_DIR/pg.sh"

EX=$(cd "$TESTS_DIR/../examples" && pwd)
# fresh data each run (a new seed, printed; EXAMPLES_SEED=N replays it)
SEED=${EXAMPLES_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "  (data from seed $SEED; EXAMPLES_SEED=$SEED replays it)"
fail() { echo "FAIL: $1 (seed $SEED): $2"; }
PATH="$(cd "$(dirname "$MEDIAFS")" && pwd):$PATH"
export PATH
# the database: SQLite in the normal pass, PostgreSQL (a throwaway
# cluster, DATABASE_URL=postgres://) in run-all's sanitizer pass, so each
# make check runs the script's both paths (EXAMPLES_S5_DB=pg|sqlite picks)
S5DB=${EXAMPLES_S5_DB:-sqlite}
[ -z "${EXAMPLES_S5_DB:-}" ] && [ "${MFS_TEST_PASS:-}" = mount-asan ] && S5DB=pg
echo "  (database: $S5DB)"
supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
S5W=$T/s5/work
trap 'mountpoint -q "$S5W/mnt" && fusermount3 -u -z "$S5W/mnt"; supa_stop; pg_stop' EXIT
if [ "$S5DB" = pg ]; then
	pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
fi

# ---- S5: three Supabase buckets -> three S3 buckets, then the URL prefix
# swap in four columns, only for verified objects
mkdir -p "$S5W"
NS5=12
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NS5=6
# the source objects (typed as their uploader said, some not as their
# bytes would sniff), the database rows (some naming objects that are not
# in the buckets, some other URLs, some NULL) and what must come of them
"$SYS_PY" - "$T/s5" "$SEED" "$NS5" "$SB_PORT" "$SB_KEY" <<'PY' || { fail "s5 data" "the generator failed"; exit 1; }
import json, os, random, sqlite3, sys, urllib.request
t, seed, n, port, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rnd = random.Random(seed * 7919 + 5)
def call(method, path, body, ctype):
    req = urllib.request.Request('http://127.0.0.1:%d/storage/v1%s' % (port, path), data=body,
                                 headers={'apikey': key, 'Content-Type': ctype}, method=method)
    urllib.request.urlopen(req).read()
buckets = {'asset-images': ('s5-assets', True), 'images': ('s5-images', True), 'videos': ('s5-videos', False)}
kinds = {'asset-images': [('png', 'image/png', b'\x89PNG\r\n\x1a\n'), ('svg', 'image/svg+xml', b'<svg xmlns="http://www.w3.org/2000/svg">'),
                          ('json', 'application/json', b'{"layers": [')],
         'images': [('jpg', 'image/jpeg', b'\xff\xd8\xff\xe0'), ('webp', 'image/webp', None), ('md', 'text/markdown', b'# caption ')],
         'videos': [('mp4', 'video/mp4', b'\x00\x00\x00\x18ftypmp42'), ('webm', 'video/webm', b'\x1aE\xdf\xa3'), ('mov', 'video/quicktime', b'\x00\x00\x00\x14ftypqt  ')]}
old = 'https://%sref.supabase.co/storage/v1/object/public/' % ''.join(rnd.choice('abcdefghijklmnop') for _ in range(8))
objs, want = [], []
for b, (tb, public) in buckets.items():
    call('POST', '/bucket', json.dumps({'name': b, 'public': public}).encode(), 'application/json')
    for i in range(n + rnd.randrange(n)):
        ext, ctype, head = rnd.choice(kinds[b])
        if head is None:
            body = b'RIFF' + (rnd.randrange(100, 5000)).to_bytes(4, 'little') + b'WEBPVP8 '
        else:
            body = head
        body += rnd.randbytes(rnd.randrange(50, 6000))
        depth = rnd.randrange(1, 4)
        k = '/'.join('%s%d' % (rnd.choice(['p', 'u', 'gen', 'job']), rnd.randrange(10**6)) for _ in range(depth - 1))
        k = (k + '/' if k else '') + '%s-%d.%s' % (rnd.choice(['frame', 'asset', 'clip', 'img']), rnd.randrange(10**9), ext)
        call('POST', '/object/%s/%s' % (b, k), body, ctype)
        objs.append((b, tb, k, ctype, body))
        open(t + '/expect.store', 'a').write('%s\t%s\t%d\t%s\n' % (tb, k, len(body), ctype))
db = sqlite3.connect(t + '/app.db')
tables = [('global_assets', 'image_key_url'), ('project_assets', 'image_key_url'), ('frames', 'image_url'),
          ('video_generation_jobs', 'video_url')]
rid = 0
for tbl, col in tables:
    db.execute('CREATE TABLE %s(id INTEGER PRIMARY KEY, name text, %s text)' % (tbl, col))
    for i in range(n + rnd.randrange(n)):
        rid += 1
        r = rnd.random()
        if r < 0.7:
            b, tb, k, _, _ = rnd.choice(objs)
            v, after = old + b + '/' + k, 'https://%s.s3.us-east-1.amazonaws.com/%s' % (tb, k)
        elif r < 0.85:	# an object no bucket holds: left alone
            b = rnd.choice(list(buckets))
            v = after = old + b + '/gone/%d.png' % rnd.randrange(10**6)
        elif r < 0.95:
            v = after = 'https://elsewhere.example.org/%d.jpg' % rnd.randrange(10**6)
        else:
            v = after = None
        db.execute('INSERT INTO %s VALUES (?, ?, ?)' % tbl, (rid, 'row %d' % rid, v))
        want.append('%s\t%d\t%s' % (tbl, rid, after))
db.commit()
open(t + '/expect.rows', 'w').write('\n'.join(want) + '\n')
open(t + '/old', 'w').write(old)
PY
S5URL=sqlite:$T/s5/app.db
if [ "$S5DB" = pg ]; then	# the generator's tables and rows, into PostgreSQL
	sqlite3 "$T/s5/app.db" .dump | grep -v '^PRAGMA' | psql_ >/dev/null ||
		{ fail "s5 data" "cannot load the database into PostgreSQL"; exit 1; }
	S5URL=$PG_URL
fi
for b in s5-assets s5-images s5-videos; do s3 mkbucket "$b" >/dev/null || fail "s5 bucket" "mkbucket $b failed"; done
export S5_SUPABASE_URL=http://127.0.0.1:$SB_PORT S5_SUPABASE_KEY=$SB_KEY \
	S5_BUCKETS="asset-images:s5-assets images:s5-images videos:s5-videos" \
	S5_S3_ENDPOINT=http://127.0.0.1:$S3_PORT S5_S3_REGION=us-east-1 \
	S5_S3_KEY_ID=test:tester S5_S3_SECRET=testing DATABASE_URL=$S5URL \
	S5_OLD_PREFIX=$(cat "$T/s5/old") S5_WORK=$S5W
J5=$S5W/journal.db
N5=$(wc -l <"$T/s5/expect.store")
s5rows() {
	for tc in global_assets.image_key_url project_assets.image_key_url frames.image_url video_generation_jobs.video_url; do
		q="SELECT '${tc%%.*}', id, coalesce(${tc#*.}, 'None') FROM ${tc%%.*} ORDER BY id"
		if [ "$S5DB" = pg ]; then psql_ -F $'\t' -c "$q"
		else sqlite3 -separator $'\t' "$T/s5/app.db" "$q"; fi
	done
}
s5rows >"$T/s5.before"
# run 1, killed (-9) once a file is in; 30% of Supabase's answers are 500s
echo rate500=0.3 >"$SB_CONTROL"
kill_when "$T/s5.run1" '[ "$(sqlite3 "$J5" "SELECT count(*) FROM copies WHERE state='"'done'"'" 2>/dev/null)" -ge 1 ] 2>/dev/null' \
	"$EX/s5-supabase-to-s3.sh"
: >"$SB_CONTROL"
d1=$(sqlite3 "$J5" "SELECT count(*) FROM copies WHERE state='done'" 2>/dev/null)
sh "$EX/s5-supabase-to-s3.sh" >"$T/s5.run2" 2>&1
rc=$?
# the store, through boto3: keys, sizes, bytes (md5) and Content-Type
"$SYS_PY" - "$T/s5" "$S3_PORT" "$LIB_DIR" <<'PY' && s5store=ok || s5store=$(head -c 600 "$T/s5/store.err")
import hashlib, sys
t, port = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
import s3tool
c = s3tool.client(port)
want, bad = {}, []
for l in open(t + '/expect.store'):
    tb, k, size, ctype = l.rstrip('\n').split('\t')
    want[(tb, k)] = (int(size), ctype)
got = set()
for tb in ('s5-assets', 's5-images', 's5-videos'):
    for o in s3tool.all_objects(c, tb, ''):
        got.add((tb, o['Key']))
if got != set(want):
    bad.append('missing %s extra %s' % (sorted(set(want) - got)[:3], sorted(got - set(want))[:3]))
for tb, k in sorted(got & set(want)):
    r = c.get_object(Bucket=tb, Key=k)
    size, ctype = want[(tb, k)]
    if len(r['Body'].read()) != size or r['ContentType'] != ctype:
        bad.append('%s/%s: %d bytes %s, want %d %s' % (tb, k, r['ContentLength'], r['ContentType'], size, ctype))
open(t + '/store.err', 'w').write('\n'.join(bad[:8]))
sys.exit(1 if bad else 0)
PY
# byte for byte: the source's bytes are regenerated from nothing here, so
# compare each object's md5 with the source's through the independent client
sbsum=$( { sb manifest asset-images | sed 's/^/s5-assets\t/'; sb manifest images | sed 's/^/s5-images\t/'; sb manifest videos | sed 's/^/s5-videos\t/'; } | cut -f1-4 | sort)
s3sum=$( { s3 manifest s5-assets "" | sed 's/^/s5-assets\t/'; s3 manifest s5-images "" | sed 's/^/s5-images\t/'; s3 manifest s5-videos "" | sed 's/^/s5-videos\t/'; } | sort)
[ $killed -eq 1 ] && [ "${d1:-0}" -lt "$N5" ] && [ $rc -eq 0 ] && [ "$s5store" = ok ] && [ "$sbsum" = "$s3sum" ] &&
	pass "s5: killed (-9) after ${d1} of $N5 objects, the re-run puts every object in its S3 bucket under its key, byte for byte, with its Supabase Content-Type (exit 0)" ||
	fail "s5 copy" "killed=$killed d1=$d1 rc=$rc store: $s5store; $(diff <(echo "$sbsum") <(echo "$s3sum") | head -3) $(tail -3 "$T/s5.run2")"
s5rows >"$T/s5.after"
NCH=$(diff "$T/s5.before" "$T/s5/expect.rows" | grep -c '^>')
NALONE=$(grep -cF "	$(cat "$T/s5/old")" "$T/s5/expect.rows")
diff -q "$T/s5.after" "$T/s5/expect.rows" >/dev/null &&
	pass "s5: the four URL columns ($S5DB): $NCH rows point at S3, the $NALONE naming no stored object and the other URLs untouched" ||
	fail "s5 rows" "$(diff "$T/s5/expect.rows" "$T/s5.after" | head -4)"
grep -qx "s5: $N5 objects copied, $N5 verified, $NCH rows rewritten, $NALONE rows left alone (not a verified object)" "$T/s5.run2" &&
	"$SYS_PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; sys.exit(0 if t["succeeded"]==int(sys.argv[2]) and t["failed"]==0 else 1)' "$S5W/report.json" "$N5" &&
	pass "s5: the summary and report.json count $N5 objects, $NCH rows rewritten, $NALONE left alone" ||
	fail "s5 report" "$(tail -2 "$T/s5.run2"); $(head -c 300 "$S5W/report.json")"
dups=$(awk '$1=="PUT" && $3 ~ /^2/ && $2 ~ /^\/s5-(assets|images|videos)\/./ {print $2}' "$S3_REQLOG" | sort | uniq -d | wc -l)
tmps=$(grep -c '^PUT /s5-.*mctlcp' "$S3_REQLOG")
mark=$(req_mark)
sh "$EX/s5-supabase-to-s3.sh" >"$T/s5.run3" 2>&1
rc=$?
s5rows >"$T/s5.after3"
[ "$dups" -eq 0 ] && [ "$tmps" -eq 0 ] && [ $rc -eq 0 ] &&
	[ "$(req_since "$mark" '^PUT /s5-')" -eq 0 ] && diff -q "$T/s5.after3" "$T/s5/expect.rows" >/dev/null &&
	grep -qx "s5: $N5 objects copied, $N5 verified, $NCH rows rewritten, $NALONE rows left alone (not a verified object)" "$T/s5.run3" &&
	pass "s5: no object uploaded twice, no temporary stored; a third run uploads and rewrites nothing" ||
	fail "s5 re-runs" "dups=$dups tmps=$tmps rc=$rc $(tail -2 "$T/s5.run3")"
sh "$EX/s5-supabase-to-s3.sh" rollback >"$T/s5.rb" 2>&1
rc=$?
s5rows >"$T/s5.rbrows"
left=$(for b in s5-assets s5-images s5-videos; do s3 keys "$b"; done | grep -vc '/$')
[ $rc -eq 0 ] && [ "$left" -eq 0 ] && [ -s "$T/s5.before" ] && diff -q "$T/s5.before" "$T/s5.rbrows" >/dev/null &&
	pass "s5: rollback restores every column value ($S5DB) as it was and deletes every object it uploaded (exit 0)" ||
	fail "s5 rollback" "rc=$rc, $left objects left; $(diff "$T/s5.before" "$T/s5.rbrows" | head -3) $(tail -2 "$T/s5.rb")"
echo "  (s5: $SECONDS s)"
