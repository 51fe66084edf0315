#!/bin/bash
# `setfattr -n user.mediafs.refresh` of a file deleted on the server, while
# an `rm` of the same file waits: the refresh answered the kernel's entry
# notice from inside its own request. The kernel holds the file's lock for
# that request, the rm holds the folder's lock and waits for the file's,
# and the notice waits for the folder's: setfattr, rm and a daemon thread
# stuck for ever (found by a lock audit; libfuse forbids a notice "in the
# execution path of a related filesystem operation"). The notice now goes
# by a thread of its own (also with -s, where the one thread that answers
# requests sent it and then could not answer the rm: a review).
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
# one_mode MOUNT-FLAG SUFFIX NAME: the whole case on a mount of its own
one_mode() {
	local D=d$2 sf rmp minor
	mount_fs "$LOG" "$MNT" $1 -o config=$T/m.conf,cache_dir=$T/cache$2,journal=$T/journal$2.db ||
		{ fail mount "mediafs did not mount"; return 1; }
	S=$MNT/s3t

	mkdir "$S/$D" && printf 'keep\n' >"$S/$D/keep.txt" && printf 'old\n' >"$S/$D/gone-by-refresh.txt" ||
		{ fail setup "cannot write below $S"; return 1; }
	timeout 60 "$MEDIACTL" wait "$S" >/dev/null || fail setup "the files never landed"
	[ "$(ls "$S/$D" | tr '\n' ' ')" = "gone-by-refresh.txt keep.txt " ] ||
		fail setup "listing: $(ls "$S/$D" | tr '\n' ' ')"

	: >"$T/control.held"
	echo "hold_head=gone-by-refresh" >"$T/control"
	setfattr -n user.mediafs.refresh -v 1 "$S/$D/gone-by-refresh.txt" 2>"$T/setfattr.err" &
	sf=$!
	nheld "HEAD " 1 || { release; fail setup "the refresh's HEAD never reached the proxy"; return 1; }
	s3 delete rfu $D/gone-by-refresh.txt >/dev/null || fail setup "cannot delete on the server"
	rm -f "$S/$D/gone-by-refresh.txt" 2>"$T/rm.err" &
	rmp=$!
	in_unlink() { grep -q vfs_unlink "/proc/$rmp/stack" 2>/dev/null; }
	poll 60 in_unlink || fail setup "rm never waited for the file's lock: $(cat "/proc/$rmp/stack" 2>/dev/null | head -3 | tr '\n' ' ')"
	release					# the HEAD answers 404: the file is gone
	ended() { ! pid_alive "$sf" && ! pid_alive "$rmp"; }
	if poll 60 ended; then
		pass "refresh and rm of the same file both end (no deadlock)$3"
	else
		fail "deadlock$3" "after 60 s: setfattr $(pid_alive "$sf" && echo waits || echo ended), rm $(pid_alive "$rmp" && echo waits || echo ended); rm's stack: $(cat "/proc/$rmp/stack" 2>/dev/null | head -4 | tr '\n' ' ')"
		# the kernel's requests fail once the connection is aborted: all go on
		minor=$(awk -v m="$MNT" '$5 == m {split($3, a, ":"); print a[2]}' /proc/self/mountinfo)
		[ -n "$minor" ] && echo 1 >"/sys/fs/fuse/connections/$minor/abort"
		return 1
	fi
	wait $sf
	check "the refresh answered$3" [ $? = 0 ]
	wait $rmp
	check "the file is gone by name$3" test ! -e "$S/$D/gone-by-refresh.txt"
	check "the folder shows the other file only$3" [ "$(ls "$S/$D" | tr '\n' ' ')" = "keep.txt " ]
	check "the server has the other file only$3" [ "$(s3 keys rfu $D/ 2>/dev/null | grep -v "/$" | tr "\n" " ")" = "$D/keep.txt " ]
	printf 'new\n' >"$S/$D/gone-by-refresh.txt" 2>"$T/create.err"
	check "the name can be made again$3" [ "$(cat "$S/$D/gone-by-refresh.txt" 2>/dev/null)" = new ]
	umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
}
one_mode "" "" "" || exit 1
# -s: one thread answers every request, the notice's sender included
one_mode -s 2 " (-s)"
