#!/bin/bash
# A folder listing the server made before an upload below it landed, and
# read by mediafs after, dropped the landed file from the mount: the
# listing's sweep took it for a file deleted on the server (found by CI:
# test_write_crash showed 207 of 209 files after a remount, its resumed
# uploads landing while `ls` listed the folder). A file changed here since
# the listing began (landed, made, moved in) now stays.
# The order is forced, not raced: the fault proxy holds the upload
# (hold_key) and then the listing's true reply (list_late) until the
# upload has landed.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket lsup
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" lsup
# cache_ttl=1: the folder is listed again at the next look a second on
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,cache_ttl=1
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
state() { getfattr --only-values -n user.mediafs.upload_state "$S" 2>/dev/null; }
is_done() { [ "$(state)" = done ]; }

mkdir "$S/d" && printf 'old\n' >"$S/d/old" ||
	{ fail setup "cannot write below $S"; exit 1; }
timeout 60 "$MEDIACTL" wait "$S" >/dev/null || fail setup "old.txt never landed"
: >"$T/control.held"
hold d/new
head -c 5000 /dev/urandom >"$S/d/new" || fail setup "cannot write d/new"
nheld d/new 1 || { release; fail setup "the upload never reached the proxy"; exit 1; }
sleep 2		# past cache_ttl: the next look lists d again
printf 'hold_key=d/new\nlist_late=d/\n' >"$T/control"
ls "$S/d" >"$T/ls1" 2>&1 &
lister=$!
if ! nheld "LIST " 1; then
	release
	fail "listing" "no listing of d/ reached the proxy (d was not listed again)"
	wait $lister
	exit 1
fi
echo "list_late=d/" >"$T/control"	# the upload lands; the listing waits
poll 60 is_done || fail "upload" "d/new did not land: $(state)"
release					# the listing, made before, arrives
wait $lister
check "the listing in flight shows the file" grep -qx new "$T/ls1"
check "the file that landed during the listing stays in the mount" \
	test -f "$S/d/new"
check "the folder shows both files" [ "$(ls "$S/d" | tr '\n' ' ')" = "new old " ]
sleep 2		# past cache_ttl: a listing made after the landing has it
check "a later listing keeps it" [ "$(ls "$S/d" | tr '\n' ' ')" = "new old " ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
