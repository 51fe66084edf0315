#!/bin/bash
# examples/s3-tigris-to-imagekit.sh end to end, on data generated from a
# fresh seed each run (printed; EXAMPLES_SEED=N replays one): venues in three countries (one name with
# a quote), JSON arrays of image elements, some naming images the bucket
# lacks, some other URLs. A --limit test batch, then the country killed
# with kill -9 mid-copy (ImageKit answering 429s) and run again, a third
# run that changes nothing, a second country, and the first country's
# rollback; after each, ImageKit's files (paths, bytes) and every array are
# checked against what the generator says, and the summary and report.json
# counts against it.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

EX=$(cd "$TESTS_DIR/../examples" && pwd)
# fresh data each run (a new seed, printed; EXAMPLES_SEED=N replays it)
SEED=${EXAMPLES_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "  (data from seed $SEED; EXAMPLES_SEED=$SEED replays it)"
fail() { echo "FAIL: $1 (seed $SEED): $2"; }
PATH="$(cd "$(dirname "$MEDIAFS")" && pwd):$PATH"
export PATH
# ---- S3: venue images on a CDN bucket -> ImageKit by country, the JSON
# arrays rewritten; a --limit test batch, a run killed and resumed, a
# second country (a name with a quote), a rollback of the first
ik_start "$T/ik" || { fail "s3 fake ImageKit" "did not start"; exit 1; }
S3W=$T/s3/work
mkdir -p "$S3W"
trap 'mountpoint -q "$S3W/mnt" && fusermount3 -u -z "$S3W/mnt"; ik_stop' EXIT
NV3=9
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NV3=5
"$SYS_PY" - "$T/s3" "$SEED" "$NV3" <<'PY' || { fail "s3 data" "the generator failed"; exit 1; }
import json, os, random, sqlite3, sys
t, seed, nv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed * 104729 + 3)
cdn = 'https://cdn%d.example.net/' % rnd.randrange(10**4)
names = rnd.sample(['United Kingdom', "Cote d'Ivoire", 'Poland', 'France', 'Germany'], 3)
if "Cote d'Ivoire" not in names:
    names[1] = "Cote d'Ivoire"
db = sqlite3.connect(t + '/app.db')
db.executescript('''CREATE TABLE countries(id integer PRIMARY KEY, name text);
CREATE TABLE cities(id integer PRIMARY KEY, country_id integer);
CREATE TABLE venues(id integer PRIMARY KEY, slug text, city_id integer, venue_images text);''')
for i, n in enumerate(names):
    db.execute('INSERT INTO countries VALUES (?, ?)', (i + 1, n))
    db.execute('INSERT INTO cities VALUES (?, ?)', (10 * (i + 1), i + 1))
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
    if country == names[2] and not os.path.exists(t + '/empty'):
        # gap 6: an empty source (ImageKit refuses empty files) in the
        # first venue of the third country, the one never migrated whole
        name = 'venue_%d_empty.jpg' % v
        open('%s/bucket/uploads/%s' % (t, name), 'wb').close()
        imgs.append({'url': cdn + 'uploads/' + name, 'upload_status': 'external'})
        open(t + '/empty', 'w').write(name)
    db.execute('INSERT INTO venues VALUES (?, ?, ?, ?)', (v, slug, city, json.dumps(imgs, separators=(',', ':'))))
db.commit()
open(t + '/expect', 'w').write('\n'.join(exp) + '\n')
open(t + '/cdn', 'w').write(cdn)
open(t + '/countries', 'w').write('\n'.join(names) + '\n')
PY
s3 mkbucket s3venues >/dev/null && s3 putdir s3venues "$T/s3/bucket" >/dev/null ||
	{ fail "s3 data" "cannot fill the bucket"; exit 1; }
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT S3_REGION=us-east-1 S3_BUCKET=s3venues \
	S3_KEY_ID=test:tester S3_SECRET=testing S3_PUBLIC_URL=$(cat "$T/s3/cdn") \
	IK_PRIVATE_KEY=$IK_KEY IK_URL_ENDPOINT=$IK_ENDPOINT IK_API_URL=http://127.0.0.1:$IK_PORT \
	IK_UPLOAD_URL=http://127.0.0.1:$IK_PORT DATABASE_URL=sqlite:$T/s3/app.db S3_WORK=$S3W
C1=$(sed -n 1p "$T/s3/countries") C2=$(sed -n 2p "$T/s3/countries")
J3=$S3W/journal.db
venues() { sqlite3 -separator $'\t' "$T/s3/app.db" "SELECT v.id, k.name, v.venue_images FROM venues v JOIN cities c ON c.id = v.city_id JOIN countries k ON k.id = c.country_id ORDER BY v.id"; }
venues >"$T/s3.before"
# s3check DONE_COUNTRIES DONE_LIMIT: the store and every array against
# the generator's list: the images of the venues done are on ImageKit (in
# /venues/<slug>/ under their names, byte for byte), their elements carry
# the ImageKit URL and fileId; every other element and array is as before
s3check() {
	ik manifest /venues >"$T/s3.ikman" 2>/dev/null; ik ids /venues >"$T/s3.ikids" 2>/dev/null
	venues >"$T/s3.now"
	"$SYS_PY" "$LIB_DIR/check-s3-venues.py" "$T/s3" "$T/s3.before" "$T/s3.now" "$T/s3.ikman" "$T/s3.ikids" "$1" "$2" 2>&1 || echo "the check itself failed"
}
# a test batch: the first 3 venues of the country
sh "$EX/s3-tigris-to-imagekit.sh" "$C1" --limit 3 >"$T/s3.run0" 2>&1
rc=$?
out=$(s3check "$C1" 3)
[ $rc -eq 0 ] && [ -z "$out" ] &&
	pass "s3: '$C1' --limit 3: the images of its first 3 venues on ImageKit, their elements rewritten, nothing else touched" ||
	fail "s3 --limit" "rc=$rc $out $(tail -3 "$T/s3.run0")"
# the country, killed (-9) once a file more is in, ImageKit answering 429
# to every other upload meanwhile (retried after its Reset)
d0=$(sqlite3 "$J3" "SELECT count(*) FROM copies WHERE state='done'")
printf 'every429=3\nlimit_uploads=1\nreset_ms=300\n' >"$IK_CONTROL"
kill_when "$T/s3.run1" '[ "$(sqlite3 "$J3" "SELECT count(*) FROM copies WHERE state='"'done'"'" 2>/dev/null)" -gt "$d0" ] 2>/dev/null' \
	"$EX/s3-tigris-to-imagekit.sh" "$C1"
: >"$IK_CONTROL"
d1=$(sqlite3 "$J3" "SELECT count(*) FROM copies WHERE state='done'")
N1=$(grep -c "^$C1	" "$T/s3/expect")
sh "$EX/s3-tigris-to-imagekit.sh" "$C1" >"$T/s3.run2" 2>&1
rc=$?
out=$(s3check "$C1" 0)
NV1=$(grep "^$C1	" "$T/s3/expect" | cut -f2 | sort -u | wc -l)
NG1=$(grep -F "$(cat "$T/s3/cdn")uploads/gone_" "$T/s3.before" | grep -c "	$C1	")
[ $killed -eq 1 ] && [ "$d1" -lt "$N1" ] && [ $rc -eq 0 ] && [ -z "$out" ] &&
	pass "s3: '$C1' killed (-9) after $d1 of $N1 images, the re-run finishes: every image in /venues/<slug>/ byte for byte, url/upload_status/imagekit_file_id/original_tigris_url/imagekit_uploaded_at set, other elements and countries untouched" ||
	fail "s3 resume" "killed=$killed d1=$d1 N1=$N1 rc=$rc $out $(tail -3 "$T/s3.run2")"
L1=s3-$(printf '%s' "$C1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-')
grep -qx "s3: $C1: $N1 images on ImageKit, $NV1 venues rewritten, $NG1 missing from the bucket" "$T/s3.run2" &&
	"$SYS_PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; sys.exit(0 if t["succeeded"]==int(sys.argv[2]) and t["failed"]==0 else 1)' "$S3W/$L1.report.json" "$N1" &&
	pass "s3: '$C1': the summary and report.json count $N1 images, $NV1 venues rewritten, $NG1 missing from the bucket" ||
	fail "s3 report" "want $N1/$NV1/$NG1: $(tail -1 "$T/s3.run2"); $(head -c 300 "$S3W/$L1.report.json")"
ups=$(awk '$1=="POST" && $3 ~ /^2/ && $2 ~ /^\/api\/v1\/files\/upload/' "$IK_REQLOG" | wc -l)
mark=$(ik_mark)
sh "$EX/s3-tigris-to-imagekit.sh" "$C1" >"$T/s3.run3" 2>&1
rc=$?
[ "$ups" -eq "$N1" ] && [ $rc -eq 0 ] && [ "$(ik_since "$mark" '^POST /api/v1/files/upload')" -eq 0 ] && [ -z "$(s3check "$C1" 0)" ] &&
	pass "s3: $ups uploads for $N1 images (none twice across the kill); a third run uploads and rewrites nothing" ||
	fail "s3 re-run" "ups=$ups N1=$N1 rc=$rc $(tail -2 "$T/s3.run3")"
sh "$EX/s3-tigris-to-imagekit.sh" "$C2" >"$T/s3.c2" 2>&1
rc=$?
out=$(s3check "$C1|$C2" 0)
[ $rc -eq 0 ] && [ -z "$out" ] &&
	pass "s3: a second country, \"$C2\", migrated alongside" || fail "s3 second country" "rc=$rc $out $(tail -3 "$T/s3.c2")"
sh "$EX/s3-tigris-to-imagekit.sh" rollback "$C1" >"$T/s3.rb" 2>&1
rc=$?
out=$(s3check "$C2" 0)
[ $rc -eq 0 ] && [ -z "$out" ] &&
	pass "s3: rollback '$C1' restores its arrays byte for byte and deletes its files; \"$C2\" stays migrated" ||
	fail "s3 rollback" "rc=$rc $out $(tail -3 "$T/s3.rb")"
# gap 6: the third country's first venue holds an empty image, which
# ImageKit refuses: the --limit 1 batch fails (run by bash as sh: the
# exit status must survive the message's command substitution), its
# report counts the empty file failed, and no array is rewritten
C3=$(sed -n 3p "$T/s3/countries")
L3=s3-$(printf '%s' "$C3" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-')
E3=$(cat "$T/s3/empty")
venues >"$T/s3.b3"
bash "$EX/s3-tigris-to-imagekit.sh" "$C3" --limit 1 >"$T/s3.c3" 2>&1
rc=$?
ctl3() { mediactl --journal "$J3" --config "$S3W/mediafs.conf" "$@"; }
f3=$(ctl3 report --label "$L3" --json 2>/dev/null | "$SYS_PY" -c 'import json,sys; print(json.load(sys.stdin)["totals"]["failed"])')
f3s=$("$SYS_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["failed"])' "$S3W/$L3.report.json" 2>/dev/null)
ef=$(sqlite3 "$J3" "SELECT count(*) FROM copies WHERE state='failed' AND src LIKE '%/$E3'" 2>/dev/null)
venues >"$T/s3.a3"
[ $rc -ne 0 ] && [ "${f3:-0}" -ge 1 ] && [ "$f3s" = "$f3" ] && [ "${ef:-0}" -eq 1 ] &&
	grep -q '^s3: copy: some files failed' "$T/s3.c3" && ! grep -q "^s3: $C3: " "$T/s3.c3" &&
	cmp -s "$T/s3.b3" "$T/s3.a3" &&
	pass "s3: '$C3' --limit 1 with an empty source ImageKit refuses: exit $rc, 'copy: some files failed', report (and $L3.report.json) failed $f3, no array rewritten" ||
	fail "s3 failed file" "rc=$rc failed=$f3/$f3s empty-failed=$ef $(tail -3 "$T/s3.c3")"
echo "  (s3: $SECONDS s)"
