#!/bin/bash
# Configuration and credentials: every mistake fails the mount command with
# a message that names the problem, and no secret reaches a log.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
s3 mkbucket cfgtest
echo hi | s3 put cfgtest hello.txt -
mkdir -p "$MNT"

# expect_fail NAME EXPECTED-TEXT ARGS...: mount must fail, stderr must say it
expect_fail() {
	local name=$1 want=$2 rc
	shift 2
	timeout 60 "$MEDIAFS" -f "$@" "$MNT" >"$T/out" 2>&1
	rc=$?
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT"
		fail "$name" "mounted anyway"
	elif [ $rc -ne 0 ] && grep -qF -- "$want" "$T/out"; then
		pass "$name: $(grep -F -m1 -- "$want" "$T/out" | cut -c1-150)"
	else
		fail "$name" "exit $rc, output: $(head -c 300 "$T/out")"
	fi
}

conf() {	# conf FILE MODE BODY
	printf '%s\n' "$3" >"$1"
	chmod "$2" "$1"
}
BASE="type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = cfgtest"

conf "$T/open.conf" 644 "[r]
$BASE
access_key_id = test:tester
secret_access_key = testing"
expect_fail "literal secret in a world-readable config" "chmod 600" \
	-o config="$T/open.conf",cache_dir="$T/c" r:

conf "$T/typo.conf" 600 "[r]
$BASE
acces_key_id = test:tester
secret_access_key = testing"
expect_fail "unknown key" "typo.conf:5: unknown key 'acces_key_id' in [r]" \
	-o config="$T/typo.conf",cache_dir="$T/c" r:

conf "$T/bad.conf" 600 "[r]
$BASE
this line is wrong"
expect_fail "malformed line" "bad.conf:5: expected 'key = value'" \
	-o config="$T/bad.conf",cache_dir="$T/c" r:

conf "$T/wrong.conf" 600 "[r]
$BASE
access_key_id = test:tester
secret_access_key = not-the-secret-9f8e7d"
expect_fail "wrong secret" "signature rejected: wrong secret_access_key" \
	-o config="$T/wrong.conf",cache_dir="$T/c" r:
grep -q "not-the-secret-9f8e7d" "$T/out" && fail "secret in output" "printed" ||
	pass "the wrong secret is not printed"

conf "$T/nobucket.conf" 600 "[r]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = no-such-bucket-here
access_key_id = test:tester
secret_access_key = testing"
expect_fail "missing bucket" "bucket 'no-such-bucket-here' does not exist" \
	-o config="$T/nobucket.conf",cache_dir="$T/c" r:

expect_fail "unknown remote" "no remote [nope]" \
	-o config="$T/wrong.conf",cache_dir="$T/c" nope:
expect_fail "missing config" "cannot open config file $T/none.conf" \
	-o config="$T/none.conf",cache_dir="$T/c" r:
expect_fail "spec without colon" "is not REMOTE:[PREFIX]" \
	-o config="$T/wrong.conf",cache_dir="$T/c" r

conf "$T/env.conf" 644 "[r]
$BASE
access_key_id = env:MFS_TEST_AK
secret_access_key = env:MFS_TEST_SK"
export MFS_TEST_AK=test:tester
unset MFS_TEST_SK
expect_fail "env: secret not set" "MFS_TEST_SK is not set" \
	-o config="$T/env.conf",cache_dir="$T/c" r:

# the good ways: env:, file:, --config synonym, XDG default, AWS_* fallback
export MFS_TEST_AK=test:tester MFS_TEST_SK=testing
mount_fs "$LOG" "$MNT" --config "$T/env.conf" -o cache_dir="$T/c1",debug=http r: &&
	[ "$(cat "$MNT/hello.txt")" = hi ] && pass "env: secrets and --config FILE" ||
	fail "env: secrets" "$(tail -3 "$LOG")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
grep -q "testing" "$LOG" && fail "secret in the debug log" "$(grep -m1 testing "$LOG")" ||
	pass "debug=http log ($(wc -l <"$LOG") lines) holds no secret"

printf 'testing\n' >"$T/sk"
chmod 600 "$T/sk"
mkdir -p "$T/xdg/mediafs"
conf "$T/xdg/mediafs/mediafs.conf" 644 "[r]
$BASE
access_key_id = test:tester
secret_access_key = file:$T/sk"
XDG_CONFIG_HOME=$T/xdg mount_fs "$LOG" "$MNT" -o cache_dir="$T/c2" r: &&
	[ "$(cat "$MNT/hello.txt")" = hi ] && pass "file: secret, config from \$XDG_CONFIG_HOME" ||
	fail "file: secret" "$(tail -3 "$LOG")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
chmod 644 "$T/sk"
XDG_CONFIG_HOME=$T/xdg expect_fail "file: secret readable by others" "readable by group or others" \
	-o cache_dir="$T/c2" r:

conf "$T/aws.conf" 644 "[r]
$BASE"
AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing \
	mount_fs "$LOG" "$MNT" -o config="$T/aws.conf",cache_dir="$T/c3" r: &&
	[ "$(cat "$MNT/hello.txt")" = hi ] && pass "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" ||
	fail "AWS_* fallback" "$(tail -3 "$LOG")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
mkdir -p "$T/home/.aws"
printf '[default]\naws_access_key_id = test:tester\naws_secret_access_key = testing\n' >"$T/home/.aws/credentials"
HOME=$T/home mount_fs "$LOG" "$MNT" -o config="$T/aws.conf",cache_dir="$T/c4" r: &&
	[ "$(cat "$MNT/hello.txt")" = hi ] && pass "credentials from ~/.aws/credentials" ||
	fail "~/.aws/credentials" "$(tail -3 "$LOG")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
HOME=$T/empty expect_fail "no credentials anywhere" "has no credentials" \
	-o config="$T/aws.conf",cache_dir="$T/c5" r:

# two daemons on one cache
mount_fs "$LOG" "$MNT" -o config="$T/env.conf",cache_dir="$T/c6" r: || fail "mount" "env.conf"
mkdir -p "$T/mnt2"
timeout 20 "$MEDIAFS" -f -o config="$T/env.conf",cache_dir="$T/c6" r: "$T/mnt2" >"$T/out" 2>&1
grep -q "in use by another mediafs" "$T/out" && pass "a second daemon on the same cache is refused" ||
	fail "cache lock" "$(cat "$T/out")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

"$MEDIAFS" --help | grep -q "cache_ttl=SECONDS" && pass "--help documents the options" || fail "--help" "incomplete"
"$MEDIAFS" --version | grep -q "^mediafs " && pass "--version" || fail "--version" "no version"
