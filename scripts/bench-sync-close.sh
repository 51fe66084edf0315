#!/bin/bash
# make bench, the cost of -o sync_close (issue 16): a sequential cp of N
# files of SIZE bytes into a mediafs mount on one Swift s3api server, by
# default (uploads after close) and with -o sync_close (close() waits for
# the upload and returns its error). Prints, for each: the seconds cp took,
# the seconds until every file was on the store (mediactl wait), and the
# PUTs the server saw; the figures are recorded in README.md ("Seeing
# failures") and docs/TRUST.md. BENCH_SC_FILES=100 BENCH_SC_SIZE=20000
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/bench-sync-close
N=${BENCH_SC_FILES:-100}
SIZE=${BENCH_SC_SIZE:-20000}
[ -x build/mediafs ] && [ -x build/mediactl ] || make -s build/mediafs build/mediactl || exit 1

. tests/lib/swift.sh
cleanup() {
	for m in "$D"/mnt-*; do fusermount3 -u "$m" 2>/dev/null; done
	swift_stop 2>/dev/null
}
trap cleanup EXIT
rm -rf "$D"
mkdir -p "$D/src"
swift_start "$D/swift" || exit 1
PY=/usr/bin/python3
"$PY" tests/lib/s3tool.py --port "$S3_PORT" mkbucket syncclose >/dev/null || exit 1
for i in $(seq 1 "$N"); do head -c "$SIZE" /dev/urandom >"$D/src/f$i.bin"; done
cat >"$D/m.conf" <<EOC
[s3t]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
region = us-east-1
bucket = syncclose
access_key_id = test:tester
secret_access_key = testing
EOC
chmod 600 "$D/m.conf"
ms() { echo $(($(date +%s%N) / 1000000)); }

echo "sequential cp of $N files of $SIZE bytes, one Swift s3api server on 127.0.0.1"
echo "| mode | cp | until all on the store | PUTs |"
echo "|---|---|---|---|"
for mode in default sync_close; do
	mnt=$D/mnt-$mode
	opts=config=$D/m.conf,cache_dir=$D/cache-$mode,journal=$D/j-$mode.db
	[ $mode = sync_close ] && opts=$opts,sync_close
	mkdir -p "$mnt"
	build/mediafs -f -o "$opts" s3t: "$mnt" >"$D/$mode.log" 2>&1 &
	pid=$!
	for i in $(seq 1 600); do mountpoint -q "$mnt" && break; sleep 0.1; done
	mountpoint -q "$mnt" || { echo "bench-sync-close: mount failed" >&2; cat "$D/$mode.log" >&2; exit 1; }
	mkdir "$mnt/$mode"
	m0=$(wc -l <"$S3_REQLOG")
	t0=$(ms)
	cp "$D/src/"*.bin "$mnt/$mode/" || { echo "bench-sync-close: cp failed" >&2; exit 1; }
	t1=$(ms)
	build/mediactl wait --timeout 600 "$mnt/$mode" >/dev/null || { echo "bench-sync-close: wait failed" >&2; exit 1; }
	t2=$(ms)
	puts=$(tail -n +"$((m0 + 1))" "$S3_REQLOG" | grep -cE "^PUT /syncclose/$mode/f[0-9]+\.bin " || true)
	[ "$puts" -ge "$N" ] || { echo "bench-sync-close: $puts PUTs for $N files" >&2; exit 1; }
	printf '| %s | %d.%02d s | %d.%02d s | %d |\n' $mode $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000 / 10)) \
		$(((t2 - t0) / 1000)) $(((t2 - t0) % 1000 / 10)) "$puts"
	fusermount3 -u "$mnt"
	wait $pid
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"
