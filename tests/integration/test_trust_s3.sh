#!/bin/bash
# Trust no reply (issue 16): a proxy between mediafs and the S3 server lies,
# deterministically (every Nth request of a kind, or by key), and every
# result is checked on the server with boto3, never through the mount:
# PUTs answered 200 with an <Error> body or without an ETag (nothing stored)
# are retried until proven, and the journal says "done" exactly for what is
# on the server; ranged GETs answered with an <Error> body or a short body
# give the right bytes or an error, never other bytes, and never change the
# file's size; continuation tokens that cycle end the listing within a
# bound; a %00 key is skipped. (Multipart: test_trust_s3_multipart.)
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
CTL=$T/control
B=trust
s3 mkbucket $B
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$CTL"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$CTL" >"$T/proxy.out" 2>"$T/proxy.err" &
proxy=$!
trap 'kill $proxy 2>/dev/null; cleanup_mounts' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
S3_PORT=$PPORT write_conf "$T/m.conf" $B "retries = 6"
mopts=config="$T/m.conf",cache_dir="$T/cache",journal="$J"
lies() { grep -c "^LIE $1" "$T/proxy.out" || true; }

# fixtures (one process: forks are slow on a loaded machine); fx/ goes
# straight to the server
"$SYS_PY" - "$T" <<'PY'
import os, sys
t = sys.argv[1]
def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
put(t + '/fx/getf/big.bin', os.urandom(3000000))
put(t + '/fx/getf/bad.bin', os.urandom(200000))
put(t + '/fx/cyc/x', b'x\n')
put(t + '/fx/nul/a', b'a\n')
put(t + '/fx/nul/b', b'b\n')
for i in range(1, 301):
    put('%s/src/%s/f%d' % (t, 'abc'[i % 3], i), os.urandom(100 + i * 29))
PY
s3 putdir $B "$T/fx" >/dev/null

mount_fs "$LOG" "$MNT" -o "$mopts" s3t: || { fail mount "mediafs did not mount through the proxy"; exit 1; }

# 1. PUTs that lie: every 10th answered 200 + <Error>, every 15th 200
# without an ETag; nothing of theirs reaches the server
printf 'put_error_every=10\nput_noetag_every=15\n' >"$CTL"
cp -r "$T/src" "$MNT/cp" || fail "cp -r through lying PUTs" "cp failed"
wait_uploads "$J" 100
printf '' >"$CTL"
nlies=$(lies put_)
tree_manifest "$T/src" cp/ "  " | awk -F'  ' '{print $1 "  " $3}' >"$T/src.md5"
s3 manifest $B cp/ | awk -F'\t' '{print "cp/" $1 "  " $3}' | LC_ALL=C sort >"$T/store.md5"
sqlite3 "$J" "select key || '  ' || etag from uploads where state='done' and key like 'cp/%' and key not like '%/'" |
	LC_ALL=C sort >"$T/journal.md5"
failed=$(sqlite3 "$J" "select count(*) from uploads where state in ('failed','pending') and key like 'cp/%'")
missing=$(LC_ALL=C comm -23 "$T/src.md5" "$T/store.md5" | wc -l)
[ "$nlies" -ge 20 ] && [ "$missing" = 0 ] && cmp -s "$T/src.md5" "$T/store.md5" &&
	pass "cp -r of 300 files, $nlies PUTs answered 200 without storing: 0 missing, all 300 byte-exact on the server" ||
	fail "lying PUTs" "$nlies lies, $missing missing: $(diff "$T/src.md5" "$T/store.md5" | head -3)"
[ "$(wc -l <"$T/journal.md5")" = 300 ] && cmp -s "$T/journal.md5" "$T/store.md5" && [ "$failed" = 0 ] &&
	pass "the journal says done for exactly the 300 objects on the server, each with its MD5 as ETag" ||
	fail "journal vs server" "$(wc -l <"$T/journal.md5") done rows, $failed not done: $(diff "$T/journal.md5" "$T/store.md5" | head -3)"
grep -q "without an ETag: not proof of the upload" "$LOG" && grep -q "HTTP 200 with error InternalError" "$LOG" &&
	pass "the log names both lies and the retries" || fail "lie log" "no line"

# 2. ranged GETs that lie: every 3rd an <Error> body, every 4th a short
# body; every GET of bad.bin an <Error> body
printf 'get_error_every=3\nget_short_every=4\nget_error_key=bad.bin\n' >"$CTL"
size0=$(stat -c %s "$MNT/getf/bad.bin")
if cat "$MNT/getf/big.bin" >"$T/big.out" 2>"$T/big.err"; then
	cmp -s "$T/big.out" "$T/fx/getf/big.bin" && [ "$(lies get_)" -gt 0 ] &&
		pass "cat through lying GETs ($(lies get_) lies): the right 3,000,000 bytes" ||
		fail "lying GETs" "$(lies get_) lies; $(cmp "$T/big.out" "$T/fx/getf/big.bin" 2>&1)"
else
	fail "lying GETs" "cat failed: $(cat "$T/big.err")"
fi
if cat "$MNT/getf/bad.bin" >"$T/bad.out" 2>"$T/bad.err"; then
	fail "GETs that always lie" "cat exited 0 with $(stat -c %s "$T/bad.out") bytes"
else
	n=$(stat -c %s "$T/bad.out")
	! grep -q "Error" "$T/bad.out" && cmp -s -n "$n" "$T/bad.out" "$T/fx/getf/bad.bin" &&
		grep -q "Input/output error" "$T/bad.err" &&
		pass "GETs that always answer an <Error> body: cat fails with EIO, no XML served ($n bytes out)" ||
		fail "GETs that always lie" "$n bytes: $(head -c 80 "$T/bad.out"); $(cat "$T/bad.err")"
fi
size1=$(stat -c %s "$MNT/getf/bad.bin")
[ "$size0" = 200000 ] && [ "$size1" = 200000 ] && pass "stat size stays 200000 after the lies" ||
	fail "size after lies" "$size0 -> $size1"
printf '' >"$CTL"

# 3. continuation tokens that cycle (A, B, A, ...); 4. a %00 key
printf 'list_cycle=cyc/\nlist_nul=nul/\n' >"$CTL"
t0=$SECONDS
timeout 60 ls "$MNT/cyc" >"$T/cyc.out" 2>"$T/cyc.err"
rc=$?
pages=$(lies list_cycle)
[ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$pages" -le 12 ] &&
	pass "cycling tokens: ls fails in $((SECONDS - t0)) s after $pages pages ($(head -1 "$T/cyc.err" | cut -c1-60))" ||
	fail "cycling tokens" "ls exit $rc after $pages pages"
grep -q "a second time" "$LOG" && pass "the log says the server repeated a token" || fail "cycle log" "no line"
names=$(ls "$MNT/nul" 2>"$T/nul.err" | tr '\n' ' ')
[ "$names" = "a b " ] && [ "$(lies list_nul)" -gt 0 ] && grep -q "cannot be shown: not valid URL encoding or a NUL byte" "$LOG" &&
	pass "a key with %00 is skipped with a warning, its siblings listed: $names" ||
	fail "%00 key" "'$names' $(cat "$T/nul.err")"
printf '' >"$CTL"
kill -0 "$MFS_PID" && [ "$(cat "$MNT/getf/big.bin" | md5sum)" = "$(md5sum <"$T/fx/getf/big.bin")" ] &&
	pass "the daemon stays healthy: reads still work" || fail "after the lies" "daemon or read broken"

umount_fs "$LOG" "$MNT" && pass "unmount: clean exit, no sanitizer report" || fail unmount "see $LOG"
