#!/bin/bash
# Outside writers (issue #15, defect 9): another client writes to the bucket
# through the S3 API while the mount has the directory listed.
# - an object put into a listed directory is found by name (stat, cat)
#   within negative_ttl, without waiting for cache_ttl, and joins the listing;
# - a missing name costs at most one HEAD per negative_ttl;
# - a fresh open of an object replaced outside reads the new version
#   (one HEAD after the GET's If-Match failed), not ESTALE;
# - setfattr -n user.mediafs.refresh: a file deleted or replaced outside, a
#   directory given a new folder, are seen at once;
# - a folder made here is known complete: lookups in it cost nothing, also
#   in the first milliseconds of a second;
# - warm listings still cost nothing.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" outw
s3 mkbucket outw

head -c 1000 /dev/urandom >"$T/a"
head -c 1000 /dev/urandom >"$T/chg1"
head -c 3000 /dev/urandom >"$T/chg2"
head -c 2000 /dev/urandom >"$T/new"
head -c 500 /dev/urandom >"$T/small1"
head -c 700 /dev/urandom >"$T/small2"
s3 put outw d/a.txt "$T/a"
s3 put outw d/chg.bin "$T/chg1"
s3 put outw d/small.bin "$T/small1"

# the defaults: cache_ttl 300 s, negative_ttl 5 s
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

[ "$(ls "$MNT/d" | tr '\n' ' ')" = "a.txt chg.bin small.bin " ] &&
	pass "listed directory" || fail "listing" "$(ls "$MNT/d")"
cmp -s "$MNT/d/a.txt" "$T/a" && cmp -s "$MNT/d/small.bin" "$T/small1" &&
	pass "files read" || fail "first reads" "differ"
stat "$MNT/d/new.txt" >/dev/null 2>&1 && fail "missing name" "stat succeeded" ||
	pass "a name not on the server: ENOENT"

# ---- a new object, looked up by its exact name
s3 put outw d/new.txt "$T/new"
m=$(req_mark)
t0=$(date +%s.%N)
seen=0
for _ in $(seq 1 300); do	# up to 60 s; negative_ttl (5 s) is expected
	if cmp -s "$MNT/d/new.txt" "$T/new" 2>/dev/null; then
		seen=1
		break
	fi
	sleep 0.2
done
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc | cut -c1-5)
heads=$(req_since "$m" '^HEAD /outw/d/new.txt ')
[ "$seen" = 1 ] &&
	pass "an object put by another client is read by name after $secs s ($heads HEAD, $(req_since "$m") requests in all)" ||
	fail "outside put" "d/new.txt not seen in 60 s ($heads HEAD)"
m=$(req_mark)
[ "$(ls "$MNT/d" | tr '\n' ' ')" = "a.txt chg.bin new.txt small.bin " ] &&
	[ "$(stat -c %s "$MNT/d/new.txt")" = 2000 ] && [ "$(req_since "$m")" -eq 0 ] &&
	pass "the object found by name joins the listing (0 requests)" ||
	fail "listing after lookup" "$(ls "$MNT/d" | tr '\n' ' ') $(req_since "$m") requests"

# ---- a missing name asks the store at most once per negative_ttl
m=$(req_mark)
t0=$(date +%s)
for i in $(seq 1 20); do
	stat "$MNT/d/nope.txt" >/dev/null 2>&1
	cat "$MNT/d/nope.txt" >/dev/null 2>&1
done
t1=$(date +%s)
heads=$(req_since "$m" '^HEAD /outw/d/nope.txt ')
max=$((1 + (t1 - t0) / 5))
[ "$heads" -le "$max" ] && [ "$(req_since "$m")" -eq "$heads" ] &&
	pass "40 lookups of a missing name in $((t1 - t0)) s: $heads HEAD (at most 1 per negative_ttl)" ||
	fail "negative rate limit" "$heads HEAD (max $max), $(req_since "$m") requests"

# ---- a fresh open of an object replaced outside reads the new version
s3 put outw d/chg.bin "$T/chg2"
m=$(req_mark)
if cat "$MNT/d/chg.bin" >"$T/got" 2>"$T/err"; then
	cmp -s "$T/got" "$T/chg2" &&
		pass "fresh open after an outside overwrite: the new 3000 bytes, not ESTALE ($(req_since "$m" '^HEAD ') HEAD, $(req_since "$m" '^GET ') GET)" ||
		fail "outside overwrite" "read $(stat -c %s "$T/got") bytes, not the new version"
else
	fail "outside overwrite" "$(cat "$T/err")"
fi
[ "$(stat -c %s "$MNT/d/chg.bin")" = 3000 ] && pass "stat shows the new size" ||
	fail "size after overwrite" "$(stat -c %s "$MNT/d/chg.bin")"
grep -q "changed on the server; reading its new version" "$LOG" &&
	pass "the log says the object changed" || fail "overwrite log" "no line"

# ---- refresh one path now
s3 delete outw d/a.txt
m=$(req_mark)
setfattr -n user.mediafs.refresh -v 1 "$MNT/d/a.txt" &&
	[ "$(req_since "$m")" -eq 1 ] && ! ls "$MNT/d" | grep -qx a.txt &&
	! cat "$MNT/d/a.txt" >/dev/null 2>&1 &&
	pass "refresh of a file deleted outside (1 HEAD): gone from the listing and by name" ||
	fail "refresh deleted" "$(req_since "$m") requests; $(ls "$MNT/d" | tr '\n' ' ')"
s3 put outw d/small.bin "$T/small2"
setfattr -n user.mediafs.refresh -v 1 "$MNT/d/small.bin" &&
	cmp -s "$MNT/d/small.bin" "$T/small2" &&
	[ "$(stat -c %s "$MNT/d/small.bin")" = 700 ] &&
	pass "refresh of a file replaced outside (its old bytes were cached): the new version" ||
	fail "refresh replaced" "size $(stat -c %s "$MNT/d/small.bin")"
echo x | s3 put outw d/sub/x.txt -
m=$(req_mark)
setfattr -n user.mediafs.refresh -v 1 "$MNT/d" &&
	ls "$MNT/d" | grep -qx sub && [ "$(cat "$MNT/d/sub/x.txt")" = x ] &&
	pass "refresh of a directory: a folder made outside shows ($(req_since "$m" 'list-type=2') LIST)" ||
	fail "refresh dir" "$(ls "$MNT/d" | tr '\n' ' ')"

# ---- a folder made here is listed already, also just after a second began
# (its listed_at came from the precise clock, lookups read time(), a tick
# behind: one made in the first milliseconds of a second was listed again
# by the next lookup in it, cc42's extra LIST). At each of 8 second
# boundaries: a folder made half a second before (so names new in it need
# no HEAD), then from the boundary on for 10 ms, folders made in it, each
# looked into at once (a missing name)
m=$(req_mark)
made=$(python3 - "$MNT/d" <<'EOP'
import os, sys, time
base, n = sys.argv[1], 0
for b in range(8):
    edge = int(time.time()) + 1
    time.sleep(max(0, edge - 0.5 - time.time()))
    p = "%s/edge%d" % (base, b)
    os.mkdir(p)
    time.sleep(max(0, edge - 0.002 - time.time()))
    while time.time() < edge:
        pass
    while time.time() < edge + 0.010:
        d = "%s/mk%d" % (p, n)
        os.mkdir(d)
        n += 1
        try:
            os.stat(d + "/x")
        except FileNotFoundError:
            pass
print(n)
EOP
)
lists=$(req_since "$m" 'list-type=2')
heads=$(req_since "$m" '^HEAD /outw/d/edge[0-9]+/')
[ "$made" -ge 8 ] && [ "$lists" = 0 ] && [ "$heads" = 0 ] &&
	pass "$made folders made in the first 10 ms of 8 seconds, each looked into at once: 0 LIST, 0 HEAD in them" ||
	fail "lookup in a new folder" "$made folders: $lists LIST, $heads HEAD"
rm -r "$MNT"/d/edge*

# ---- warm listings still cost nothing
ls -lR "$MNT" >/dev/null
m=$(req_mark)
ls -lR "$MNT" >/dev/null
(cd "$MNT" && find . >/dev/null)
[ "$(req_since "$m")" -eq 0 ] && pass "warm ls -lR and find: 0 requests" ||
	fail "warm listing" "$(req_since "$m") requests"

umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
grep -q "warning\|error" "$LOG" && fail "daemon log clean" "$(grep -m3 'warning\|error' "$LOG")" ||
	pass "no warnings in the daemon log"
