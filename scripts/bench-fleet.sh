#!/bin/bash
# make bench, part 9: many hosts, one ledger (issue #19), where each host's
# link is the limit. One Swift S3 server and one throwaway PostgreSQL on
# this machine's 127.0.0.1; up to 3 hosts, each a network and mount
# namespace of its own (unshare -n -m) with its own mediafs mount, whose
# only way out is its link: tc's tbf on the namespace's interface (the
# bandwidth cap, BENCH_FLEET_RATE) and a forwarder across a Unix socket that
# holds every chunk back BENCH_FLEET_DELAY_MS each way (scripts/bench-link.py:
# this kernel has no sch_netem; S3 and PostgreSQL both behind it). The same
# run copies a plan of BENCH_FLEET_FILES files a worker with 1, 2 and 3
# workers ('mediactl load' + 'mediactl work' on each host) and prints the
# throughput, its ratio to linear (N x the one-worker rate) and the ledger's
# overhead per file (queries, and their round trips in ms, from each
# worker's summary). Times are the ledger's: first claim to last result.
#   BENCH_FLEET_RATE=2mbit BENCH_FLEET_DELAY_MS=10 BENCH_FLEET_FILES=100
#   BENCH_FLEET_SIZE=65536 BENCH_FLEET_THREADS=4
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RATE=${BENCH_FLEET_RATE:-2mbit}
DELAY=${BENCH_FLEET_DELAY_MS:-10}
PER=${BENCH_FLEET_FILES:-100}
SIZE=${BENCH_FLEET_SIZE:-65536}
THREADS=${BENCH_FLEET_THREADS:-4}
D=$ROOT/build/bench-fleet
[ -x build/mediafs ] && [ -x build/mediactl ] || make -s all
for c in unshare socat ip tc; do
	command -v $c >/dev/null || { echo "bench-fleet: no $c (scripts/install-deps.sh)" >&2; exit 1; }
done
for p in $(cat "$D/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
rm -rf "$D"
mkdir -p "$D"
T=$D
. tests/lib/swift.sh
. tests/lib/pg.sh
. tests/lib/netns.sh
ns_usable || { echo "bench-fleet: $NS_WHY" >&2; exit 1; }
cleanup() {
	set +e
	touch "$D/stop"
	for i in 1 2 3; do
		[ -f "$D/h$i/wrap.pid" ] && wait "$(cat "$D/h$i/wrap.pid")" 2>/dev/null
	done
	ns_stop_forwarders
	for p in $(cat "$D/pids" 2>/dev/null); do kill "$p" 2>/dev/null; done
	pg_stop
	swift_stop >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 1' INT TERM
swift_start "$D/swift" >/dev/null
pg_start "$D/pg" >/dev/null
export PGPASSWORD=$PG_PASS
LEDGER="postgres://mediafs@127.0.0.1:$PG_PORT/postgres"
/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket fleet

# the sources: 3 x PER files of SIZE bytes (random: nothing compresses)
/usr/bin/python3 - "$D/src" "$((3 * PER))" "$SIZE" <<'PY'
import os, sys
top, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(top, 'd%02d' % (i % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%05d' % i), 'wb') as f:
        f.write(os.urandom(size))
PY
cat >"$D/m.conf" <<EOC
[s3t]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = fleet
access_key_id = test:tester
secret_access_key = testing
retry_base_ms = 50

[src]
type = local
path = $D/src
EOC
chmod 600 "$D/m.conf"
MNT=$D/mnt
mkdir -p "$MNT"
# plan R (R workers): R x PER of the sources to outR/
for r in 1 2 3; do
	/usr/bin/python3 - "$D/src" "$MNT" "$r" "$PER" >"$D/fleet$r.plan" <<'PY'
import json, os, sys
top, mnt, r, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print(json.dumps({"mediactl_plan": 1, "from": mnt + "/src", "to": mnt + "/s3t/out%d" % r}))
fs = sorted(os.path.relpath(os.path.join(d, f), top) for d, _, x in os.walk(top) for f in x)
for rel in fs[:r * per]:
    print(json.dumps({"src": rel, "dst": rel, "size": os.path.getsize(os.path.join(top, rel))}))
PY
	build/mediactl --journal "$LEDGER" load "$D/fleet$r.plan" >/dev/null
done

# host I: its namespace, link, mount; then the runs it takes part in
cat >"$D/host.sh" <<'EOH'
#!/bin/bash
i=$1 h=$D/h$1
. tests/lib/netns.sh
ns_drop_inherited_mounts
ip link set lo up
ip link set lo mtu 1500
tc qdisc add dev lo root tbf rate "$RATE" burst 16kb latency 100ms
ns_forward_in "s3-$i" "$S3_PORT" && ns_forward_in "pg-$i" "$PG_PORT" || exit 1
build/mediafs -f -o config="$D/m.conf",cache_dir="$h/cache",journal="$h/journal.db" \
	"$MNT" >"$h/mediafs.log" 2>&1 &
mpid=$!
for n in $(seq 1 600); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || exit 1
touch "$h/mounted"
for r in 1 2 3; do
	[ "$i" -le "$r" ] || continue
	until [ -e "$D/go$r" ] || [ -e "$D/stop" ]; do sleep 0.05; done
	[ -e "$D/stop" ] && break
	build/mediactl --journal "$LEDGER" --config "$D/m.conf" work --plan "fleet$r" \
		--host "host$i" --threads "$THREADS" --batch 4 >"$h/work$r.log" 2>&1
	touch "$h/done$r"
done
until [ -e "$D/stop" ]; do sleep 0.1; done
tc -s qdisc show dev lo >"$h/tc.txt"
fusermount3 -u "$MNT"
wait "$mpid"
EOH
chmod +x "$D/host.sh"
export D RATE S3_PORT PG_PORT PGPASSWORD LEDGER MNT THREADS NS_SOCKDIR
for i in 1 2 3; do
	mkdir -p "$D/h$i"
	/usr/bin/python3 scripts/bench-link.py "$NS_SOCKDIR/s3-$i.sock" "$S3_PORT" "$DELAY" &
	echo $! >>"$D/pids"
	/usr/bin/python3 scripts/bench-link.py "$NS_SOCKDIR/pg-$i.sock" "$PG_PORT" "$DELAY" &
	echo $! >>"$D/pids"
done
for i in 1 2 3; do
	for n in $(seq 1 600); do
		[ -S "$NS_SOCKDIR/s3-$i.sock" ] && [ -S "$NS_SOCKDIR/pg-$i.sock" ] && break
		sleep 0.1
	done
	unshare -n -m --propagation private "$D/host.sh" "$i" &
	echo $! >"$D/h$i/wrap.pid"
done
for i in 1 2 3; do
	for n in $(seq 1 1200); do [ -e "$D/h$i/mounted" ] && break; sleep 0.1; done
	[ -e "$D/h$i/mounted" ] || { echo "bench-fleet: host $i did not mount" >&2; exit 1; }
done

echo
echo "mediactl work, 1-3 hosts, each link $RATE with ${DELAY} ms each way" \
	"($(( 2 * DELAY )) ms round trip), $PER files of $SIZE B a worker, $THREADS threads;" \
	"load average $(cut -d' ' -f1 /proc/loadavg) at the start"
echo "| workers | files | MiB | seconds | MiB/s | ratio to linear | ledger queries per file | ledger ms per file |"
echo "|---|---|---|---|---|---|---|---|"
base=
for r in 1 2 3; do
	touch "$D/go$r"
	for i in $(seq 1 "$r"); do
		for n in $(seq 1 6000); do [ -e "$D/h$i/done$r" ] && break; sleep 0.1; done
		[ -e "$D/h$i/done$r" ] || { echo "bench-fleet: host $i did not finish run $r" >&2; exit 1; }
	done
	st=$(psql_ -c "select count(*) filter (where state='done') || ' ' || count(*) || ' ' ||
		coalesce(sum(size), 0) || ' ' || (max(finished_at) - min(claimed_at))
		from ledger_entries where plan='fleet$r'")
	read -r ndone nall bytes secs <<<"$st"
	[ "$ndone" = "$nall" ] || { echo "bench-fleet: run $r: $ndone of $nall done" >&2; exit 1; }
	n=$(/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" keys fleet "out$r/" | wc -l)
	[ "$n" = "$nall" ] || { echo "bench-fleet: run $r: $n objects on the store, want $nall" >&2; exit 1; }
	q=$(cat "$D"/h*/work$r.log | /usr/bin/python3 -c '
import re, sys
f = q = ms = 0
for m in re.finditer(r": (\d+) files .*?; (\d+) ledger queries \([0-9.]+ per file, ([0-9.]+) ms per file\)", sys.stdin.read()):
    n = int(m.group(1)); f += n; q += int(m.group(2)); ms += n * float(m.group(3))
print("%.2f %.2f" % (q / f, ms / f) if f else "- -")')
	/usr/bin/python3 - "$r" "$nall" "$bytes" "$secs" "${base:-0}" $q <<'PY'
import sys
r, n, b, s, base, q, ms = sys.argv[1:8]
r, rate = int(r), int(b) / float(s) / 1048576
base = float(base) or rate
print("| %d | %s | %.1f | %.1f | %.2f | %.2f | %s | %s |" % (r, n, int(b) / 1048576, float(s), rate, rate / (r * base), q, ms))
PY
	[ -n "$base" ] || base=$(/usr/bin/python3 -c "print($bytes / $secs / 1048576)")
done
echo "(every run: all entries done in the ledger, every object on the store; load average $(cut -d' ' -f1 /proc/loadavg) at the end)"
