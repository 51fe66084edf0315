#!/bin/bash
# make bench, part 5: a URL-list remote the size of scenario S4: a text
# manifest of N generated URLs (CloudFront-like paths, ~8 per folder, as
# the auction lists have), strip_prefix; the origin is never contacted
# (nothing is read). Prints mount + find | wc -l (cold cache), the same
# after a remount (warm cache), and the daemon's peak RSS.
#   BENCH_HTTP_URLS=256694
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${BENCH_HTTP_URLS:-256694}
D=$ROOT/build/bench-http
MNT=$D/mnt
[ -x build/mediafs ] || make -s build/mediafs
rm -rf "$D"
mkdir -p "$D" "$MNT"
/usr/bin/python3 - "$D/urls.txt" "$N" <<'PY'
import sys
out, n = sys.argv[1], int(sys.argv[2])
with open(out, 'w') as f:
    for i in range(n):
        lot, ts = 3000 + i // 80, 1713553344 + i // 8
        f.write(f'https://d1abcdefghijk.cloudfront.net/auctionimages/{lot}/{ts}/i{i % 8:04d}-{i}.jpg\n')
PY
cat >"$D/m.conf" <<EOC
[cf]
type = http
manifest = $D/urls.txt
strip_prefix = /auctionimages/
EOC
run() {	# run LABEL
	local t0 t1 n pid hwm
	t0=$(date +%s.%N)
	build/mediafs -o config="$D/m.conf",cache_dir="$D/cache",journal="$D/j.db" cf: "$MNT"
	n=$(find "$MNT" -type f | wc -l)
	t1=$(date +%s.%N)
	pid=$(pgrep -f "cache_dir=$D/cache" | head -1)
	hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' /proc/"$pid"/status)
	fusermount3 -u "$MNT"
	while pgrep -f "cache_dir=$D/cache" >/dev/null; do sleep 0.05; done
	printf '| %s | %d | %.2f s | %d MB |\n' "$1" "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$hwm"
}
echo
echo "URL-list remote, $N URLs in a text manifest (origin not contacted)"
echo "| run | files found | mount + find \\| wc -l | daemon peak RSS |"
echo "|---|---|---|---|"
run "cold cache (the tree built, every folder listed into the cache)"
run "after a remount (listings from the cache)"
