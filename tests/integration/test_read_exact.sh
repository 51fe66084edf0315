#!/bin/bash
# The exact read path and the data cache, counted from the server's request
# log (GETs and the bytes their responses carried): sequential reads fetch
# each byte once (<= 1.05x), a sniffing read fetches at most 64 KiB, random
# 4 KiB reads cost <= 2x, concurrent readers of one file share its fetches,
# a re-read costs 0 requests (also after a remount), an object changed on
# the server is fetched anew, the sniffed type shows in
# user.mediafs.content_type without a HEAD, and the data cache's size bound
# holds.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" exact
s3 mkbucket exact

# gets_since MARK KEYRE / bytes_since MARK KEYRE: GETs of objects matching
# KEYRE after MARK, and the bytes their responses carried.
gets_since() { req_since "$1" "^GET /exact/$2 "; }
bytes_since() {
	tail -n +"$(($1 + 1))" "$S3_REQLOG" |
		awk -v re="^/exact/$2\$" '$1 == "GET" && $2 ~ re && $4 ~ /^[0-9]+$/ { s += $4 } END { print s + 0 }'
}
# ratio A B: A/B with 3 decimals; le A B: A <= B (decimals)
ratio() { echo "scale=3; $1 / $2" | bc; }
le() { [ "$(echo "$1 <= $2" | bc)" = 1 ]; }

head -c 1000000 /dev/urandom >"$T/one"
head -c 20000000 /dev/urandom >"$T/twenty"
head -c 2000000 /dev/urandom >"$T/rand"
head -c 2000000 /dev/urandom >"$T/conc"
# a PNG signature and header, then noise: uploaded without a type
{ printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00'; head -c 300000 /dev/urandom; } >"$T/pic"
s3 put exact one.bin "$T/one"
s3 put exact twenty.bin "$T/twenty"
s3 put exact rand.bin "$T/rand"
s3 put exact conc.bin "$T/conc"
s3 put exact pic "$T/pic"
head -c 300000 /dev/urandom >"$T/half"
for i in 1 2 3 4 5 6 7 8; do s3 put exact "small/f$i" "$T/half"; done

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
ls -R "$MNT" >/dev/null

# sequential reads
m=$(req_mark)
cmp -s "$MNT/one.bin" "$T/one" || fail "1 MB read" "bytes differ"
g=$(gets_since "$m" one.bin) b=$(bytes_since "$m" one.bin)
r=$(ratio "$b" 1000000)
# the first 128 KiB read of a stream fetches up to 1 MiB: one GET; more
# when the kernel's next reads overtake the first, each then fetching only
# its own 128 KiB (at most 8)
le "$r" 1.05 && [ "$g" -ge 1 ] && [ "$g" -le 8 ] &&
	pass "cat of 1 MB: $g GETs, fetched/read $r" ||
	fail "1 MB sequential" "$g GETs, $b bytes (ratio $r)"

m=$(req_mark)
got=$(dd if="$MNT/twenty.bin" bs=1M 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got" = "$(md5sum <"$T/twenty" | cut -d' ' -f1)" ] || fail "20 MB read" "md5 differs"
g=$(gets_since "$m" twenty.bin) b=$(bytes_since "$m" twenty.bin)
r=$(ratio "$b" 20000000)
le "$r" 1.05 && [ "$g" -le 40 ] &&
	pass "dd of 20 MB: $g GETs, fetched/read $r" ||
	fail "20 MB sequential" "$g GETs, $b bytes (ratio $r)"

# a type sniffer's read: one small GET, and the type it finds is kept;
# the store's own type is asked once (one HEAD: it wins unless vague, and
# here it says binary/octet-stream), then both are cached
m=$(req_mark)
head -c 4096 "$MNT/pic" >/dev/null
b=$(bytes_since "$m" pic) g=$(gets_since "$m" pic)
[ "$b" -gt 0 ] && [ "$b" -le 65536 ] &&
	pass "a 4 KiB first read fetches $b bytes in $g GETs (<= 64 KiB)" ||
	fail "small first read" "$b bytes in $g GETs"
ct=$(getfattr --only-values -n user.mediafs.content_type "$MNT/pic" 2>/dev/null)
ct2=$(getfattr --only-values -n user.mediafs.content_type "$MNT/pic" 2>/dev/null)
[ "$ct" = image/png ] && [ "$ct2" = image/png ] &&
	[ "$(req_since "$m" '^HEAD')" -eq 1 ] &&
	pass "user.mediafs.content_type of an untyped PNG: $ct, sniffed from the read, one HEAD for two getfattr" ||
	fail "sniffed type" "'$ct' '$ct2', $(req_since "$m" '^HEAD') HEADs"

# random 4 KiB reads in one open file
m=$(req_mark)
"$SYS_PY" - "$MNT/rand.bin" "$T/rand" <<'PY' || fail "random reads" "bytes differ"
import os, random, sys
random.seed(7)
size = os.path.getsize(sys.argv[2])
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
ref = open(sys.argv[2], 'rb')
for _ in range(100):
    off = random.randrange(0, size // 4096) * 4096
    ref.seek(off)
    if os.pread(fd, 4096, off) != ref.read(4096):
        sys.exit(1)
PY
b=$(bytes_since "$m" rand.bin) g=$(gets_since "$m" rand.bin)
r=$(ratio "$b" $((100 * 4096)))
le "$r" 2 && [ "$g" -ge 50 ] &&
	pass "100 random 4 KiB reads: $g GETs, fetched/read $r" ||
	fail "random reads" "$g GETs, $b bytes (ratio $r)"

# two readers of one file at once share its fetches
m=$(req_mark)
md5sum "$MNT/conc.bin" >"$T/c1" & p1=$!
md5sum "$MNT/conc.bin" >"$T/c2" & p2=$!
wait $p1 $p2
want=$(md5sum <"$T/conc" | cut -d' ' -f1)
b=$(bytes_since "$m" conc.bin)
r=$(ratio "$b" 2000000)
grep -q "$want" "$T/c1" && grep -q "$want" "$T/c2" && le "$r" 1.05 &&
	pass "two concurrent readers of 2 MB: fetched/size $r" ||
	fail "concurrent readers" "$b bytes (ratio $r)"

# re-reads: nothing is fetched again
m=$(req_mark)
cmp -s "$MNT/one.bin" "$T/one" && cmp -s "$MNT/conc.bin" "$T/conc" &&
	[ "$(req_since "$m" '^GET /exact/')" -eq 0 ] &&
	pass "re-reading 3 MB: 0 requests" ||
	fail "re-read" "$(req_since "$m" '^GET /exact/') GETs"

umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"

# after a remount: from the data cache on disk
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache" s3t: ||
	{ fail remount "mediafs did not mount"; exit 1; }
m=$(req_mark)
cmp -s "$MNT/one.bin" "$T/one" && cmp -s "$MNT/twenty.bin" "$T/twenty" &&
	[ "$(req_since "$m")" -eq 0 ] &&
	pass "re-reading 21 MB after a remount: 0 requests" ||
	fail "re-read after remount" "$(req_since "$m") requests"
ct=$(getfattr --only-values -n user.mediafs.content_type "$MNT/pic" 2>/dev/null)
[ "$ct" = image/png ] && [ "$(req_since "$m")" -eq 0 ] &&
	pass "the sniffed type is kept across a remount" ||
	fail "sniffed type after remount" "'$ct', $(req_since "$m") requests"
umount_fs "$LOG" "$MNT" || fail "unmount 2" "see $LOG"

# changed on the server: the next listing brings the new ETag, and the
# cached bytes of the old one are not served. The same mount has a 1 MB
# data cache: 2.4 MB read through it leaves at most 1 MB on disk.
head -c 1000000 /dev/urandom >"$T/one2"
s3 put exact one.bin "$T/one2"
for i in 0 1 2 3 4 5; do head -c 400000 /dev/urandom >"$T/o$i"; s3 put exact "open/o$i" "$T/o$i"; done
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",cache_ttl=0,data_cache=1M s3t: ||
	{ fail remount "mediafs did not mount"; exit 1; }
m=$(req_mark)
cmp -s "$MNT/one.bin" "$T/one2" && [ "$(gets_since "$m" one.bin)" -ge 1 ] &&
	pass "an object changed on the server is read anew, not from the cache" ||
	fail "changed object" "old bytes or no GET"
for i in 1 2 3 4 5 6 7 8; do cat "$MNT/small/f$i" >/dev/null; done
ok=0
for i in $(seq 1 600); do
	used=$(find "$T/cache" -name '*.d' -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }')
	[ "$used" -le $((1024 * 1024)) ] && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] && pass "data_cache=1M holds after 2.4 MB read through it: $used bytes on disk" ||
	fail "size bound" "$used bytes on disk"
# and while the files read stay open: six of 400 KB (each may be kept,
# 2.4 MB together) open at once and read to the end (found by a review:
# the bound was enforced at close only, 8.9 MB for a 4 MB cache)
dused() { find "$T/cache" -name '*.d' -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }'; }
held=$("$SYS_PY" - "$MNT/open" "$T/cache" <<'EOP'
import os, subprocess, sys
fds = [os.open(os.path.join(sys.argv[1], 'o%d' % i), os.O_RDONLY) for i in range(6)]
n = 0
for fd in fds:
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        n += len(b)
out = subprocess.run(['find', sys.argv[2], '-name', '*.d', '-printf', '%b\n'],
                     capture_output=True, text=True).stdout.split()
print(n, sum(int(x) * 512 for x in out))
for fd in fds:
    os.close(fd)
EOP
)
[ "${held% *}" = 2400000 ] && [ "${held#* }" -le $((1024 * 1024)) ] && [ "$(dused)" -le $((1024 * 1024)) ] &&
	pass "data_cache=1M holds while six files of 400 KB are open and read: ${held#* } bytes on disk, then $(dused)" ||
	fail "size bound, files open" "read ${held% *} bytes; ${held#* } bytes on disk while open, $(dused) after"
# the data cache's directory read-only (a bind mount): reads go on in
# memory, the right bytes (before: every open for reading failed, EIO)
DATA=$(echo "$T"/cache/*/data)
if mount --bind "$DATA" "$DATA" 2>/dev/null && mount -o remount,bind,ro "$DATA" 2>/dev/null; then
	a=$(md5sum <"$MNT/open/o2" 2>&1 | cut -c1-32)
	b=$(md5sum <"$MNT/rand.bin" 2>&1 | cut -c1-32)
	umount "$DATA"
	[ "$a" = "$(md5sum <"$T/o2" | cut -c1-32)" ] && [ "$b" = "$(md5sum <"$T/rand" | cut -c1-32)" ] &&
		grep -q "data cache: no file in .*: reading in memory" "$LOG" &&
		pass "a read-only data cache directory: reads in memory, the right bytes" ||
		fail "read-only data cache" "md5 $a / $b"
else
	umount "$DATA" 2>/dev/null
	skip "read-only data cache" "cannot bind-mount $DATA read-only here"
fi
# the data cache's disk full (a 2 MiB tmpfs over it): a 20 MB read is
# right and fetches each range about once (a review: 107-204 GETs, up to
# 46x the bytes, as read-ahead fetched ranges it could not keep)
if mount -t tmpfs -o size=2m tmpfs "$DATA" 2>/dev/null; then
	m=$(req_mark)
	a=$(md5sum <"$MNT/twenty.bin" 2>&1 | cut -c1-32)
	umount "$DATA"
	g=$(gets_since "$m" twenty.bin) b=$(bytes_since "$m" twenty.bin)
	[ "$a" = "$(md5sum <"$T/twenty" | cut -c1-32)" ] && [ "$b" -le 60000000 ] &&
		pass "a full data cache disk: 20 MB read right in $g GETs, $(ratio "$b" 20000000)x the bytes" ||
		fail "full data cache disk" "md5 $a, $g GETs, $b bytes"
else
	skip "full data cache disk" "cannot mount a tmpfs over $DATA here"
fi
umount_fs "$LOG" "$MNT" && pass "clean unmount after the changes" || fail "unmount 3" "see $LOG"
