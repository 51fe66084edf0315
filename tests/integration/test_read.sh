#!/bin/bash
# Reads: a large object streams with read-ahead (few, long ranged GETs),
# random reads return the right bytes, an empty object reads as empty, and
# an object replaced behind mediafs's back is detected (If-Match) and seen
# after the directory is listed again.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" reads
s3 mkbucket reads

head -c $((48 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"
head -c 1000 /dev/urandom >"$T/small"
s3 put reads big/object.bin "$T/big"
s3 put reads small.bin "$T/small"
: | s3 put reads empty.bin -

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

m=$(req_mark)
t0=$(date +%s.%N)
got=$(md5sum <"$MNT/big/object.bin" | cut -d' ' -f1)
t1=$(date +%s.%N)
want=$(md5sum <"$T/big" | cut -d' ' -f1)
[ "$got" = "$want" ] && pass "48 MiB object streams with the right checksum" ||
	fail "big read" "md5 $got != $want"
gets=$(req_since "$m" '^GET /reads/big')
mbs=$(echo "48 / ($t1 - $t0)" | bc -l 2>/dev/null | cut -c1-6)
# the first 1 MiB, then one streamed GET for the rest once the reads are
# seen to be sequential (a few more when the kernel's reads overtake the
# first ones: each then fetches only its own pages); one GET per 128 KiB
# kernel read would be 384
[ "$gets" -ge 2 ] && [ "$gets" -le 24 ] &&
	pass "sequential read-ahead: $gets ranged GETs for 48 MiB, not 384 (${mbs:-?} MB/s)" ||
	fail "read-ahead" "$gets GETs for 48 MiB"

ok=1
for off in 0 1 4095 4096 1048575 33554432 50331648; do
	a=$(dd if="$MNT/big/object.bin" bs=1 skip="$off" count=7000 2>/dev/null | md5sum)
	b=$(dd if="$T/big" bs=1 skip="$off" count=7000 2>/dev/null | md5sum)
	[ "$a" = "$b" ] || { ok=0; echo "offset $off differs" >&2; }
done
[ $ok = 1 ] && pass "random reads at 7 offsets return the right bytes" ||
	fail "random reads" "bytes differ"
tail_b=$(tail -c 100 "$MNT/big/object.bin" | md5sum)
[ "$tail_b" = "$(tail -c 100 "$T/big" | md5sum)" ] && pass "read of the last 100 bytes" ||
	fail "tail read" "differs"

m=$(req_mark)
[ -f "$MNT/empty.bin" ] && [ "$(stat -c %s "$MNT/empty.bin")" = 0 ] &&
	[ -z "$(cat "$MNT/empty.bin")" ] && [ "$(req_since "$m")" -eq 0 ] &&
	pass "empty object: size 0, reads empty, no request" ||
	fail "empty object" "size or requests wrong"

cmp -s "$MNT/small.bin" "$T/small" && pass "small object" || fail "small object" "differs"

# replaced behind our back: the cached etag no longer matches
head -c 1000 /dev/urandom >"$T/small2"
s3 put reads small.bin "$T/small2"
if cat "$MNT/small.bin" >/dev/null 2>"$T/err"; then
	# within the listing's TTL the old version may still be served whole
	# from the kernel's pages or the data cache (its ETag is the listed
	# one), never a mix
	cmp -s "$MNT/small.bin" "$T/small" && pass "stale read came whole from a cache of the listed version" ||
		fail "replaced object" "read neither version"
else
	grep -q "Stale file handle" "$T/err" && pass "replaced object: ESTALE, not old bytes" ||
		fail "replaced object" "$(cat "$T/err")"
	grep -q "changed on the server while open" "$LOG" && pass "the log says the object changed" ||
		fail "replaced object log" "no log line"
	# the next lookup lists the directory again and reads the new bytes
	sleep 0.1
	ls "$MNT" >/dev/null
	cmp -s "$MNT/small.bin" "$T/small2" && pass "after re-listing, the new version is read" ||
		echo "SKIP: new version after re-list: the kernel keeps the entry for the TTL"
fi

umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
