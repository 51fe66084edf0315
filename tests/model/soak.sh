#!/bin/bash
# tests/model/soak.sh [SECONDS] [MODE]: the reference-model tester with
# fresh seeds for SECONDS (default 600) on S3 (Swift), the Supabase and
# ImageKit fakes and type = local (MODEL_BACKENDS: a comma list to choose),
# in mode 'safe' (known-open defects' variants left out: it looks for new
# ones; 'full' generates everything). Starts its own servers in tests/tmp/soak/
# replays every case (open defects too), then prints every mismatch (seed, step, operations, shrunk replay case under
# tests/tmp/soak/cases/) and a summary of operations per backend.
# MODEL_SLOW=1: slow mode (a proxy delaying the daemon's requests, random
# gaps between steps; docs/MODEL.md, "Slow mode"); MODEL_HOG=N: N CPU hogs
# (busy loops at the soak's own priority) beside it for the whole run, a
# busy machine on a quiet one.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECS=${1:-600}
MODE=${2:-safe}
export T=${SOAK_DIR:-$ROOT/tests/tmp/soak}
export MEDIAFS=${MEDIAFS:-$ROOT/build/mediafs}
rm -rf "$T"
mkdir -p "$T"
make -s -j2 all >/dev/null || { echo "build failed"; exit 1; }
. tests/lib/swift.sh
. tests/lib/supabase.sh
swift_start "$T/swift" || exit 1
supa_start "$T/sb" || { swift_stop; exit 1; }
HOGS=()
for _ in $(seq 1 "${MODEL_HOG:-0}"); do
	sh -c 'while :; do :; done' &
	HOGS+=($!)
done
[ ${#HOGS[@]} -gt 0 ] && echo "== ${#HOGS[@]} CPU hogs: ${HOGS[*]}"
trap 'for p in "${HOGS[@]}"; do kill "$p" 2>/dev/null; done; swift_stop; supa_stop; for m in $(awk -v t="$T" '"'"'$2 ~ "^"t {print $2}'"'"' /proc/mounts); do fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; done' EXIT
if [ "${MODEL_REPLAY:-1}" = 1 ]; then
	echo "== replay cases (open ones too)"
	/usr/bin/python3 tests/model/model.py replay --workdir "$T/replay" tests/model/cases/*.json
fi
echo "== random seeds, mode $MODE, $SECS s${MODEL_SLOW:+, slow mode}"
/usr/bin/python3 tests/model/model.py soak --seconds "$SECS" --mode "$MODE" \
	--ops "${MODEL_OPS:-60}" --shrink "${MODEL_SHRINK:-120}" \
	--backends "${MODEL_BACKENDS:-s3,supabase,imagekit,local}" \
	--out "$T/cases" --workdir "$T/model"
