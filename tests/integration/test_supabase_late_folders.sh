#!/bin/bash
# Folders made first and filled later, as rsync -a does (it makes the whole
# tree of folders, then writes the files): no empty-folder placeholder for
# a folder that gets a file, however long the copy takes (#15.50). On a
# busy machine test_supabase's rsync of 1,050 files counted 1,065-1,087
# uploads: a marker stopped waiting for files written elsewhere once it
# was marker_wait old, and the folders rsync had not reached yet got one.
# Here the copy is made long on purpose, not by load: marker_wait=5 and
# files land in folder a for 4 x 5 s (one file open all the while) before
# folder b gets its file. Folder c stays empty: it still gets its marker.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

sb_test conf
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J",marker_wait=5 supa: ||
	{ fail mount "mediafs did not mount supa:"; exit 1; }
mkdir "$MNT/media" || { fail bucket "mkdir media"; exit 1; }

m=$(sb_mark)
# a, b and c first; files into a for 20 s (a file open all the while, so
# the writes are never quiet), then one into b
"$SYS_PY" - "$MNT/media/late" 20 >"$T/copy.out" 2>&1 <<'PY'
import os, sys, time
top, secs = sys.argv[1], float(sys.argv[2])
for d in ('a', 'b', 'c'):
    os.makedirs(os.path.join(top, d))
t0 = time.time()
hold = open(os.path.join(top, 'a', 'open-all-along'), 'w')
hold.write('x')
hold.flush()
n = 0
while time.time() - t0 < secs:
    with open(os.path.join(top, 'a', 'f%04d' % n), 'w') as f:
        f.write('file %d\n' % n)
    n += 1
    time.sleep(0.2)
with open(os.path.join(top, 'b', 'late'), 'w') as f:
    f.write('late\n')
hold.close()
print(n + 2)
PY
files=$(tail -1 "$T/copy.out")
wait_uploads "$J" 120 || fail "uploads" "still pending"
placed=$(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/late/[ab]/\.emptyFolderPlaceholder')
puts=$(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/late/[ab]/')
[ "$placed" = 0 ] && [ "$puts" = "$files" ] &&
	pass "folders made first, filled $((20 / 5))x marker_wait later: $files uploads, no placeholder for a or b" ||
	fail "late folders" "$placed placeholders for a/b, $puts uploads for $files files (copy: $(head -c 300 "$T/copy.out"))"

# the empty folder's marker goes once the writes are over (polled: it
# waits for the queue to be quiet)
for i in $(seq 1 600); do
	[ "$(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/late/c/\.emptyFolderPlaceholder')" = 1 ] && break
	sleep 0.1
done
[ "$(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/late/c/\.emptyFolderPlaceholder')" = 1 ] &&
	pass "the folder that stayed empty gets its placeholder" ||
	fail "empty folder" "$(grep 'late/c' "$SB_REQLOG" | head -3)"

umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
