#!/bin/bash
# A dead server (issue 16, #6 and "What it must show"): through a proxy that
# swallows every request (hang=1: connections accepted, never answered),
# every kind of filesystem call that may talk to the server returns within
# -o op_timeout (3 s here): lookup, opendir, readdir, open and read,
# getxattr, setxattr, rename, unlink, mkdir, rmdir, create/write/close,
# setattr (utimens, truncate, chmod), statfs, and syncfs (which never
# reaches the daemon). fsync, sync DIR and sync_close are the documented
# exceptions (they wait for the upload; test_visible_failures). Each call
# either succeeds from what the daemon holds or fails; none hangs. Once the
# server answers again the mount works and the bytes are right.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
CTL=$T/control
B=deadsrv
BOUND=45	# per command: a few calls of op_timeout=3 s each, some queued
		# behind others in the daemon's threads, on a loaded machine
s3 mkbucket $B
head -c 100000 /dev/urandom >"$T/f.bin"
# a folder per kind of change: the kernel runs the changes of one folder
# one at a time (its lock), which would add their waits up
for k in r/f1.bin r/f2.bin mv/f3.bin rm/f4.bin mk/keep.bin new/keep.bin attr/f5.bin attr/f6.bin \
	attr/f7.bin attr/f8.bin other/x.bin gone/y.bin; do
	mkdir -p "$T/fix/$(dirname $k)"
	cp "$T/f.bin" "$T/fix/$k"
done
s3 putdir $B "$T/fix" >/dev/null || { fail fixture "cannot upload the fixtures"; exit 1; }
t_start=$SECONDS
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$CTL"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$CTL" >"$T/proxy.out" 2>"$T/proxy.err" &
proxy=$!
trap ': >"$CTL"; kill $proxy 2>/dev/null; cleanup_mounts' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
S3_PORT=$PPORT write_conf "$T/m.conf" $B "retries = 2"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J",op_timeout=3 s3t: ||
	{ fail mount "mediafs did not mount through the proxy"; exit 1; }
# listed while the server answers: all but other/; again until done, as a
# loaded server may take longer than op_timeout
DIRS="r mv rm mk new attr gone"
listed() {
	local d
	ls "$MNT" >/dev/null 2>&1 || return 1
	for d in $DIRS; do ls "$MNT/$d" 2>/dev/null | grep -q . || return 1; done
}
for i in $(seq 1 60); do listed && break; sleep 1; done
listed || { fail setup "listing before the hang failed"; exit 1; }

echo hang=1 >"$CTL"
# timed NAME CMD...: CMD (under timeout 100, a safety net), in the
# background; one line "NAME: exit RC in MS ms" in timings. Its exit status
# does not matter (an error is a good answer), only that it returns.
pids=()
timed() {
	(
		name=$1
		shift
		t0=$(date +%s%N)
		rc=0
		timeout 100 "$@" >/dev/null 2>>"$T/cmds.err" || rc=$?
		echo "$name: exit $rc in $((($(date +%s%N) - t0) / 1000000)) ms" >>"$T/timings"
	) &
	pids+=($!)
}
# at once, as several programs would (each file used by one command)
timed lookup stat "$MNT/other/x.bin"
timed opendir ls "$MNT/other"
timed readdir ls -l "$MNT/r"
timed open+read cat "$MNT/r/f1.bin"
timed getxattr getfattr -n user.mediafs.content_type "$MNT/r/f2.bin"
timed rename mv "$MNT/mv/f3.bin" "$MNT/mv/f3b.bin"
timed unlink rm -f "$MNT/rm/f4.bin"
timed mkdir mkdir "$MNT/mk/newdir"
timed create+write+close cp "$T/f.bin" "$MNT/new/new.bin"
timed utimens touch -d @1500000000 "$MNT/attr/f5.bin"
timed truncate truncate -s 10 "$MNT/attr/f6.bin"
timed chmod chmod 600 "$MNT/attr/f7.bin"
timed setxattr setfattr -n user.note -v hello "$MNT/attr/f8.bin"
timed statfs stat -f "$MNT"
wait "${pids[@]}"
pids=()
timed syncfs sync -f "$MNT"
wait "${pids[@]}"
sync_rc=$(grep "^syncfs:" "$T/timings" | cut -d' ' -f3)
sync_state=$(getfattr --absolute-names -n user.mediafs.upload_state --only-values "$MNT/new/new.bin" 2>&1)
pids=()
timed rmdir rmdir "$MNT/mk/newdir"
timed rename-uploading mv "$MNT/new/new.bin" "$MNT/new/new2.bin"
timed unlink-dir-listed rm -rf "$MNT/gone"
timed lookup-again stat "$MNT/other/x.bin"
wait "${pids[@]}"
n=$(wc -l <"$T/timings")
slow=$(awk -v b=$((BOUND * 1000)) '$3 == 124 || $5 >= b' "$T/timings" | tr '\n' ';')
[ -z "$slow" ] && [ "$n" = 19 ] &&
	pass "a server that never answers: $n commands, each returned within $BOUND s (op_timeout=3; slowest $(sort -t' ' -k5 -g "$T/timings" | tail -1 | cut -d' ' -f1,5) ms)" ||
	fail "dead server" "$n commands, too slow: $slow; $(tr '\n' ';' <"$T/timings")"
# the finding README documents: syncfs never reaches a FUSE daemon (Linux
# sends FUSE_SYNCFS to virtiofs only), so it does not wait for uploads
[ "$sync_rc" = 0 ] && case "$sync_state" in pending* | uploading*) true ;; *) false ;; esac &&
	pass "sync -f (syncfs) exits 0 while new/new.bin is '$sync_state': it does not reach the daemon" ||
	fail "syncfs" "exit $sync_rc, new.bin '$sync_state'"
grep -q "timed out" "$LOG" && pass "the log says which calls timed out: $(grep -c "timed out" "$LOG") lines" ||
	fail "timeout log" "no 'timed out' in the log"

: >"$CTL"
ok=1
for i in $(seq 1 600); do
	cmp -s "$MNT/r/f1.bin" "$T/f.bin" && ls "$MNT/other" | grep -qx x.bin && break
	sleep 0.1
done
cmp -s "$MNT/r/f1.bin" "$T/f.bin" && ls "$MNT/other" | grep -qx x.bin || ok=0
[ $ok = 1 ] && pass "once the server answers: the mount lists and reads the right bytes" ||
	fail "after the hang" "$(ls "$MNT/other" 2>&1 | head -2)"
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
for i in $(seq 1 1200); do pid_alive "$MFS_PID" || break; sleep 0.1; done
rc=0
pid_alive "$MFS_PID" && { kill -9 "$MFS_PID"; rc=137; }
wait "$MFS_PID" 2>/dev/null || rc=$?
MFS_PID=
! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" && [ "$rc" != 137 ] && [ "$rc" -le 1 ] &&
	pass "unmount: the daemon exits ($rc), no sanitizer report ($((SECONDS - t_start)) s from the mount)" || fail unmount "exit $rc; see $LOG"
