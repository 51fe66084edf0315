#!/bin/bash
# Run every test: unit tests, then the integration and mounted tests against
# a real S3 server (OpenStack Swift + s3api on 127.0.0.1), first with the
# normal build, then with the ASan+UBSan build. Ends with "N passed, N failed"
# and exits non-zero on any failure.
#   tests/run-all.sh [PATTERN]   only integration tests whose name matches
#   NO_SAN=1 tests/run-all.sh    skip the sanitizer pass (local iteration)
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PATTERN=${1:-}
TMP=$ROOT/tests/tmp	# on the repo's disk: Swift needs user xattrs (not tmpfs)
passed=0 failed=0 skipped=0
failures=()

note_fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }

echo "== build"
make -s -j2 all unit >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
if [ -z "${NO_SAN:-}" ]; then
	make -s -j2 SAN=1 build-san/mediafs build-san/mediactl unit >/dev/null ||
		{ echo "sanitizer build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP: mounted tests need /dev/fuse and fusermount3"
fi

run_unit() {	# run_unit DIR LABEL
	local t out
	for t in "$1"/tests/test_*; do
		out=$(ASAN_OPTIONS=detect_leaks=1 timeout -k 5 300 "$t" 2>&1 </dev/null)
		local rc=$?
		echo "$out" | grep -E "^(FAIL|test_)" | sed "s/^/  [$2] /"
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1))
		else
			note_fail "[$2] $(basename "$t") (exit $rc)"
			echo "$out" | tail -20
		fi
	done
}

# Every test runs under a time bound (TEST_TIMEOUT, default 600 s) with its
# output in a file, not a pipe: a test whose mount hangs cannot hold the run.
# After each test (and when it is killed) everything it left below its
# directory is reaped: FUSE connections aborted, mounts dropped, processes
# killed. Past SUITE_DEADLINE seconds (default 3600) the remaining tests are
# not started and count as failures, so the suite always ends with its line.
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
SUITE_DEADLINE=${SUITE_DEADLINE:-3600}
. tests/lib/reap.sh
run_integration() {	# run_integration BINARY LABEL
	local t name out rc
	for t in tests/integration/test_*.sh; do
		name=$(basename "$t" .sh)
		[ -n "$PATTERN" ] && [[ $name != *$PATTERN* ]] && continue
		export T=$TMP/$2/$name
		if [ "$SECONDS" -ge "$SUITE_DEADLINE" ]; then
			note_fail "[$2] $name not run: the suite passed its deadline of $SUITE_DEADLINE s"
			continue
		fi
		rm -rf "$T"
		mkdir -p "$T"
		echo "-- [$2] $name"
		local t0=$SECONDS
		MEDIAFS=$1 MFS_TEST_PASS=$2 FIXTURES=$TMP/$2-srv/fixtures \
			timeout -k 10 "$TEST_TIMEOUT" bash "$t" >"$T/stdout" 2>"$T/stderr" </dev/null
		rc=$?
		reap_under "$T"
		out=$(cat "$T/stdout")
		echo "$out" | sed 's/^/  /'
		echo "  ($((SECONDS - t0)) s)"
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			note_fail "[$2] $name killed after $TEST_TIMEOUT s (exit $rc)"
			tail -5 "$T/stderr"
		fi
		passed=$((passed + $(echo "$out" | grep -c '^PASS:')))
		skipped=$((skipped + $(echo "$out" | grep -c '^SKIP:')))
		while IFS= read -r l; do
			[ -n "$l" ] && { failed=$((failed + 1)); failures+=("[$2] $name: ${l#FAIL: }"); }
		done < <(echo "$out" | grep '^FAIL:')
		if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && ! echo "$out" | grep -q '^FAIL:'; then
			note_fail "[$2] $name exited $rc"
			tail -5 "$T/stderr"
		fi
	done
}

# The fuzz step (tests/fuzz/run.sh: each libFuzzer target over its seed
# corpus, then 3 s of fuzzing with a fixed seed); NO_FUZZ=1 skips it.
if [ -z "${NO_FUZZ:-}" ] && [ -z "$PATTERN" ]; then
	fuzz_out=$(tests/fuzz/run.sh 2>&1 </dev/null)
	echo "$fuzz_out"
	read -r fp _ ff _ < <(echo "$fuzz_out" | tail -1)
	passed=$((passed + ${fp:-0}))
	skipped=$((skipped + $(echo "$fuzz_out" | grep -c '^SKIP:')))
	while IFS= read -r l; do
		[ -n "$l" ] && note_fail "[fuzz] ${l#FAIL: }" >/dev/null
	done < <(echo "$fuzz_out" | grep '^FAIL:')
	[ "${ff:-1}" -gt 0 ] 2>/dev/null && ! echo "$fuzz_out" | grep -q '^FAIL:' &&
		note_fail "[fuzz] tests/fuzz/run.sh: $(echo "$fuzz_out" | tail -1)"
fi

echo "== unit tests"
run_unit build unit
[ -z "${NO_SAN:-}" ] && run_unit build-san unit-asan

. tests/lib/swift.sh
rm -rf "$TMP"

# Each pass gets a fresh S3 server and fixtures, so tests that write into
# buckets start from the same state every time, and request counts are a
# pass's own. The two passes run at the same time (most of a test's time
# is spent waiting on Python servers and sleeps): the sanitizer pass in the
# background into a log, printed after the first pass.
pass_with_server() {	# pass_with_server BINARY LABEL
	local srv=$TMP/$2-srv
	echo "== [$2] S3 test server (Swift s3api) and fixtures"
	mkdir -p "$srv/fixtures"
	if ! swift_start "$srv/swift"; then
		note_fail "[$2] the S3 test server did not start"
		return
	fi
	export S3_PORT S3_REQLOG
	local t0
	t0=$(date +%s)
	/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket tree &&
	/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" tree tree \
		"$srv/fixtures/tree.manifest" 2100 ||
		note_fail "[$2] uploading the fixture tree"
	echo "  2,100 objects uploaded by boto3 in $(( $(date +%s) - t0 )) s"
	echo "== [$2] integration and mounted tests"
	run_integration "$1" "$2"
	swift_stop
}

mkdir -p "$TMP"
if [ -z "${NO_SAN:-}" ]; then
	(
		trap 'swift_stop 2>/dev/null' EXIT
		passed=0 failed=0 skipped=0 failures=()
		pass_with_server "$ROOT/build-san/mediafs" mount-asan
		echo "$passed $failed $skipped" >"$TMP/mount-asan.counts"
		[ ${#failures[@]} -gt 0 ] && printf '%s\n' "${failures[@]}" >"$TMP/mount-asan.failures"
		true
	) >"$TMP/mount-asan.log" 2>&1 &
	SAN_PID=$!
fi
trap 'swift_stop 2>/dev/null; [ -n "${SAN_PID:-}" ] && kill $SAN_PID 2>/dev/null' EXIT
pass_with_server "$ROOT/build/mediafs" mount
if [ -n "${SAN_PID:-}" ]; then
	wait $SAN_PID
	SAN_PID=
	cat "$TMP/mount-asan.log"
	if [ -f "$TMP/mount-asan.counts" ]; then
		read -r p f k <"$TMP/mount-asan.counts"
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
		[ -f "$TMP/mount-asan.failures" ] && mapfile -t -O ${#failures[@]} failures <"$TMP/mount-asan.failures"
	else
		note_fail "[mount-asan] the sanitizer pass ended without its counts"
	fi
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
[ $skipped -gt 0 ] && echo "$skipped skipped (each printed above with its reason)"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
