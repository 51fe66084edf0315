#!/bin/bash
# Failures a user sees with standard tools. A fault proxy in front of the
# S3 server refuses one name (403 AccessDenied) and PUTs above a size (400
# EntityTooLarge): cp exits 0 (uploads go up after close), then fsync on a
# new descriptor, sync DIR (fsyncdir), the upload_state xattr, 'mediactl
# wait' and the daemon's exit status and unmount summary all report it;
# with -o sync_close, cp itself fails. A server that never answers: a
# lookup ends within -o op_timeout with ETIMEDOUT and a log line naming
# the operation and the remote. A full cache disk: mkdir and create get
# ENOSPC.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket visible
proxy_start "$T/control" || { fail "fault proxy" "did not start"; exit 1; }
trap 'kill $proxy 2>/dev/null; cleanup_mounts' EXIT
printf 'refuse_key=denied\nmax_size=100000\n' >"$T/control"
S3_PORT_REAL=$S3_PORT
S3_PORT=$PPORT write_conf "$T/m.conf" visible "retries = 2"
state() { getfattr --absolute-names -n user.mediafs.upload_state --only-values "$1" 2>&1; }
# fsync_err PATH: fsync on a new read-only descriptor; prints "ok" or the
# errno's name
fsync_err() {
	$SYS_PY -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.fsync(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"
}
# stop_fs: unmount; the daemon's exit status in $stop_rc
stop_fs() {
	stop_rc=0
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	wait "$MFS_PID" || stop_rc=$?
	MFS_PID=
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG"; then
		fail "sanitizer" "$(grep -E -A5 "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" | head -8)"
	fi
}

mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount through the proxy"; exit 1; }
mkdir -p "$T/src"
head -c 5000 /dev/urandom >"$T/src/small"
head -c 200000 /dev/urandom >"$T/src/big"
mkdir "$MNT/ok" "$MNT/bad"
cp "$T/src/small" "$MNT/ok/a.bin" && cp "$T/src/small" "$MNT/bad/denied.bin" &&
	cp "$T/src/big" "$MNT/bad/big.bin" &&
	pass "cp exits 0 before the uploads are tried (the default: uploads after close)" ||
	fail "cp" "cp failed"

# fsync on a descriptor opened after the close waits for the upload
r=$(fsync_err "$MNT/ok/a.bin")
[ "$r" = ok ] && [ "$(S3_PORT=$S3_PORT_REAL s3 manifest visible ok/a.bin | cut -f2)" = 5000 ] &&
	pass "fsync of an uploaded file returns 0 once it is on the store" || fail "fsync ok" "$r"
r=$(fsync_err "$MNT/bad/denied.bin")
[ "$r" = EACCES ] && pass "fsync of a refused file: EACCES (403 AccessDenied)" || fail "fsync refused" "$r"
r=$(fsync_err "$MNT/bad/big.bin")
[ "$r" = EFBIG ] && pass "fsync of a file above the store's size limit: EFBIG" || fail "fsync too large" "$r"

# the xattr, settled after fsync returned
s=$(state "$MNT/ok/a.bin")
[ "$s" = done ] && pass "upload_state of an uploaded file: done" || fail "state done" "$s"
s=$(state "$MNT/bad/denied.bin")
case "$s" in
"failed: "*"access denied"*) pass "upload_state of a refused file: ${s:0:70}" ;;
*) fail "state refused" "$s" ;;
esac
s=$(state "$MNT/bad/big.bin")
case "$s" in
"failed: "*"larger than the store accepts"*) pass "upload_state of a too large file: ${s:0:70}" ;;
*) fail "state too large" "$s" ;;
esac
s=$(state "$MNT/bad")
[ "$(echo "$s" | head -1)" = "failed: 2 failed" ] && echo "$s" | grep -q "^s3t:bad/big.bin: .*larger than" &&
	echo "$s" | grep -q "^s3t:bad/denied.bin: .*access denied" &&
	pass "upload_state of their directory: 2 failed, each named with its reason" || fail "state dir" "$s"
getfattr -d -m - "$MNT/bad/denied.bin" 2>/dev/null | grep -q upload_state &&
	fail "xattr listed" "upload_state is listed (rsync -X would copy it)" ||
	pass "upload_state is not listed (rsync -X does not copy it)"

# sync DIR: fsync of the directory (FUSE fsyncdir)
if sync "$MNT/bad" 2>"$T/sync.err"; then
	fail "sync dir" "sync of a directory with failed uploads exited 0"
else
	grep -qE "Permission denied|File too large" "$T/sync.err" &&
		pass "sync DIR exits non-zero: $(head -1 "$T/sync.err" | cut -c1-70)" ||
		fail "sync dir" "$(cat "$T/sync.err")"
fi
sync "$MNT/ok" && pass "sync DIR of a directory whose uploads landed exits 0" || fail "sync ok dir" "non-zero"

# mediactl wait
"$MEDIACTL" wait --timeout 60 "$MNT/ok" && pass "mediactl wait ok/: exit 0" || fail "wait ok" "exit $?"
"$MEDIACTL" wait --timeout 60 "$MNT/bad" 2>"$T/wait.err"
rc=$?
[ $rc = 1 ] && grep -q "s3t:bad/denied.bin: " "$T/wait.err" && grep -q "s3t:bad/big.bin: " "$T/wait.err" &&
	pass "mediactl wait bad/: exit 1, the failures listed" || fail "wait bad" "exit $rc: $(cat "$T/wait.err")"
"$MEDIACTL" wait --timeout 60 "$MNT" 2>/dev/null
rc=$?
[ $rc = 1 ] && pass "mediactl wait on the mount root: exit 1" || fail "wait root" "exit $rc"
"$MEDIACTL" wait "$T" 2>/dev/null
rc=$?
[ $rc = 2 ] && pass "mediactl wait outside a mount: exit 2" || fail "wait outside" "exit $rc"
# pending at the deadline: 124. A new file with the server swallowing
# requests stays pending/uploading until the server answers.
echo hang=1 >>"$T/control"
cp "$T/src/small" "$MNT/ok/held.bin"
"$MEDIACTL" wait --timeout 1 "$MNT/ok" 2>"$T/wait.err"
rc=$?
[ $rc = 124 ] && pass "mediactl wait while an upload cannot finish: exit 124 after --timeout" ||
	fail "wait timeout" "exit $rc: $(cat "$T/wait.err")"
printf 'refuse_key=denied\nmax_size=100000\n' >"$T/control"
"$MEDIACTL" wait --timeout 100 "$MNT/ok" && [ "$(state "$MNT/ok/held.bin")" = done ] &&
	pass "once the server answers, mediactl wait exits 0" || fail "wait after hang" "$(state "$MNT/ok/held.bin")"

stop_fs
[ "$stop_rc" = 1 ] && pass "the daemon exits 1 when uploads failed" || fail "exit status" "$stop_rc"
grep -q "not uploaded: s3t:bad/denied.bin: " "$LOG" && grep -q "not uploaded: s3t:bad/big.bin: " "$LOG" &&
	pass "the unmount summary names each failed upload" || fail "summary" "$(grep -i "not uploaded\|failed" "$LOG" | tail -3)"

# -o sync_close: close() waits for the upload, so cp's exit status says it
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J",sync_close s3t: ||
	{ fail mount "sync_close mount"; exit 1; }
if cp "$T/src/big" "$MNT/ok/big2.bin" 2>"$T/cp.err"; then
	fail "sync_close" "cp of a file above the size limit exited 0"
else
	grep -q "File too large" "$T/cp.err" && pass "sync_close: cp fails: $(head -1 "$T/cp.err" | cut -c1-70)" ||
		fail "sync_close cp" "$(cat "$T/cp.err")"
fi
cp "$T/src/small" "$MNT/ok/c.bin" &&
	[ "$(S3_PORT=$S3_PORT_REAL s3 manifest visible ok/c.bin | cut -f2)" = 5000 ] &&
	pass "sync_close: when cp returns 0 the object is already on the store" || fail "sync_close ok" "not on the store"
rm -f "$MNT/bad/denied.bin" "$MNT/bad/big.bin" "$MNT/ok/big2.bin"
"$MEDIACTL" wait --timeout 60 "$MNT" && pass "removing the failed files settles the mount: wait exits 0" ||
	fail "wait after rm" "exit $?"
stop_fs
[ "$stop_rc" = 0 ] && pass "with nothing failed the daemon exits 0" || fail "exit 0" "$stop_rc"

# a server that never answers: a lookup ends within op_timeout
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache2",journal="$J",op_timeout=3 s3t: ||
	{ fail mount "op_timeout mount"; exit 1; }
echo hang=1 >"$T/control"
t0=$(date +%s)
err=$(stat "$MNT/ok/never-listed" 2>&1)	# ok/ was never listed here
el=$(($(date +%s) - t0))
case "$err" in
*"timed out"*) [ $el -lt 30 ] && pass "a lookup against a server that never answers: ETIMEDOUT in $el s (op_timeout=3)" ||
	fail "op_timeout" "took $el s" ;;
*) fail "op_timeout" "after $el s: $err" ;;
esac
grep -E "lookup: timed out: .*remote \[s3t\]" "$LOG" | head -1 | grep -q "op_timeout" &&
	pass "the log names the operation and the remote: $(grep -E "lookup: timed out" "$LOG" | head -1 | cut -c1-90)" ||
	fail "timeout log" "$(grep -i "timed out" "$LOG" | head -2)"
: >"$T/control"
ls "$MNT" >/dev/null && pass "once the server answers again the mount works" || fail "after hang" "ls failed"
stop_fs

# a full cache disk: mkdir and create answer ENOSPC
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/small"
	mount -t tmpfs -o size=1m tmpfs "$T/small"
	mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/small",journal="$J" s3t: ||
		{ fail "mount small" "mediafs did not mount"; umount "$T/small"; exit 1; }
	ls "$MNT" >/dev/null
	head -c 2000000 /dev/zero >"$T/small/filler" 2>/dev/null
	mkdir "$MNT/newdir" 2>"$T/mkdir.err"
	grep -q "No space left on device" "$T/mkdir.err" && pass "full cache disk: mkdir gets ENOSPC" ||
		fail "mkdir ENOSPC" "$(cat "$T/mkdir.err")"
	touch "$MNT/newfile" 2>"$T/create.err"
	grep -q "No space left on device" "$T/create.err" && pass "full cache disk: create gets ENOSPC" ||
		fail "create ENOSPC" "$(cat "$T/create.err")"
	rm -f "$T/small/filler"
	stop_fs
	umount "$T/small"
else
	skip "full cache disk" "needs root to mount a small tmpfs"
fi
