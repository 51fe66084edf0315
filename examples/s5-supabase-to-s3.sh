#!/bin/sh
# Scenario S5 (docs/SCENARIOS.md): Supabase Storage buckets -> S3 buckets
# with the same keys and the same Content-Type, then the URL prefix swap in
# the application database, only for objects verified on S3. mediafs +
# mediactl + sqlite3 (for the journal) + coreutils only.
#
#   s5-supabase-to-s3.sh            copy, verify, rewrite (run it again
#                                   after a crash or a kill: it resumes)
#   s5-supabase-to-s3.sh rollback   the reverse rewrite, then delete the
#                                   objects it uploaded
#
# Inputs (environment):
#   S5_SUPABASE_URL S5_SUPABASE_KEY   the source project (service key)
#   S5_BUCKETS     "SUPABASE_BUCKET:S3_BUCKET ..." (default: the scenario's
#                  "asset-images:asset-images images:images videos:videos")
#   S5_S3_ENDPOINT S5_S3_REGION S5_S3_KEY_ID S5_S3_SECRET   the target
#   DATABASE_URL   postgres://… or sqlite:FILE, holding the URL columns
#   S5_COLUMNS     "TABLE.COLUMN ..." (default: global_assets.image_key_url
#                  project_assets.image_key_url frames.image_url
#                  video_generation_jobs.video_url)
#   S5_OLD_PREFIX  what the columns hold before a bucket's name (default
#                  $S5_SUPABASE_URL/storage/v1/object/public/)
#   S5_NEW_URL     the new URL of a bucket's objects, {bucket} and {region}
#                  replaced (default https://{bucket}.s3.{region}.amazonaws.com/)
#   S5_WORK        a directory of its own (mount, config, cache, journal,
#                  plans, verify.out, report.json)
# Ends with "s5: N objects copied, N verified, N rows rewritten, N rows
# left alone (not a verified object)"; exit 0 when every object is on S3
# and verified, and every rewrite is applied.
set -u

die() { echo "s5: $1" >&2; exit "${2:-1}"; }
for v in S5_SUPABASE_URL S5_SUPABASE_KEY S5_S3_ENDPOINT S5_S3_REGION \
	S5_S3_KEY_ID S5_S3_SECRET DATABASE_URL S5_WORK; do
	eval "[ -n \"\${$v:-}\" ]" || die "set $v (see the head of $0)" 2
done
export S5_SUPABASE_KEY S5_S3_KEY_ID S5_S3_SECRET
BUCKETS=${S5_BUCKETS:-"asset-images:asset-images images:images videos:videos"}
COLUMNS=${S5_COLUMNS:-"global_assets.image_key_url project_assets.image_key_url frames.image_url video_generation_jobs.video_url"}
OLD=${S5_OLD_PREFIX:-${S5_SUPABASE_URL%/}/storage/v1/object/public/}
NEWT=${S5_NEW_URL:-'https://{bucket}.s3.{region}.amazonaws.com/'}

W=$S5_WORK
MNT=$W/mnt
CONF=$W/mediafs.conf
J=$W/journal.db
# the journal, read beside the mount that writes it: wait for its lock
# (without, a read at the wrong moment saw "database is locked" and came
# back empty: a rollback then left every row in place, exit 0)
jsql() { sqlite3 -bail -cmd ".timeout 30000" "$J" "$@"; }
mkdir -p "$MNT" "$W/cache" || die "cannot use $W"
ctl() { mediactl --journal "$J" --config "$CONF" "$@"; }
new_url() { echo "$NEWT" | sed "s|{bucket}|$1|g; s|{region}|$S5_S3_REGION|g"; }

# ---- the config: one S3 remote per target bucket (to1, to2, …), its
# public_url the URL the database will hold, so the journal's URLs are those
umask 077
{
	echo "[supa]"
	echo "type = supabase"
	echo "url = $S5_SUPABASE_URL"
	echo "key = env:S5_SUPABASE_KEY"
	n=0
	for p in $BUCKETS; do
		n=$((n + 1))
		echo
		echo "[to$n]"
		echo "type = s3"
		echo "endpoint = $S5_S3_ENDPOINT"
		echo "region = $S5_S3_REGION"
		echo "bucket = ${p#*:}"
		echo "access_key_id = env:S5_S3_KEY_ID"
		echo "secret_access_key = env:S5_S3_SECRET"
		echo "public_url = $(new_url "${p#*:}")"
	done
} >"$CONF.new" && mv "$CONF.new" "$CONF" || die "cannot write $CONF"
umask 022

# Prefix rewrites a killed run left planned are applied first (compare-
# and-set: a row already changed is not changed twice).
finish_rewrites() {
	for id in $(jsql "SELECT id FROM rewrites WHERE kind='prefix'
			AND state='planned' ORDER BY id" 2>/dev/null); do
		ctl rewrite apply "$id" --db "$DATABASE_URL" >>"$W/rows.out" ||
			die "rewrite #$id: see $W/rows.out"
	done
}

if [ "${1:-}" = rollback ]; then
	[ -f "$J" ] || { echo "s5: nothing to roll back"; exit 0; }
	finish_rewrites
	rc=0
	ids=$(jsql "SELECT id FROM rewrites WHERE kind='prefix'
			AND state='applied' ORDER BY id DESC") ||
		die "cannot read the rewrites in $J"
	for id in $ids; do
		ctl rollback --rewrite "$id" --db "$DATABASE_URL" >>"$W/rollback.out" || rc=1
	done
	ctl rollback --label s5 >>"$W/rollback.out" || rc=1
	rm -f "$W"/plan*.done
	[ $rc -eq 0 ] && echo "s5: rolled back" ||
		echo "s5: rolled back, some rows or objects were kept (changed since): see $W/rollback.out"
	exit $rc
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

# ---- one plan per bucket, every key to the same key (one rule per depth:
# a capture stays inside one path segment); no {ext}: the copy carries
# each object's own Content-Type over
set -- '{a} -> {a}'
src='{a}' dst='{a}'
for c in b c d e f g h i j k l; do
	src="$src/{$c}" dst="$dst/{$c}"
	set -- "$@" "$src -> $dst"
done
rules=
for r in "$@"; do rules="$rules --rule '$r'"; done
n=0
for p in $BUCKETS; do
	n=$((n + 1))
	[ -f "$W/plan$n.done" ] && continue
	[ -d "$MNT/supa/${p%%:*}" ] || die "no bucket ${p%%:*} on $S5_SUPABASE_URL"
	eval "ctl plan --from \"\$MNT/supa/${p%%:*}\" --to \"\$MNT/to$n\" $rules --label s5 -o \"\$W/plan$n\"" \
		>"$W/plan$n.out" || { rc=$?; die "plan of ${p%%:*} failed: $(tail -3 "$W/plan$n.out")" $rc; }
	touch "$W/plan$n.done"
done

# ---- the copies (resume; a file counts once it is on S3), then verify:
# only verified objects get their URLs rewritten
n=0
for p in $BUCKETS; do
	n=$((n + 1))
	ctl copy "$W/plan$n" --jobs 8 >"$W/copy$n.out" || {
		rc=$?; die "copy of ${p%%:*}: some files failed (run again): $(tail -3 "$W/copy$n.out")" $rc; }
done
ctl verify --label s5 >"$W/verify.out" || { rc=$?; die "verify: $(tail -3 "$W/verify.out")" $rc; }

# ---- the database: each column, each bucket's prefix -> its S3 URL, only
# rows whose new URL is a verified upload (--only-verified)
finish_rewrites
: >"$W/rows.now"
for tc in $COLUMNS; do
	for p in $BUCKETS; do
		ctl rewrite prefix --db "$DATABASE_URL" --table "${tc%%.*}" \
			--column "${tc#*.}" --from "$OLD${p%%:*}/" \
			--to "$(new_url "${p#*:}")" --only-verified --apply \
			>"$W/rewrite.out" 2>&1
		rc=$?
		cat "$W/rewrite.out" >>"$W/rows.out"
		cat "$W/rewrite.out" >>"$W/rows.now"
		[ $rc -eq 0 ] || die "rewrite of $tc (${p%%:*}): $(tail -3 "$W/rewrite.out")" $rc
	done
done

ctl report --label s5 --json >"$W/report.json" || die "report failed"
objects=$(sed -n 's/^verified \([0-9]*\) objects.*/\1/p' "$W/verify.out")
copied=0
for f in "$W"/plan[0-9]; do copied=$((copied + $(wc -l <"$f") - 1)); done
rows=$(jsql "SELECT count(*) FROM rewrite_changes c JOIN rewrites r
	ON r.id=c.rewrite_id WHERE r.kind='prefix' AND r.state='applied'
	AND c.state='applied'")
alone=$(sed -n 's/^  \([0-9]*\) rows left alone.*/\1/p' "$W/rows.now" |
	awk '{s += $1} END {print s + 0}')
echo "s5: $copied objects copied, ${objects:-0} verified, $rows rows rewritten, $alone rows left alone (not a verified object)"
