#!/bin/bash
# rm of a file whose upload failed, though its attempts had reached the
# store (each PUT landed and its answer was lost: a reset after the body):
# the failed row was cancelled and nothing else done, so the deleted file
# stayed on the store for good. The same held for an upload resumed from a
# killed run and removed before it ran again, whose killed attempt landed
# after the resume's check (the model tester's slow seed s3 484359: write
# c, kill -9, rm c; a cold remount showed c). A file whose upload was tried
# has its key deleted now and again after the landing grace.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket ftry
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" ftry "retries = 1"
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=3 ||
	{ fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
on_store() { s3 head ftry "$1" >/dev/null 2>&1; }
gone() { ! on_store "$1"; }
state() { getfattr --only-values -n user.mediafs.upload_state "$S/$1" 2>/dev/null; }
is_failed() { [[ $(state "$1") == failed* ]]; }
settled() { timeout 120 "$MEDIACTL" wait "$S" >/dev/null 2>&1; }
pending_rows() { sqlite3 "$J" "select count(*) from uploads where state='pending'"; }

echo "reset_key=tried" >"$T/control"	# every attempt lands, no answer
head -c 200000 /dev/urandom >"$S/tried.bin" || { fail write "cannot write tried.bin"; exit 1; }
poll 60 is_failed tried.bin || fail setup "the upload did not fail: $(state tried.bin)"
check "its attempts reached the store (the premise)" on_store tried.bin
: >"$T/control"
rm "$S/tried.bin" || fail rm "cannot remove tried.bin"
check "the log says what may have landed is deleted" \
	poll 30 grep -q "tried.bin was deleted after an attempt of its upload" "$LOG"
settled || fail settle "the mount did not settle"
check "the removed file is not on the store" gone tried.bin
check "nor in the mount" [ ! -e "$S/tried.bin" ]
check "no row stays pending" [ "$(pending_rows)" = 0 ]
no_failed() { "$MEDIACTL" --journal "$J" failed 2>&1 | grep -q "^0 failed uploads"; }
check "mediactl failed lists nothing" no_failed
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# the same, unmounted within the grace: the next mount deletes it (its
# failed row brought the file back as a failed upload: a review)
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=30 ||
	{ fail mount "mediafs did not mount"; exit 1; }
echo "reset_key=again" >"$T/control"
head -c 200000 /dev/urandom >"$S/again.bin" || { fail write "cannot write again.bin"; exit 1; }
poll 60 is_failed again.bin || fail setup "the upload did not fail: $(state again.bin)"
: >"$T/control"
rm "$S/again.bin" || fail rm "cannot remove again.bin"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=3 ||
	{ fail mount "mediafs did not mount"; exit 1; }
check "unmounted within the grace: the file stays removed in the mount" [ ! -e "$S/again.bin" ]
check "and mediactl failed lists nothing" no_failed
settled || fail settle "the mount did not settle"
check "and it is deleted from the store" gone again.bin
check "and no row stays pending" [ "$(pending_rows)" = 0 ]

# reopened for writing (the writer takes the failed upload back), then
# removed while open (a review: nothing deleted what the attempts left)
echo "reset_key=reopened" >"$T/control"
head -c 200000 /dev/urandom >"$S/reopened.bin" || { fail write "cannot write reopened.bin"; exit 1; }
poll 60 is_failed reopened.bin || fail setup "the upload did not fail: $(state reopened.bin)"
check "its attempts reached the store (the premise, reopened)" on_store reopened.bin
: >"$T/control"
exec 3>>"$S/reopened.bin" || fail setup "cannot open reopened.bin"
rm "$S/reopened.bin" || fail rm "cannot remove reopened.bin"
exec 3>&-
settled || fail settle "the mount did not settle"
check "reopened, removed while open: not on the store" gone reopened.bin
check "nor in the mount" [ ! -e "$S/reopened.bin" ]

# renamed, not removed: what its attempts stored under the old name goes
echo "reset_key=oldname" >"$T/control"
head -c 200000 /dev/urandom >"$T/moved" && cp "$T/moved" "$S/oldname.bin" ||
	{ fail write "cannot write oldname.bin"; exit 1; }
poll 60 is_failed oldname.bin || fail setup "the upload did not fail: $(state oldname.bin)"
check "its attempts reached the store under the old name (the premise)" on_store oldname.bin
: >"$T/control"
mv "$S/oldname.bin" "$S/newname.bin" || fail mv "cannot rename oldname.bin"
"$MEDIACTL" --journal "$J" retry --all >/dev/null 2>&1 || fail retry "mediactl retry failed"
settled || fail settle "the mount did not settle"
check "renamed: the new name is on the store" on_store newname.bin
check "and the old name is not" gone oldname.bin
check "and the file reads back" cmp -s "$T/moved" "$S/newname.bin"

# renamed away and back, then retried: it lands under its name, and the
# recheck of that name (queued by the first rename) must not delete it
# after the grace (a review: its own row was not counted as newer)
echo "reset_key=backagain" >"$T/control"
head -c 200000 /dev/urandom >"$T/back" && cp "$T/back" "$S/backagain.bin" ||
	{ fail write "cannot write backagain.bin"; exit 1; }
poll 60 is_failed backagain.bin || fail setup "the upload did not fail: $(state backagain.bin)"
: >"$T/control"
mv "$S/backagain.bin" "$S/away.bin" && mv "$S/away.bin" "$S/backagain.bin" ||
	fail mv "cannot rename away and back"
"$MEDIACTL" --journal "$J" retry --all >/dev/null 2>&1 || fail retry "mediactl retry failed"
settled || fail settle "the mount did not settle"	# (the rechecks too)
check "renamed away and back: on the store after the grace" on_store backagain.bin
check "and not under the other name" gone away.bin
check "and it reads back" cmp -s "$T/back" "$S/backagain.bin"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# reopened, removed while open, unmounted within the grace: the row says
# what the next mount deletes (a review: it was cancelled, and what landed
# late stayed). The late landing is played by hand after the unmount.
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=30 ||
	{ fail mount "mediafs did not mount"; exit 1; }
echo "reset_key=wum" >"$T/control"
head -c 200000 /dev/urandom >"$T/wum" && cp "$T/wum" "$S/wum.bin" || { fail write "cannot write wum.bin"; exit 1; }
poll 60 is_failed wum.bin || fail setup "the upload did not fail: $(state wum.bin)"
: >"$T/control"
exec 3>>"$S/wum.bin" || fail setup "cannot open wum.bin"
rm "$S/wum.bin" || fail rm "cannot remove wum.bin"
exec 3>&-
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
s3 put ftry wum.bin "$T/wum" >/dev/null || fail setup "cannot put wum.bin back by hand"
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=3 ||
	{ fail mount "mediafs did not mount"; exit 1; }
settled || fail settle "the mount did not settle"
check "removed while open, unmounted within the grace: the next mount deletes what landed late" gone wum.bin
check "and it is not in the mount" [ ! -e "$S/wum.bin" ]
check "and no row stays pending (reopened)" [ "$(pending_rows)" = 0 ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
