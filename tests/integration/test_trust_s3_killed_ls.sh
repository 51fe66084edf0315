#!/bin/bash
# A caller that gives up (issue 16, #5): an ls whose listing pages forever
# (a new continuation token each page) or whose page never ends (a byte
# every 0.5 s, so no stall timeout fires) is killed; the daemon gets the
# kernel's INTERRUPT, stops paging or drops the transfer, answers EINTR,
# and records no half listing: the next ls shows the folder's real content.
# Counted at the fault proxy. -o op_timeout=0: no time limit would end
# either listing otherwise.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
CTL=$T/control
B=killedls
s3 mkbucket $B
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$CTL"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$CTL" >"$T/proxy.out" 2>"$T/proxy.err" &
proxy=$!
trap 'kill $proxy 2>/dev/null; cleanup_mounts' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
S3_PORT=$PPORT write_conf "$T/m.conf" $B "retries = 6"
mopts=config="$T/m.conf",cache_dir="$T/cache",journal="$T/journal.db",op_timeout=0
lies() { grep -c "^LIE $1" "$T/proxy.out" || true; }

mkdir -p "$T/fx/slow" "$T/fx/held"
echo x >"$T/fx/slow/x"
echo y >"$T/fx/held/y"
s3 putdir $B "$T/fx" >/dev/null
mount_fs "$LOG" "$MNT" -o "$mopts" s3t: || { fail mount "mediafs did not mount through the proxy"; exit 1; }
ls "$MNT" >/dev/null

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 $n); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
gone() { ! pid_alive "$1"; }
at_least() { [ "$(lies "$1")" -ge "$2" ]; }
intr_lines() { grep -c "opendir: interrupted: .*the caller was interrupted" "$LOG" || true; }
more_intr() { [ "$(intr_lines)" -gt "$1" ]; }

# 1. a listing that pages forever: kill -9 the ls after 3 pages
printf 'list_endless=slow/\nlist_delay=0.2\n' >"$CTL"
i0=$(intr_lines)
ls "$MNT/slow" >"$T/ls1.out" 2>&1 &
lspid=$!
if ! wait_for 60 at_least list_endless 3; then
	fail "endless listing" "only $(lies list_endless) pages in 60 s"
fi
n0=$(lies list_endless)
t0=$SECONDS
kill -9 $lspid
if wait_for 60 gone $lspid; then
	secs=$((SECONDS - t0))
	wait_for 60 more_intr "$i0"
	n1=$(lies list_endless)
	# an observation window, not a bound: a listing still paging would
	# add a page every 0.2 s; one request in flight at the answer may
	# still reach the proxy
	sleep 3
	n2=$(lies list_endless)
	[ "$(intr_lines)" -gt "$i0" ] && [ "$n2" -le $((n1 + 1)) ] &&
		pass "ls killed after $n0 pages of an endless listing: gone in $secs s, $((n1 - n0)) more page(s) until the EINTR, $((n2 - n1)) after it in 3 s" ||
		fail "endless listing stops" "pages: $n0 at the kill, $n1 at the EINTR, $n2 3 s later; interrupt lines $(intr_lines)"
else
	fail "endless listing stops" "ls still there 60 s after kill -9, $(lies list_endless) pages (was $n0)"
fi
printf '' >"$CTL"
names=$(ls "$MNT/slow" 2>&1 | tr '\n' ' ')
[ "$names" = "x " ] && pass "no half listing kept: the next ls of slow/ shows its file" ||
	fail "listing after the interrupt" "'$names'"

# 2. a page that never ends: the transfer itself is dropped
printf 'list_hold=held/\n' >"$CTL"
i0=$(intr_lines)
ls "$MNT/held" >"$T/ls2.out" 2>&1 &
lspid=$!
wait_for 60 at_least list_hold 1 || fail "held listing" "no request in 60 s"
t0=$SECONDS
kill -9 $lspid
if wait_for 60 gone $lspid && wait_for 60 grep -q "^CLOSED list_hold" "$T/proxy.out"; then
	secs=$((SECONDS - t0))
	wait_for 60 more_intr "$i0"
	[ "$(intr_lines)" -gt "$i0" ] && [ "$(lies list_hold)" = 1 ] &&
		pass "ls killed during a page that never ends: the daemon hung up within $secs s, 1 request, answered EINTR" ||
		fail "held page dropped" "$(lies list_hold) requests, interrupt lines $(intr_lines)"
else
	fail "held page dropped" "ls or the connection still there 60 s after kill -9"
fi
printf '' >"$CTL"
names=$(ls "$MNT/held" 2>&1 | tr '\n' ' ')
[ "$names" = "y " ] && [ "$(cat "$MNT/slow/x")" = x ] &&
	pass "the mount works afterwards: ls held/ shows its file, cat reads" ||
	fail "after the interrupts" "'$names'"

umount_fs "$LOG" "$MNT" && pass "unmount: clean exit, no sanitizer report" || fail unmount "see $LOG"
