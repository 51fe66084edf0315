#!/bin/bash
# make bench, part 2: the built-in compressor (on_write = compress, libvips)
# against `convert -quality 85` (ImageMagick's CLI, what scenario S1's team
# ran), on the same corpus, same parallelism, one run. Prints a table:
# total time, output bytes, peak RSS. docs/BENCHMARKS.md records figures.
#   BENCH_HOOK_IMAGES=1000 (corpus size)   BENCH_HOOK_JOBS=2 (parallelism)
# The corpus (photo-like crops of ImageMagick plasma images: 70% JPEG q95,
# 20% PNG graphics, half with alpha, half saved at zlib 6 with adaptive
# filters and half at zlib 1 unfiltered, 6% WebP q95, 4% GIF) is made once
# and kept in build/bench-hooks/corpus-N.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${BENCH_HOOK_IMAGES:-1000}
JOBS=${BENCH_HOOK_JOBS:-$(nproc)}
D=$ROOT/build/bench-hooks
C=$D/corpus-$N
IM=/usr/bin/convert	# not a wrapper earlier in PATH
HB=$ROOT/build/hookbench
[ -x "$HB" ] || make -s build/hookbench

if [ ! -f "$C/.done" ]; then
	echo "bench-hooks: making a corpus of $N images in $C (once)"
	rm -rf "$C"
	mkdir -p "$C" "$D/base"
	for s in 1 2 3 4 5 6; do
		[ -f "$D/base/b$s.png" ] ||
			$IM -size 1800x1350 -seed "$s" plasma:fractal -blur 0x1 -depth 8 "$D/base/b$s.png"
	done
	"$HB" corpus "$D/base/"b*.png -o "$C" -n "$N"
	for f in "$C"/gif-src-*.png; do
		[ -e "$f" ] || continue
		g=${f/gif-src-/img-}
		$IM "$f" -resize 50% -colors 128 "${g%.png}.gif"
		rm "$f"
	done
	touch "$C/.done"
fi
mapfile -t files < <(find "$C" -type f -name 'img-*' | sort)
in_bytes=$(cat "${files[@]}" | wc -c)

# mediafs: the hook as the upload workers run it
/usr/bin/time -f '%M' -o "$D/hb.rss" "$HB" run "$JOBS" "${files[@]}" >"$D/hb.out"
read -r _ hb_in hb_out hb_s hb_applied <"$D/hb.out"
hb_rss=$(( $(cat "$D/hb.rss") / 1024 ))

# ImageMagick: one convert per file, JOBS at a time; output kept whatever
# its size (as the scenario's script did)
rm -rf "$D/im" && mkdir -p "$D/im"
t0=$(date +%s.%N)
printf '%s\n' "${files[@]}" | xargs -P "$JOBS" -I{} sh -c \
	'/usr/bin/time -a -f %M -o "$1/im.rss" '"$IM"' "$2" -quality 85 "$1/im/$(basename "$2")"' _ "$D" {}
t1=$(date +%s.%N)
im_s=$(echo "$t1 - $t0" | bc)
im_out=$(cat "$D"/im/* | wc -c)
im_rss=$(( $(sort -n "$D/im.rss" | tail -1) / 1024 ))
rm -f "$D/im.rss"

printf '\nhook benchmark: %d images, %.1f MiB in, %d parallel (%s)\n' "${#files[@]}" \
	"$(echo "$in_bytes / 1048576" | bc -l)" "$JOBS" "$(nproc) cores"
printf '%-34s %10s %14s %10s %10s\n' tool seconds "output MiB" "saved" "peak RSS"
row() { printf '%-34s %10.2f %14.1f %9.1f%% %7s MB\n' "$1" "$2" \
	"$(echo "$3 / 1048576" | bc -l)" "$(echo "100 - $3 * 100 / $in_bytes" | bc -l)" "$4"; }
row "mediafs on_write = compress" "$hb_s" "$hb_out" "$hb_rss"
row "convert -quality 85 (one per file)" "$im_s" "$im_out" "$im_rss"
printf 'speed-up %.2fx; output %.1f%% of convert'"'"'s; %d of %d recompressed (the rest kept: not smaller, GIF, corrupt)\n' \
	"$(echo "$im_s / $hb_s" | bc -l)" "$(echo "$hb_out * 100 / $im_out" | bc -l)" "$hb_applied" "${#files[@]}"
