#!/bin/sh
# Scenario S4 (docs/SCENARIOS.md): the images a directory of JSON files
# lists (image_url, thumb_url; a CloudFront domain) copied to an S3 bucket,
# each under its URL's path. mediafs shows the URL list as a read-only tree
# (no request to list it); mediactl copies it with resume. mediafs +
# mediactl + sqlite3 + coreutils only.
#
#   s4-urls-to-s3.sh            copy (run it again after a crash or a kill:
#                               it resumes; what is stored is not sent again)
#   s4-urls-to-s3.sh rollback   delete the objects it uploaded
#
# Inputs (environment):
#   S4_JSON_DIR      the JSON files (*.json; image_url and thumb_url fields)
#   S4_STRIP_PREFIX  optional: a leading URL path to drop from the keys
#                    (/auctionimages/3483/x.jpg -> 3483/x.jpg with
#                    S4_STRIP_PREFIX=/auctionimages/); default: the whole path
#   S4_S3_ENDPOINT S4_S3_REGION S4_S3_BUCKET S4_S3_KEY_ID S4_S3_SECRET
#   S4_WORK          a directory of its own (mount, config, cache, journal,
#                    plan, missing.txt: the URLs that answered 404)
# Ends with "s4: N uploaded, N missing (404), N skipped" (skipped: already
# copied by an earlier run); exit 0 when every listed URL is stored or
# missing at the origin.
set -u

die() { echo "s4: $1" >&2; exit "${2:-1}"; }
for v in S4_JSON_DIR S4_S3_ENDPOINT S4_S3_REGION S4_S3_BUCKET S4_S3_KEY_ID \
	S4_S3_SECRET S4_WORK; do
	eval "[ -n \"\${$v:-}\" ]" || die "set $v (see the head of $0)" 2
done
export S4_S3_KEY_ID S4_S3_SECRET

W=$S4_WORK
MNT=$W/mnt
CONF=$W/mediafs.conf
J=$W/journal.db
# the journal, read beside the mount that writes it: wait for its lock
# (without, a read at the wrong moment saw "database is locked" and came
# back empty: a rollback then left every row in place, exit 0)
jsql() { sqlite3 -bail -cmd ".timeout 30000" "$J" "$@"; }
PLAN=$W/s4.plan
mkdir -p "$MNT" "$W/cache" || die "cannot use $W"
ctl() { mediactl --journal "$J" --config "$CONF" "$@"; }

umask 077
{
	echo "[cf]"
	echo "type = http"
	echo "json_glob = $S4_JSON_DIR/*.json"
	echo "json_fields = image_url, thumb_url"
	[ -n "${S4_STRIP_PREFIX:-}" ] && echo "strip_prefix = $S4_STRIP_PREFIX"
	echo
	echo "[s3]"
	echo "type = s3"
	echo "endpoint = $S4_S3_ENDPOINT"
	echo "region = $S4_S3_REGION"
	echo "bucket = $S4_S3_BUCKET"
	echo "access_key_id = env:S4_S3_KEY_ID"
	echo "secret_access_key = env:S4_S3_SECRET"
} >"$CONF.new" && mv "$CONF.new" "$CONF" || die "cannot write $CONF"
umask 022

if [ "${1:-}" = rollback ]; then
	[ -f "$J" ] || { echo "s4: nothing to roll back"; exit 0; }
	ctl rollback --label s4 || die "some objects were kept (changed since)"
	rm -f "$W/plan.done"
	echo "s4: rolled back"
	exit 0
fi

if mountpoint -q "$MNT" && ! ls "$MNT" >/dev/null 2>&1; then
	fusermount3 -u -z "$MNT" 2>/dev/null	# its daemon is gone
fi
if ! mountpoint -q "$MNT"; then
	i=0
	until mediafs -o "config=$CONF,cache_dir=$W/cache,journal=$J" "$MNT" \
		2>"$W/mount.err"; do
		i=$((i + 1))
		[ $i -lt 120 ] || die "cannot mount: $(cat "$W/mount.err")" 3
		sleep 1
	done
fi
trap 'mountpoint -q "$MNT" && fusermount3 -u "$MNT"' EXIT

# ---- the plan: every listed URL to the same path in the bucket (one rule
# per depth: a capture stays inside one path segment)
if [ ! -f "$W/plan.done" ]; then
	set -- '{a} -> {a}'
	src='{a}' dst='{a}'
	for c in b c d e f g h i j k l; do
		src="$src/{$c}" dst="$dst/{$c}"
		set -- "$@" "$src -> $dst"
	done
	rules=
	for r in "$@"; do rules="$rules --rule '$r'"; done
	eval "ctl plan --from \"\$MNT/cf\" --to \"\$MNT/s3\" $rules --label s4 -o \"\$PLAN\"" || {
		rc=$?; die "plan failed" $rc; }
	touch "$W/plan.done"
fi

# ---- the copy: 10 at a time; a file counts once it is on S3
t0=$(date +%s)
ctl copy "$PLAN" --jobs 10 --progress 5 >"$W/copy.out"
rc=$?
[ $rc -le 1 ] || die "copy stopped (exit $rc): $(tail -3 "$W/copy.out")" $rc

# ---- the summary. A URL that answers 404 is gone from the tree: the plan
# skipped it (unreadable: no such file), or a copy found it gone; mediafs
# logs it in the journal too
PA=$(realpath "$PLAN")
q() { jsql "$1"; }
GONE="error LIKE '%No such file or directory%'"
q "SELECT key FROM events WHERE op='missing' AND remote='cf'
   UNION SELECT rel FROM copies WHERE plan='$PA' AND $GONE AND
   ((state='skipped' AND skip_kind='unreadable') OR state='failed')
   ORDER BY 1" >"$W/missing.txt"
done_all=$(q "SELECT count(*) FROM copies WHERE plan='$PA' AND state='done'")
done_now=$(q "SELECT count(*) FROM copies WHERE plan='$PA' AND state='done' AND started_at >= $t0")
unlisted=$(q "SELECT count(*) FROM copies WHERE plan='$PA' AND state='skipped' AND NOT $GONE")
failed=$(q "SELECT count(*) FROM copies WHERE plan='$PA' AND state='failed' AND NOT $GONE")
missing=$(wc -l <"$W/missing.txt")
echo "s4: $done_now uploaded, $missing missing (404), $((done_all - done_now)) skipped (copied before); $failed failed"
[ "$unlisted" -eq 0 ] || echo "s4: $unlisted listed paths were skipped for another reason: see $PLAN.skipped"
[ "$failed" -eq 0 ] && [ "$unlisted" -eq 0 ] || exit 1
