#!/bin/bash
# make demo: scenario S1 (../shared/docs/SCENARIOS.md) end to end on
# localhost, no account anywhere. An S3 "backup" of an old app (a local
# Swift s3api server: extension-less profile pictures by role, service
# images, chat images) moves to Supabase Storage (the project's fake
# server) with new user and service IDs from JSON maps, compressed on the
# way; an SQLite "application database" gets one media row per uploaded
# file. mount -> plan -> copy -> verify -> rewrite -> report, then the
# before/after rows, then clean up.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/demo	# on the repo's disk: Swift needs user xattrs
MNT=$D/mnt
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
export T=$D MEDIAFS=$ROOT/build/mediafs
. tests/lib/swift.sh
. tests/lib/supabase.sh
cleanup() {	# keeps the script's status: a server already gone is no failure
	local rc=$?
	set +e
	fusermount3 -u "$MNT" 2>/dev/null || true
	fusermount3 -u "$D/fill" 2>/dev/null || true
	supa_stop 2>/dev/null || true
	[ -n "${SWIFT_DIR:-}" ] && swift_stop
	exit $rc
}
trap cleanup EXIT
rm -rf "$D"
mkdir -p "$D"
mediactl() { "$ROOT/build/mediactl" --journal "$D/journal.db" --config "$D/mediafs.conf" "$@"; }

step "1. the stores: a local S3 server with the old app's backup bucket, a Supabase Storage server"
swift_start "$D/swift"
/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket backup
supa_start "$D/supabase" "${DEMO_SUPABASE_KEY:-sb_secret_demo-$$-$RANDOM}" >/dev/null
export DEMO_S3_SECRET=testing DEMO_SB_KEY=$SB_KEY
cat >"$D/mediafs.conf" <<EOC
[backup]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = backup
access_key_id = test:tester
secret_access_key = env:DEMO_S3_SECRET

[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:DEMO_SB_KEY
on_write = compress
compress.jpeg_quality = 85
compress.png = lossless
compress.webp_quality = 80
EOC
echo "S3 on 127.0.0.1:$S3_PORT (bucket 'backup'), Supabase Storage on 127.0.0.1:$SB_PORT; config:"
sed 's/^/    /' "$D/mediafs.conf"

step "2. the backup: 150 extension-less images (PNG, JPEG, GIF) by role and service, plus chat images"
/usr/bin/python3 scripts/gen-images.py "$D/backup" 150 --seed 11
n=0
for f in $(find "$D/backup" -type f | sort | awk 'NR % 3 == 1'); do
	/usr/bin/convert -size 640x480 -seed $((n += 1)) plasma:fractal -blur 0x1 -quality 95 "jpg:$f"
done
mkdir -p "$D/backup/Chat-Images/chat-1"
for i in 1 2 3; do /usr/bin/convert -size 320x240 -seed $((100 + i)) plasma:fractal "$D/backup/Chat-Images/chat-1/msg-$i.jpeg"; done
mkdir -p "$D/fill"
"$MEDIAFS" -o config="$D/mediafs.conf",cache_dir="$D/cache-fill",journal="$D/fill.db" backup: "$D/fill"
cp -r "$D/backup/." "$D/fill/"
fusermount3 -u "$D/fill"	# waits for the uploads
while pgrep -f "cache-fill" >/dev/null; do sleep 0.1; done
for d in Profile-Pics/buyer Profile-Pics/stylist Profile-Pics/salon Service-Images Chat-Images; do
	printf '    %-22s %4d files\n' "$d" "$(find "$D/backup/$d" -type f | wc -l)"
done

step "3. the application database (SQLite) and the ID maps from the data migration"
/usr/bin/python3 - "$D" <<'PY'
import json, os, sqlite3, sys, uuid
d = sys.argv[1]
db = sqlite3.connect(f'{d}/app.db')
db.executescript('''
CREATE TABLE users(id text PRIMARY KEY, old_id text, role text);
CREATE TABLE services(id text PRIMARY KEY, old_id text);
CREATE TABLE media(id integer PRIMARY KEY, owner_id text, file_path text,
  media_type text, service_id text, is_preview_image boolean, url text);''')
users, rnd = {}, 0
for role in ('buyer', 'stylist'):
    for i, old in enumerate(sorted(os.listdir(f'{d}/backup/Profile-Pics/{role}'))):
        if i % 10 == 9:
            continue            # not migrated: no new id
        new = str(uuid.uuid5(uuid.NAMESPACE_URL, role + '/' + old))
        users[old] = new
        db.execute('INSERT INTO users VALUES (?,?,?)', (new, old, role))
svcs = sorted(os.listdir(f'{d}/backup/Service-Images'))
created = [{'old_id': s, 'new_id': 'svc-' + s[:8]} for s in svcs[::2]]
for c in created:
    db.execute('INSERT INTO services VALUES (?,?)', (c['new_id'], c['old_id']))
db.commit()
json.dump(users, open(f'{d}/user-id-mapping.json', 'w'), indent=1)
json.dump(created, open(f'{d}/services-created.json', 'w'), indent=1)
print(f'    users: {len(users)} migrated; services: {len(created)} of {len(svcs)} migrated; media: empty')
PY

step "4. mount every store as one tree"
mkdir -p "$MNT"
run "$MEDIAFS" -o config="$D/mediafs.conf",cache_dir="$D/cache",journal="$D/journal.db" "$MNT"
run ls "$MNT" "$MNT/backup"
run mkdir "$MNT/supa/avatars" "$MNT/supa/service-media"

step "5. the copy plan: rules, ID maps, skips with their reasons"
run mediactl plan --from "$MNT/backup" --to "$MNT/supa" \
	--map users="$D/user-id-mapping.json" \
	--map svc="$D/services-created.json,key=old_id,value=new_id" \
	--skip 'Profile-Pics/salon' --skip 'Chat-Images' \
	--rule 'Profile-Pics/{role}/{old} -> avatars/{users[old]}/{old}.{ext}' \
	--rule 'Service-Images/{sid}/{img} -> service-media/{svc[sid]}/{img}.{ext}' \
	--label s1 -o "$D/s1.plan"
echo "    first entries:"; sed -n 2,3p "$D/s1.plan" | cut -c1-150 | sed 's/^/    /'
echo "    some skips:"; awk 'NR % 25 == 1' "$D/s1.plan.skipped" | head -4 | cut -c1-150 | sed 's/^/    /'

step "6. copy it: 8 at a time, each file compressed on the way and stored before it counts"
run mediactl copy "$D/s1.plan" --jobs 8
run mediactl status

step "7. verify every uploaded object on Supabase (present, size, etag)"
run mediactl verify --label s1

step "8. the database: one media row per uploaded file, a preview image per service"
echo "before: $(sqlite3 "$D/app.db" 'select count(*) from media') media rows"
run mediactl rewrite insert --db "sqlite:$D/app.db" --table media --label s1 --keys 'avatars/*' \
	--set owner_id='{path[1]}' --set file_path='{key}' --set media_type=avatar \
	--set url='{new_url}' --apply
run mediactl rewrite insert --db "sqlite:$D/app.db" --table media --label s1 --keys 'service-media/*' \
	--set owner_id='{path[1]}' --set service_id='{svc[sid]}' --set file_path='{key}' \
	--set media_type=service_image --set url='{new_url}' --first is_preview_image='{path[1]}' --apply
echo "after:"
sqlite3 -header -column "$D/app.db" "select id, substr(owner_id,1,13) as owner, substr(file_path,1,44) as file_path, media_type, is_preview_image as preview from media where id in (1, 2, (select min(id) from media where media_type='service_image'), (select min(id)+1 from media where media_type='service_image'))"
missing=0
while IFS= read -r p; do [ -f "$MNT/supa/$p" ] || missing=$((missing + 1)); done < <(sqlite3 "$D/app.db" "select file_path from media")
echo "    $(sqlite3 "$D/app.db" "select count(*) from media") media rows, $missing pointing at a missing object (each checked through the mount)"
sqlite3 "$D/app.db" "select '    services with exactly one preview image: ' || (select count(*) from (select service_id from media where media_type='service_image' group by service_id having sum(is_preview_image)=1)) || ' of ' || (select count(distinct service_id) from media where service_id is not null)"

step "9. the report the team used to write by hand"
run mediactl report --label s1
mediactl report --label s1 --json >"$D/report.json"
/usr/bin/python3 - "$D/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r['totals']
print(f"    uploaded {t['succeeded']}, failed {t['failed']}, skipped {r['skipped']['total']} "
      f"{r['skipped']['by_reason']}; compression saved {t['saved_bytes']:,} bytes ({t['saved_pct']}%)")
PY

step "10. unmount (waits for pending uploads) and clean up"
run fusermount3 -u "$MNT"
while pgrep -f "$D/cache," >/dev/null; do sleep 0.1; done
echo "done: the report is in $D/report.json, the journal in $D/journal.db, the database in $D/app.db"
