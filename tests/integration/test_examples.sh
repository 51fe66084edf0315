#!/bin/bash
# The example scripts (examples/) end to end, on data generated from a seed
# (a fresh seed each run, printed; EXAMPLES_SEED=N replays one;
# tests/lib/gen-s1.py): S1 killed with kill -9
# mid-copy and run again (no duplicate upload, no duplicate row), the store
# checked through its own API (keys, types, bytes), the rows against the
# maps (owners, services, one preview per service, foreign keys), the skip
# file and the report against what the generator says, a third run that
# changes nothing, and the rollback.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

EX=$(cd "$TESTS_DIR/../examples" && pwd)
# fresh data each run (a new seed, printed; EXAMPLES_SEED=N replays it)
SEED=${EXAMPLES_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "  (data from seed $SEED; EXAMPLES_SEED=$SEED replays it)"
fail() { echo "FAIL: $1 (seed $SEED): $2"; }
PATH="$(cd "$(dirname "$MEDIAFS")" && pwd):$PATH"
export PATH

# ---- the four scripts: no Python and no jq outside comments; each takes
# its inputs only from the environment (none set: exit 2, the first one
# named) and a rollback argument
bad=
for s in s1-backup-to-supabase s3-tigris-to-imagekit s4-urls-to-s3 s5-supabase-to-s3; do
	f=$EX/$s.sh
	grep -v '^[[:space:]]*#' "$f" | grep -Eiwq 'python[0-9.]*|jq' && bad="$bad $s: python/jq;"
	grep -q '"${1:-}" = rollback' "$f" || bad="$bad $s: no rollback argument;"
	grep -q "(examples/$s.sh)" "$TESTS_DIR/../README.md" || bad="$bad $s: not in the README;"
	env -i PATH="$PATH" sh "$f" Poland >"$T/$s.noenv" 2>&1
	rc=$?
	[ $rc -eq 2 ] && grep -q "set [A-Z0-9_]* (see the head of" "$T/$s.noenv" ||
		bad="$bad $s: no inputs gave exit $rc: $(head -1 "$T/$s.noenv");"
done
# the README's S1 map has the file's real fields (gap 11)
grep -q 'key=old_id' "$TESTS_DIR/../README.md" && bad="$bad README: key=old_id;"
grep -q -- '--map svc=services-created.json,key=oldId,value=newId' "$TESTS_DIR/../README.md" ||
	bad="$bad README: no key=oldId,value=newId map;"
[ -z "$bad" ] &&
	pass "the four scripts: no Python or jq; with no input variable set each exits 2 naming the first; each has a rollback argument and is linked from the README, whose S1 map names the real fields (oldId/newId)" ||
	fail "scripts" "$bad"

supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
S1W=$T/s1/work
trap 'mountpoint -q "$S1W/mnt" && fusermount3 -u -z "$S1W/mnt"; supa_stop' EXIT

# smaller data in run-all's sanitizer pass (it looks for memory errors)
SIZE="--users 18 --services 5" NJSON=3
[ "${MFS_TEST_PASS:-}" = mount-asan ] && SIZE="--users 8 --services 3" NJSON=2

# ---- S1: the backup in the S3 server, the maps and app.db on disk
"$SYS_PY" "$LIB_DIR/gen-s1.py" "$T/s1" --seed "$SEED" $SIZE ||
	{ fail "s1 data" "the generator failed"; exit 1; }
s3 mkbucket s1backup >/dev/null && s3 putdir s1backup "$T/s1/backup" >/dev/null ||
	{ fail "s1 data" "cannot fill the bucket"; exit 1; }
export S1_DATA=$T/s1/data S1_S3_ENDPOINT=http://127.0.0.1:$S3_PORT \
	S1_S3_REGION=us-east-1 S1_S3_BUCKET=s1backup S1_S3_KEY_ID=test:tester \
	S1_S3_SECRET=testing S1_SUPABASE_URL=http://127.0.0.1:$SB_PORT \
	S1_SUPABASE_KEY=$SB_KEY S1_WORK=$S1W
mkdir -p "$S1W"
J=$S1W/journal.db
APPDB=$S1_DATA/app.db
NPLAN=$(grep -cv $'\tskip:' "$T/s1/expect.tsv")

# kill_run OUT COND: the S1 script killed with kill -9 once COND holds
# (kill_when, tests/lib/common.sh). Every COND below holds at a point where
# the script is blocked (a FIFO, a lock), so the kill lands there on any
# machine, however slow.
kill_run() { kill_when "$1" "$2" "$EX/s1-backup-to-supabase.sh"; }
rows_n() { sqlite3 "$APPDB" "SELECT count(*) FROM media"; }

# run 1, killed (-9) during the plan: the plan's skip file is a FIFO
# nobody reads, so mediactl plan blocks opening it, its plan file just
# created (empty); the kill lands there
mkfifo "$S1W/s1.plan.skipped"
kill_run "$T/s1.run0" '[ -e "$S1W/s1.plan" ]'
rm -f "$S1W/s1.plan.skipped"
c0=$(sqlite3 "$J" "SELECT count(*) FROM copies WHERE state<>'skipped'" 2>/dev/null)
[ $killed -eq 1 ] && [ ! -e "$S1W/plan.done" ] && [ "${c0:-0}" -eq 0 ] &&
	pass "s1: the script killed (-9) during its plan (plan file created, skip file not yet open)" ||
	fail "s1 plan kill" "killed=$killed plan.done=$([ -e "$S1W/plan.done" ] && echo yes) copies=$c0; $(tail -3 "$T/s1.run0")"

# run 2, killed (-9) mid-copy: the server holds the upload of one planned
# file (the last in the generator's list), so the copy cannot finish; the
# kill lands once that upload is held and another file is done. The held
# request is then answered 500 (it stores nothing, as if the kill had cut
# it), so no upload is counted twice below
hk=$(awk -F'\t' '$2 !~ /^skip:/ {k = $2} END {print k}' "$T/s1/expect.tsv")
hk=${hk##*/} hk=${hk%%.*}
rm -f "$SB_CONTROL.held"
echo "hold_key=$hk" >"$SB_CONTROL"
kill_run "$T/s1.run1" '[ -s "$SB_CONTROL.held" ] && [ "$(sqlite3 "$J" "SELECT count(*) FROM copies WHERE state='"'done'"'" 2>/dev/null)" -ge 1 ]'
echo "fail500=$hk" >"$SB_CONTROL"
poll 30 grep -q "$hk.* 500\$" "$SB_REQLOG" ||
	fail "s1 kill" "the held upload of $hk was not answered"
: >"$SB_CONTROL"
d1=$(sqlite3 "$J" "SELECT count(*) FROM copies WHERE state='done'" 2>/dev/null)
[ $killed -eq 1 ] && [ "${d1:-0}" -lt "$NPLAN" ] &&
	pass "s1: the script killed (-9) mid-copy after ${d1} of $NPLAN files (seed $SEED)" ||
	fail "s1 kill" "killed=$killed, $d1 of $NPLAN copied; $(tail -3 "$T/s1.run1")"

# run 3, killed (-9) during the rows: the test holds app.db's write lock,
# so the first `rewrite insert`, its rewrite recorded in the journal,
# waits on it (BEGIN IMMEDIATE, up to its busy timeout of 10 s); the kill
# lands there
mkfifo "$T/s1.lock"
sqlite3 "$APPDB" <"$T/s1.lock" >/dev/null 2>&1 &
LPID=$!
exec 7>"$T/s1.lock"
echo 'BEGIN IMMEDIATE;' >&7
for i in $(seq 1 600); do
	sqlite3 "$APPDB" 'BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1 || break
	sleep 0.1
done
kill_run "$T/s1.run2" '[ "$(sqlite3 "$J" "SELECT count(*) FROM rewrites WHERE tbl='"'media'"'" 2>/dev/null)" -ge 1 ]'
exec 7>&-
wait "$LPID"
rm -f "$T/s1.lock"
r2=$(sqlite3 "$J" "SELECT count(*) FROM rewrites WHERE tbl='media' AND state='planned'")
[ $killed -eq 1 ] && [ "$r2" -eq 1 ] && [ "$(rows_n)" -eq 0 ] &&
	pass "s1: the script killed (-9) during its rows (rewrite insert recorded, waiting on app.db), the copy finished before it" ||
	fail "s1 rows kill" "killed=$killed planned=$r2 rows=$(rows_n); $(tail -3 "$T/s1.run2")"

# run 4: finishes the job
sh "$EX/s1-backup-to-supabase.sh" >"$T/s1.run3" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^s1: done: $NPLAN files on Supabase, $NPLAN media rows" "$T/s1.run3" &&
	pass "s1: the re-run finishes: exit 0, $NPLAN files, $NPLAN rows" ||
	fail "s1 re-run" "rc=$rc $(tail -5 "$T/s1.run3")"

# the store, through its own API
cat >"$T/s1store.py" <<'PY'
import hashlib, os, sys
d, store = sys.argv[1], sys.argv[2]
err = open(os.path.join(d, 'store.err'), 'w')
want = {}
for l in open(os.path.join(d, 'expect.tsv')):
    rel, out, owner, svc, ctype = l.rstrip('\n').split('\t')
    if not out.startswith('skip:'):
        want[out] = (rel, ctype)
got = {}
for l in open(store):
    k, size, md5, ctype = l.rstrip('\n').split('\t')[:4]
    got[k] = (int(size), md5, ctype)
bad = []
if set(got) != set(want):
    bad.append('missing %s extra %s' % (sorted(set(want) - set(got))[:3],
                                        sorted(set(got) - set(want))[:3]))
for k in set(got) & set(want):
    rel, ctype = want[k]
    src = open(os.path.join(d, 'backup', rel), 'rb').read()
    size, md5, gtype = got[k]
    if gtype != ctype:
        bad.append('%s: type %s, want %s' % (k, gtype, ctype))
    if size > len(src):
        bad.append('%s: %d bytes, larger than its source (%d)' % (k, size, len(src)))
    if (ctype in ('image/gif', 'image/tiff', 'application/octet-stream')
            and md5 != hashlib.md5(src).hexdigest()):
        bad.append('%s: bytes differ from the source' % k)
# compression ran: JPEG quality 85 from the backup's quality-95 JPEGs
jpg = [k for k in set(got) & set(want) if want[k][1] == 'image/jpeg']
small = [k for k in jpg if got[k][0] < len(open(os.path.join(d, 'backup', want[k][0]), 'rb').read())]
if not small:
    bad.append('no JPEG of %d stored smaller than its source' % len(jpg))
open(os.path.join(d, 'store.jpg'), 'w').write('%d of %d JPEGs stored smaller (compressed)' % (len(small), len(jpg)))
err.write('\n'.join(bad))
sys.exit(1 if bad else 0)
PY
s1_store() {	# s1_store FILE [DIR]: both buckets listed through Supabase's
	# API, checked against the generator's DIR (default $T/s1)
	{ sb manifest avatars; sb manifest service-media | sed 's/^/service-media\//'; } |
		grep -v 'emptyFolderPlaceholder' >"$1"
	sed -i '/^service-media\//!s/^/avatars\//' "$1"
	"$SYS_PY" "$T/s1store.py" "${2:-$T/s1}" "$1"
}
s1_store "$T/s1.store" && pass "s1: the store holds exactly the planned objects, each with the type its name says; GIFs, TIFFs and .bin byte for byte; nothing larger than its source; $(cat "$T/s1/store.jpg")" || fail "s1 store" "$(head -c 600 "$T/s1/store.err")"
n=$(grep -c 'mctlcp' "$SB_REQLOG")
dups=$(awk '($1=="POST"||$1=="PUT") && $3 ~ /^2/ && $2 ~ /^\/storage\/v1\/object\/(avatars|service-media)\// {print $2}' "$SB_REQLOG" | sort | uniq -d | wc -l)
ups=$(awk '($1=="POST"||$1=="PUT") && $3 ~ /^2/ && $2 ~ /^\/storage\/v1\/object\/(avatars|service-media)\// {print $2}' "$SB_REQLOG" | wc -l)
[ "$n" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$ups" -eq "$NPLAN" ] &&
	pass "s1: no temporary reached the server; $ups uploads for $NPLAN objects, none twice across the three kills" ||
	fail "s1 uploads" "$n requests name a temporary, $dups keys uploaded twice, $ups uploads for $NPLAN objects"

# the rows
cat >"$T/s1rows.py" <<'PY'
import os, sys
d = sys.argv[1]
err = open(os.path.join(d, 'rows.err'), 'w')
want, first = {}, {}
for l in open(os.path.join(d, 'expect.tsv')):
    rel, out, owner, svc, ctype = l.rstrip('\n').split('\t')
    if out.startswith('skip:'):
        continue
    bucket, path = out.split('/', 1)
    want[path] = (owner, svc, 'avatar' if bucket == 'avatars' else 'service_image')
    if svc:
        img = path.split('/')[1]
        first[svc] = min(first.get(svc, img), img)
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[2])]
bad = []
if len(rows) != len(want):
    bad.append('%d rows for %d objects' % (len(rows), len(want)))
seen = set()
for path, owner, svc, mt, prev, created in rows:
    if path in seen:
        bad.append('two rows for ' + path)
    seen.add(path)
    if path not in want:
        bad.append('a row for no object: ' + path)
        continue
    if (owner, svc, mt) != want[path]:
        bad.append('%s: %s, want %s' % (path, (owner, svc, mt), want[path]))
    is_first = bool(svc) and path.split('/')[1] == first[svc]
    if str(prev) != ('1' if is_first else '0'):
        bad.append('%s: is_preview_image %s' % (path, prev))
    if not created.startswith('20'):
        bad.append('%s: created_at %r' % (path, created))
err.write('\n'.join(bad[:10]))
sys.exit(1 if bad else 0)
PY
s1_rows() {	# s1_rows FILE [DIR]: the media rows of DIR/data/app.db,
	# checked against the generator's DIR (default $T/s1)
	sqlite3 -separator $'\t' "${2:-$T/s1}/data/app.db" "SELECT file_path, owner_id, coalesce(service_id,''), media_type, is_preview_image, created_at FROM media" >"$1"
	"$SYS_PY" "$T/s1rows.py" "${2:-$T/s1}" "$1"
}
s1_rows "$T/s1.rows" && pass "s1: one media row per object: file_path, owner (the new user, the service's stylistId), service, type, one preview per service (its smallest imageId)" || fail "s1 rows" "$(head -c 600 "$T/s1/rows.err")"
fk=$(sqlite3 "$APPDB" "PRAGMA foreign_keys=ON; PRAGMA foreign_key_check;")
[ -z "$fk" ] && pass "s1: the rows satisfy PRAGMA foreign_key_check" || fail "s1 foreign keys" "$(echo "$fk" | head -3)"

# the skip file and the report
"$SYS_PY" - "$T/s1" "$S1W/skipped.jsonl" "$S1W/report.json" "$NPLAN" <<'PY' && pass "s1: skipped.jsonl names each skipped source with the team's reason (chat, salon over unmapped_user, unmapped_user, unmigrated_service); report.json counts them, every upload, original and compressed bytes per category" || fail "s1 skips/report" "$(head -c 600 "$T/s1/skip.err")"
import collections, json, os, sys
d = sys.argv[1]
err = open(os.path.join(d, 'skip.err'), 'w')
want = {}
for l in open(os.path.join(d, 'expect.tsv')):
    rel, out = l.split('\t')[:2]
    if out.startswith('skip:'):
        want[rel] = out[5:]
got = {}
for l in open(sys.argv[2]):
    o = json.loads(l)
    got[o['src']] = o['reason']
bad = []
if got != want:
    bad.append('skips differ: %s' % sorted(set(got.items()) ^ set(want.items()))[:4])
r = json.load(open(sys.argv[3]))
if r['skipped']['by_reason'] != dict(collections.Counter(want.values())):
    bad.append('report by_reason %s' % r['skipped']['by_reason'])
t = r['totals']
if t['succeeded'] != int(sys.argv[4]) or t['failed'] != 0:
    bad.append('report totals %s' % t)
if t['uploaded_bytes'] >= t['original_bytes']:
    bad.append('compression saved nothing: %s' % t)
# original vs compressed bytes per category (SCENARIOS S1)
per = collections.Counter()
for l in open(os.path.join(d, 'expect.tsv')):
    out = l.split('\t')[1]
    if not out.startswith('skip:'):
        per['supa/' + out.split('/')[0]] += 1
cats = {c['category']: c for c in r['categories']}
for c, n in per.items():
    if c not in cats or cats[c]['succeeded'] != n or cats[c]['uploaded_bytes'] > cats[c]['original_bytes']:
        bad.append('report category %s: %s, want %d succeeded' % (c, cats.get(c), n))
err.write('\n'.join(bad))
sys.exit(1 if bad else 0)
PY

# one run more: nothing left to do, nothing done twice
mark=$(sb_mark)
sh "$EX/s1-backup-to-supabase.sh" >"$T/s1.run4" 2>&1
rc=$?
ups=$(sb_since "$mark" '^(POST|PUT) /storage/v1/object/(avatars|service-media)/')
[ $rc -eq 0 ] && [ "$ups" -eq 0 ] && [ "$(sqlite3 "$APPDB" "SELECT count(*) FROM media")" -eq "$NPLAN" ] &&
	pass "s1: a run after the job is done uploads nothing and inserts nothing (exit 0)" ||
	fail "s1 third run" "rc=$rc, $ups uploads, $(sqlite3 "$APPDB" "SELECT count(*) FROM media") rows; $(tail -3 "$T/s1.run4")"

# rollback, while another process keeps the journal from readers for 3 s
# (a read of the rewrites at such a moment, the mount busy with the
# journal, saw "database is locked", came back empty, and the rollback
# left every row in place with exit 0; cc70, at load). An exclusive lock
# in exclusive locking mode holds off readers of a WAL database too.
"$SYS_PY" -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("COMMIT")
open(sys.argv[2], "w").close()
time.sleep(3)
c.close()' "$J" "$T/locked" &
locker=$!
poll 30 test -e "$T/locked" || fail "s1 rollback" "the journal could not be locked"
sh "$EX/s1-backup-to-supabase.sh" rollback >"$T/s1.rb" 2>&1
rc=$?
wait $locker
left=$({ sb keys avatars; sb keys service-media; } | grep -vc 'emptyFolderPlaceholder')
rows=$(sqlite3 "$APPDB" "SELECT count(*) FROM media")
[ $rc -eq 0 ] && [ "$left" -eq 0 ] && [ "$rows" -eq 0 ] &&
	pass "s1: rollback deletes every object and row it made (exit 0)" ||
	fail "s1 rollback" "rc=$rc, $left objects, $rows rows left; $(tail -3 "$T/s1.rb")"

# a new run in the same work directory after the rollback does it all
# again: the rollback's deletions are not taken for copies (the mount's
# cache, kept across remounts, still listed the deleted objects, and the
# files stored as they were, .bin .tiff .gif, matched by size and mtime:
# they were recorded done with no upload); each planned object is
# uploaded once more and proven by the store, every row inserted again
mark=$(sb_mark)
sh "$EX/s1-backup-to-supabase.sh" >"$T/s1.again" 2>&1
rc=$?
ups=$(sb_since "$mark" '^(POST|PUT) /storage/v1/object/(avatars|service-media)/.* 2[0-9][0-9]$')
[ $rc -eq 0 ] && [ "$ups" -eq "$NPLAN" ] && s1_store "$T/s1.store2" && s1_rows "$T/s1.rows2" &&
	pass "s1: run again after its rollback: $ups uploads, every planned object on the store again (types, bytes), $NPLAN rows (exit 0)" ||
	fail "s1 after rollback" "rc=$rc, $ups uploads for $NPLAN objects; $(head -c 300 "$T/s1/store.err") $(head -c 300 "$T/s1/rows.err") $(tail -3 "$T/s1.again")"
sh "$EX/s1-backup-to-supabase.sh" rollback >"$T/s1.rb2" 2>&1
rc=$?
left=$({ sb keys avatars; sb keys service-media; } | grep -vc 'emptyFolderPlaceholder')
[ $rc -eq 0 ] && [ "$left" -eq 0 ] && [ "$(rows_n)" -eq 0 ] &&
	pass "s1: rolled back again: no object, no row (exit 0)" ||
	fail "s1 second rollback" "rc=$rc, $left objects, $(rows_n) rows left; $(tail -3 "$T/s1.rb2")"

# a small second backup (its own seed, bucket, work directory and
# journal) migrated while the server refuses every upload larger than 1
# byte (Supabase's UPLOAD_FILE_SIZE_LIMIT: 413 EntityTooLarge): every
# planned file fails for real; the script must exit non-zero, insert no
# row, and its report.json count the failed files as the journal has them
"$SYS_PY" "$LIB_DIR/gen-s1.py" "$T/s1f" --seed "$((SEED + 1))" --users 8 --services 3 &&
	s3 mkbucket s1fail >/dev/null && s3 putdir s1fail "$T/s1f/backup" >/dev/null ||
	fail "s1f data" "the generator or the bucket failed"
NF=$(grep -cv $'\tskip:' "$T/s1f/expect.tsv")
echo max_size=1 >"$SB_CONTROL"
mark=$(sb_mark)
S1_DATA=$T/s1f/data S1_S3_BUCKET=s1fail S1_WORK=$T/s1f/work \
	sh "$EX/s1-backup-to-supabase.sh" >"$T/s1.fail" 2>&1
rc=$?
: >"$SB_CONTROL"
r413=$(sb_since "$mark" '^(POST|PUT) /storage/v1/object/(avatars|service-media)/.* (400|413)$')
nf=$(sqlite3 "$T/s1f/work/journal.db" "SELECT count(*) FROM copies WHERE state='failed'")
nd=$(sqlite3 "$T/s1f/work/journal.db" "SELECT count(*) FROM copies WHERE state='done'")
rows=$(sqlite3 "$T/s1f/data/app.db" "SELECT count(*) FROM media")
left=$({ sb keys avatars; sb keys service-media; } | grep -vc 'emptyFolderPlaceholder')
rf=$("$SYS_PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["failed"], t["succeeded"])' "$T/s1f/work/report.json" 2>/dev/null)
[ $rc -ne 0 ] && [ "$nf" -eq "$NF" ] && [ "$nd" -eq 0 ] && [ "$r413" -eq "$NF" ] && [ "$rf" = "$NF 0" ] &&
	[ "$rows" -eq 0 ] && [ "$left" -eq 0 ] &&
	grep -q '^s1: copy: some files failed' "$T/s1.fail" && ! grep -q '^s1: done' "$T/s1.fail" &&
	pass "s1: the server refusing every upload (413), the run exits $rc, 'copy: some files failed', no row, no object; report.json counts $nf of $NF planned files failed" ||
	fail "s1 failed files" "rc=$rc planned=$NF refused=$r413 failed=$nf done=$nd report='$rf' rows=$rows objects=$left $(tail -3 "$T/s1.fail")"
# the cause gone (the limit lifted), the same run again sends every
# refused file anew: before, each failed at once (EIO, no request) as the
# mount kept its upload failed across remounts and mediactl copy took the
# failed file for its copy
mark=$(sb_mark)
S1_DATA=$T/s1f/data S1_S3_BUCKET=s1fail S1_WORK=$T/s1f/work \
	sh "$EX/s1-backup-to-supabase.sh" >"$T/s1.fail2" 2>&1
rc=$?
ups=$(sb_since "$mark" '^(POST|PUT) /storage/v1/object/(avatars|service-media)/.* 2[0-9][0-9]$')
[ $rc -eq 0 ] && [ "$ups" -eq "$NF" ] && grep -q "^s1: done: $NF files on Supabase, $NF media rows" "$T/s1.fail2" &&
	s1_store "$T/s1f.store" "$T/s1f" && s1_rows "$T/s1f.rows" "$T/s1f" &&
	pass "s1: run again once the server takes them: the $NF refused files uploaded ($ups uploads), each on the store (types, bytes), $NF rows (exit 0)" ||
	fail "s1 failed files again" "rc=$rc, $ups uploads for $NF files; $(head -c 300 "$T/s1f/store.err") $(head -c 300 "$T/s1f/rows.err") $(tail -3 "$T/s1.fail2")"

echo "  (s1: $SECONDS s)"

# ---- S4: a URL list (JSON files) on an HTTP origin -> an S3 bucket
OPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/s4/json" "$T/s4/state" "$T/s4/work"
"$SYS_PY" - "$T/s4" "$OPORT" "$SEED" "$NJSON" <<'PY'
import json, os, random, sys
t, port, seed, nj = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
base = f'http://127.0.0.1:{port}/auctionimages'
want, missing = [], []
for j in range(nj):
    lot, ts = rnd.randrange(1000, 9999), 1713553344 + rnd.randrange(10**6)
    items = []
    # every seed: the first page lists 3 images and 3 thumbnails, the last
    # thumbnail missing (5 images to copy, a 404 to log)
    for k in range(3 if j == 0 else rnd.randrange(1, 4)):
        rel = [f'{lot}/{ts}/i{k:04d}-{j}.jpg', f'{lot}/{ts}/thumbs/i{k:04d}-{j}.jpg']
        for r in rel:
            gone = rnd.random() < 0.12
            if j == 0:
                gone = r == rel[1] and k == 2
            if gone:
                missing.append(r)	# listed, not on the origin: 404
                continue
            p = f'{t}/origin/auctionimages/{r}'
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, 'wb').write(b'\xff\xd8\xff\xe0' + rnd.randbytes(rnd.randrange(300, 4000)))
            want.append(r)
        items.append({'image_url': f'{base}/{rel[0]}', 'thumb_url': f'{base}/{rel[1]}'})
    json.dump({'lots': items}, open(f'{t}/json/page-{j}.json', 'w'))
open(f'{t}/want', 'w').write(''.join(w + '\n' for w in sorted(want)))
open(f'{t}/missing', 'w').write(''.join(m + '\n' for m in sorted(missing)))
PY
setsid "$SYS_PY" "$TESTS_DIR/servers/http_origin.py" "$OPORT" "$T/s4/origin" "$T/s4/state" >"$T/s4/origin.out" 2>&1 &
OPID=$!
trap 'mountpoint -q "$S1W/mnt" && fusermount3 -u -z "$S1W/mnt"; mountpoint -q "$T/s4/work/mnt" && fusermount3 -u -z "$T/s4/work/mnt"; kill $OPID 2>/dev/null; supa_stop' EXIT
for i in $(seq 1 100); do grep -q ready "$T/s4/origin.out" && break; sleep 0.1; done
s3 mkbucket s4dst >/dev/null || fail "s4 bucket" "mkbucket failed"
export S4_JSON_DIR=$T/s4/json S4_STRIP_PREFIX=/auctionimages/ \
	S4_S3_ENDPOINT=http://127.0.0.1:$S3_PORT S4_S3_REGION=us-east-1 \
	S4_S3_BUCKET=s4dst S4_S3_KEY_ID=test:tester S4_S3_SECRET=testing \
	S4_WORK=$T/s4/work
NWANT=$(wc -l <"$T/s4/want") NMISS=$(wc -l <"$T/s4/missing")
J4=$T/s4/work/journal.db
echo get_delay_ms=3000 >"$T/s4/state/control"	# GETs spread over 3 s: the kill lands mid-copy
kill_when "$T/s4.run1" '[ "$(sqlite3 "$J4" "SELECT count(*) FROM copies WHERE state='"'done'"'" 2>/dev/null)" -ge 1 ] 2>/dev/null' \
	"$EX/s4-urls-to-s3.sh"
: >"$T/s4/state/control"
d1=$(sqlite3 "$J4" "SELECT count(*) FROM copies WHERE state='done'" 2>/dev/null)
sh "$EX/s4-urls-to-s3.sh" >"$T/s4.run2" 2>&1
rc=$?
s3 manifest s4dst "" >"$T/s4.store" 2>/dev/null
(cd "$T/s4/origin/auctionimages" && while read -r k; do
	printf '%s\t%s\t%s\n' "$k" "$(stat -c %s "$k")" "$(md5sum <"$k" | cut -d' ' -f1)"
done <"$T/s4/want") >"$T/s4.expect"
[ $killed -eq 1 ] && [ "${d1:-0}" -lt "$NWANT" ] && [ $rc -eq 0 ] &&
	diff -q "$T/s4.expect" "$T/s4.store" >/dev/null &&
	pass "s4: killed (-9) after ${d1} files, the re-run stores all $NWANT images under their URL paths, byte for byte (exit 0)" ||
	fail "s4 copy" "killed=$killed d1=$d1 rc=$rc $(diff "$T/s4.expect" "$T/s4.store" | head -3) $(tail -3 "$T/s4.run2")"
[ "$(sort "$T/s4/work/missing.txt")" = "$(cat "$T/s4/missing")" ] &&
	grep -qE "^s4: [0-9]+ uploaded, $NMISS missing \(404\), [0-9]+ skipped \(copied before\); 0 failed$" "$T/s4.run2" &&
	pass "s4: the $NMISS URLs that answer 404 are logged (missing.txt) and counted in the summary" ||
	fail "s4 missing" "$(tail -2 "$T/s4.run2"); $(head -3 "$T/s4/work/missing.txt")"
dups=$(awk '$1=="PUT" && $3 ~ /^2/ && $2 ~ /^\/s4dst\/./ {print $2}' "$S3_REQLOG" | sort | uniq -d | wc -l)
tmps=$(grep -c '^PUT /s4dst/.*mctlcp' "$S3_REQLOG")
mark=$(req_mark)
sh "$EX/s4-urls-to-s3.sh" >"$T/s4.run3" 2>&1
rc=$?
[ "$dups" -eq 0 ] && [ "$tmps" -eq 0 ] && [ $rc -eq 0 ] &&
	[ "$(req_since "$mark" '^PUT /s4dst/')" -eq 0 ] &&
	grep -qE "^s4: 0 uploaded, $NMISS missing \(404\), $NWANT skipped" "$T/s4.run3" &&
	pass "s4: no object uploaded twice, no temporary stored; a third run uploads nothing ($NWANT skipped)" ||
	fail "s4 re-runs" "dups=$dups tmps=$tmps rc=$rc $(tail -2 "$T/s4.run3")"
sh "$EX/s4-urls-to-s3.sh" rollback >"$T/s4.rb" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -z "$(s3 keys s4dst 2>/dev/null | grep -v '/$')" ] &&
	pass "s4: rollback deletes every object it uploaded (exit 0)" ||
	fail "s4 rollback" "rc=$rc $(s3 keys s4dst | head -3) $(tail -2 "$T/s4.rb")"
echo "  (s1 and s4: $SECONDS s)"
