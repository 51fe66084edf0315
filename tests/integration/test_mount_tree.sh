#!/bin/bash
# A tree of >= 2,000 objects uploaded by another client (boto3), with
# folders whose objects are only 2+ levels deep and odd names, seen through
# the mount with ls -lR, find, du, stat and md5sum; request counts from the
# server's log for cold, warm and remounted listings.
. "$(dirname "$0")/../lib/common.sh"

MAN=${FIXTURES:?}/tree.manifest
CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" tree

N=$(wc -l <"$MAN")
# D = directories, the root included
D=$(/usr/bin/python3 - "$MAN" <<'PY'
import sys
dirs = {''}
for line in open(sys.argv[1], encoding='utf-8'):
    parts = line.split('\t')[0].split('/')
    for i in range(1, len(parts)):
        dirs.add('/'.join(parts[:i]))
print(len(dirs))
PY
)
LIST_MAX=$((D + (N + 999) / 1000))

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",cache_ttl=600 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
# the mount itself lists the root once (so bad credentials fail the mount)
m=$(req_mark)
ls -lR --time-style=full-iso "$MNT" >"$T/lslR.cold" 2>"$T/lslR.err"
lists=$(req_since "$m" '^GET /tree\?.*list-type=2')
heads=$(req_since "$m" '^HEAD ')
total=$(req_since "$m")
if [ "$lists" -le "$LIST_MAX" ] && [ "$heads" -eq 0 ] && [ "$total" -eq "$lists" ]; then
	pass "cold ls -lR of $N objects in $D dirs: $lists LIST (<= $LIST_MAX), 0 HEAD"
else
	fail "cold ls -lR request count" "LIST=$lists (max $LIST_MAX) HEAD=$heads total=$total"
fi
[ -s "$T/lslR.err" ] && fail "ls -lR errors" "$(head -3 "$T/lslR.err")" || pass "ls -lR without errors"

# find and sizes match the source
(cd "$MNT" && find . -type f -printf '%P\t%s\n') | LC_ALL=C sort >"$T/found"
cut -f1,2 "$MAN" | LC_ALL=C sort >"$T/expected"
if cmp -s "$T/found" "$T/expected"; then
	pass "find lists every object with its size ($N files)"
else
	fail "find matches the source" "$(diff "$T/expected" "$T/found" | head -5)"
fi
ndirs=$(cd "$MNT" && find . -mindepth 1 -type d | wc -l)
[ "$ndirs" -eq $((D - 1)) ] && pass "find sees all $((D - 1)) directories, nested-only ones included" ||
	fail "directories" "find saw $ndirs, expected $((D - 1))"

bytes=$(du -sb "$MNT" | cut -f1)
want=$(awk -F'\t' '{s += $2} END {print s}' "$MAN")
# du -b counts directories as 0 bytes here
[ "$bytes" -eq "$want" ] && pass "du -sb = $want bytes" || fail "du -sb" "$bytes != $want"

key=$(awk -F'\t' '$1 ~ /^only-deep\// {print $1; exit}' "$MAN")
size=$(awk -F'\t' -v k="$key" '$1 == k {print $2}' "$MAN")
st=$(stat -c '%s %A %F' "$MNT/$key")
[ "$st" = "$size -rw-r--r-- regular file" ] || [ "$st" = "$size -rw-r--r-- regular empty file" ] &&
	pass "stat of a 4-level-deep file" || fail "stat" "'$st' for size $size"

# md5sum of every file through the mount
m=$(req_mark)
(cd "$MNT" && awk -F'\t' '{print $3 "  " $1}' "$MAN" | md5sum --quiet -c -) >"$T/md5.out" 2>&1 &&
	pass "md5sum of all $N files matches the source" ||
	fail "md5sum through the mount" "$(head -3 "$T/md5.out")"
gets=$(req_since "$m" '^GET /tree/')
heads=$(req_since "$m" '^HEAD ')
nonempty=$(awk -F'\t' '$2 > 0' "$MAN" | wc -l)
[ "$heads" -eq 0 ] && [ "$gets" -le "$nonempty" ] &&
	pass "reading $N files: $gets GET, 0 HEAD" ||
	fail "read request count" "GET=$gets (files with data: $nonempty) HEAD=$heads"

# warm: everything from the kernel or the metadata cache
m=$(req_mark)
ls -lR --time-style=full-iso "$MNT" >"$T/lslR.warm"
(cd "$MNT" && find . >/dev/null && du -s . >/dev/null)
n=$(req_since "$m")
[ "$n" -eq 0 ] && pass "warm ls -lR, find, du: 0 requests" || fail "warm listing" "$n requests"
cmp -s "$T/lslR.cold" "$T/lslR.warm" && pass "warm listing identical to cold" ||
	fail "warm listing" "differs from cold"

umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"

# remount within the TTL: the persistent cache answers
m=$(req_mark)
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",cache_ttl=600 s3t: ||
	{ fail remount "mediafs did not mount"; exit 1; }
ls -lR --time-style=full-iso "$MNT" >"$T/lslR.remount"
(cd "$MNT" && find . -type f | wc -l >/dev/null && du -sb . >/dev/null)
stat "$MNT/$key" >/dev/null
n=$(req_since "$m")
[ "$n" -eq 0 ] && pass "mount + ls -lR + find + du after remount: 0 requests" ||
	fail "remount listing" "$n requests: $(tail -n +"$((m + 1))" "$S3_REQLOG" | head -3)"
cmp -s "$T/lslR.cold" "$T/lslR.remount" && pass "remounted listing identical" ||
	fail "remount listing" "differs from the first"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

# past the TTL the listings are fetched again
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",cache_ttl=1 s3t: ||
	{ fail "mount ttl=1" "mediafs did not mount"; exit 1; }
sleep 2.2
m=$(req_mark)
t0=$(date +%s%N)
ls -lR "$MNT" >/dev/null
secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
lists=$(req_since "$m" 'list-type=2')
# entries also expire while ls runs: a folder is listed again at most once
# per TTL (1 s) of the walk, so the bound grows with the walk's time (on a
# loaded machine the walk takes seconds: 271 LISTs were seen at load 89)
[ "$lists" -ge $((D / 2)) ] && [ "$lists" -le $(( (secs + 2) * LIST_MAX )) ] &&
	pass "after cache_ttl expiry, ls -lR lists again ($lists LIST in ${secs} s, at most $(( (secs + 2) * LIST_MAX )))" ||
	fail "ttl expiry" "$lists LIST requests in $secs s (D=$D LIST_MAX=$LIST_MAX)"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
grep -q "warning\|error" "$LOG" && fail "daemon log clean" "$(grep -m3 'warning\|error' "$LOG")" ||
	pass "no warnings in the daemon log"
