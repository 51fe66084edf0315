#!/bin/bash
# A file renamed into a folder while its upload runs, then the folder
# renamed (#15.62, the model tester's slow seed s3 484371, 11 ops; also on
# the build before): the folder's rename waited only for running uploads
# whose key was below it, not for one on its way there (renamed while it
# ran: its copy to the new name comes after it lands). The folder moved
# without it; then the upload landed and was copied into the old folder,
# which came back on the store and, after a kill, in the mount.
# The order is forced: the fault proxy holds the upload until both
# renames were asked for.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
s3 mkbucket rid
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" rid
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$T/journal.db
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
settled() { timeout 120 "$MEDIACTL" wait "$S" >/dev/null 2>&1; }
keys() { s3 keys rid "" 2>/dev/null | grep -v '/$' | tr '\n' ' '; }

mkdir "$S/d1" "$S/d2" && echo keep >"$S/d2/keep.txt" || { fail setup "mkdir"; exit 1; }
settled || fail setup "the folders did not land"
: >"$T/control.held"
hold a8
head -c 3000 /dev/urandom >"$T/a8" && cp "$T/a8" "$S/a8.txt" || fail setup "write a8.txt"
nheld a8 1 || { release; fail setup "the upload never reached the proxy"; exit 1; }
mv "$S/a8.txt" "$S/d2/r65.txt" || fail setup "mv of the uploading file"
mv "$S/d2" "$S/d1/y2" 2>"$T/mv.err" &
mvp=$!
release
wait $mvp
check "the folder's rename succeeds" [ $? = 0 ]
settled || fail settle "the mount did not settle"
check "the store has the file in the moved folder only ($(keys))" \
	[ "$(keys)" = "d1/y2/keep.txt d1/y2/r65.txt " ]
check "the mount shows it there" cmp -s "$T/a8" "$S/d1/y2/r65.txt"
check "the old folder is gone from the mount" [ ! -e "$S/d2" ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
rm -rf "$T/cache"
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
check "after the cache is lost: only d1 at the top ($(ls "$S" | tr '\n' ' '))" [ "$(ls "$S" | tr '\n' ' ')" = "d1 " ]
check "and the file reads back" cmp -s "$T/a8" "$S/d1/y2/r65.txt"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
