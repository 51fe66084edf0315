#!/bin/bash
# examples/s3-tigris-to-imagekit.sh with PostgreSQL (DATABASE_URL=postgres://,
# venues.venue_images jsonb, a throwaway cluster): a --limit batch, the
# whole country, its rollback; after each, ImageKit's files (paths, bytes)
# and every array are checked against the generator, and the rollback
# restores every array byte for byte (psql's text of each jsonb) and
# deletes every file. test_examples_s3.sh runs the SQLite path (a kill, a
# second country).
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"
. "$LIB_DIR/pg.sh"

EX=$(cd "$TESTS_DIR/../examples" && pwd)
# fresh data each run (a new seed, printed; EXAMPLES_SEED=N replays it)
SEED=${EXAMPLES_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "  (data from seed $SEED; EXAMPLES_SEED=$SEED replays it)"
fail() { echo "FAIL: $1 (seed $SEED): $2"; }
PATH="$(cd "$(dirname "$MEDIAFS")" && pwd):$PATH"
export PATH
pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
ik_start "$T/ik" || { pg_stop; fail "pg fake ImageKit" "did not start"; exit 1; }
S3W=$T/pg3/work
mkdir -p "$S3W"
trap 'mountpoint -q "$S3W/mnt" && fusermount3 -u -z "$S3W/mnt"; [ -n "${LPID:-}" ] && kill $LPID 2>/dev/null; ik_stop; pg_stop' EXIT
NV3=4
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NV3=3
"$SYS_PY" - "$T/pg3" "$SEED" "$NV3" <<'PY' || { fail "pg data" "the generator failed"; exit 1; }
import json, os, random, sys
t, seed, nv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed * 104729 + 3)
cdn = 'https://cdn%d.example.net/' % rnd.randrange(10**4)
names = rnd.sample(['United Kingdom', "Cote d'Ivoire", 'Poland', 'France', 'Germany'], 3)
if "Cote d'Ivoire" not in names:
    names[1] = "Cote d'Ivoire"
q = lambda s: "'" + s.replace("'", "''") + "'"
sql = ['CREATE TABLE countries(id integer PRIMARY KEY, name text);',
       'CREATE TABLE cities(id integer PRIMARY KEY, country_id integer REFERENCES countries);',
       'CREATE TABLE venues(id integer PRIMARY KEY, slug text, city_id integer REFERENCES cities, venue_images jsonb);']
for i, n in enumerate(names):
    sql.append('INSERT INTO countries VALUES (%d, %s);' % (i + 1, q(n)))
    sql.append('INSERT INTO cities VALUES (%d, %d);' % (10 * (i + 1), i + 1))
os.makedirs(t + '/bucket/uploads', exist_ok=True)
heads = {'jpg': b'\xff\xd8\xff\xe0', 'png': b'\x89PNG\r\n\x1a\n', 'webp': b'RIFF\x10\x00\x00\x00WEBPVP8 '}
exp = []
for v in range(1, 3 * nv + 1):
    country = names[0] if v <= nv * 2 else names[1 + v % 2]
    city = 10 * (names.index(country) + 1)
    slug = 'venue-%s-%d' % (''.join(rnd.choice('abcdefghij') for _ in range(5)), v)
    imgs = []
    for k in range(rnd.randint(1, 3)):
        ext = rnd.choice(list(heads))
        name = 'venue_%d_%d_%d.%s' % (v, rnd.randrange(10**6), k, ext)
        open('%s/bucket/uploads/%s' % (t, name), 'wb').write(heads[ext] + rnd.randbytes(rnd.randrange(200, 6000)))
        imgs.append({'url': cdn + 'uploads/' + name, 'upload_status': 'external', 'width': rnd.choice([640, 800, 1024]),
                     'height': 600, 'source': 'trivia_advisor_migration', 'migrated_at': '2024-0%d-1%dT10:00:00Z' % (rnd.randint(1, 9), k)})
        exp.append('%s\t%d\t%s\t%s' % (country, v, slug, name))
    if rnd.random() < 0.25:	# an image the bucket no longer has
        imgs.append({'url': cdn + 'uploads/gone_%d.jpg' % v, 'upload_status': 'external'})
    if rnd.random() < 0.2:	# already elsewhere
        imgs.append({'url': 'https://ik.imagekit.io/old/%d.jpg' % v, 'upload_status': 'completed'})
    sql.append('INSERT INTO venues VALUES (%d, %s, %d, %s);' % (v, q(slug), city, q(json.dumps(imgs, separators=(',', ':')))))
open(t + '/app.sql', 'w').write('\n'.join(sql) + '\n')
open(t + '/expect', 'w').write('\n'.join(exp) + '\n')
open(t + '/cdn', 'w').write(cdn)
open(t + '/countries', 'w').write('\n'.join(names) + '\n')
PY
psql_ -f "$T/pg3/app.sql" >/dev/null || { fail "pg data" "cannot load the database"; exit 1; }
s3 mkbucket pgvenues >/dev/null && s3 putdir pgvenues "$T/pg3/bucket" >/dev/null ||
	{ fail "pg data" "cannot fill the bucket"; exit 1; }
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT S3_REGION=us-east-1 S3_BUCKET=pgvenues \
	S3_KEY_ID=test:tester S3_SECRET=testing S3_PUBLIC_URL=$(cat "$T/pg3/cdn") \
	IK_PRIVATE_KEY=$IK_KEY IK_URL_ENDPOINT=$IK_ENDPOINT IK_API_URL=http://127.0.0.1:$IK_PORT \
	IK_UPLOAD_URL=http://127.0.0.1:$IK_PORT DATABASE_URL=$PG_URL S3_WORK=$S3W
C1=$(sed -n 1p "$T/pg3/countries") C2=$(sed -n 2p "$T/pg3/countries")
venues() { psql_ -F $'\t' -c "SELECT v.id, k.name, v.venue_images::text FROM venues v JOIN cities c ON c.id = v.city_id JOIN countries k ON k.id = c.country_id ORDER BY v.id"; }
venues >"$T/pg3.before"
s3check() {
	ik manifest /venues >"$T/pg3.ikman" 2>/dev/null; ik ids /venues >"$T/pg3.ikids" 2>/dev/null
	venues >"$T/pg3.now"
	"$SYS_PY" "$LIB_DIR/check-s3-venues.py" "$T/pg3" "$T/pg3.before" "$T/pg3.now" "$T/pg3.ikman" "$T/pg3.ikids" "$1" "$2" 2>&1 || echo "the check itself failed"
}
run() {	# run OUT ARGS...: the example script, its exit code in $rc
	local out=$1
	shift
	sh "$EX/s3-tigris-to-imagekit.sh" "$@" >"$out" 2>&1
	rc=$?
}
run "$T/pg3.run0" "$C1" --limit 2
out=$(s3check "$C1" 2)
[ $rc -eq 0 ] && [ -z "$out" ] &&
	pass "pg: '$C1' --limit 2: the images of its first 2 venues on ImageKit, their jsonb elements rewritten, nothing else touched" ||
	fail "pg --limit" "rc=$rc $out $(tail -3 "$T/pg3.run0")"
# kill_run OUT COND ARGS...: the script (ARGS) killed with kill -9 once
# COND holds (kill_when, tests/lib/common.sh). Each COND below holds while
# the script is blocked (a FIFO, a lock): the kill lands there on any machine.
kill_run() {
	local o=$1 c=$2
	shift 2
	kill_when "$o" "$c" "$EX/s3-tigris-to-imagekit.sh" "$@"
}
L1=s3-$(printf '%s' "$C1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-')
J3=$S3W/journal.db
# the whole country, killed (-9) during its plan: the plan's skip file is
# a FIFO nobody reads, so mediactl plan blocks opening it, its plan file
# (the --limit batch's) just emptied; the kill lands there
venues >"$T/pg3.mid"
rm -f "$S3W/$L1.plan.skipped"
mkfifo "$S3W/$L1.plan.skipped"
kill_run "$T/pg3.k1" '[ ! -s "$S3W/$L1.plan" ]' "$C1"
rm -f "$S3W/$L1.plan.skipped"
k1=$killed
# run again, killed (-9) during the rewrite: the test holds an EXCLUSIVE
# lock on venues (reads go on, writes wait), so `rewrite map` waits on it
# once it has recorded its rewrite in the journal; the kill lands there
mkfifo "$T/pg3.lock"
psql_ <"$T/pg3.lock" >/dev/null 2>&1 &
LPID=$!
exec 7>"$T/pg3.lock"
printf 'BEGIN;\nLOCK TABLE venues IN EXCLUSIVE MODE;\n' >&7
for i in $(seq 1 600); do
	[ "$(psql_ -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'venues' AND l.mode = 'ExclusiveLock' AND l.granted")" = 1 ] && break
	sleep 0.1
done
kill_run "$T/pg3.k2" '[ "$(sqlite3 "$J3" "SELECT count(*) FROM rewrites WHERE tbl='"'venues'"' AND state='"'planned'"'" 2>/dev/null)" -ge 1 ]' "$C1"
k2=$killed
printf 'ROLLBACK;\n' >&7
exec 7>&-
wait "$LPID"
rm -f "$T/pg3.lock"
N1=$(grep -c "^$C1	" "$T/pg3/expect")
NV1=$(grep "^$C1	" "$T/pg3/expect" | cut -f2 | sort -u | wc -l)
d2=$(sqlite3 "$J3" "SELECT count(*) FROM copies WHERE state='done' AND label='$L1'")
venues >"$T/pg3.k2now"
[ $k1 -eq 1 ] && [ $k2 -eq 1 ] && [ "$d2" -eq "$N1" ] && cmp -s "$T/pg3.mid" "$T/pg3.k2now" &&
	pass "pg: '$C1' killed (-9) during its plan, then again during its rewrite (recorded, waiting on the table's lock) after its copy of $d2 images; nothing rewritten beyond the --limit batch" ||
	fail "pg kills" "plan kill=$k1 rewrite kill=$k2 copied=$d2 of $N1 $(diff "$T/pg3.mid" "$T/pg3.k2now" | head -3) $(tail -3 "$T/pg3.k1") $(tail -3 "$T/pg3.k2")"
run "$T/pg3.run1" "$C1"
out=$(s3check "$C1" 0)
[ $rc -eq 0 ] && [ -z "$out" ] &&
	grep -qx "s3: $C1: $N1 images on ImageKit, $NV1 venues rewritten, [0-9]* missing from the bucket" "$T/pg3.run1" &&
	pass "pg: '$C1' run again: $N1 images of $NV1 venues on ImageKit byte for byte, url/upload_status/imagekit_file_id/original_tigris_url/imagekit_uploaded_at set in the jsonb arrays, $NV1 venues rewritten (none twice)" ||
	fail "pg country" "rc=$rc $out $(tail -3 "$T/pg3.run1")"
ups=$(awk '$1=="POST" && $3 ~ /^2/ && $2 ~ /^\/api\/v1\/files\/upload/' "$IK_REQLOG" | wc -l)
[ "$ups" -eq "$N1" ] &&
	pass "pg: $ups uploads for $N1 images across the --limit batch and the two kills (none twice)" ||
	fail "pg uploads" "$ups uploads for $N1 images"
run "$T/pg3.rb1" rollback "$C1"
venues >"$T/pg3.after"
ik manifest /venues >"$T/pg3.ikman" 2>/dev/null
[ $rc -eq 0 ] && cmp -s "$T/pg3.before" "$T/pg3.after" && [ ! -s "$T/pg3.ikman" ] &&
	pass "pg: rollback '$C1': every venue_images array byte for byte as before ($(wc -l <"$T/pg3.before") venues), no file left on ImageKit" ||
	fail "pg rollback" "rc=$rc $(diff "$T/pg3.before" "$T/pg3.after" | head -4) $(head -3 "$T/pg3.ikman") $(tail -3 "$T/pg3.rb1")"
echo "  (pg: $SECONDS s)"
