#!/bin/bash
# A local directory as a remote (type = local): the write path through the
# same core — cp -r, rsync -a twice, mv of files and directories, chmod,
# touch, rm, mkdir — checked on the disk itself; files appear atomically
# (temporary name, then rename) and carry the mtime and mode they were
# given; keys that would leave the root are refused.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
STORE=$T/store
mkdir -p "$STORE" "$T/src/a/b"
for i in $(seq 1 30); do head -c $((500 + i * 311)) /dev/urandom >"$T/src/a/f$i"; done
echo deep >"$T/src/a/b/deep"
touch -d '2021-06-07 08:09:10' "$T/src/a/f1"
cat >"$T/m.conf" <<EOC
[disk]
type = local
path = $STORE
EOC
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" disk: ||
	{ fail mount "mediafs did not mount a local directory"; exit 1; }

cp -r "$T/src" "$MNT/cp"
rsync -a "$T/src/" "$MNT/rs/"
wait_uploads "$J"
diff -r "$T/src" "$STORE/cp" >/dev/null && diff -r "$T/src" "$STORE/rs" >/dev/null &&
	pass "cp -r and rsync -a: the files on disk are identical" || fail "local copy" "$(diff -r "$T/src" "$STORE/rs" | head -3)"
[ "$(stat -c %Y "$STORE/rs/a/f1")" = "$(stat -c %Y "$T/src/a/f1")" ] &&
	pass "rsync's mtime is the file's own mtime on disk" || fail "mtime" "$(stat -c %y "$STORE/rs/a/f1")"
[ -z "$(find "$STORE" -name '.mediafs-tmp-*' -o -name '.f*.??????')" ] &&
	pass "no temporary names left on disk" || fail "temp files" "$(find "$STORE" -name '.*')"
sent=$(rsync -a --stats "$T/src/" "$MNT/rs/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
[ "$sent" = 0 ] && pass "second rsync -a: 0 files transferred" || fail "second rsync" "$sent"

# renames on disk are rename(2): the same inode, nothing copied (before:
# a copy of every byte and a delete, file by file, unrecorded)
inodes() { find "$1" -type f -printf '%P %i\n' | sort; }
i_f2=$(stat -c %i "$STORE/cp/a/f2")
inodes "$STORE/rs" >"$T/rs.inodes"
mv "$MNT/cp/a/f2" "$MNT/cp/a/f2-moved" && chmod 600 "$MNT/cp/a/f3" &&
	touch -d '2020-01-01 00:00:00' "$MNT/cp/a/f4" && rm "$MNT/cp/a/f5"
wait_uploads "$J"
[ -f "$STORE/cp/a/f2-moved" ] && [ ! -e "$STORE/cp/a/f2" ] && [ ! -e "$STORE/cp/a/f5" ] &&
	[ "$(stat -c %a "$STORE/cp/a/f3")" = 600 ] && [ "$(stat -c %Y "$STORE/cp/a/f4")" = 1577836800 ] &&
	pass "mv, chmod, touch and rm act on the disk" || fail "ops" "$(ls -l "$STORE/cp/a" | head -5)"
check "a file rename is one rename(2) on disk (same inode)" \
	[ "$(stat -c %i "$STORE/cp/a/f2-moved")" = "$i_f2" ]
mv "$MNT/rs" "$MNT/rs2"
[ -d "$STORE/rs2/a/b" ] && [ ! -e "$STORE/rs" ] && diff -r "$T/src" "$STORE/rs2" >/dev/null &&
	pass "directory rename on disk" || fail "dir rename" "$(ls -R "$STORE" | head -5)"
check "a directory rename is one rename(2) on disk (every file's inode kept)" \
	cmp -s "$T/rs.inodes" <(inodes "$STORE/rs2")
# into a folder whose own mkdir has not reached the disk yet
mkdir "$MNT/newdir" && mv "$MNT/rs2" "$MNT/newdir/rs3" &&
	wait_uploads "$J" && diff -r "$T/src" "$STORE/newdir/rs3" >/dev/null &&
	pass "a directory renamed into a new folder" || fail "dir rename into new folder" "$(ls -R "$STORE/newdir" 2>&1 | head -5)"
mkdir "$MNT/empty"
wait_uploads "$J"
[ -d "$STORE/empty" ] && pass "an empty directory exists on disk" || fail "mkdir" "missing"
# a path below the root passing PATH_MAX: mkdir refuses it (ENAMETOOLONG)
# rather than make a folder rmdir cannot remove
got=$("$SYS_PY" - "$MNT" <<'EOP'
import errno, os, sys
d = os.path.join(sys.argv[1], 'deep')
os.mkdir(d)
os.chdir(d)
made = 0
try:
    while made < 40:	# 10,000 bytes: past PATH_MAX (before: no end)
        os.mkdir('d' * 250)
        os.chdir('d' * 250)
        made += 1
    print(made, 'none')
except OSError as e:
    print(made, errno.errorcode.get(e.errno, e.errno))
EOP
)
rm -rf "$MNT/deep" 2>"$T/err"
[ "${got#* }" = ENAMETOOLONG ] && [ ! -e "$MNT/deep" ] && [ ! -e "$STORE/deep" ] &&
	pass "folders nested past PATH_MAX below the root: ENAMETOOLONG after ${got% *}, and rm -r removes them" ||
	fail "long paths" "$got; rm: $(head -c 200 "$T/err")"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"

# a remount lists from the cache; a file changed on disk is noticed after
# the TTL
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J",cache_ttl=1 disk: ||
	{ fail remount "mediafs did not mount"; exit 1; }
echo "changed behind mediafs" >"$STORE/cp/a/f6"
sleep 1.5
[ "$(cat "$MNT/cp/a/f6")" = "changed behind mediafs" ] && pass "a file changed on disk reads back after the TTL" ||
	fail "external change" "$(head -c 40 "$MNT/cp/a/f6")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

cat >"$T/bad.conf" <<EOC
[disk]
type = local
path = $T/does-not-exist
EOC
"$MEDIAFS" -f -o config="$T/bad.conf",cache_dir="$T/c2" disk: "$MNT" 2>"$T/err" && fail "bad path" "mounted" ||
	{ grep -q "is not a directory" "$T/err" && pass "a missing path is a clear config error" || fail "bad path" "$(cat "$T/err")"; }

# relative cache_dir, journal and config: resolved before libfuse changes to /
cd "$T" || exit 1
mount_fs "$LOG" mnt-rel -o config=m.conf,cache_dir=cache-rel,journal=rel.db disk: ||
	{ fail "relative paths" "did not mount"; exit 1; }
cd - >/dev/null || exit 1
echo relative >"$T/mnt-rel/rel.txt" && ls -l "$T/mnt-rel" >/dev/null && sync "$T/mnt-rel/rel.txt"
[ "$(cat "$STORE/rel.txt" 2>/dev/null)" = relative ] && [ -s "$T/rel.db" ] && [ -d "$T/cache-rel" ] &&
	pass "relative cache_dir, journal and config paths work (resolved at start)" || fail "relative paths" "$(tail -3 "$LOG")"
umount_fs "$LOG" "$T/mnt-rel" || fail "unmount" "see $LOG"

# write hooks on a local remote: compressed on the way to the disk
mkdir -p "$T/hstore"
cat >"$T/h.conf" <<EOC
[hooked]
type = local
path = $T/hstore
on_write = compress
compress.jpeg_quality = 85
EOC
/usr/bin/convert -size 800x600 -seed 3 plasma:fractal -quality 95 "$T/photo.jpg"
mount_fs "$LOG" "$MNT" -o config="$T/h.conf",cache_dir="$T/cache-h",journal="$J" hooked: ||
	{ fail "hooked mount" "did not mount"; exit 1; }
cp "$T/photo.jpg" "$MNT/photo" && rsync -a "$T/photo.jpg" "$MNT/again.jpg"
wait_uploads "$J" 30
orig=$(stat -c %s "$T/photo.jpg")
[ "$(stat -c %s "$T/hstore/photo")" -lt "$orig" ] && [ "$(stat -c %s "$T/hstore/again.jpg")" -lt "$orig" ] &&
	[ "$(getfattr --only-values -n user.mediafs.original_size "$MNT/photo")" = "$orig" ] &&
	[ "$(sqlite3 "$J" "select hook from uploads where remote='hooked' and key='photo' and state='done'")" = compress ] &&
	pass "on_write = compress on a local remote: smaller on disk, original size in the xattr and journal" ||
	fail "local hooks" "$(ls -l "$T/hstore") $(getfattr -d "$MNT/photo")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
