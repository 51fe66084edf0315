#!/bin/bash
# A server that answers 503 SlowDown to 20% of requests still ends with
# every file correct; a server that keeps refusing one upload leaves the
# previous object intact, the file staged, and a failed journal row that
# says why; a full staging disk gives ENOSPC to the writer.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket faults
PPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "rate=0.2" >"$T/control"
echo "seed=3" >>"$T/control"
/usr/bin/python3 "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$T/control" >"$T/proxy.out" 2>&1 &
proxy=$!
trap 'kill $proxy 2>/dev/null; cleanup_mounts' EXIT
for i in $(seq 1 50); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
S3_PORT_REAL=$S3_PORT
S3_PORT=$PPORT write_conf "$T/m.conf" faults "retries = 8"

mkdir -p "$T/src/a" "$T/src/b"
for i in $(seq 1 150); do head -c $((1000 + i * 97)) /dev/urandom >"$T/src/$([ $((i % 2)) = 0 ] && echo a || echo b)/f$i"; done
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount through the proxy"; exit 1; }
cp -r "$T/src" "$MNT/copy" && rsync -a "$T/src/" "$MNT/rs/" || fail "copy under 503s" "cp/rsync failed"
wait_uploads "$J" 120
failed=$(sqlite3 "$J" "select count(*) from uploads where state='failed'")
(cd "$T/src" && find . -type f -exec md5sum {} + | sed 's|  \./|  |' | LC_ALL=C sort -k2) >"$T/src.md5"
for d in copy rs; do
	S3_PORT=$S3_PORT_REAL s3 manifest faults "$d/" | awk -F'\t' '{print $3 "  " $1}' | LC_ALL=C sort -k2 >"$T/$d.md5"
done
retries=$(grep -c "retrying" "$LOG" || true)
cmp -s "$T/src.md5" "$T/copy.md5" && cmp -s "$T/src.md5" "$T/rs.md5" && [ "$failed" -eq 0 ] &&
	pass "20% of requests answered 503: all 300 uploads correct on the server" ||
	fail "503 storm" "$failed failed; $(diff "$T/src.md5" "$T/copy.md5" | head -2)"

# one key refused for good: the old version stays, the new one is kept
echo "version 1" >"$MNT/keep.txt"
wait_uploads "$J"
printf 'rate=0\nfail_key=keep.txt\n' >"$T/control"
echo "version 2" >"$MNT/keep.txt"
wait_uploads "$J" 60
row=$(sqlite3 "$J" "select state, error, stage_path from uploads where key='keep.txt' order by id desc limit 1")
old=$(S3_PORT=$S3_PORT_REAL s3 manifest faults keep.txt | cut -f3)
[ "$old" = "$(echo 'version 1' | md5sum | cut -d' ' -f1)" ] &&
	pass "a failed overwrite leaves the previous object intact" || fail "overwrite safety" "server has $old"
case "$row" in
failed\|*SlowDown*) pass "journal row 'failed' with the error: $(echo "$row" | cut -d'|' -f2 | cut -c1-90)" ;;
*) fail "failed row" "$row" ;;
esac
staged=$(echo "$row" | cut -d'|' -f3)
[ -f "$staged" ] && [ "$(cat "$staged")" = "version 2" ] && pass "the new version stays staged ($staged)" ||
	fail "staged file" "'$staged' missing"
[ "$(cat "$MNT/keep.txt")" = "version 2" ] && pass "the mount still shows the new content" ||
	fail "read after failure" "$(cat "$MNT/keep.txt")"
grep -q "upload of keep.txt failed, kept in" "$LOG" && pass "the log names the failure and where the data is" ||
	fail "failure log" "no line"
# a multipart upload whose part 3 is refused for good is aborted
head -c 100000000 /dev/urandom >"$T/big"
printf 'rate=0\nfail_key=partNumber=3&\n' >"$T/control"
cp "$T/big" "$MNT/big.bin"
wait_uploads "$J" 120
row=$(sqlite3 "$J" "select state from uploads where key='big.bin' order by id desc limit 1")
open_uploads=$(S3_PORT=$S3_PORT_REAL s3 uploads faults)
[ "$row" = failed ] && [ -z "$open_uploads" ] && [ -z "$(S3_PORT=$S3_PORT_REAL s3 keys faults big.bin)" ] &&
	pass "a multipart upload that fails is aborted: no open upload, no object, a failed row" ||
	fail "multipart abort" "row '$row', open uploads: $open_uploads"
printf 'rate=0\n' >"$T/control"
umount_fs "$LOG" "$MNT" 2>/dev/null
# a failed upload makes the daemon exit non-zero, by design
MFS_PID=

# full staging disk: ENOSPC to the writer
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/small"
	mount -t tmpfs -o size=2m tmpfs "$T/small"
	mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/small",journal="$J" s3t: ||
		{ fail "mount small" "mediafs did not mount"; umount "$T/small"; exit 1; }
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/4m"
	if cp "$T/4m" "$MNT/toobig" 2>"$T/err"; then
		fail "ENOSPC" "cp succeeded with a 2 MiB staging disk"
	else
		grep -q "No space left on device" "$T/err" && pass "full staging disk: the writer gets ENOSPC ($(head -1 "$T/err" | cut -c1-80))" ||
			fail "ENOSPC" "$(cat "$T/err")"
	fi
	wait_uploads "$J"
	[ -z "$(S3_PORT=$S3_PORT_REAL s3 keys faults toobig)" ] && [ ! -e "$MNT/toobig" ] &&
		pass "the partial file is not uploaded and not shown" ||
		fail "partial file" "$(S3_PORT=$S3_PORT_REAL s3 keys faults toobig) / $(ls "$MNT")"
	grep -q "'toobig' is not uploaded: a write to it failed" "$LOG" && pass "the log says why" ||
		fail "ENOSPC log" "no line"
	echo small >"$MNT/small-ok" && wait_uploads "$J" && [ "$(S3_PORT=$S3_PORT_REAL s3 manifest faults small-ok | cut -f2)" = 6 ] &&
		pass "after ENOSPC, small files still go up" || fail "after ENOSPC" "small file not uploaded"
	umount_fs "$LOG" "$MNT" || true
	MFS_PID=
	umount "$T/small"
else
	skip "full staging disk" "needs root to mount a small tmpfs"
fi
