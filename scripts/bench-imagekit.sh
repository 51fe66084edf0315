#!/bin/bash
# make bench, part 6: an ImageKit remote against the project's fake server
# (tests/servers/fake_imagekit.py, python3 on loopback: it measures what
# mediafs asks for and how it overlaps the requests, not ImageKit's own
# speed). N generated images (PNG/GIF, 1-20 KB) go in with cp -r and with
# rsync -a; then an rsync re-run through the same cache, one from an empty
# cache, and a directory rename (a bulk job). Prints wall time, requests
# per file and the daemon's peak RSS.
#   BENCH_IK_FILES=1000
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${BENCH_IK_FILES:-1000}
D=$ROOT/build/bench-imagekit
MNT=$D/mnt
[ -x build/mediafs ] || make -s build/mediafs
rm -rf "$D"
mkdir -p "$D" "$MNT"
. tests/lib/imagekit.sh
ik_start "$D/ik" >/dev/null
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || true
	ik_stop
}
trap cleanup EXIT
export MFS_TEST_IK_KEY=$IK_KEY
ik_conf ik >"$D/m.conf"
chmod 600 "$D/m.conf"
/usr/bin/python3 scripts/gen-images.py "$D/src" "$N" --seed 9 >/dev/null
bytes=$(du -sb "$D/src" | cut -f1)

mnt() { build/mediafs -o config="$D/m.conf",cache_dir="$D/$1",journal="$D/j.db" ik: "$MNT"; }
umnt() {
	local pid
	pid=$(pgrep -f "cache_dir=$D/" | head -1)
	HWM=$(awk '/VmHWM/ {print int($2 / 1024)}' /proc/"$pid"/status)
	fusermount3 -u "$MNT"	# waits for the uploads
	while pgrep -f "cache_dir=$D/" >/dev/null; do sleep 0.05; done
}
row() {	# row LABEL T0 MARK FILES
	local t1 req
	t1=$(date +%s.%N)
	req=$(ik_since "$3")
	printf '| %s | %.2f s | %d | %.2f | %d MB |\n' "$1" \
		"$(awk -v a="$2" -v b="$t1" 'BEGIN {print b - a}')" "$req" \
		"$(awk -v r="$req" -v n="$4" 'BEGIN {print n ? r / n : 0}')" "$HWM"
}

echo
echo "ImageKit remote (fake server on loopback), $N images, $((bytes / 1024)) KiB"
echo "| run | wall (mount to unmount, uploads done) | requests | per file | daemon peak RSS |"
echo "|---|---|---|---|---|"
t0=$(date +%s.%N) m=$(ik_mark)
mnt c1
cp -r "$D/src" "$MNT/cp"
umnt
row "cp -r" "$t0" "$m" "$N"
t0=$(date +%s.%N) m=$(ik_mark)
mnt c1
rsync -a "$D/src/" "$MNT/rs/"
umnt
row "rsync -a" "$t0" "$m" "$N"
t0=$(date +%s.%N) m=$(ik_mark)
mnt c1
rsync -a "$D/src/" "$MNT/rs/"
umnt
row "rsync -a again (same cache)" "$t0" "$m" "$N"
t0=$(date +%s.%N) m=$(ik_mark)
mnt c2
rsync -a "$D/src/" "$MNT/rs/"
umnt
row "rsync -a again (empty cache: listings only)" "$t0" "$m" "$N"
t0=$(date +%s.%N) m=$(ik_mark)
mnt c2
mv "$MNT/rs" "$MNT/renamed"
umnt
row "mv of the $N-file directory (one bulk job)" "$t0" "$m" 0
