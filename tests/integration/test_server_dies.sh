#!/bin/bash
# A server that dies mid-read and is down during a listing: the reader gets
# an error, never wrong bytes; the daemon survives and says what happened;
# once the server is back, everything works again.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/swift.sh"
: "${SWIFT_DIR:?}"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" dies "retries = 2"
s3 mkbucket dies
head -c $((40 * 1024 * 1024)) /dev/urandom >"$T/big"
s3 put dies big.bin "$T/big"
echo deep | s3 put dies later/deeper/file.txt -

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",readahead=1048576 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

# a slow reader: 1 MiB every 50 ms
/usr/bin/python3 - "$MNT/big.bin" "$T/big" >"$T/reader.out" 2>&1 <<'PY' &
import hashlib, sys, time
want = open(sys.argv[2], 'rb').read()
got = b''
try:
    with open(sys.argv[1], 'rb', buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            got += b
            time.sleep(0.05)
except OSError as e:
    print('error', e.errno, 'after', len(got))
    sys.exit(0 if want.startswith(got) else 2)
print('complete', 'ok' if got == want else 'WRONG')
PY
reader=$!
sleep 0.4
swift_stop
wait $reader
rrc=$?
out=$(cat "$T/reader.out")
case "$out" in
"error 5 "*) [ $rrc -eq 0 ] && pass "server killed mid-read: EIO, bytes before it correct ($out)" ||
	fail "mid-read" "bytes before the error were wrong" ;;
"complete ok") skip "server killed mid-read" "the read finished before the kill" ;;
*) fail "server killed mid-read" "$out" ;;
esac

ls "$MNT/later" >/dev/null 2>"$T/ls.err" && fail "listing while down" "succeeded" ||
	{ grep -q "Input/output error" "$T/ls.err" && pass "listing while the server is down: EIO" ||
		fail "listing while down" "$(cat "$T/ls.err")"; }
kill -0 "$MFS_PID" && pass "the daemon survives" || fail "daemon" "died"
grep -q "gave up after 2 retries" "$LOG" && pass "the log says it retried and gave up" ||
	fail "log" "$(grep -m2 warning "$LOG")"

swift_start "$SWIFT_DIR" "$S3_PORT" || { fail "restart" "Swift did not come back"; exit 1; }
[ "$(cat "$MNT/later/deeper/file.txt" 2>/dev/null)" = deep ] &&
	pass "server back: the same lookup works" || fail "after restart" "$(ls "$MNT/later" 2>&1)"
cmp -s "$MNT/big.bin" "$T/big" && pass "server back: the big object reads correctly" ||
	fail "after restart" "big.bin differs"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
