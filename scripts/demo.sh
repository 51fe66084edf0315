#!/bin/bash
# make demo: mediafs on localhost, no account anywhere.
# Starts a local S3 server (OpenStack Swift + s3api), mounts an empty bucket
# with mediafs, copies a generated tree of extension-less images in with
# cp -r, lists it, shows what each file cost in requests and what the
# journal recorded, re-runs rsync -a to show it sends nothing, remounts to
# show the persistent cache answering with zero requests, checks every
# byte on the server with an independent S3 client, and cleans up.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/demo	# on the repo's disk: Swift needs user xattrs
MNT=$D/mnt
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
reqs() { tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -cE "${2:-.}" || true; }

. tests/lib/swift.sh
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || true
	[ -n "${SWIFT_DIR:-}" ] && swift_stop
}
trap cleanup EXIT
rm -rf "$D"
mkdir -p "$D"

step "1. a local S3 server (Swift s3api on 127.0.0.1, verifies SigV4) and an empty bucket"
swift_start "$D/swift"
/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket media
echo "endpoint http://127.0.0.1:$S3_PORT, bucket 'media'"

step "2. the config: one [remote] section, the secret from the environment"
cat >"$D/mediafs.conf" <<EOC
[media]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = media
access_key_id = test:tester
secret_access_key = env:DEMO_S3_SECRET
EOC
cat "$D/mediafs.conf"
export DEMO_S3_SECRET=testing
J=$D/journal.db
OPTS="config=$D/mediafs.conf,cache_dir=$D/cache,journal=$J"

step "3. mount it: mediafs -o config=… media: $MNT"
mkdir -p "$MNT"
./mediafs -o "$OPTS" media: "$MNT"
mountpoint "$MNT"

step "4. a generated backup: 60 images without extensions (scenario S1's layout)"
/usr/bin/python3 scripts/gen-images.py "$D/backup" 60
find "$D/backup" -maxdepth 2 | head -5
N=$(find "$D/backup" -type f | wc -l)

step "5. cp -r it into the bucket"
m=$(wc -l <"$S3_REQLOG")
cp -r "$D/backup/." "$MNT/backup"
echo "cp -r returned; uploads run in the background, recorded in the journal first"
while [ "$(sqlite3 "$J" "select count(*) from uploads where state='pending'")" != 0 ]; do sleep 0.1; done
echo "$N files on the server: $(reqs "$m") requests ($(reqs "$m" '^PUT') PUT, $(reqs "$m" '^(COPY|DELETE|HEAD)') COPY/DELETE/HEAD)"

step "6. list it: ls, find, du, getfattr, the journal"
ls -l "$MNT/backup" "$MNT/backup/Profile-Pics"
echo "files: $(find "$MNT" -type f | wc -l), directories: $(find "$MNT" -mindepth 1 -type d | wc -l)"
du -sh "$MNT"
f=$(find "$MNT/backup/Profile-Pics/buyer" -type f | head -1)
getfattr -d "$f"
sqlite3 -header -column "$J" "select key, size, substr(sha256,1,16) as sha256, etag, state from uploads where key not like '%/' limit 3"

step "7. rsync -a the same tree again: nothing to send, no request"
m=$(wc -l <"$S3_REQLOG")
rsync -a --stats "$D/backup/" "$MNT/backup/" | grep "files transferred"
echo "requests: $(reqs "$m")"

step "8. unmount, remount: the metadata cache answers, 0 requests"
fusermount3 -u "$MNT"
while pgrep -f "mediafs -o $OPTS" >/dev/null; do sleep 0.1; done
m=$(wc -l <"$S3_REQLOG")
./mediafs -o "$OPTS" media: "$MNT"
ls -lR "$MNT" >/dev/null
find "$MNT" -type f | wc -l >/dev/null
du -s "$MNT" >/dev/null
echo "ls -lR + find + du after remount: $(reqs "$m") requests"
fusermount3 -u "$MNT"

step "9. every byte checked on the server by another S3 client (boto3)"
(cd "$D/backup" && find . -type f -exec md5sum {} + | sed 's|  \./|  |' | sort -k2) >"$D/src.md5"
/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" manifest media backup/ |
	awk -F'\t' '{print $3 "  " $1}' | sort -k2 >"$D/server.md5"
cmp "$D/src.md5" "$D/server.md5" && echo "all $N objects identical to the source"

step "done: $N images copied in with cp -r at one request each; rsync re-run and remount cost nothing"
