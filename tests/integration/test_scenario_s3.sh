#!/bin/bash
# Scenario S3 end to end, with the README's commands: venue images on an
# S3-compatible CDN (Swift standing in for Tigris, public_url = the CDN
# domain the database holds) move to ImageKit folders /venues/<slug>/ with
# stable names, one country at a time (the map comes out of the database by
# SQL); then the venues.venue_images JSON arrays are rewritten from the
# journal (url, upload_status, imagekit_file_id, original_tigris_url,
# imagekit_uploaded_at), other elements and fields untouched; a per-country
# report, verify, and a rollback that restores the arrays exactly.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
DB=$T/app.db
CDN=https://cdn.example.com/
ik_start "$T/ik" || { fail "fake server" "did not start"; exit 1; }
trap 'cleanup_mounts; ik_stop' EXIT
export MFS_TEST_IK_KEY=$IK_KEY
s3 mkbucket venue-images
write_conf "$T/m.conf" venue-images "public_url = $CDN"
sed -i 's/^\[s3t\]/[tigris]/' "$T/m.conf"
ik_conf ik >>"$T/m.conf"
chmod 600 "$T/m.conf"
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }
NV=60
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NV=20

# ---- the source: uploads/venue_<n>_<k>.jpg on the CDN, the database
"$SYS_PY" - "$T" "$NV" "$CDN" <<'PY'
import json, os, random, sqlite3, sys
t, nv, cdn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(3)
os.makedirs(f'{t}/cdn/uploads', exist_ok=True)
db = sqlite3.connect(f'{t}/app.db')
db.executescript('''
CREATE TABLE countries(id integer PRIMARY KEY, name text);
CREATE TABLE cities(id integer PRIMARY KEY, country_id integer);
CREATE TABLE venues(id integer PRIMARY KEY, slug text, city_id integer, venue_images text);
INSERT INTO countries VALUES (1, 'United Kingdom'), (2, 'Poland');
INSERT INTO cities VALUES (10, 1), (20, 2);''')
for v in range(1, nv + 1):
    imgs = []
    for k in range(1, rnd.randint(1, 3) + 1):
        name = f'venue_{v}_{k}.jpg'
        data = b'\xff\xd8\xff\xe0' + os.urandom(rnd.randint(2000, 9000))
        open(f'{t}/cdn/uploads/{name}', 'wb').write(data)
        imgs.append({'url': cdn + 'uploads/' + name, 'upload_status': 'external',
                     'width': 800, 'height': 600, 'source': 'trivia_advisor_migration'})
    if v % 7 == 0:	# an image the CDN no longer has
        imgs.append({'url': cdn + f'uploads/gone_{v}.jpg', 'upload_status': 'external'})
    db.execute('INSERT INTO venues VALUES (?, ?, ?, ?)',
               (v, f'venue-{v}', 10 if v % 4 else 20, json.dumps(imgs)))
db.commit()
PY
mount_fs "$T/fill.log" "$MNT" -o config="$T/m.conf",cache_dir="$T/c0",journal="$T/fill.db" tigris: &&
	cp -r "$T/cdn/." "$MNT/" && umount_fs "$T/fill.log" "$MNT" || { fail "fixture" "filling the bucket failed"; exit 1; }
BEFORE=$(sqlite3 "$DB" "SELECT id, venue_images FROM venues ORDER BY id")

# ---- the README's commands
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ||
	{ fail mount "could not mount"; exit 1; }
getfattr --only-values -n user.mediafs.url "$MNT/tigris/uploads/venue_1_1.jpg" 2>/dev/null | grep -qx "${CDN}uploads/venue_1_1.jpg" &&
	pass "public_url: the source's URLs are the CDN's, as the database holds them" ||
	fail "public_url" "$(getfattr -n user.mediafs.url "$MNT/tigris/uploads/venue_1_1.jpg" 2>&1)"
# image -> venue slug, for one country, straight from the database
sqlite3 -csv -header "$DB" "SELECT DISTINCT substr(j.value->>'url', length('${CDN}uploads/') + 1) AS image, v.slug
  FROM venues v JOIN cities c ON c.id = v.city_id JOIN countries k ON k.id = c.country_id, json_each(v.venue_images) j
  WHERE k.name = 'United Kingdom' AND j.value->>'url' LIKE '${CDN}uploads/%'" >"$T/uk.csv"
mctl plan --from "$MNT/tigris/uploads" --to "$MNT/ik" --map venue="$T/uk.csv,key=image,value=slug" \
	--rule '{img} -> venues/{venue[img]}/{img}' --label uk -o "$T/uk.plan" >"$T/plan.out" 2>&1 ||
	fail "plan" "$(cat "$T/plan.out")"
mctl copy "$T/uk.plan" --jobs 8 >"$T/copy.out" 2>&1 || fail "copy" "$(tail -3 "$T/copy.out")"
want=$(tail -n +2 "$T/uk.csv" | grep -vc '^gone_')	# gone_* are not on the CDN
ik ids /venues >"$T/ids"
[ "$(wc -l <"$T/ids")" = "$want" ] && ik ids /venues | awk '{print $1}' | grep -qE '^/venues/venue-[0-9]+/venue_[0-9]+_[0-9]+\.jpg$' &&
	pass "UK batch: $want images in ImageKit folders /venues/<slug>/ under their own names" ||
	fail "uk copy" "$(wc -l <"$T/ids") of $want; $(head -2 "$T/ids")"
mctl verify --label uk >"$T/verify.out" 2>&1 && grep -q "verified $want objects: $want ok, 0 mismatches" "$T/verify.out" &&
	pass "verify --label uk: $(grep -o 'verified [0-9]* objects' "$T/verify.out")" || fail "verify" "$(cat "$T/verify.out")"
out=$(mctl rewrite map --db "sqlite:$DB" --table venues --column venue_images --json-field url --label uk \
	--set upload_status=completed --set imagekit_file_id='{file_id}' \
	--set original_tigris_url='{old_url}' --set imagekit_uploaded_at='{uploaded_at}' \
	--where "city_id IN (SELECT c.id FROM cities c JOIN countries k ON k.id = c.country_id WHERE k.name = 'United Kingdom')" 2>&1)
id=$(echo "$out" | sed -n 's/^rewrite #\([0-9]*\):.*/\1/p')
[ -n "$id" ] && [ "$(sqlite3 "$DB" "SELECT id, venue_images FROM venues ORDER BY id")" = "$BEFORE" ] &&
	pass "rewrite map (dry run): rewrite #$id planned, nothing written" || fail "dry run" "$out"
mctl rewrite apply "$id" --db "sqlite:$DB" >"$T/apply.out" 2>&1 || fail "apply" "$(cat "$T/apply.out")"
sqlite3 "$DB" "SELECT v.id, k.name, v.venue_images FROM venues v JOIN cities c ON c.id = v.city_id JOIN countries k ON k.id = c.country_id" >"$T/after"
"$SYS_PY" - "$T/after" "$T/ids" "$CDN" <<'PY' && pass "UK arrays: url -> ImageKit URL, upload_status, imagekit_file_id (the journal's fileId), original_tigris_url, imagekit_uploaded_at; the missing image and Poland untouched" || fail "rewrite" "$(head -3 "$T/after")"
import json, sys
ids = {}
for line in open(sys.argv[2]):
    path, fid, url = line.split()
    ids[url] = fid
cdn = sys.argv[3]
changed = 0
for line in open(sys.argv[1]):
    vid, country, arr = line.rstrip('\n').split('|', 2)
    for e in json.loads(arr):
        if country == 'Poland' or '/gone_' in e['url']:
            assert e['url'].startswith(cdn) and e['upload_status'] == 'external', e
            assert 'imagekit_file_id' not in e, e
            continue
        assert e['url'] in ids, e
        assert e['imagekit_file_id'] == ids[e['url']], e
        assert e['upload_status'] == 'completed' and e['original_tigris_url'].startswith(cdn + 'uploads/venue_'), e
        assert e['imagekit_uploaded_at'].endswith('Z') and e['width'] == 800 and e['source'] == 'trivia_advisor_migration', e
        changed += 1
assert changed == len(ids), (changed, len(ids))
PY
mctl report --label uk --json >"$T/report.json" 2>&1 &&
	"$SYS_PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["totals"]; assert t["succeeded"]==int(sys.argv[2]) and t["failed"]==0, t; assert r["skipped"]["by_reason"].get("no-mapping",0)>0, r["skipped"]' "$T/report.json" "$want" &&
	pass "report --label uk: $want uploaded, 0 failed, the other countries' images skipped (no mapping)" || fail "report" "$(head -c 600 "$T/report.json")"
mctl rollback --rewrite "$id" --db "sqlite:$DB" >"$T/rb.out" 2>&1
[ "$(sqlite3 "$DB" "SELECT id, venue_images FROM venues ORDER BY id")" = "$BEFORE" ] &&
	pass "rollback --rewrite: the UK arrays are restored byte for byte" || fail "rollback" "$(cat "$T/rb.out")"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
