#!/bin/bash
# cp -r and rsync -a into a mounted bucket: one upload per file under its
# final name with its final metadata; rsync's temp-write-utimens-chmod-
# rename costs no CopyObject and no DELETE; a second rsync -a sends nothing
# and costs 0 requests; every byte checked through the mount and directly
# on the server; the journal holds a complete row per upload.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
JOURNAL=$T/journal.db
write_conf "$CONF" wcopy
s3 mkbucket wcopy

N=120
NDIRS=$(/usr/bin/python3 "$LIB_DIR/mktree.py" "$T/src" $N --big 100000000)
NFILES=$((N + 1))
# negative_ttl=3600 (>= cache_ttl): names missing from a listing are not
# asked of the store, so the request counts below stay exact; creating a
# name in a directory listed over negative_ttl ago costs one HEAD by
# default (test_outside_writer_seen_by_name covers that check)
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$JOURNAL",negative_ttl=3600 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

# ---- cp -r
m=$(req_mark)
t0=$(date +%s.%N)
cp -r "$T/src" "$MNT/cp" || fail "cp -r" "exit $?"
t1=$(date +%s.%N)
wait_uploads "$JOURNAL" || fail "cp -r uploads" "not finished"
puts=$(req_since "$m" '^PUT /wcopy/cp/.*[^/] 200( [-0-9]+)?$')
markers=$(req_since "$m" '^PUT /wcopy/cp/.*/ 200( [-0-9]+)?$')
parts=$(req_since "$m" 'partNumber=')
mpu=$(req_since "$m" '^POST .*uploads')
copies=$(req_since "$m" '^COPY ')
deletes=$(req_since "$m" '^(DELETE|POST /wcopy\?delete)')
heads=$(req_since "$m" '^HEAD ')
total=$(req_since "$m")
# the 70 MiB file is a multipart upload: begin + parts + complete; every
# directory gets files, so no marker is needed
max=$((NFILES + parts + 2))
[ "$copies" -eq 0 ] && [ "$deletes" -eq 0 ] && [ "$heads" -eq 0 ] && [ "$markers" -eq 0 ] && [ "$total" -le "$max" ] &&
	pass "cp -r of $NFILES files in $((NDIRS + 1)) dirs: $total requests (1 per file + $((parts + 1)) for the multipart file), no marker, 0 COPY/DELETE/HEAD" ||
	fail "cp -r request count" "total $total (max $max): PUT $puts markers $markers parts $parts COPY $copies DELETE $deletes HEAD $heads"
[ "$mpu" -eq 1 ] && [ "$parts" -ge 9 ] && pass "100 MB file went up as a multipart upload ($parts parts)" ||
	fail "multipart" "$mpu uploads, $parts parts"
echo "cp -r returned after $(echo "$t1 - $t0" | bc) s" >&2

(cd "$T/src" && find . -type f -exec md5sum {} + | sed 's|  \./|  |' | LC_ALL=C sort -k2) >"$T/src.md5"
(cd "$MNT/cp" && find . -type f -exec md5sum {} + | sed 's|  \./|  |' | LC_ALL=C sort -k2) >"$T/mnt.md5"
cmp -s "$T/src.md5" "$T/mnt.md5" && pass "cp -r: every file reads back through the mount" ||
	fail "cp -r read-back" "$(diff "$T/src.md5" "$T/mnt.md5" | head -3)"
s3 manifest wcopy cp/ | awk -F'\t' '{print $3 "  " $1}' | LC_ALL=C sort -k2 >"$T/server.md5"
cmp -s "$T/src.md5" "$T/server.md5" && pass "cp -r: every object on the server has the right bytes" ||
	fail "cp -r on the server" "$(diff "$T/src.md5" "$T/server.md5" | head -3)"

# ---- rsync -a
m=$(req_mark)
rsync -a --stats "$T/src/" "$MNT/rs/" >"$T/rsync1" || fail "rsync -a" "exit $?"
wait_uploads "$JOURNAL" || fail "rsync uploads" "not finished"
copies=$(req_since "$m" '^COPY ')
deletes=$(req_since "$m" '^(DELETE|POST /wcopy\?delete)')
heads=$(req_since "$m" '^HEAD ')
tmpkeys=$(req_since "$m" '/\.[^/]*\.[A-Za-z0-9]{6} ')
parts=$(req_since "$m" 'partNumber=')
total=$(req_since "$m")
max=$((NFILES + parts + 2))
[ "$copies" -eq 0 ] && [ "$deletes" -eq 0 ] && [ "$tmpkeys" -eq 0 ] && [ "$total" -le "$max" ] &&
	pass "rsync -a of $NFILES files: $total requests (<= $max), no COPY, no DELETE, no temp-name upload" ||
	fail "rsync request count" "total $total (max $max) COPY $copies DELETE $deletes HEAD $heads temp-name $tmpkeys"

m=$(req_mark)
rsync -a --stats "$T/src/" "$MNT/rs/" >"$T/rsync2"
sent=$(awk -F': ' '/Number of regular files transferred/ {print $2}' "$T/rsync2")
n=$(req_since "$m")
[ "$sent" = 0 ] && [ "$n" -eq 0 ] && pass "second rsync -a: 0 files transferred, 0 requests" ||
	fail "second rsync" "$sent transferred, $n requests"

umount_fs "$LOG" "$MNT" && pass "unmount waits for the queue and exits cleanly" || fail "unmount" "see $LOG"
m=$(req_mark)
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$JOURNAL",negative_ttl=3600 s3t: ||
	{ fail remount "mediafs did not mount"; exit 1; }
rsync -a --stats "$T/src/" "$MNT/rs/" >"$T/rsync3"
sent=$(awk -F': ' '/Number of regular files transferred/ {print $2}' "$T/rsync3")
n=$(req_since "$m")
[ "$sent" = 0 ] && [ "$n" -eq 0 ] && pass "rsync -a after remount: 0 transferred, 0 requests" ||
	fail "rsync after remount" "$sent transferred, $n requests"
s3 manifest wcopy rs/ | awk -F'\t' '{print $3 "  " $1}' | LC_ALL=C sort -k2 >"$T/server-rs.md5"
cmp -s "$T/src.md5" "$T/server-rs.md5" && pass "rsync -a: every object on the server has the right bytes" ||
	fail "rsync on the server" "$(diff "$T/src.md5" "$T/server-rs.md5" | head -3)"

# metadata on the server: rclone's mtime, s3fs's mode
f=$(cd "$T/src" && find . -type f -name '0004*' | head -1)
want=$(stat -c %Y "$T/src/$f")
s3 head wcopy "rs/${f#./}" >"$T/head"
grep -q "^mtime=$want\." "$T/head" && grep -q "^mode=33188$" "$T/head" &&
	pass "x-amz-meta-mtime (rsync's mtime) and x-amz-meta-mode on the server" ||
	fail "server metadata" "$(cat "$T/head") (want mtime $want)"

# the journal
rows=$(sqlite3 "$JOURNAL" "select count(*) from uploads where state='done' and key like 'rs/%'")
bad=$(sqlite3 "$JOURNAL" "select count(*) from uploads where state='done' and key like 'rs/%' and (sha256 is null or length(sha256)<>64 or etag is null or etag='' or url not like 'http://%' or size is null or mtime_ns is null or content_type is null)")
[ "$rows" -eq "$NFILES" ] && [ "$bad" -eq 0 ] && pass "journal: $rows complete rows (key, URL, size, sha256, etag, type, mtime)" ||
	fail "journal rows" "$rows rows, $bad incomplete"
k=$(sqlite3 "$JOURNAL" "select key from uploads where key like 'rs/%' and size < 400000 limit 1")
jsha=$(sqlite3 "$JOURNAL" "select sha256 from uploads where key='$k'")
fsha=$(sha256sum <"$T/src/${k#rs/}" | cut -d' ' -f1)
[ "$jsha" = "$fsha" ] && pass "journal sha256 matches the file" || fail "journal sha256" "$jsha != $fsha"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
