#!/bin/bash
# POSIX operations through the mount, each checked on the server and by
# its request cost: mv (file: COPY + DELETE), touch/chmod after upload (one
# COPY that replaces metadata), append and dd into the middle, truncate,
# rm, mkdir/rmdir (markers), ENOTEMPTY, xattrs for content type and cache
# control, fsync waiting for the upload, rename of a directory of 500 files.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
write_conf "$CONF" wops
s3 mkbucket wops
# negative_ttl=3600 (>= cache_ttl): names missing from a listing are not
# asked of the store, so the request counts below stay exact; creating a
# name in a directory listed over negative_ttl ago costs one HEAD by
# default (test_outside_writer_seen_by_name covers that check);
# cache_ttl=3600: under ASan on a busy machine the test outlives the
# default 300 s, and a listing fetched again adds a request to a count
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$J",negative_ttl=3600,cache_ttl=3600 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
obj_md5() {	# obj_md5 KEY
	s3 manifest wops "$1" | awk -F'\t' '$1 == "" {print $3}'
}

head -c 300000 /dev/urandom >"$T/a"
cp "$T/a" "$MNT/a.bin"
wait_uploads "$J"

m=$(req_mark)
mv "$MNT/a.bin" "$MNT/b.bin"
c=$(req_since "$m" '^COPY') d=$(req_since "$m" '^DELETE') n=$(req_since "$m")
[ "$c" -eq 1 ] && [ "$d" -eq 1 ] && [ "$n" -eq 2 ] &&
	[ "$(obj_md5 b.bin)" = "$(md5sum <"$T/a" | cut -d' ' -f1)" ] && [ -z "$(s3 keys wops a.bin)" ] &&
	pass "mv of an uploaded file: 1 COPY + 1 DELETE, bytes intact" ||
	fail "mv" "$(tail -n +$((m + 1)) "$S3_REQLOG")"

m=$(req_mark)
touch -d '2022-02-03 04:05:06' "$MNT/b.bin"
chmod 640 "$MNT/b.bin"
c=$(req_since "$m" '^COPY') n=$(req_since "$m")
s3 head wops b.bin >"$T/h"
[ "$c" -eq 2 ] && [ "$n" -eq 2 ] &&
	grep -q '^mtime=1643861106\.' "$T/h" && grep -q '^mode=33184$' "$T/h" &&
	pass "touch and chmod after upload: one COPY-REPLACE each, x-amz-meta-mtime/mode updated" ||
	fail "attribute change" "$n requests; $(tr '\n' ' ' <"$T/h")"
[ "$(stat -c '%Y %a' "$MNT/b.bin")" = "1643861106 640" ] && pass "stat shows the new mtime and mode" ||
	fail "stat after touch/chmod" "$(stat -c '%Y %a' "$MNT/b.bin")"
m=$(req_mark)
chmod 640 "$MNT/b.bin"
[ "$(req_since "$m")" -eq 0 ] && pass "chmod to the same mode: no request" || fail "no-op chmod" "$(req_since "$m") requests"

# append and write into the middle
cp "$T/a" "$T/exp"
echo "appended line" >>"$T/exp"
echo "appended line" >>"$MNT/b.bin"
printf 'XYZ' | dd of="$T/exp" bs=1 seek=1000 conv=notrunc 2>/dev/null
printf 'XYZ' | dd of="$MNT/b.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
wait_uploads "$J"
cmp -s "$MNT/b.bin" "$T/exp" && [ "$(obj_md5 b.bin)" = "$(md5sum <"$T/exp" | cut -d' ' -f1)" ] &&
	pass "append and dd conv=notrunc into the middle: right bytes on the server" ||
	fail "append/dd" "content differs"

touch -d '2021-01-01 00:00:00' "$MNT/b.bin"	# an old mtime: truncate moves it
truncate -s 1000 "$MNT/b.bin"
truncate -s 1000 "$T/exp"
[ "$(stat -c %Y "$MNT/b.bin")" -ge "$(($(date +%s) - 60))" ] &&
	pass "truncate sets the modification time (stat: $(stat -c %y "$MNT/b.bin" | cut -c1-19))" ||
	fail "truncate mtime" "stat shows $(stat -c %y "$MNT/b.bin")"
wait_uploads "$J"
[ "$(stat -c %s "$MNT/b.bin")" = 1000 ] && [ "$(obj_md5 b.bin)" = "$(md5sum <"$T/exp" | cut -d' ' -f1)" ] &&
	pass "truncate: 1000 bytes on the server" || fail "truncate" "size $(stat -c %s "$MNT/b.bin")"
: >"$MNT/b.bin"
wait_uploads "$J"
[ "$(s3 manifest wops b.bin | cut -f2)" = 0 ] && pass "truncate to 0 by shell redirection" || fail "truncate 0" "not empty"

# touch -d right after a write (its upload still queued): stat shows it
echo x >"$MNT/t.txt" && touch -d '2021-01-01 00:00:00' "$MNT/t.txt"
[ "$(stat -c %Y "$MNT/t.txt")" = "$(date -d '2021-01-01 00:00:00' +%s)" ] &&
	pass "touch -d at once after a write: stat shows the date" ||
	fail "touch after write" "stat shows $(stat -c %y "$MNT/t.txt")"
# a write after a touch on the same descriptor: the write's time (review)
"$SYS_PY" - "$MNT/tw.txt" <<'EOP'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.utime(fd, (1000000000, 1000000000))
os.pwrite(fd, b'after', 0)
os.close(fd)
EOP
[ "$(stat -c %Y "$MNT/tw.txt")" -ge "$(($(date +%s) - 60))" ] &&
	pass "a write after touch -d on the same descriptor: the write's time" ||
	fail "write after touch" "stat shows $(stat -c %y "$MNT/tw.txt")"
# a truncate past the staging disk's largest file: EFBIG, not EIO
touch "$MNT/huge"
truncate -s 999999999999999 "$MNT/huge" 2>"$T/err"
grep -q "File too large" "$T/err" && [ "$(stat -c %s "$MNT/huge")" = 0 ] &&
	pass "truncate past the largest file the staging disk holds: EFBIG, size 0" ||
	fail "huge truncate" "$(cat "$T/err"); size $(stat -c %s "$MNT/huge")"
rm -f "$MNT/huge" "$MNT/t.txt" "$MNT/tw.txt"
wait_uploads "$J"	# (their uploads and deletes, before the count below)
poll 30 eval '[ -z "$(s3 keys wops t.txt; s3 keys wops tw.txt)" ]' || fail "rm t.txt tw.txt" "still on the store"
m=$(req_mark)
rm "$MNT/b.bin"
n=$(req_since "$m")
[ -z "$(s3 keys wops b.bin)" ] && [ "$n" -eq 1 ] && [ ! -e "$MNT/b.bin" ] &&
	pass "rm: one DELETE, gone on the server and in the mount" || fail "rm" "$n requests, left: $(s3 keys wops b.bin)"

mkdir "$MNT/empty"
[ -d "$MNT/empty" ] && [ "$(sqlite3 "$J" "select count(*) from uploads where key='empty/'")" = 1 ] &&
	pass "mkdir: the directory is there at once, its marker queued" || fail mkdir "$(s3 keys wops empty)"
wait_uploads "$J"
[ "$(s3 keys wops empty/)" = "empty/" ] && pass "an empty directory's marker object lands" || fail mkdir "$(s3 keys wops empty)"
echo x >"$MNT/empty/f"
rmdir "$MNT/empty" 2>"$T/err" && fail "rmdir of a non-empty dir" "succeeded" ||
	{ grep -q "not empty" "$T/err" && pass "rmdir of a non-empty directory: ENOTEMPTY" || fail rmdir "$(cat "$T/err")"; }
rm "$MNT/empty/f"
rmdir "$MNT/empty" && wait_uploads "$J" && [ -z "$(s3 keys wops empty)" ] && pass "rmdir removes the marker" ||
	fail rmdir "$(s3 keys wops empty)"

# a directory that only gets files needs no marker; one emptied by rm keeps
# existing on the server. The order is forced, not timed: a file held open
# for writing (fd 3, nothing written: no upload at its close) keeps a new
# directory's marker waiting (upqm_waits), so full/one exists before the
# marker can be due, however long the mkdir-to-create gap is on a loaded
# machine (a fixed "sleep 1.2" once met a marker sent first: 2 requests).
# wait_uploads returns once the marker's journal row left 'pending'
# (cancelled when full/one landed, or done had it been sent): nothing of
# it can come after the count.
echo held >"$MNT/lazy-hold.txt"
wait_uploads "$J"
exec 3>>"$MNT/lazy-hold.txt"
m=$(req_mark)
mkdir "$MNT/full" && echo 1 >"$MNT/full/one"
wait_uploads "$J"
exec 3>&-
n=$(req_since "$m")
[ "$n" -eq 1 ] && [ "$(s3 keys wops full/)" = "full/one" ] &&
	pass "mkdir + a file: 1 request, the marker was not needed" || fail "lazy marker" "$n requests: $(s3 keys wops full/)"
rm "$MNT/full/one"
wait_uploads "$J"
[ "$(s3 keys wops full/)" = "full/" ] && pass "rm of a directory's last file stores its marker" ||
	fail "emptied directory" "$(s3 keys wops full/)"

# content type and cache control via xattrs, set before the upload starts
echo '<html></html>' >"$T/page"
cp "$T/page" "$MNT/page" && setfattr -n user.mediafs.content_type -v text/html "$MNT/page" &&
	setfattr -n user.mediafs.cache_control -v "max-age=3600" "$MNT/page"
[ "$(getfattr --only-values -n user.mediafs.content_type "$MNT/page" 2>/dev/null)" = text/html ] &&
	pass "getfattr of a file not yet uploaded: the type its upload will send" ||
	fail "getfattr before upload" "$(getfattr -n user.mediafs.content_type "$MNT/page" 2>&1)"
wait_uploads "$J"
s3 head wops page >"$T/h"
grep -q '^content-type=text/html$' "$T/h" && grep -q '^cache-control=max-age=3600$' "$T/h" &&
	pass "setfattr content_type and cache_control become Content-Type and Cache-Control" ||
	fail "xattrs" "$(tr '\n' ' ' <"$T/h")"
[ "$(getfattr --only-values -n user.mediafs.content_type "$MNT/page")" = text/html ] &&
	pass "getfattr shows the content type" || fail "getfattr" "wrong type"
setfattr -n user.other -v x "$MNT/page" 2>/dev/null && fail "unknown xattr" "accepted" ||
	pass "other xattrs are refused"

# content type sniffed from the bytes of an extension-less image
/usr/bin/python3 "$TESTS_DIR/../scripts/gen-images.py" "$T/imgs" 3
img=$(find "$T/imgs" -type f | head -1)
cp "$img" "$MNT/noext-image"
wait_uploads "$J"
s3 head wops noext-image >"$T/h"
jt=$(sqlite3 "$J" "select content_type from uploads where key='noext-image' and state='done'")
want=$(file -b --mime-type "$img" 2>/dev/null || echo image/png)
grep -q "^content-type=$want$" "$T/h" && [ "$jt" = "$want" ] &&
	[ "$(getfattr --only-values -n user.mediafs.content_type "$MNT/noext-image" 2>/dev/null)" = "$want" ] &&
	pass "an extension-less image goes up as $want (server, journal, xattr)" ||
	fail "sniffing" "$(tr '\n' ' ' <"$T/h") journal '$jt' want $want"

# mknod(2) of a regular file makes an empty file
/usr/bin/python3 -c 'import os, stat, sys; os.mknod(sys.argv[1], 0o644 | stat.S_IFREG)' "$MNT/made-by-mknod" 2>"$T/err"
wait_uploads "$J"
[ -f "$MNT/made-by-mknod" ] && [ "$(s3 manifest wops made-by-mknod | cut -f2)" = 0 ] &&
	pass "mknod of a regular file: an empty object" || fail "mknod" "$(cat "$T/err")"

# fsync waits for the upload
head -c 200000 /dev/urandom >"$T/s"
dd if="$T/s" of="$MNT/synced" bs=64k conv=fsync 2>/dev/null
[ "$(obj_md5 synced)" = "$(md5sum <"$T/s" | cut -d' ' -f1)" ] &&
	pass "dd conv=fsync returns with the object on the server" || fail "fsync" "not on the server when dd returned"

# rename a directory of 500 files
mkdir -p "$T/d500/sub"
for i in $(seq 1 500); do echo "file $i" >"$T/d500/f$i"; done
echo deep >"$T/d500/sub/deep"
cp -r "$T/d500" "$MNT/d500"
wait_uploads "$J" 120
m=$(req_mark)
t0=$(date +%s.%N)
mv "$MNT/d500" "$MNT/moved"
t1=$(date +%s.%N)
copies=$(req_since "$m" '^COPY')
dels=$(req_since "$m" '^POST /wops\?delete')
total=$(req_since "$m")
n=$(s3 keys wops moved/ | grep -vc '/$')
old=$(s3 keys wops d500/ | wc -l)
[ "$copies" -eq 501 ] && [ "$dels" -eq 1 ] && [ "$n" -eq 501 ] && [ "$old" -eq 0 ] &&
	pass "rename of a directory of 501 objects: $total requests (501 COPY, 1 DeleteObjects) in $(echo "$t1 - $t0" | bc | cut -c1-5) s" ||
	fail "directory rename" "COPY $copies, DeleteObjects $dels, new $n, old left $old"
[ "$(cat "$MNT/moved/f250")" = "file 250" ] && [ "$(cat "$MNT/moved/sub/deep")" = deep ] &&
	[ ! -e "$MNT/d500" ] && pass "renamed directory reads back" || fail "renamed dir" "content"
s3 manifest wops moved/ | awk -F'\t' '$1 == "f77" {print $3}' | grep -q "$(echo "file 77" | md5sum | cut -d' ' -f1)" &&
	pass "objects under the new name have the right bytes" || fail "renamed objects" "wrong bytes"

# a folder moved onto an empty folder made just before (its marker still
# queued), then removed: nothing of either stays on the store (the
# replaced folder's queued marker landed later and brought it back)
mkdir "$MNT/mvS" "$MNT/mvT" && mv -T "$MNT/mvS" "$MNT/mvT" && rmdir "$MNT/mvT" ||
	fail "folder onto a new folder" "mkdir, mv -T or rmdir failed"
wait_uploads "$J" 60 || fail "folder onto a new folder" "uploads pending"
k=$(s3 keys wops mv | tr '\n' ' ')
[ -z "$k" ] && [ ! -e "$MNT/mvT" ] && pass "mv -T of a new folder onto another, then rmdir: no marker left on the store" ||
	fail "folder onto a new folder" "store: $k; mount: $(ls -d "$MNT"/mv* 2>&1)"

# a file renamed before its upload started goes up once, under the new
# name. "Before" must hold on any machine: with the default 100 ms between
# a close and its upload, a busy one (load 40+) started the upload before
# mv ran (PUT q1, COPY, DELETE). So a mount of its own whose uploads start
# 10 s after the close (-o upload_delay), its root listed before the count
P1=$MFS_PID
mount_fs "$T/mediafs2.log" "$T/mnt2" -o config="$CONF",cache_dir="$T/cache2",journal="$T/j2.db",negative_ttl=3600,upload_delay=10000 s3t: ||
	fail "early rename" "the second mount did not mount"
ls "$T/mnt2" >/dev/null
m=$(req_mark)
echo quick >"$T/mnt2/q1" && mv "$T/mnt2/q1" "$T/mnt2/q2"
wait_uploads "$T/j2.db" 120
n=$(req_since "$m")
[ "$n" -eq 1 ] && [ "$(req_since "$m" '^PUT /wops/q2 ')" -eq 1 ] &&
	pass "write + rename before upload (-o upload_delay=10000): one PUT under the final name" ||
	fail "early rename" "$(tail -n +$((m + 1)) "$S3_REQLOG" | tr '\n' ' ')"
umount_fs "$T/mediafs2.log" "$T/mnt2" || fail "early rename" "the second mount's unmount"
MFS_PID=$P1
# a stored file open for writing but not written, renamed into another
# folder, then closed: it is on the store under its new name, and the
# folder it went to keeps existing (a review found the file deleted: the
# rename took the writer for one that would send it at close)
mkdir "$MNT/wa" "$MNT/wb" && echo data >"$MNT/wa/f" && wait_uploads "$J" ||
	fail "rename while open" "setup"
exec 3>>"$MNT/wa/f"
mv "$MNT/wa/f" "$MNT/wb/f" || fail "rename while open" "mv failed"
exec 3>&-
wait_uploads "$J"
[ "$(s3 manifest wops wb/ 2>/dev/null | cut -f1,2 | tr '\t\n' ': ')" = "f:5 " ] &&
	! s3 head wops wa/f >/dev/null 2>&1 &&
	pass "a file open for writing, renamed and closed unwritten, is stored under its new name" ||
	fail "rename while open" "wb/: $(s3 manifest wops wb/ 2>&1 | tr '\n' ' '); wa/f: $(s3 head wops wa/f 2>&1 | head -1)"
grep -qx data "$MNT/wb/f" && pass "and reads back" || fail "rename while open" "wb/f: $(cat "$MNT/wb/f" 2>&1)"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
