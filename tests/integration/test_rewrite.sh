#!/bin/bash
# mediactl rewrite against a real PostgreSQL (a throwaway cluster) and
# SQLite, driven by a journal that real uploads through mediafs filled:
#   S5 prefix rewrite of four tables (--only-verified, a log table)
#   S3 JSON array rewrite scoped to one country by a join, a failed upload
#      left untouched, rollback to byte-identical JSON
#   S1 inserts with one preview image per service
# plus: dry run changes nothing, a concurrent update between plan and apply
# is skipped, a value with quotes and '; DROP TABLE survives, the password
# never printed or stored.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/pg.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
trap 'cleanup_mounts; pg_stop' EXIT
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }

# ---- the stores: two local remotes (the old CDN, the new store)
mkdir -p "$T/old/uploads" "$T/old/assets" "$T/old/Service-Images/s1" "$T/old/Service-Images/s2" "$T/new"
for i in 1 2 3 4 5 6; do head -c $((1000 + i)) /dev/urandom >"$T/old/uploads/venue_$i.jpg"; done
for f in a.png b.png "o'brien'; DROP TABLE frames; --.png" c.png; do head -c 700 /dev/urandom >"$T/old/assets/$f"; done
for f in s1/i1 s1/i2 s1/i3 s2/j1 s2/j2; do head -c 500 /dev/urandom >"$T/old/Service-Images/$f"; done
cat >"$T/m.conf" <<EOC
[old]
type = local
path = $T/old
[new]
type = local
path = $T/new
EOC
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ||
	{ fail mount "did not mount"; exit 1; }
url() { getfattr --only-values -n user.mediafs.url "$MNT/$1"; }

# S3: venue images 1-5 copied by a plan (6 is the upload that "failed":
# never copied); S5: assets mirrored by rsync except c.png; S1: services
mctl plan --from "$MNT/old" --to "$MNT/new" --rule 'uploads/{f} -> venues/{f}' \
	--skip 'uploads/venue_6.jpg' --skip assets --skip Service-Images --label s3 -o "$T/s3.plan" >/dev/null &&
	mctl copy "$T/s3.plan" >/dev/null 2>&1 || fail "s3 copy" "mediactl copy failed"
echo '{"s1":"svc-one","s2":"svc-two"}' >"$T/svc.json"
mctl plan --from "$MNT/old" --to "$MNT/new" --map svc="$T/svc.json" --skip uploads --skip assets \
	--rule 'Service-Images/{sid}/{img} -> service-media/{svc[sid]}/{img}' --label s1 -o "$T/s1.plan" >/dev/null &&
	mctl copy "$T/s1.plan" >/dev/null 2>&1 || fail "s1 copy" "mediactl copy failed"
mkdir -p "$MNT/new/assets"
rsync -a --exclude c.png "$MNT/old/assets/" "$MNT/new/assets/" || fail rsync "assets"
wait_uploads "$J" 30
A=$(url old/assets/a.png); A=${A%a.png}
B=$(url new/assets/a.png); B=${B%a.png}
QUOTED=$(url "old/assets/o'brien'; DROP TABLE frames; --.png")
for i in 1 2 3 4 5 6; do eval "V$i=\$(url old/uploads/venue_$i.jpg)"; done
N1=$(url new/venues/venue_1.jpg)

# ---- one suite per database: DB is "pg" or "sqlite"
sql() {	# sql STATEMENTS: run on the suite's database, rows as a|b
	if [ "$DB" = pg ]; then psql_ -c "$1"; else sqlite3 "$SQLITE" "$1"; fi
}
lit() { printf "'%s'" "${1//\'/\'\'}"; }	# an SQL string literal

run_suite() {
	local J1 JSON TEXT SERIAL id out rc before after
	if [ "$DB" = pg ]; then
		CONN=$PG_URL JSON=jsonb SERIAL="serial PRIMARY KEY" BOOL=boolean
		psql_ -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" >/dev/null
	else
		SQLITE=$T/app.db CONN=sqlite:$SQLITE JSON=text SERIAL="integer PRIMARY KEY" BOOL=boolean
		rm -f "$SQLITE"
	fi
	sql "CREATE TABLE countries(id integer PRIMARY KEY, name text);
	     CREATE TABLE cities(id integer PRIMARY KEY, country_id integer);
	     CREATE TABLE venues(id integer PRIMARY KEY, slug text, city_id integer, venue_images $JSON);
	     INSERT INTO countries VALUES (1,'UK'),(2,'PL');
	     INSERT INTO cities VALUES (10,1),(20,2);
	     INSERT INTO venues VALUES
	      (1,'the-crown',10,$(lit "[{\"url\": \"$V1\", \"upload_status\": \"external\", \"width\": 800, \"height\": 600, \"source\": \"trivia_advisor_migration\"}, {\"url\": \"$V2\", \"upload_status\": \"external\", \"width\": 640}]")),
	      (2,'red-lion',10,$(lit "[{\"url\": \"$V3\", \"upload_status\": \"external\"}, {\"url\": \"$V6\", \"upload_status\": \"external\", \"note\": \"upload failed\"}]")),
	      (3,'krakow-pub',20,$(lit "[{\"url\": \"$V4\", \"upload_status\": \"external\"}]")),
	      (4,'o''reilly''s; DROP TABLE venues; --',10,$(lit "[{\"url\": \"$V5\", \"caption\": \"it's \\\"quoted\\\"'; DROP TABLE venues; --\"}]"));
	     CREATE TABLE global_assets(id integer PRIMARY KEY, image_key_url text);
	     CREATE TABLE project_assets(id integer PRIMARY KEY, image_key_url text);
	     CREATE TABLE frames(id integer PRIMARY KEY, image_url text);
	     CREATE TABLE video_generation_jobs(id integer PRIMARY KEY, video_url text);
	     INSERT INTO global_assets VALUES (1,$(lit "${A}a.png")),(2,'https://elsewhere.example/x.png');
	     INSERT INTO project_assets VALUES (1,$(lit "${A}b.png")),(2,$(lit "${A}c.png"));
	     INSERT INTO frames VALUES (1,$(lit "$QUOTED")),(2,NULL);
	     INSERT INTO video_generation_jobs VALUES (1,$(lit "${A}b.png"));
	     CREATE TABLE media(id $SERIAL, owner_id text, file_path text, media_type text, service_id text, is_preview_image $BOOL);" >/dev/null ||
		{ fail "[$DB] schema" "could not create the test tables"; return; }

	# ---- S3: JSON array rewrite, UK only (a join), dry run first
	before=$(sql "SELECT id, venue_images FROM venues ORDER BY id")
	out=$(mctl rewrite map --db "$CONN" --table venues --column venue_images --json-field url \
		--set upload_status=completed --set imagekit_file_id='{file_id}' \
		--set original_tigris_url='{old_url}' --set imagekit_uploaded_at='{uploaded_at}' \
		--where "city_id IN (SELECT c.id FROM cities c JOIN countries k ON k.id = c.country_id WHERE k.name = 'UK')" \
		--label s3 2>&1)
	id=$(echo "$out" | sed -n 's/^rewrite #\([0-9]*\):.*/\1/p')
	[ "$(sql "SELECT id, venue_images FROM venues ORDER BY id")" = "$before" ] &&
		echo "$out" | grep -q "3 rows read, 3 to change" && echo "$out" | grep -q "sample id=1" &&
		pass "[$DB] map dry run: counts and samples, nothing written" || fail "[$DB] map dry run" "$out"
	out=$(mctl rewrite apply "$id" --db "$CONN" 2>&1)
	rc=$?
	"$SYS_PY" - "$(sql "SELECT venue_images FROM venues WHERE id=1")" "$(sql "SELECT venue_images FROM venues WHERE id=2")" \
		"$V1" "$N1" "$V3" "$V6" <<'PY' && pass "[$DB] UK venues: mapped elements rewritten (url, status, original URL, time), other fields kept, the failed one untouched" || fail "[$DB] map apply" "rc=$rc $out $(sql "SELECT venue_images FROM venues WHERE id<3")"
import json, sys
v1, v2 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
old1, new1, old3, old6 = sys.argv[3:7]
e = v1[0]
assert e['url'] == new1 and e['upload_status'] == 'completed' and e['original_tigris_url'] == old1, e
assert e['width'] == 800 and e['height'] == 600 and e['source'] == 'trivia_advisor_migration', e
assert e['imagekit_uploaded_at'].endswith('Z') and 'imagekit_file_id' in e, e
assert v1[1]['url'].endswith('venues/venue_2.jpg') and v1[1]['width'] == 640
assert v2[0]['url'] != old3 and v2[0]['upload_status'] == 'completed'
assert v2[1] == {'url': old6, 'upload_status': 'external', 'note': 'upload failed'}, v2[1]
PY
	[ "$(sql "SELECT venue_images FROM venues WHERE id=3")" = "$(echo "$before" | sed -n 's/^3|//p')" ] &&
		pass "[$DB] the Polish venue (outside --where) is untouched" || fail "[$DB] where" "$(sql "SELECT venue_images FROM venues WHERE id=3")"
	"$SYS_PY" -c 'import json,sys; e=json.loads(sys.argv[1])[0]; assert e["caption"]=="it'"'"'s \"quoted\"'"'"'; DROP TABLE venues; --", e' \
		"$(sql "SELECT venue_images FROM venues WHERE id=4")" && [ "$(sql "SELECT slug FROM venues WHERE id=4")" = "o'reilly's; DROP TABLE venues; --" ] &&
		pass "[$DB] quotes and '; DROP TABLE in values survive" || fail "[$DB] quoting" "$(sql "SELECT * FROM venues WHERE id=4")"
	mctl rollback --rewrite "$id" --db "$CONN" >"$T/rb.$DB" 2>&1
	[ "$(sql "SELECT id, venue_images FROM venues ORDER BY id")" = "$before" ] &&
		pass "[$DB] rollback restores the JSON byte for byte" || fail "[$DB] rollback" "$(cat "$T/rb.$DB")"

	# ---- a concurrent update between plan and apply
	out=$(mctl rewrite map --db "$CONN" --table venues --column venue_images --json-field url --label s3 2>&1)
	id=$(echo "$out" | sed -n 's/^rewrite #\([0-9]*\):.*/\1/p')
	sql "UPDATE venues SET venue_images = $(lit "[{\"url\": \"$V1\", \"edited\": true}]") WHERE id = 1" >/dev/null
	out=$(mctl rewrite apply "$id" --db "$CONN" 2>&1)
	rc=$?
	[ $rc -eq 1 ] && echo "$out" | grep -q "venues id=1: changed since the plan" && echo "$out" | grep -q "3 rows changed, 1 skipped" &&
		sql "SELECT venue_images FROM venues WHERE id=1" | grep -q '"edited": *true' &&
		pass "[$DB] a row changed between plan and apply is skipped and reported (exit 1)" || fail "[$DB] concurrent" "rc=$rc $out"
	mctl rollback --rewrite "$id" --db "$CONN" >/dev/null 2>&1

	# ---- S5: prefix rewrite of four tables, only verified objects, a log table
	for tc in global_assets.image_key_url project_assets.image_key_url frames.image_url video_generation_jobs.video_url; do
		mctl rewrite prefix --db "$CONN" --table "${tc%.*}" --column "${tc#*.}" --from "$A" --to "$B" \
			--only-verified --log-table s3_migration_log --apply >"$T/p.$DB.${tc%.*}" 2>&1 ||
			fail "[$DB] prefix ${tc%.*}" "$(cat "$T/p.$DB.${tc%.*}")"
	done
	[ "$(sql "SELECT image_key_url FROM global_assets ORDER BY id")" = "$(printf '%s\n%s' "${B}a.png" https://elsewhere.example/x.png)" ] &&
		[ "$(sql "SELECT image_key_url FROM project_assets ORDER BY id")" = "$(printf '%s\n%s' "${B}b.png" "${A}c.png")" ] &&
		[ "$(sql "SELECT video_url FROM video_generation_jobs")" = "${B}b.png" ] &&
		[ "$(sql "SELECT image_url FROM frames WHERE id=1")" = "${QUOTED/$A/$B}" ] &&
		grep -q "1 rows left alone: their new URL is not a finished upload" "$T/p.$DB.project_assets" &&
		pass "[$DB] S5 prefix rewrite of four tables; the object not copied (c.png) keeps its URL" ||
		fail "[$DB] prefix" "$(sql "SELECT * FROM project_assets"; sql "SELECT * FROM frames")"
	[ "$(sql "SELECT table_name, migration_status, count(*) FROM s3_migration_log GROUP BY table_name, migration_status ORDER BY 1")" = \
		"$(printf 'frames|migrated|1\nglobal_assets|migrated|1\nproject_assets|migrated|1\nvideo_generation_jobs|migrated|1')" ] &&
		pass "[$DB] the log table holds one row per migrated record" || fail "[$DB] log table" "$(sql "SELECT * FROM s3_migration_log")"
	id=$(mctl rewrite list | awk '$3=="prefix" && $4=="global_assets.image_key_url" {i=$1} END {print i}')
	mctl rollback --rewrite "$id" --db "$CONN" >/dev/null 2>&1
	[ "$(sql "SELECT image_key_url FROM global_assets WHERE id=1")" = "${A}a.png" ] &&
		[ "$(sql "SELECT count(*) FROM s3_migration_log WHERE table_name='global_assets'")" = 0 ] &&
		pass "[$DB] rolling back a prefix rewrite restores the URL and deletes its log rows" || fail "[$DB] prefix rollback" "$(sql "SELECT * FROM global_assets")"

	# ---- mirror pairs (an rsync between two stores) in a text column;
	# --limit; libpq keyword strings and the PG* environment
	sql "CREATE TABLE posters(id integer PRIMARY KEY, url text);
	     INSERT INTO posters VALUES (1,$(lit "${A}a.png")),(2,$(lit "${A}b.png")),(3,$(lit "${A}c.png"));" >/dev/null
	local KW=$CONN ENVDB=$CONN
	[ "$DB" = pg ] && KW="host=$PG_SOCK port=$PG_PORT user=mediafs dbname=postgres" && ENVDB=""
	out=$(mctl rewrite map --db "$KW" --table posters --column url --mirror old:assets=new:assets --limit 1 2>&1)
	echo "$out" | grep -q "1 to change" && pass "[$DB] --limit 1 plans one change (a test batch)" || fail "[$DB] limit" "$out"
	out=$(PGHOST=$PG_SOCK PGPORT=$PG_PORT PGUSER=mediafs PGDATABASE=postgres \
		mctl rewrite map --db "$ENVDB" --table posters --column url --mirror old:assets=new:assets --apply 2>&1)
	[ "$(sql "SELECT url FROM posters ORDER BY id")" = "$(printf '%s\n%s\n%s' "${B}a.png" "${B}b.png" "${A}c.png")" ] &&
		pass "[$DB] --mirror old:assets=new:assets maps each key to its copy (c.png was not copied: kept)" ||
		fail "[$DB] mirror" "$out $(sql "SELECT * FROM posters")"

	# ---- S1: one media row per uploaded service image, one preview per service
	out=$(mctl rewrite insert --db "$CONN" --table media --label s1 --keys 'service-media/*' \
		--set owner_id='{path[1]}' --set file_path='{key}' --set media_type=service_image \
		--set service_id='{svc[sid]}' --first is_preview_image='{path[1]}' --apply 2>&1) || fail "[$DB] insert" "$out"
	[ "$(sql "SELECT service_id, count(*), sum(CASE WHEN is_preview_image THEN 1 ELSE 0 END) FROM media GROUP BY service_id ORDER BY 1")" = \
		"$(printf 'svc-one|3|1\nsvc-two|2|1')" ] &&
		[ "$(sql "SELECT file_path FROM media WHERE is_preview_image AND service_id='svc-one'")" = service-media/svc-one/i1 ] &&
		pass "[$DB] S1 inserts: a row per uploaded object, one preview image per service" || fail "[$DB] inserts" "$out $(sql "SELECT * FROM media")"
	id=$(echo "$out" | sed -n 's/^rewrite #\([0-9]*\):.*/\1/p')
	out=$(mctl rewrite insert --db "$CONN" --table media --label s1 --keys 'service-media/*' --set file_path='{key}' --apply 2>&1)
	[ "$(sql "SELECT count(*) FROM media")" = 5 ] && echo "$out" | grep -q "0 rows to insert" &&
		pass "[$DB] inserting again adds nothing (already inserted by #$id)" || fail "[$DB] insert twice" "$out"
	mctl rollback --rewrite "$id" --db "$CONN" >/dev/null 2>&1
	[ "$(sql "SELECT count(*) FROM media")" = 0 ] && pass "[$DB] rolling back the inserts deletes exactly those rows" || fail "[$DB] insert rollback" "$(sql "SELECT count(*) FROM media")"
}

DB=pg run_suite
DB=sqlite run_suite

# ---- the password: never printed, never in the journal
bad=$(echo "$PG_URL" | sed "s/@/x@/")	# a wrong password
mctl rewrite prefix --db "$bad" --table frames --column image_url --from a --to b >"$T/badpw" 2>&1
[ $? -eq 3 ] && grep -q "password authentication failed" "$T/badpw" &&
	pass "a wrong password: a clear error (exit 3)" || fail "wrong password" "$(cat "$T/badpw")"
if grep -rqF "$PG_PASS" "$T"/badpw "$T"/rb.* "$T"/p.* || sqlite3 "$J" .dump | grep -qF "$PG_PASS" ||
	sqlite3 "$J" .dump | grep -qF "$(echo "$PG_URL" | sed 's/.*:\([^@]*\)@.*/\1/')"; then
	fail "password" "the password appears in an output or the journal"
else
	pass "the password is in no output and not in the journal"
fi
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
