#!/bin/bash
# Run every test: the fuzz step and the unit tests, and the integration and
# mounted tests against a real S3 server (OpenStack Swift + s3api on
# 127.0.0.1), in a pass with the normal build and one with the ASan+UBSan
# build. Ends with "N passed, N failed" and exits non-zero on any failure.
#   tests/run-all.sh [PATTERN]   only integration tests whose name matches
#   NO_SAN=1 tests/run-all.sh    skip the sanitizer pass (local iteration)
#   SAN_ALL=1 tests/run-all.sh   the sanitizer pass runs every integration
#                                test (make check-asan); without it and
#                                without PATTERN it runs SAN_SUBSET (below)
#   LANES=N tests/run-all.sh     the first pass runs N integration tests at a
#                                time (default 4; each lane has its own S3
#                                server); SAN_LANES=N the sanitizer pass
#                                (default 3)
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PATTERN=${1:-}
TMP=$ROOT/tests/tmp	# on the repo's disk: Swift needs user xattrs (not tmpfs)
LANES=${LANES:-4}
SAN_LANES=${SAN_LANES:-3}
passed=0 failed=0 skipped=0
failures=()
# at: seconds since the suite started, for the phase and test timings
# printed below ("+N s"), so a log shows where the wall time went
# (bash's SECONDS: since this script started, in its subshells too)
at() { echo "+$SECONDS s"; }

note_fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }

# The programs first: the first pass starts as soon as they are built;
# the unit tests' binaries are built later, while it runs (below).
echo "== build"
make -s -j2 all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
echo "  (mediafs and mediactl built at $(at))"

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

# Every test runs under a time bound (TEST_TIMEOUT, default 1200 s: it
# shares the machine with six others: four lanes in the first pass, three
# in the sanitizer pass) with its
# output in a file, not a pipe: a test whose mount hangs cannot hold the run.
# After each test (and when it is killed) everything it left below its
# directory is reaped: FUSE connections aborted, mounts dropped, processes
# killed. Past SUITE_DEADLINE seconds (default 3600) the remaining tests are
# not started and count as failures, so the suite always ends with its line.
TEST_TIMEOUT=${TEST_TIMEOUT:-1200}
SUITE_DEADLINE=${SUITE_DEADLINE:-3600}
. tests/lib/reap.sh
. tests/lib/swift.sh

# server_cpu: the CPU ticks the lane's S3 server (its four processes) has
# used so far, to print each test's share of it after its block.
server_cpu() {
	local p tot=0 f top
	top=$(cat "$SWIFT_DIR/pid" 2>/dev/null)	# a test may have restarted it
	[ -n "$top" ] || { echo 0; return; }
	for p in $top $(pgrep -P "$top" 2>/dev/null); do
		f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		set -- $f
		tot=$((tot + ${12} + ${13}))
	done
	echo $tot
}

# run_one TEST BINARY LABEL: one integration test, against the S3 server of
# the calling lane. Its block of output goes to RES/NAME.out, its counts to
# RES/NAME.cnt ("PASSED SKIPPED"), each failure a line of RES/NAME.fail;
# the block is printed when the test ends (the lanes' blocks do not mix).
run_one() {
	local t=$1 name res out rc t0 l s0
	name=$(basename "$t" .sh)
	res=$TMP/$3.res
	export T=$TMP/$3/$name
	if [ "$SECONDS" -ge "$SUITE_DEADLINE" ]; then
		echo "[$3] $name not run: the suite passed its deadline of $SUITE_DEADLINE s" >"$res/$name.fail"
		echo "0 0" >"$res/$name.cnt"
		flock "$res/.print" echo "FAIL: $(cat "$res/$name.fail")"
		return
	fi
	{
		rm -rf "$T"
		mkdir -p "$T"
		echo "-- [$3] $name"
		t0=$SECONDS
		s0=$(server_cpu)
		MEDIAFS=$2 MFS_TEST_PASS=$3 FIXTURES=$TMP/$3-srv/fixtures \
			/usr/bin/time -o "$T/cpu" -f "%U %S" \
			timeout -k 10 "$TEST_TIMEOUT" bash "$t" >"$T/stdout" 2>"$T/stderr" </dev/null
		rc=$?
		reap_under "$T"
		out=$(cat "$T/stdout")
		echo "$out" | sed 's/^/  /'
		echo "  ($((SECONDS - t0)) s; lane ${LANE_NO:-?}, started at +$t0 s)"
		echo "  [cpu] $name: $(awk -v s="$(($(server_cpu) - s0))" -v hz="$(getconf CLK_TCK)" \
			'/^[0-9.]+ [0-9.]+$/ {printf "%.0f s (user %.0f, sys %.0f), S3 server ", $1 + $2, $1, $2;
			 if (s >= 0) printf "%.0f s", s / hz; else printf "n/a (restarted by the test)"}' "$T/cpu")"
		: >"$res/$name.fail"
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "FAIL: [$3] $name killed after $TEST_TIMEOUT s (exit $rc)"
			echo "[$3] $name killed after $TEST_TIMEOUT s (exit $rc)" >>"$res/$name.fail"
			tail -5 "$T/stderr"
		fi
		while IFS= read -r l; do
			[ -n "$l" ] && echo "[$3] $name: ${l#FAIL: }" >>"$res/$name.fail"
		done < <(echo "$out" | grep '^FAIL:')
		if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && ! echo "$out" | grep -q '^FAIL:'; then
			echo "FAIL: [$3] $name exited $rc"
			echo "[$3] $name exited $rc" >>"$res/$name.fail"
			tail -5 "$T/stderr"
		fi
		echo "$(echo "$out" | grep -c '^PASS:') $(echo "$out" | grep -c '^SKIP:')" >"$res/$name.cnt"
	} >"$res/$name.out" 2>&1
	flock "$res/.print" cat "$res/$name.out"
}

# A pass: its integration tests in LANES lanes, each lane with its own S3
# server (Swift s3api) so that request counts are a test's own, taking the
# next test of the pass's queue when one ends. The queue starts with the
# tests known to take longest. The tests that use the fixture tree (2,100
# objects in the bucket "tree", manifest in $FIXTURES; they name
# FIXTURES) run first in lane 0, whose server gets it uploaded.
# Longest first (a lane that takes a long test last ends alone): every
# test by its seconds in the first pass of cc22 (make check of f0e7665 on
# a quiet machine: test_package 180 s ... test_supabase_fake 6 s); a test
# not named here comes after them. SAN_SLOW_FIRST: the same for the
# sanitizer pass, by its seconds there (test_supabase 142 s, test_examples_s5
# 112 s ... test_mediactl_truth 18 s; its other tests follow in SLOW_FIRST's
# order).
SLOW_FIRST="test_package test_supabase test_imagekit test_model test_semantics
test_write_ops test_examples test_demo test_ledger test_hooks test_http
test_mount_tree test_mediactl test_examples_s5 test_write_faults test_rewrite
test_config test_write_copy test_crash_inflight test_journal_busy_upload
test_supabase_moves test_read_exact test_examples_s3 test_supabase_late_folders
test_examples_s3_pg test_ledger_one test_plan_known_types
test_outside_writer_seen_by_name test_visible_failures test_ledger_rewrite
test_marker_inflight test_imagekit_proof test_write_crash test_names
test_server_dies test_journal_pg test_mediactl_truth test_scenario_s3
test_trust_s3 test_trust_s3_dead test_daemon test_journal_pg_restart test_local
test_read test_supabase_server test_trust_s3_multipart test_multi
test_trust_s3_killed_ls test_supabase_fake"
SAN_SLOW_FIRST="test_supabase test_examples_s5 test_semantics test_hooks
test_examples test_visible_failures test_imagekit test_write_ops
test_write_faults test_mediactl test_rewrite test_ledger_one test_journal_pg
test_crash_inflight test_local test_mediactl_truth"
# The sanitizer pass of make check: the tests below, not all (SAN_ALL=1,
# make check-asan, or a PATTERN runs every one). The sanitizers look for
# memory and undefined-behaviour errors in the code a test reaches, so the
# subset is chosen by line coverage (gcov, per test, of the first pass):
# of the 23 tests measured (the 12 longest and 11 others), these 15 reach
# 98.0% of the lines (13,805 of 14,085) and 99.3% of the functions (910 of
# 916) that those 23 reach, in all 56 source files, for 816 of the 1,722
# ASan seconds of a whole sanitizer pass (tests/README.md). Every test
# still runs in the first pass.
SAN_SUBSET="test_local test_journal_pg test_examples test_imagekit test_ledger_one
test_rewrite test_semantics test_write_faults test_mediactl test_hooks test_supabase
test_write_ops test_crash_inflight test_visible_failures test_mediactl_truth
test_examples_s5 test_s3_move_kill"
next_test() {	# next_test LABEL: the next test of the queue, "" at its end
	local q=$TMP/$1.queue n
	flock "$q" bash -c 'n=$(cat "$1.next"); t=$(sed -n "$((n + 1))p" "$1"); echo $((n + 1)) >"$1.next"; echo "$t"' _ "$q"
}
run_lane() {	# run_lane BINARY LABEL LANE (in a subshell of its own)
	local srv=$TMP/$2-srv t LANE_NO=$3
	trap 'swift_stop >/dev/null 2>&1' EXIT
	[ "$3" -gt 0 ] && srv=$TMP/$2-srv$3
	if ! swift_start "$srv/swift"; then
		echo "FAIL: [$2] the S3 test server of lane $3 did not start"
		echo "[$2] the S3 test server of lane $3 did not start" >"$TMP/$2.res/.lane$3.fail"
		return
	fi
	export S3_PORT S3_REQLOG
	if [ "$3" -eq 0 ] && [ -s "$TMP/$2.pinned" ]; then
		local t0
		t0=$(date +%s)
		mkdir -p "$srv/fixtures"
		if /usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" mkbucket tree &&
			/usr/bin/python3 tests/lib/s3tool.py --port "$S3_PORT" tree tree \
				"$srv/fixtures/tree.manifest" 2100; then
			echo "  [$2] 2,100 objects uploaded by boto3 in $(( $(date +%s) - t0 )) s (done at $(at))"
		else
			echo "FAIL: [$2] uploading the fixture tree"
			echo "[$2] uploading the fixture tree" >"$TMP/$2.res/.fixtures.fail"
		fi
		for t in $(cat "$TMP/$2.pinned"); do
			run_one "$t" "$1" "$2"
		done
	fi
	while t=$(next_test "$2") && [ -n "$t" ]; do
		run_one "$t" "$1" "$2"
	done
	swift_stop
	flock "$TMP/$2.res/.print" echo "  [$2] lane $3 done at $(at)"
}
run_pass() {	# run_pass BINARY LABEL LANES [ONLY]: sets passed, skipped, failures
	local t name lanes i f c p k only=${4:-} order=$SLOW_FIRST done_names=
	local res=$TMP/$2.res
	[ "$2" = mount-asan ] && order="$SAN_SLOW_FIRST $SLOW_FIRST"
	mkdir -p "$res"
	: >"$TMP/$2.pinned"
	: >"$TMP/$2.queue"
	echo 0 >"$TMP/$2.queue.next"
	for t in tests/integration/test_*.sh; do
		name=$(basename "$t" .sh)
		[ -n "$PATTERN" ] && [[ $name != *$PATTERN* ]] && continue
		[ -n "$only" ] && [[ " $(echo $only) " != *" $name "* ]] && continue
		if grep -q 'FIXTURES' "$t"; then
			echo "$t" >>"$TMP/$2.pinned"
		elif [[ " $(echo $order) " == *" $name "* ]]; then
			echo "$t" >>"$TMP/$2.slow"
		else
			echo "$t" >>"$TMP/$2.rest"
		fi
	done
	for name in $order; do	# the slow ones in the order's order, once
		[[ " $done_names " == *" $name "* ]] && continue
		done_names+=" $name"
		grep -x "tests/integration/$name.sh" "$TMP/$2.slow" 2>/dev/null
	done >>"$TMP/$2.queue"
	cat "$TMP/$2.rest" >>"$TMP/$2.queue" 2>/dev/null
	lanes=$(wc -l <"$TMP/$2.queue")	# no lane without a test
	[ -s "$TMP/$2.pinned" ] && lanes=$((lanes + 1))
	[ "$lanes" -gt "$3" ] && lanes=$3
	[ "$lanes" -lt 1 ] && lanes=1
	echo "== [$2] integration and mounted tests in $lanes lane(s), each with its own S3 server"
	[ -n "$only" ] && echo "  [$2] the $(cat "$TMP/$2.pinned" "$TMP/$2.queue" | wc -l) tests of SAN_SUBSET" \
		"(tests/run-all.sh); SAN_ALL=1 or make check-asan runs all of them"
	for i in $(seq 0 $((lanes - 1))); do
		run_lane "$1" "$2" "$i" &
	done
	wait
	for f in "$res"/.*.fail "$res"/*.fail; do
		[ -s "$f" ] && mapfile -t -O ${#failures[@]} failures <"$f"
	done
	for c in "$res"/*.cnt; do
		[ -f "$c" ] || continue
		read -r p k <"$c"
		passed=$((passed + p)) skipped=$((skipped + k))
	done
	failed=${#failures[@]}
}

# The passes start once the build is done, in the background, each into
# its log and with its own S3 servers, fixtures and directories (so tests
# that write into buckets start from the same state every time, and
# request counts are a pass's own); the fuzz step and the unit tests run
# meanwhile. The first pass's log is followed as it grows, the sanitizer
# pass's printed after it.
rm -rf "$TMP"
mkdir -p "$TMP"
PASS_PIDS=()
start_pass() {	# start_pass BINARY LABEL LANES [ONLY]
	(
		trap 'for p in $(jobs -p); do kill $p 2>/dev/null; done' EXIT
		# 3 nicer than this script: the sanitizer build, which the
		# sanitizer pass waits for, gets more of the CPU than the tests
		# of the first pass that run meanwhile
		renice -n $(($(ps -o ni= -p $BASHPID) + 3)) -p $BASHPID >/dev/null 2>&1
		passed=0 failed=0 skipped=0 failures=()
		run_pass "$@"
		echo "  [$2] pass done at $(at)"
		echo "$passed $failed $skipped" >"$TMP/$2.counts"
		[ ${#failures[@]} -gt 0 ] && printf '%s\n' "${failures[@]}" >"$TMP/$2.failures"
		true
	) >"$TMP/$2.log" 2>&1 &
	PASS_PIDS+=($!)
}
trap 'for p in "${PASS_PIDS[@]}"; do kill $p 2>/dev/null; done' EXIT
start_pass "$ROOT/build/mediafs" mount "$LANES"
# The sanitizer build is made while the first pass runs (it starts
# sooner). Without SAN_ALL and PATTERN its pass runs SAN_SUBSET only.
if [ -z "${NO_SAN:-}" ]; then
	if make -s -j2 SAN=1 build-san/mediafs build-san/mediactl >/dev/null; then
		echo "  (the sanitizer build of mediafs and mediactl done at $(at))"
		only=""
		[ -z "${SAN_ALL:-}" ] && [ -z "$PATTERN" ] && only=$SAN_SUBSET
		start_pass "$ROOT/build-san/mediafs" mount-asan "$SAN_LANES" "$only"
	else
		note_fail "the sanitizer build (make SAN=1)"
		NO_SAN=1
	fi
fi

# The fuzz step (tests/fuzz/run.sh: each libFuzzer target over its seed
# corpus, then 3 s of fuzzing with a fixed seed); NO_FUZZ=1 skips it.
if [ -z "${NO_FUZZ:-}" ] && [ -z "$PATTERN" ]; then
	fuzz_out=$(nice -n 3 tests/fuzz/run.sh 2>&1 </dev/null)
	echo "$fuzz_out"
	echo "  (fuzz step done at $(at))"
	read -r fp _ ff _ < <(echo "$fuzz_out" | tail -1)
	passed=$((passed + ${fp:-0}))
	skipped=$((skipped + $(echo "$fuzz_out" | grep -c '^SKIP:')))
	while IFS= read -r l; do
		[ -n "$l" ] && note_fail "[fuzz] ${l#FAIL: }" >/dev/null
	done < <(echo "$fuzz_out" | grep '^FAIL:')
	[ "${ff:-1}" -gt 0 ] 2>/dev/null && ! echo "$fuzz_out" | grep -q '^FAIL:' &&
		note_fail "[fuzz] tests/fuzz/run.sh: $(echo "$fuzz_out" | tail -1)"
fi

# Tests of a lane share its S3 server, and which tests share a lane
# depends on timing: two tests that make the same bucket fail only when
# they meet (CI once: test_http and test_examples both made "s4dst"). A
# bucket name is one test's own.
echo "== bucket names"
dupb=$(for f in tests/integration/test_*.sh; do
	sed -nE 's/^[[:space:]]*(s3 mkbucket|B=)[[:space:]]*([a-z0-9][a-z0-9.-]*)([[:space:]].*)?$/\2/p' "$f" | sort -u
done | sort | uniq -d | tr '\n' ' ')
if [ -z "$dupb" ]; then
	passed=$((passed + 1))
else
	note_fail "[lint] buckets made by more than one integration test: $dupb"
fi

echo "== unit tests (started at $(at))"
if make -s -j2 unit >/dev/null; then
	run_unit build unit
else
	note_fail "[unit] building the unit tests (make unit)"
fi
if [ -z "${NO_SAN:-}" ]; then
	if make -s -j2 SAN=1 unit >/dev/null; then
		run_unit build-san unit-asan
	else
		note_fail "[unit-asan] building the unit tests (make SAN=1 unit)"
	fi
fi
echo "  (unit tests done at $(at))"

# the first pass as it goes, then the sanitizer pass
tail -n +1 -f --pid="${PASS_PIDS[0]}" "$TMP/mount.log" 2>/dev/null
wait "${PASS_PIDS[@]}"
PASS_PIDS=()
for label in mount mount-asan; do
	[ "$label" = mount-asan ] && [ -n "${NO_SAN:-}" ] && continue
	[ "$label" = mount-asan ] && cat "$TMP/$label.log"
	if [ -f "$TMP/$label.counts" ]; then
		read -r p f k <"$TMP/$label.counts"
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
		[ -f "$TMP/$label.failures" ] && mapfile -t -O ${#failures[@]} failures <"$TMP/$label.failures"
	else
		note_fail "[$label] the pass ended without its counts"
	fi
done

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
[ $skipped -gt 0 ] && echo "$skipped skipped (each printed above with its reason)"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
