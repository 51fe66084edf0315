#!/bin/bash
# The reference-model tester (tests/model/model.py, issue #15): fixed seeds
# of random operation sequences on S3 (Swift), the Supabase and ImageKit
# fakes (model.py starts an ImageKit fake of its own) and type = local, each
# step compared with the model through the mount, the store compared at
# every settle point; then the replay cases in tests/model/cases/. A case of
# a defect listed open in tests/model/known_open.json prints "SKIP: #15.N
# open: ..." unrun (make soak and model.py replay run them); the fixed
# seeds run in 'safe' mode, which leaves out the operation variants of
# those defects. About 1,750 operations in the normal pass (the last line
# counts them); docs/MODEL.md, "Where test_model's time goes".
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MODEL=$TESTS_DIR/model/model.py
supa_start "$T/sb" || { fail "fake Supabase server" "did not start"; exit 1; }
trap 'cleanup_mounts; supa_stop' EXIT
export S3_PORT SB_PORT SB_KEY SB_DIR

# Each seed is a process of its own (its own bucket, mount and daemon),
# all side by side: most of a step's time is spent waiting for the daemon
# and the servers, not computing. Restarts (remount, kill -9, cache loss:
# a daemon start each, ~1 s on a loaded host) are drawn half as often as
# in make soak (--restarts 0.5), so a seed runs more operations in its
# time; every seed still has several. The sanitizer pass (3-5x slower)
# runs fewer: it looks for memory errors, the normal pass for semantics.
# Slow mode (--slow: a proxy holding each request 0-80 ms, uploads
# 100-700 ms more, random gaps before steps) runs in make soak
# (SOAK_SLOW=1), not here: its seed 11 left an empty-folder marker in a
# folder that holds files in 2 of 4 clean-clone runs (s3 and supabase,
# #15.44; tests/model/found/README.md). #15.44 is fixed (a kill -9 while
# the marker was on its way; test_marker_inflight), but the slow seeds stay
# off by default until runs with them are shown green under load.
# MODEL_SLOW_SEEDS="11" runs it here too.
SLOW_SEEDS=${MODEL_SLOW_SEEDS:-}
if [ "${MFS_TEST_PASS:-}" = mount-asan ]; then
	SEEDS="1" OPS=40 SLOW_OPS=20
else
	SEEDS="1 2 3" OPS=${MODEL_OPS:-130} SLOW_OPS=60
fi
# run1 NAME ARGS...: run model.py into NAME's files; model NAME ARGS...:
# the same in the background; finish NAME prints its lines (a failure's
# seed, step, operations and replay case are '#' lines) and fails if it
# ended without saying why.
run1() {
	local name=$1
	shift
	"$SYS_PY" "$MODEL" "$@" >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
model() {
	run1 "$@" &
	PIDS+=($!)
	RUNS+=("$1")
}
PIDS=() RUNS=()
finish() {
	local name=$1 rc
	rc=$(cat "$T/$name.rc" 2>/dev/null || echo 99)
	cat "$T/$name.out"
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL:' "$T/$name.out"; then
		fail "model $name" "exited $rc: $(tail -3 "$T/$name.err" | tr '\n' ' ')"
	fi
}
for b in s3 supabase imagekit local; do
	for s in $SEEDS; do
		model "$b-$s" run --backend "$b" --seed "$s" --ops "$OPS" \
			--restarts 0.5 --mode safe --workdir "$T/model" \
			--out "$T/cases"
	done
	for s in $SLOW_SEEDS; do
		model "$b-slow-$s" run --backend "$b" --seed "$s" \
			--ops "$SLOW_OPS" --restarts 0.5 --slow --mode safe \
			--workdir "$T/model" --out "$T/cases"
	done
done
cases_of() { grep -l "\"backend\": \"$1\"" "$TESTS_DIR"/model/cases/*.json; }
# the replay cases: S3's (the longest list) in three runs side by side
mapfile -t cases < <(cases_of s3)
k=$(( (${#cases[@]} + 2) / 3 ))
for i in 0 1 2; do
	part=("${cases[@]:$((i * k)):$k}")
	[ ${#part[@]} -gt 0 ] && model "replay-s3-$i" replay --skip-open \
		--workdir "$T/replay-s3-$i" "${part[@]}"
done
for b in supabase imagekit local; do
	mapfile -t cases < <(cases_of $b)
	[ ${#cases[@]} -gt 0 ] && model "replay-$b" replay --skip-open \
		--workdir "$T/replay-$b" "${cases[@]}"
done
wait "${PIDS[@]}"
total=0
for f in "${RUNS[@]}"; do
	finish "$f"
	n=$(sed -n 's/^PASS: .*: \([0-9]*\) ops.*/\1/p' "$T/$f.out" |
		awk '{s += $1} END {print s + 0}')
	total=$((total + n))
done
echo "# test_model: $total operations compared with the model in ${#RUNS[@]} runs"
