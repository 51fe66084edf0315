#!/bin/bash
# A request sent before can land after mediafs deleted its key (issue #15,
# #15.57: the model tester's slow replay 15.13-unlink-queued-kill9, where
# the fault proxy had the whole body of a dead daemon's PUT and landed it
# after the next mount's DELETE: the deleted file was back on the store).
# The key is now deleted again a landing grace later. Two ways in:
#  1. kill -9 while the upload of a file deleted meanwhile is held at the
#     proxy; the next mount deletes the key, then the held PUT lands;
#  2. a live mount: every attempt of the upload lands and its answer is
#     lost (reset_key), and the file is deleted while it runs: the upload
#     fails, which said "nothing to undo" and left the object. (The rm
#     now stops the running upload, test_rm_stops_upload: the attempt the
#     proxy holds whole still lands once released, as a stopped one may.)
# "In flight" and "landed" are states the test waits for, not races: the
# proxy holds the PUT until released, and the store is polled until it
# holds the object. The grace (-o landing_grace=8) only has to outlast a
# released request's forwarding on localhost.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket late
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" late "retries = 2"
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=8
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
on_store() { s3 head late "$1" >/dev/null 2>&1; }
gone() { ! on_store "$1"; }
lines=0
logged() { tail -n +"$((lines + 1))" "$LOG" | grep -q -- "$1"; }
settled() {	# the mount's own answer, what mediactl wait polls
	timeout 120 "$MEDIACTL" wait "$S" >/dev/null 2>&1
}
pending_rows() { sqlite3 "$J" "select count(*) from uploads where state='pending'"; }

# ---- 1. kill -9 with the upload of a deleted file on its way
: >"$T/control.held"
hold late-kill
head -c 3000000 /dev/urandom >"$S/late-kill.bin" ||
	{ fail write "cannot write $S/late-kill.bin"; exit 1; }
if ! nheld late-kill 1; then
	release
	fail "upload in flight" "the upload never reached the proxy"
	exit 1
fi
rm "$S/late-kill.bin" || fail rm "cannot remove late-kill.bin"
kill9_fs "$MNT"
lines=$(wc -l <"$LOG")
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
if poll 60 logged "deleted late-kill.bin: an upload stopped by a kill may have left it"; then
	pass "the next mount deletes what the killed upload may have left"
else
	fail "kill: first delete" "no delete in $LOG"
fi
release		# the dead daemon's PUT lands now, after that delete
if poll 60 on_store late-kill.bin; then
	pass "the held PUT landed after the delete (the order forced)"
else
	fail "kill: late landing" "the held PUT never landed: $(cat "$T/control.held")"
fi
settled || fail "kill: settle" "the mount did not settle"
check "a request landing after the delete is deleted again" \
	gone late-kill.bin
check "its row is closed after" [ "$(pending_rows)" = 0 ]
check "the file stays deleted in the mount" [ ! -e "$S/late-kill.bin" ]

# ---- 2. live: each attempt lands, no answer comes, the file is deleted
printf 'hold_key=late-live\nreset_key=late-live\n' >"$T/control"
: >"$T/control.held"
head -c 200000 /dev/urandom >"$S/late-live.bin" ||
	{ fail write "cannot write $S/late-live.bin"; exit 1; }
if ! nheld late-live 1; then
	release
	fail "upload in flight" "the upload never reached the proxy"
	exit 1
fi
rm "$S/late-live.bin" || fail rm "cannot remove late-live.bin"
echo "reset_key=late-live" >"$T/control"	# lands, answer lost
lines=0
if poll 60 logged "late-live.bin was deleted while uploading; its upload \(failed\|is stopped\).*deleting what may land"; then
	pass "a failed upload of a deleted file deletes what may have landed"
else
	fail "live: failed upload" "$(grep late-live "$LOG" | tail -3)"
fi
settled || fail "live: settle" "the mount did not settle"
release
check "what the lost answers' attempts stored is deleted" \
	gone late-live.bin
check "no row stays pending" [ "$(pending_rows)" = 0 ]

# what the recheck must not delete: another file that has the name now
# (found by a review: it asked only for a newer done upload row)
fail_upload() {	# fail_upload NAME: write NAME, held; rm it; its upload fails
	printf 'hold_key=%s\nreset_key=%s\n' "$1" "$1" >"$T/control"
	: >"$T/control.held"
	head -c 200000 /dev/urandom >"$S/$1" || { echo "write $1 failed" >&2; return 1; }
	nheld "$1" 1 || { release; echo "$1: no upload held in 60 s" >&2; return 1; }
	rm "$S/$1" || { echo "rm $1 failed" >&2; return 1; }
	echo "reset_key=$1" >"$T/control"
	poll 60 logged "$1 was deleted while uploading; its upload \(failed\|is stopped\)" ||
		{ echo "$1: its upload did not fail in 60 s" >&2; return 1; }
}
# ---- 3. a stored file renamed onto the key while its recheck waits
echo keepme >"$S/keep.txt" && settled || fail setup "keep.txt did not land"
if fail_upload victim.bin; then
	release
	mv "$S/keep.txt" "$S/victim.bin" || fail mv "mv onto victim.bin failed"
	settled || fail "rename onto: settle" "the mount did not settle"
	check "a file renamed onto a rechecked key stays on the store" \
		on_store victim.bin
	check "and reads back in the mount" grep -q keepme "$S/victim.bin"
else
	release
	fail "rename onto: setup" "$(grep victim "$LOG" | tail -3)"
fi

# ---- 4. an older upload renamed onto the key lands before the recheck
: >"$T/control.held"
echo hold_key=zz- >"$T/control"
echo adata >"$S/zz-a.txt"
nheld zz-a 1 || fail "older row: setup" "zz-a.txt never held"
head -c 200000 /dev/urandom >"$S/zz-k.bin"
nheld zz-k 1 || fail "older row: setup" "zz-k.bin never held"
rm "$S/zz-k.bin" && mv "$S/zz-a.txt" "$S/zz-k.bin" ||
	fail "older row: setup" "rm or mv failed"
printf 'hold_key=zz-a\nreset_key=zz-k\n' >"$T/control"
poll 60 logged "zz-k.bin was deleted while uploading" ||
	fail "older row: setup" "$(grep zz- "$LOG" | tail -3)"
release
settled || fail "older row: settle" "the mount did not settle"
check "an upload renamed onto a rechecked key stays on the store" \
	on_store zz-k.bin
check "and reads back in the mount" grep -q adata "$S/zz-k.bin"

# ---- 7. the late object listed during the grace (a review: the recheck
# took the node the listing made for it for another file's)
kill_late() {	# kill_late NAME: write NAME held, rm, kill -9, remount,
		# the first delete, then the held PUT lands
	: >"$T/control.held"
	hold "$1"
	head -c 3000000 /dev/urandom >"$S/$1" || return 1
	nheld "$1" 1 || return 1
	rm "$S/$1" || return 1
	kill9_fs "$MNT"
	lines=$(wc -l <"$LOG")
	mount_fs "$LOG" "$MNT" -o "$OPTS" || return 1
	poll 60 logged "deleted $1: an upload stopped by a kill" || return 1
	release
	poll 60 on_store "$1"
}
if kill_late lg-list.bin; then
	setfattr -n user.mediafs.refresh -v 1 "$S" 2>/dev/null
	ls "$S" >/dev/null
	settled || fail "listed late: settle" "the mount did not settle"
	check "a late landing listed during the grace is deleted again" \
		gone lg-list.bin
	check "and goes from the mount" [ ! -e "$S/lg-list.bin" ]
else
	release
	fail "listed late: setup" "$(grep lg-list "$LOG" | tail -3)"
fi
# ---- 8. a folder made at the file's name during the grace (a review:
# the folder's node kept the late file)
: >"$T/control.held"
hold lgx
head -c 3000000 /dev/urandom >"$S/lgx" && nheld lgx 1 && rm "$S/lgx" ||
	fail "folder at the name: setup" "write, hold or rm"
kill9_fs "$MNT"
lines=$(wc -l <"$LOG")
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "did not mount"; exit 1; }
poll 60 logged "deleted lgx: an upload stopped by a kill" ||
	fail "folder at the name" "no first delete"
mkdir "$S/lgx" || fail "folder at the name" "mkdir failed"
release
poll 60 on_store lgx || fail "folder at the name" "the held PUT never landed"
settled || fail "folder at the name: settle" "the mount did not settle"
check "a folder of the same name does not keep the late file" gone lgx
rmdir "$S/lgx" && settled
check "nor does the file come back after rmdir" [ ! -e "$S/lgx" ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- 5. mv over a file whose upload then fails: the rename waits for
# that upload, not for the recheck after it (a 60 s grace here)
mount_fs "$LOG" "$MNT" -o "${OPTS%,landing_grace=8},landing_grace=60" ||
	{ fail remount "mediafs did not mount"; exit 1; }
echo srcdata >"$S/src.txt" && settled || fail setup "src.txt did not land"
printf 'hold_key=dst\nreset_key=dst\n' >"$T/control"
: >"$T/control.held"
head -c 200000 /dev/urandom >"$S/dst.bin"
nheld dst 1 || fail "mv over: setup" "dst.bin never held"
mv "$S/src.txt" "$S/dst.bin" &
mover=$!
echo "reset_key=dst" >"$T/control"	# each attempt lands, no answer
wait $mover || fail "mv over" "mv failed"
state=$(getfattr --only-values -n user.mediafs.upload_state "$S" 2>/dev/null)
release
check "mv over it returned while the recheck still waits (state: $state)" \
	[ "${state%%:*}" = pending ]
check "the renamed file reads back" grep -q srcdata "$S/dst.bin"

# ---- 6. renamed while its upload ran, and the rename's copy fails: what
# landed under the old name goes (it stayed, unknown to the journal: a
# mount with a cold cache showed the file again under it)
: >"$T/control.held"
echo hold_key=ren-a >"$T/control"
echo rendata >"$S/ren-a.txt"
nheld ren-a 1 || fail "failed rename: setup" "ren-a.txt never held"
mv "$S/ren-a.txt" "$S/ren-b.txt" || fail "failed rename: setup" "mv failed"
echo fail_key=ren-b >"$T/control"	# the upload lands, its copy fails
poll 60 logged "upload of ren-b.txt failed" ||
	fail "failed rename" "$(grep ren- "$LOG" | tail -3)"
check "a rename whose copy failed leaves nothing under the old name" \
	gone ren-a.txt
check "the file reads back under its new name" grep -q rendata "$S/ren-b.txt"
release
"$MEDIACTL" --journal "$J" retry ren-b.txt >/dev/null 2>&1 ||
	fail "failed rename" "mediactl retry failed"
settled || fail "failed rename: settle" "the mount did not settle"
check "mediactl retry sends it under its new name" on_store ren-b.txt
# ---- 9. a rename onto the key, then an unmount before the grace, then
# a mount with a cold cache (a review: the row stayed for the next mount,
# which deleted the renamed file)
mkdir "$S/d9" && echo keepme >"$S/d9/keep.txt" && settled ||
	fail "cold remount: setup" "keep.txt did not land"
if fail_upload d9/victim.bin; then
	release
	mv "$S/d9/keep.txt" "$S/d9/victim.bin" || fail "cold remount" "mv failed"
else
	release
	fail "cold remount: setup" "$(grep victim "$LOG" | tail -3)"
fi
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
check "what the recheck would delete is the renamed file's: it stays" \
	on_store dst.bin
check "still nothing under the old name" gone ren-a.txt
mount_fs "$LOG" "$MNT" -o "${OPTS/cache_dir=$T\/cache/cache_dir=$T\/cache2}" ||
	{ fail remount "mediafs did not mount"; exit 1; }
settled
check "a file renamed onto the key stays after a mount with a cold cache" \
	on_store d9/victim.bin
check "and reads back" grep -q keepme "$S/d9/victim.bin"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
