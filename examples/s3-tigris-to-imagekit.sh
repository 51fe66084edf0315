#!/bin/sh
# Scenario S3 (docs/SCENARIOS.md): venue images on an S3-compatible CDN
# (Tigris) -> ImageKit folders /venues/{slug}/ under their own names, one
# country at a time, then the venues.venue_images JSON arrays rewritten
# element by element from the journal. mediafs + mediactl + sqlite3/psql +
# coreutils only.
#
#   s3-tigris-to-imagekit.sh COUNTRY [--limit N]   migrate one country (the
#                       first N venues with --limit: a test batch; run it
#                       again without, or after a crash or a kill: it resumes)
#   s3-tigris-to-imagekit.sh rollback COUNTRY       restore that country's
#                       arrays byte for byte, delete what it uploaded
#
# Inputs (environment):
#   S3_ENDPOINT S3_REGION S3_BUCKET S3_KEY_ID S3_SECRET   the Tigris bucket
#   S3_PUBLIC_URL  the URL prefix the database holds for the bucket's keys
#                  (https://cdn.example.com/)
#   S3_FOLDER      the bucket's folder holding the images (default uploads)
#   IK_PRIVATE_KEY IK_URL_ENDPOINT IK_API_URL IK_UPLOAD_URL   ImageKit
#   DATABASE_URL   postgres://… (psql) or sqlite:FILE (sqlite3): countries(id,
#                  name), cities(id, country_id), venues(id, slug, city_id,
#                  venue_images: a JSON array of {"url", "upload_status", …})
#   S3_WORK        a directory of its own (mount, config, cache, journal, and
#                  per country LABEL.csv, LABEL.plan, LABEL.report.json)
# Ends with "s3: COUNTRY: N images on ImageKit, N venues rewritten, N
# missing from the bucket"; exit 0 when every image of the batch is on
# ImageKit, verified, and its elements rewritten.
set -u

die() { echo "s3: $1" >&2; exit "${2:-1}"; }
usage() { die "usage: $0 COUNTRY [--limit N] | rollback COUNTRY" 2; }
for v in S3_ENDPOINT S3_REGION S3_BUCKET S3_KEY_ID S3_SECRET S3_PUBLIC_URL \
	IK_PRIVATE_KEY IK_URL_ENDPOINT IK_API_URL IK_UPLOAD_URL DATABASE_URL \
	S3_WORK; do
	eval "[ -n \"\${$v:-}\" ]" || die "set $v (see the head of $0)" 2
done
export S3_KEY_ID S3_SECRET IK_PRIVATE_KEY
ROLLBACK=0 LIMIT=
[ "${1:-}" = rollback ] && { ROLLBACK=1; shift; }
[ $# -ge 1 ] && [ -n "$1" ] || usage
COUNTRY=$1
shift
if [ $# -gt 0 ]; then
	[ "$1" = --limit ] && [ $# -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null || usage
	LIMIT=$2
fi
FOLDER=${S3_FOLDER:-uploads}
PREFIX=${S3_PUBLIC_URL%/}/$FOLDER/
# the batch's label: the country's name in lower case, other characters -
L=s3-$(printf '%s' "$COUNTRY" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '-')

W=$S3_WORK
MNT=$W/mnt
CONF=$W/mediafs.conf
J=$W/journal.db
# the journal, read beside the mount that writes it: wait for its lock
# (without, a read at the wrong moment saw "database is locked" and came
# back empty: a rollback then left every row in place, exit 0)
jsql() { sqlite3 -bail -cmd ".timeout 30000" "$J" "$@"; }
mkdir -p "$MNT" "$W/cache" || die "cannot use $W"
ctl() { mediactl --journal "$J" --config "$CONF" "$@"; }
q() { printf '%s' "$1" | sed "s/'/''/g"; }	# an SQL string's inside
case $DATABASE_URL in
sqlite:*) sql() { sqlite3 -bail -csv "${DATABASE_URL#sqlite:}"; }
	ELEMS="json_each(v.venue_images) j"
	URL="coalesce(j.value->>'original_tigris_url', j.value->>'url')" ;;
*)	sql() { psql -X -q -t --csv -v ON_ERROR_STOP=1 "$DATABASE_URL"; }
	ELEMS="jsonb_array_elements(v.venue_images) j"
	URL="coalesce(j->>'original_tigris_url', j->>'url')" ;;
esac
WHERE="city_id IN (SELECT c.id FROM cities c JOIN countries k ON k.id = c.country_id WHERE k.name = '$(q "$COUNTRY")')"

umask 077
cat >"$CONF.new" <<EOF || die "cannot write $CONF"
[tigris]
type = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = $S3_BUCKET
access_key_id = env:S3_KEY_ID
secret_access_key = env:S3_SECRET
public_url = ${S3_PUBLIC_URL%/}/

[ik]
type = imagekit
private_key = env:IK_PRIVATE_KEY
url_endpoint = $IK_URL_ENDPOINT
api_url = $IK_API_URL
upload_url = $IK_UPLOAD_URL
EOF
mv "$CONF.new" "$CONF"
umask 022

# This country's rewrites (the journal keeps each one's arguments, its
# label among them); those a killed run left planned are applied first
# (compare-and-set: an element already rewritten is not rewritten twice).
rewrites() {
	jsql "SELECT id FROM rewrites WHERE kind='map' AND tbl='venues'
		AND state='$1' AND args LIKE '% --label ''$L''%' ORDER BY id $2" 2>/dev/null
}
finish_rewrites() {
	for id in $(rewrites planned ASC); do
		ctl rewrite apply "$id" --db "$DATABASE_URL" >>"$W/$L.rows.out" ||
			die "rewrite #$id: see $W/$L.rows.out"
	done
}

if [ $ROLLBACK -eq 1 ]; then
	[ -f "$J" ] || { echo "s3: nothing to roll back"; exit 0; }
	finish_rewrites
	rc=0
	for id in $(rewrites applied DESC); do
		ctl rollback --rewrite "$id" --db "$DATABASE_URL" >>"$W/$L.rollback.out" || rc=1
	done
	ctl rollback --label "$L" >>"$W/$L.rollback.out" || rc=1
	[ $rc -eq 0 ] && echo "s3: $COUNTRY rolled back" ||
		echo "s3: $COUNTRY rolled back, some elements or files were kept (changed since): see $W/$L.rollback.out"
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

# ---- the batch: image -> venue slug for the country's venues (the first
# N with --limit), straight from the database (an element migrated before
# counts by its original_tigris_url: a re-run's plan is the whole batch)
VEN="SELECT v.* FROM venues v WHERE $WHERE ORDER BY v.id${LIMIT:+ LIMIT $LIMIT}"
{
	echo "image,slug"
	sql <<EOF
SELECT DISTINCT substr($URL, length('$(q "$PREFIX")') + 1), v.slug
  FROM ($VEN) v, $ELEMS
 WHERE substr($URL, 1, length('$(q "$PREFIX")')) = '$(q "$PREFIX")';
EOF
} >"$W/$L.csv.new" && mv "$W/$L.csv.new" "$W/$L.csv" || die "the database query failed"
[ -d "$MNT/tigris/$FOLDER" ] || die "no folder $FOLDER in bucket $S3_BUCKET"

# ---- plan (again at every run: --limit may have grown; the copy skips
# what an earlier run copied), copy, verify
ctl plan --from "$MNT/tigris/$FOLDER" --to "$MNT/ik" \
	--map "venue=$W/$L.csv,key=image,value=slug,miss=other_country,missing=not_in_bucket" \
	--rule "{img} -> venues/{venue[img]}/{img}" --label "$L" -o "$W/$L.plan" \
	>"$W/$L.plan.out" || { rc=$?; die "plan failed: $(tail -3 "$W/$L.plan.out")" $rc; }
# (a failed copy still writes LABEL.report.json: it counts the failed files)
ctl copy "$W/$L.plan" --jobs 8 >"$W/$L.copy.out" || {
	rc=$?; ctl report --label "$L" --json >"$W/$L.report.json"
	die "copy: some files failed (run again): $(tail -3 "$W/$L.copy.out")" $rc; }
ctl verify --label "$L" >"$W/$L.verify.out" || { rc=$?; die "verify: $(tail -3 "$W/$L.verify.out")" $rc; }

# ---- the arrays: each element whose image is on ImageKit gets its new
# URL and fields; the others keep theirs
finish_rewrites
ctl rewrite map --db "$DATABASE_URL" --table venues --column venue_images \
	--json-field url --label "$L" --set upload_status=completed \
	--set imagekit_file_id='{file_id}' --set original_tigris_url='{old_url}' \
	--set imagekit_uploaded_at='{uploaded_at}' --where "$WHERE" \
	--apply >"$W/$L.rewrite.out" 2>&1
rc=$?
cat "$W/$L.rewrite.out" >>"$W/$L.rows.out"
[ $rc -eq 0 ] || die "rewrite: $(tail -3 "$W/$L.rewrite.out")" $rc

ctl report --label "$L" --json >"$W/$L.report.json" || die "report failed"
ctl report --label "$L"
images=$(($(wc -l <"$W/$L.plan") - 1))
elems=$(jsql "SELECT count(*) FROM rewrite_changes c JOIN rewrites r
	ON r.id=c.rewrite_id WHERE r.id IN (0$(rewrites applied ASC | sed 's/^/,/' | tr -d '\n'))
	AND c.state='applied'")
missing=$(grep -c '"reason": *"not_in_bucket"' "$W/$L.plan.skipped")
echo "s3: $COUNTRY: $images images on ImageKit, $elems venues rewritten, $missing missing from the bucket"
