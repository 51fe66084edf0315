#!/bin/bash
# An rm of a file whose upload runs stops that upload (test_rm_stops_upload)
# on ImageKit too; a stop that came while the remote first asked for its
# custom metadata fields (mtime, mode) turned them off for the rest of the
# mount: no later upload kept an mtime, and rsync sent everything again (a
# review). The fake keeps the reply of that first request until the rm.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

ik_test
control() { printf '%s\n' "$@" >"$IK_CONTROL"; }
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J ik: ||
	{ fail mount "mediafs did not mount ik:"; exit 1; }
mkdir -p "$MNT/d" || fail setup "mkdir"
wait_uploads "$J" || fail setup "the folder did not land"

: >"$IK_DIR/held"
control "hold_after=GET /v1/customMetadataFields"
head -c 5000 /dev/urandom >"$MNT/d/a.bin" || fail setup "cannot write a.bin"
poll 30 test -s "$IK_DIR/held" || fail setup "the fields' request was not held: $(tail -3 "$IK_REQLOG")"
rm "$MNT/d/a.bin" || fail setup "cannot remove a.bin"
check "the upload is stopped" \
	poll 30 grep -q "a.bin was deleted while uploading; its upload is stopped" "$LOG"
control
head -c 5000 /dev/urandom >"$T/b.bin"
touch -d 2021-06-07T08:09:10 "$T/b.bin"
cp -p "$T/b.bin" "$MNT/d/b.bin" || fail setup "cannot copy b.bin"
wait_uploads "$J" || fail setup "b.bin did not land"
got=$(ik manifest /d | awk '$1 == "/d/b.bin" {print $4}')
check "a later upload keeps its mtime ($got)" [ "${got%.*}" = "$(stat -c %Y "$T/b.bin")" ]
fields_on() { ! grep -q "cannot use custom metadata fields" "$LOG"; }
check "the log does not turn the fields off" fields_on
check "nothing of a.bin is on the store" [ -z "$(ik manifest /d | awk '$1 == "/d/a.bin"')" ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
