#!/bin/bash
# make demo: mediafs on localhost, no account anywhere.
# Starts a local S3 server (OpenStack Swift + s3api), fills a bucket with a
# generated "backup" of extension-less images (scenario S1's shape) using
# an independent S3 client, mounts it with mediafs, browses it with ls,
# find, du and getfattr, copies it out with cp -r, checks every byte,
# remounts to show the persistent cache answering with zero requests, and
# cleans up.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/demo	# on the repo's disk: Swift needs user xattrs
MNT=$D/mnt
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

. tests/lib/swift.sh
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || true
	[ -n "${SWIFT_DIR:-}" ] && swift_stop
}
trap cleanup EXIT
rm -rf "$D"
mkdir -p "$D"

step "1. a local S3 server (Swift s3api on 127.0.0.1, verifies SigV4)"
swift_start "$D/swift"
echo "endpoint http://127.0.0.1:$S3_PORT, access key test:tester"

step "2. a generated backup: 60 images without extensions, uploaded with boto3"
/usr/bin/python3 scripts/gen-images.py "$D/backup" 60
/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket backup
(cd "$D/backup" && find . -type f -printf '%P\n') | while IFS= read -r k; do
	/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" put backup "$k" "$D/backup/$k"
done
echo "$(find "$D/backup" -type f | wc -l) objects in bucket 'backup'"

step "3. the config: one [remote] section, secret from the environment"
cat >"$D/mediafs.conf" <<EOC
[backup]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = backup
access_key_id = test:tester
secret_access_key = env:DEMO_S3_SECRET
EOC
cat "$D/mediafs.conf"
export DEMO_S3_SECRET=testing

step "4. mount it: mediafs -o config=$D/mediafs.conf backup: $MNT"
mkdir -p "$MNT"
m=$(wc -l <"$S3_REQLOG")
./mediafs -o config="$D/mediafs.conf",cache_dir="$D/cache" backup: "$MNT"
mountpoint "$MNT"

step "5. browse: ls, find, du, getfattr"
ls -l "$MNT" "$MNT/Profile-Pics"
echo "files: $(find "$MNT" -type f | wc -l), directories: $(find "$MNT" -mindepth 1 -type d | wc -l)"
du -sh "$MNT"
f=$(find "$MNT/Profile-Pics/buyer" -type f | head -1)
getfattr -d "$f"
echo "requests so far: $(tail -n +$((m + 1)) "$S3_REQLOG" | grep -c 'list-type') LIST," \
     "$(tail -n +$((m + 1)) "$S3_REQLOG" | grep -c '^HEAD') HEAD"

step "6. copy it out with cp -r and check every byte"
cp -r "$MNT" "$D/copy"
diff -r "$D/backup" "$D/copy" && echo "cp -r: $(find "$D/copy" -type f | wc -l) files, identical to the source"

step "7. unmount, remount: the metadata cache answers, 0 requests"
fusermount3 -u "$MNT"
sleep 0.3
m=$(wc -l <"$S3_REQLOG")
./mediafs -o config="$D/mediafs.conf",cache_dir="$D/cache" backup: "$MNT"
ls -lR "$MNT" >/dev/null
find "$MNT" -type f | wc -l >/dev/null
du -s "$MNT" >/dev/null
echo "ls -lR + find + du after remount: $(tail -n +$((m + 1)) "$S3_REQLOG" | wc -l) requests"
fusermount3 -u "$MNT"

step "done: mediafs mounted a bucket, listed $(find "$D/backup" -type f | wc -l) objects, copied them out byte-exact"
echo "(writing into a mount arrives with the write path; see README, Status)"
