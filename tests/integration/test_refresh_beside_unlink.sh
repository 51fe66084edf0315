#!/bin/bash
# `setfattr -n user.mediafs.refresh` of a file deleted on the server, while
# an `rm` of the same file waits: the refresh answered the kernel's entry
# notice from inside its own request. The kernel holds the file's lock for
# that request, the rm holds the folder's lock and waits for the file's,
# and the notice waits for the folder's: setfattr, rm and a daemon thread
# stuck for ever (found by a lock audit; libfuse forbids a notice "in the
# execution path of a related filesystem operation"). The notice now goes
# once the request is answered.
# The order is forced, not raced: the fault proxy holds the refresh's HEAD
# (hold_head) until the object is gone from the server and the rm waits in
# the kernel for the file's lock (its stack shows vfs_unlink).
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
s3 mkbucket rfu
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" rfu
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$T/journal.db ||
	{ fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t

mkdir "$S/d" && printf 'keep\n' >"$S/d/keep.txt" && printf 'old\n' >"$S/d/gone-by-refresh.txt" ||
	{ fail setup "cannot write below $S"; exit 1; }
timeout 60 "$MEDIACTL" wait "$S" >/dev/null || fail setup "the files never landed"
[ "$(ls "$S/d" | tr '\n' ' ')" = "gone-by-refresh.txt keep.txt " ] ||
	fail setup "listing: $(ls "$S/d" | tr '\n' ' ')"

: >"$T/control.held"
echo "hold_head=gone-by-refresh" >"$T/control"
setfattr -n user.mediafs.refresh -v 1 "$S/d/gone-by-refresh.txt" 2>"$T/setfattr.err" &
sf=$!
nheld "HEAD " 1 || { release; fail setup "the refresh's HEAD never reached the proxy"; exit 1; }
s3 delete rfu d/gone-by-refresh.txt >/dev/null || fail setup "cannot delete on the server"
rm -f "$S/d/gone-by-refresh.txt" 2>"$T/rm.err" &
rmp=$!
in_unlink() { grep -q vfs_unlink "/proc/$rmp/stack" 2>/dev/null; }
poll 60 in_unlink || fail setup "rm never waited for the file's lock: $(cat "/proc/$rmp/stack" 2>/dev/null | head -3 | tr '\n' ' ')"
release					# the HEAD answers 404: the file is gone
ended() { ! pid_alive "$sf" && ! pid_alive "$rmp"; }
if poll 60 ended; then
	pass "refresh and rm of the same file both end (no deadlock)"
else
	fail "deadlock" "after 60 s: setfattr $(pid_alive "$sf" && echo waits || echo ended), rm $(pid_alive "$rmp" && echo waits || echo ended); rm's stack: $(cat "/proc/$rmp/stack" 2>/dev/null | head -4 | tr '\n' ' ')"
	# the kernel's requests fail once the connection is aborted: all go on
	minor=$(awk -v m="$MNT" '$5 == m {split($3, a, ":"); print a[2]}' /proc/self/mountinfo)
	[ -n "$minor" ] && echo 1 >"/sys/fs/fuse/connections/$minor/abort"
	exit 1
fi
wait $sf
check "the refresh answered" [ $? = 0 ]
wait $rmp
check "the file is gone by name" test ! -e "$S/d/gone-by-refresh.txt"
check "the folder shows the other file only" [ "$(ls "$S/d" | tr '\n' ' ')" = "keep.txt " ]
check "the server has the other file only" [ "$(s3 keys rfu d/ 2>/dev/null | grep -v "/$" | tr "\n" " ")" = "d/keep.txt " ]
printf 'new\n' >"$S/d/gone-by-refresh.txt" 2>"$T/create.err"
check "the name can be made again" [ "$(cat "$S/d/gone-by-refresh.txt" 2>/dev/null)" = new ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
