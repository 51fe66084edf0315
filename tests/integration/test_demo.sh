#!/bin/bash
# make demo's script, as the README's first command runs it: scenario S1
# end to end on localhost (its own S3 server, Supabase fake, SQLite
# database); it must exit 0 and print the report. Its output must not
# show the Supabase key.
. "$(dirname "$0")/../lib/common.sh"

SRC=$(cd "$TESTS_DIR/.." && pwd)
if [ "${MFS_TEST_PASS:-}" = mount-asan ]; then
	skip "demo" "the demo runs the build/ binaries; the first pass runs it"
	exit 0
fi
KEY=sb_secret_demo-key-$$-$RANDOM
DEMO_SUPABASE_KEY=$KEY "$SRC/scripts/demo.sh" >"$T/demo.out" 2>&1
rc=$?
line=$(grep -E "^    uploaded [0-9]+, failed 0, skipped [0-9]+ .*compression saved" "$T/demo.out")
[ $rc -eq 0 ] && [ -n "$line" ] && grep -q "verified [0-9]* objects: [0-9]* ok, 0 mismatches" "$T/demo.out" &&
	grep -q "0 pointing at a missing object" "$T/demo.out" &&
	pass "make demo (S1 end to end) exits 0:${line#   }" || fail "demo" "rc=$rc $(tail -5 "$T/demo.out")"
if grep -rqF "$KEY" "$T/demo.out" "$SRC/build/demo/journal.db" "$SRC/build/demo/report.json"; then
	fail "secrets" "the Supabase key appears in the demo's output"
else
	pass "the Supabase key is in neither the demo's output, its journal nor its report"
fi
