#!/bin/bash
# Run every libFuzzer target (tests/fuzz/fuzz_*.c, built by 'make
# fuzz-build' with clang, ASan and UBSan): first over its seed corpus
# (tests/fuzz/corpus/NAME, every input must pass), then SECONDS of fuzzing
# from it (default 3; 'make fuzz' gives 60). Inputs the fuzzer finds go to
# build-fuzz/corpus/NAME; a crash leaves build-fuzz/crash-NAME-* to replay
# with 'build-fuzz/fuzz_NAME FILE'. Prints PASS/FAIL per target and step,
# then "N passed, N failed"; exits non-zero on any failure.
#   tests/fuzz/run.sh [SECONDS]
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-3}
passed=0 failed=0
mkdir -p build-fuzz

if ! command -v clang >/dev/null; then
	echo "SKIP: fuzz: clang is not installed (scripts/install-deps.sh installs it)"
	echo "0 passed, 0 failed"
	exit 0
fi
echo "== fuzz targets (clang, ASan+UBSan)"
if ! make -s -j2 fuzz-build >build-fuzz/build.log 2>&1; then
	tail -20 build-fuzz/build.log
	echo "FAIL: fuzz: building the targets (build-fuzz/build.log)"
	echo "0 passed, 1 failed"
	exit 1
fi
# a fixed seed in the short run (make check), a random one in make fuzz
seed=""
[ "$SECS" -le 10 ] && seed="-seed=1"
for bin in build-fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	case $bin in *.d) continue ;; esac
	name=${bin#build-fuzz/fuzz_}
	seeds=tests/fuzz/corpus/$name
	work=build-fuzz/corpus/$name
	log=build-fuzz/$name.log
	mkdir -p "$work"
	if "$bin" -runs=0 -timeout=10 "$seeds" >"$log" 2>&1; then
		echo "PASS: fuzz $name: $(ls "$seeds" | wc -l) seed inputs"
		passed=$((passed + 1))
	else
		echo "FAIL: fuzz $name: a seed input fails ($log)"
		grep -E "ERROR|runtime error|SUMMARY" "$log" | head -5
		failed=$((failed + 1))
		continue
	fi
	if "$bin" $seed -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-max_len=16384 -artifact_prefix="build-fuzz/crash-$name-" \
		"$work" "$seeds" >"$log" 2>&1; then
		runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+")
		echo "PASS: fuzz $name: ${runs:-?} inputs in $SECS s, no crash"
		passed=$((passed + 1))
	else
		echo "FAIL: fuzz $name: crash found ($log, build-fuzz/crash-$name-*)"
		grep -E "ERROR|runtime error|SUMMARY" "$log" | head -5
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
