# tests/lib/common.sh - shared helpers for the integration tests (sourced).
# Every test prints "PASS: name", "FAIL: name: why" or "SKIP: name: why";
# tests/run-all.sh counts those lines.
#
# Environment from run-all.sh:
#   MEDIAFS     the daemon binary under test
#   T           a scratch directory for this test file
#   S3_PORT     the Swift s3api endpoint on 127.0.0.1
#   S3_REQLOG   Swift's request log (one line per S3 request)

: "${MEDIAFS:?}" "${T:?}"
SYS_PY=/usr/bin/python3
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR=$(dirname "$LIB_DIR")

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
skip() { echo "SKIP: $1: $2"; }

# check NAME COMMAND...: PASS when the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}

# A config for the Swift server. Usage: write_conf FILE [BUCKET [EXTRA]]
write_conf() {
	local f=$1 bucket=${2:-tree}
	cat >"$f" <<EOC
[s3t]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = $bucket
access_key_id = test:tester
secret_access_key = testing
retry_base_ms = 50
${3:-}
EOC
	chmod 600 "$f"
}

# mount_fs LOG MOUNTPOINT ARGS...: start mediafs in the foreground (so we
# keep its stderr and pid) and wait until the mount is there.
MFS_PID=
mount_fs() {
	local log=$1 mnt=$2 i
	shift 2
	mkdir -p "$mnt"
	"$MEDIAFS" -f "$@" "$mnt" >>"$log" 2>&1 &
	MFS_PID=$!
	# Up to 60 s: the sanitizer build on a busy machine starts slowly.
	for i in $(seq 1 600); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$MFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "mount of $mnt failed; log:" >&2
	tail -20 "$log" >&2
	return 1
}

# pid_alive PID: running (a zombie, exited but not yet waited for, is not).
pid_alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}

# umount_fs LOG MOUNTPOINT: unmount, wait for the daemon, and fail if it
# crashed or a sanitizer complained.
# A copy of the mount held in another mount namespace (a process of any
# test that ran unshare -m while it was mounted) or a lazy unmount of a
# busy mount keeps the FUSE connection open: gone from here, but the
# daemon never hears of the unmount (no "unmounting" line; its FUSE
# threads idle in the kernel; found/README.md seed-supabase-512004, a
# test_supabase unmount that waited ~10 min at load ~37). After 15 s of
# that it gets SIGTERM, what a user would do: a clean stop that still
# drains the uploads (exit status 0), said on stderr.
umount_fs() {
	local log=$1 mnt=$2 rc=0 seen
	seen=$(grep -c "info: unmounting " "$log" 2>/dev/null)
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	if [ -n "$MFS_PID" ]; then
		# Bounded: a daemon that does not exit within 120 s of the unmount
		# (draining uploads included) is a failure, killed so the test ends.
		local i termed= t0=$SECONDS
		for i in $(seq 1 1200); do
			pid_alive "$MFS_PID" || break
			if [ -z "$termed" ] && [ $((SECONDS - t0)) -ge 15 ] && ! mountpoint -q "$mnt" &&
				[ "$(grep -c "info: unmounting " "$log" 2>/dev/null)" = "${seen:-0}" ]; then
				echo "$mnt: unmounted here, the FUSE loop still runs (a copy of the mount in another mount namespace?): SIGTERM" >&2
				kill -TERM "$MFS_PID" 2>/dev/null
				termed=1
			fi
			sleep 0.1
		done
		if pid_alive "$MFS_PID"; then
			echo "mediafs did not exit within 120 s of the unmount; killed" >&2
			kill -9 "$MFS_PID" 2>/dev/null
			rc=137
		fi
		local w=0
		wait "$MFS_PID" 2>/dev/null || w=$?
		[ "$rc" -eq 0 ] && rc=$w
		MFS_PID=
	fi
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$log"; then
		echo "sanitizer report in $log:" >&2
		grep -E -A20 "AddressSanitizer|LeakSanitizer|runtime error:" "$log" | head -40 >&2
		return 1
	fi
	[ "$rc" -eq 0 ] || { echo "mediafs exited with $rc" >&2; return 1; }
}

cleanup_mounts() {
	local m
	for m in $(awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/mounts); do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	[ -n "$MFS_PID" ] && kill "$MFS_PID" 2>/dev/null
	true
}
trap cleanup_mounts EXIT

# tree_manifest DIR [PREFIX [SEP]]: "PREFIX<relative path>SEP<size>SEP<md5>"
# for every file below DIR, sorted bytewise (as the servers' tools sort).
tree_manifest() {
	"$SYS_PY" - "$1" "${2:-}" "${3:-	}" <<'PY'
import hashlib, os, sys
top, prefix, sep = sys.argv[1:4]
out = []
for d, _, files in os.walk(top):
    for f in files:
        p = os.path.join(d, f)
        data = open(p, 'rb').read()
        out.append(prefix + os.path.relpath(p, top) + sep + str(len(data)) + sep +
                   hashlib.md5(data).hexdigest())
for line in sorted(out, key=lambda s: s.encode('utf-8', 'surrogateescape')):
    print(line)
PY
}

# Request counting from Swift's request log.
req_mark() { wc -l <"$S3_REQLOG"; }
# req_since MARK [REGEX]: requests after MARK (matching REGEX).
req_since() {
	tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -cE "${2:-.}" || true
}

# s3 ARGS...: the independent S3 client (boto3) used to make fixtures:
# s3tool.py ARGS, run by a helper of the test's (tests/lib/s3d.py: boto3
# imported once, not at each of a test's calls; 0.03 CPU s a call, not 0.55).
export MFS_S3D_OWNER=${MFS_S3D_OWNER:-$$}
s3() { "$SYS_PY" -I -S "$LIB_DIR/s3d.py" "$T/.s3d.sock" "$MFS_S3D_OWNER" --port "$S3_PORT" "$@"; }

# proxy_start CONTROL: tests/servers/fault_proxy.py on a free port in
# front of the S3 server, ruled by the file CONTROL (emptied); sets PPORT
# and proxy (its pid). Waits up to 60 s for its "ready" (a Python start
# took 30 s at load 80); fails, saying why, if it never came.
proxy_start() {
	local i
	PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	: >"$1"
	"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$1" >"$T/proxy.out" 2>&1 &
	proxy=$!
	for i in $(seq 1 600); do
		grep -q ready "$T/proxy.out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "the fault proxy did not start: $(tail -3 "$T/proxy.out")" >&2
	return 1
}

# proxy_mount BUCKET: how a test of S3 through the fault proxy begins:
# MNT, LOG, J, OPTS and S (the remote's folder) set, BUCKET made, the
# proxy started (ruled by $T/control) and stopped at exit with the mounts,
# $T/m.conf for the remote s3t through it, mediafs mounted (the test exits
# if any of it failed).
proxy_mount() {
	MNT=$T/mnt
	LOG=$T/mediafs.log
	J=$T/journal.db
	s3 mkbucket "$1"
	proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
	trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
	S3_PORT=$PPORT write_conf "$T/m.conf" "$1"
	OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
	S=$MNT/s3t
}

# hold TEXT / release: requests whose URL holds TEXT wait at the fault
# proxy (proxy_start "$T/control") and at the Supabase fake, if one runs;
# nheld TEXT N waits (60 s) until N such requests are held.
hold() {
	echo "hold_key=$1" >"$T/control"
	[ -z "${SB_CONTROL:-}" ] || cp "$T/control" "$SB_CONTROL"
}
release() {
	: >"$T/control"
	[ -z "${SB_CONTROL:-}" ] || : >"$SB_CONTROL"
}
nheld() {
	local i
	for i in $(seq 1 600); do
		[ "$(cat "$T/control.held" ${SB_CONTROL:+"$SB_CONTROL.held"} 2>/dev/null | grep -c -- "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# kill9_fs MNT: kill -9 of the mediafs that mount_fs started (a crash:
# no unmount, no flush), then the dead mount detached.
kill9_fs() {
	kill -9 "$MFS_PID"
	wait "$MFS_PID" 2>/dev/null
	MFS_PID=
	fusermount3 -u -z "$1" 2>/dev/null
}

# wait_uploads JOURNAL [SECONDS]: until the journal holds no pending row.
# kill_when OUT COND SCRIPT [ARGS...]: sh SCRIPT ARGS in a process group
# of its own (output to OUT), killed with kill -9 (it and its children in
# the group) once the shell condition COND holds; sets PG (the group) and
# killed=1 when the kill landed while it ran. Polled for up to 120 s; a
# COND that holds while the script is blocked (a FIFO, a lock) makes the
# kill land there on any machine.
kill_when() {
	local _kw_out=$1 _kw_cond=$2 _kw_i
	shift 2
	setsid sh "$@" >"$_kw_out" 2>&1 &
	PG=$!
	killed=0
	for _kw_i in $(seq 1 1200); do
		if eval "$_kw_cond"; then
			kill -9 -- -"$PG" 2>/dev/null && killed=1
			break
		fi
		kill -0 "$PG" 2>/dev/null || break
		sleep 0.1
	done
	wait "$PG" 2>/dev/null
}

# journal_left J: the journal's upload rows still pending or failed, one
# "key state drop_key discard" each, space-separated; empty once settled
# (a journal it cannot read says so: never empty)
journal_left() {
	local rows
	rows=$(sqlite3 "$1" "select key, state, drop_key, discard from uploads where state in ('pending','failed')") ||
		{ echo "(cannot read the journal $1)"; return; }
	printf '%s' "$rows" | tr '|\n' '  '
}

wait_uploads() {
	local i n
	for i in $(seq 1 $((${2:-60} * 10))); do
		n=$(sqlite3 "$1" "select count(*) from uploads where state='pending'" 2>/dev/null)
		[ "$n" = 0 ] && return 0
		sleep 0.1
	done
	echo "uploads still pending after ${2:-60} s: $n" >&2
	return 1
}

# poll SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds, for
# SECONDS by the clock (a listing is a tool start, ~1 s); 1 if it never did.
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}
