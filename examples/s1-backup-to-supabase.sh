#!/bin/sh
# Scenario S1 (docs/SCENARIOS.md): an S3 backup -> Supabase Storage, with
# ID remapping, compression, skips with the team's reasons and one `media`
# row per uploaded object. mediafs + mediactl + sqlite3 + coreutils only.
#
#   s1-backup-to-supabase.sh            migrate (run it again after a crash,
#                                       a kill or a failure: it resumes)
#   s1-backup-to-supabase.sh rollback   delete the rows and objects it made
#
# Inputs (environment):
#   S1_DATA   user-id-mapping.json ({"oldUserId": "newUserId", ...}),
#             services-created.json ([{"oldId","newId","stylistId"}, ...]),
#             app.db (SQLite: users, services, media)
#   S1_S3_ENDPOINT S1_S3_REGION S1_S3_BUCKET S1_S3_KEY_ID S1_S3_SECRET
#             the backup: Profile-Pics/{buyer|stylist|salon}/{oldUserId},
#             Service-Images/{oldServiceId}/{imageId}, Chat-Images/...
#   S1_SUPABASE_URL S1_SUPABASE_KEY   the target project (service key)
#   S1_WORK   a directory of its own: mount point, config, cache, journal,
#             s1.plan, skipped.jsonl, report.json
# Exit 0 when every planned file is on the store and every row is in.
set -u

die() { echo "s1: $1" >&2; exit "${2:-1}"; }
for v in S1_DATA S1_S3_ENDPOINT S1_S3_REGION S1_S3_BUCKET S1_S3_KEY_ID \
	S1_S3_SECRET S1_SUPABASE_URL S1_SUPABASE_KEY S1_WORK; do
	eval "[ -n \"\${$v:-}\" ]" || die "set $v (see the head of $0)" 2
done
export S1_S3_KEY_ID S1_S3_SECRET S1_SUPABASE_KEY

W=$S1_WORK
MNT=$W/mnt
CONF=$W/mediafs.conf
J=$W/journal.db
# the journal, read beside the mount that writes it: wait for its lock
# (without, a read at the wrong moment saw "database is locked" and came
# back empty: a rollback then left every row in place, exit 0)
jsql() { sqlite3 -bail -cmd ".timeout 30000" "$J" "$@"; }
DB="sqlite:$S1_DATA/app.db"
PLAN=$W/s1.plan
mkdir -p "$MNT" "$W/cache" || die "cannot use $W"

ctl() { mediactl --journal "$J" --config "$CONF" "$@"; }

# ---- the config: secrets stay in the environment
umask 077
cat >"$CONF.new" <<EOF
[backup]
type = s3
endpoint = $S1_S3_ENDPOINT
region = $S1_S3_REGION
bucket = $S1_S3_BUCKET
access_key_id = env:S1_S3_KEY_ID
secret_access_key = env:S1_S3_SECRET

[supa]
type = supabase
url = $S1_SUPABASE_URL
key = env:S1_SUPABASE_KEY
public_buckets = true
on_write = compress
EOF
mv "$CONF.new" "$CONF"
umask 022

# ---- the mount: reused when a killed run left it up, remounted when its
# daemon is gone
mount_it() {
	if mountpoint -q "$MNT" && ! ls "$MNT" >/dev/null 2>&1; then
		fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	mountpoint -q "$MNT" && return 0
	i=0
	# an unmounted daemon may still be finishing its uploads: it holds the
	# cache until then
	until mediafs -o "config=$CONF,cache_dir=$W/cache,journal=$J" "$MNT" \
		2>"$W/mount.err"; do
		i=$((i + 1))
		[ $i -lt 120 ] || die "cannot mount: $(cat "$W/mount.err")" 3
		sleep 1
	done
}
unmount_it() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	return 0
}

# Insert rewrites of the media table a killed run left half applied are
# finished first: their rows are then all in, none twice.
finish_rewrites() {
	for id in $(jsql "SELECT id FROM rewrites WHERE tbl='media'
			AND kind='insert' AND state='planned' ORDER BY id" 2>/dev/null); do
		ctl rewrite apply "$id" --db "$DB" >>"$W/rows.out" ||
			die "rewrite #$id: see $W/rows.out"
	done
}

if [ "${1:-}" = rollback ]; then
	[ -f "$J" ] || { echo "s1: nothing to roll back"; exit 0; }
	finish_rewrites
	rc=0
	ids=$(jsql "SELECT id FROM rewrites WHERE tbl='media'
			AND kind='insert' AND state='applied' ORDER BY id DESC") ||
		die "cannot read the rewrites in $J"
	for id in $ids; do
		ctl rollback --rewrite "$id" --db "$DB" || rc=1
	done
	ctl rollback --label s1 || rc=1
	rm -f "$W/plan.done"
	[ $rc -eq 0 ] && echo "s1: rolled back" || echo "s1: rolled back, some rows or objects were kept (changed since)"
	exit $rc
fi

mount_it
trap unmount_it EXIT
mkdir -p "$MNT/supa/avatars" "$MNT/supa/service-media" || die "cannot make the buckets"

# ---- the plan (once: a re-run keeps it, so the copy resumes it)
if [ ! -f "$W/plan.done" ]; then
	ctl plan --from "$MNT/backup" --to "$MNT/supa" \
		--map "users=$S1_DATA/user-id-mapping.json,miss=unmapped_user" \
		--map "svc=$S1_DATA/services-created.json,key=oldId,value=newId,miss=unmigrated_service" \
		--skip 'Chat-Images,reason=chat' \
		--skip 'Profile-Pics/salon,reason=salon' \
		--rule 'Profile-Pics/{role}/{old} -> avatars/{users[old]}/{old}.{ext}' \
		--rule 'Service-Images/{sid}/{img} -> service-media/{svc[sid]}/{img}.{ext}' \
		--label s1 -o "$PLAN" || { rc=$?; die "plan failed" $rc; }
	cp "$PLAN.skipped" "$W/skipped.jsonl" && touch "$W/plan.done" ||
		die "cannot write $W"
fi

# ---- the copy (resumes; a file counts once it is on the server)
# (a failed copy still writes report.json: it counts the failed files)
ctl copy "$PLAN" --jobs 4 || { rc=$?; ctl report --label s1 --json >"$W/report.json"
	die "copy: some files failed (mediactl failed; run again; see $W/report.json)" $rc; }
ctl verify --label s1 >"$W/verify.out" || { rc=$?; die "verify: $(tail -3 "$W/verify.out")" $rc; }

# ---- the rows: one per uploaded object; an object already inserted is
# not inserted again
finish_rewrites
ctl rewrite insert --db "$DB" --table media --label s1 --keys 'avatars/*' \
	--set created_at='{uploaded_at}' --set owner_id='{users[old]}' \
	--set file_path='{path[1]}/{path[2]}' --set media_type=avatar \
	--set is_preview_image=0 --apply >>"$W/rows.out" || {
	rc=$?; die "avatar rows: see $W/rows.out" $rc; }
ctl rewrite insert --db "$DB" --table media --label s1 --keys 'service-media/*' \
	--set created_at='{uploaded_at}' --set owner_id='{svc[sid].stylistId}' \
	--set service_id='{svc[sid]}' --set file_path='{path[1]}/{path[2]}' \
	--set media_type=service_image --first is_preview_image='{path[1]}' \
	--apply >>"$W/rows.out" || { rc=$?; die "service rows: see $W/rows.out" $rc; }

ctl report --label s1 --json >"$W/report.json" || die "report failed"
ctl report --label s1

# ---- done when every planned file has its row
planned=$(($(wc -l <"$PLAN") - 1))
rows=$(sqlite3 "$S1_DATA/app.db" "SELECT count(*) FROM media WHERE media_type IN ('avatar','service_image')")
[ "$rows" -eq "$planned" ] || die "$rows media rows for $planned planned files"
echo "s1: done: $planned files on Supabase, $rows media rows"
