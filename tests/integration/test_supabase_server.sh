#!/bin/bash
# mediafs against what a real Supabase Storage server does (API-NOTES F),
# encoded in the fake (tests/servers/fake_supabase.py):
#  - overwriting a file above the TUS threshold: every PATCH carries
#    x-upsert (the server answers 409 text/plain otherwise, F14), and the
#    object then holds the new bytes, the version the upload made;
#  - a refused upload's reason comes from a text/plain TUS body ("Maximum
#    size exceeded", F15) or a 413-coded JSON REST body (F20), and the
#    upload is reported failed with it;
#  - an upload reply that names another key, or a 200 whose body is an
#    error, proves nothing: the file ends on the server or is failed;
#  - a server without the API gateway serves its routes at the root (F16):
#    api_path = / reaches it, REST and TUS; the default reports the route.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

sb_test
export TEST_SB_KEY=$SB_KEY
conf() {	# conf FILE [EXTRA]
	cat >"$1" <<EOC
[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:TEST_SB_KEY
retry_base_ms = 20
${2:-}
EOC
	chmod 600 "$1"
}
conf "$T/m.conf"
sbmd5() { sb manifest "$1" | grep -P "^\\Q$2\\E\\t" | cut -f3; }
state() { sqlite3 "$J" "select state from uploads where key='$1' order by id desc limit 1"; }
# settled KEY: until the newest journal row of KEY is done or failed
settled() {
	local i s
	for i in $(seq 1 900); do
		s=$(state "$1")
		[ "$s" = done ] || [ "$s" = failed ] && return 0
		sleep 0.1
	done
	return 1
}

mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" supa: ||
	{ fail mount "mediafs did not mount"; exit 1; }
mkdir "$MNT/media"

# ---- overwrite through TUS: x-upsert on every PATCH (F14)
SIZE=20000000 CHUNKS=4
head -c $SIZE /dev/urandom >"$T/a"
head -c $SIZE /dev/urandom >"$T/b"
cp "$T/a" "$MNT/media/big.bin"
wait_uploads "$J" 100
m=$(sb_mark)
cp "$T/b" "$MNT/media/big.bin"
wait_uploads "$J" 100
patches=$(sb_since "$m" '^PATCH /storage/v1/upload/resumable/[^ ]+ 204$')
refused=$(sb_since "$m" ' 409$')
[ "$(sbmd5 media big.bin)" = "$(md5sum <"$T/b" | cut -d' ' -f1)" ] && [ "$patches" = $CHUNKS ] &&
	[ "$refused" = 0 ] && [ "$(state media/big.bin)" = done ] &&
	pass "a 20 MB overwrite through TUS: $CHUNKS PATCHes with x-upsert, no 409, the new bytes on the server" ||
	fail "TUS overwrite" "$patches PATCH 204, $refused 409, state $(state media/big.bin)"
cmp -s "$MNT/media/big.bin" "$T/b" && pass "the overwritten file reads back as the new bytes" ||
	fail "TUS overwrite read" "differs"

# ---- refusals: the plain-text TUS reason, the JSON REST reason (F15, F20)
echo max_size=15000000 >"$SB_CONTROL"
cp "$T/a" "$MNT/media/toobig.bin"
settled media/toobig.bin
err=$(sqlite3 "$J" "select error from uploads where key='media/toobig.bin'")
[ "$(state media/toobig.bin)" = failed ] && case $err in *"Maximum size exceeded"*) true ;; *) false ;; esac &&
	pass "a TUS upload over the server's limit: failed with its text/plain reason ('$err')" ||
	fail "TUS refusal" "state $(state media/toobig.bin): $err"
echo max_size=1000 >"$SB_CONTROL"
head -c 2000 /dev/urandom >"$MNT/media/small-too-big"
settled media/small-too-big
err=$(sqlite3 "$J" "select error from uploads where key='media/small-too-big'")
[ "$(state media/small-too-big)" = failed ] &&
	case $err in *"exceeded the maximum allowed size"*) true ;; *) false ;; esac &&
	pass "a REST upload over the limit: failed with the JSON body's reason" ||
	fail "REST refusal" "state $(state media/small-too-big): $err"
: >"$SB_CONTROL"

# ---- replies that prove nothing: another key named, an error in a 200
echo put_bad_first=1 >"$SB_CONTROL"
mkdir "$T/src"
for i in $(seq 1 24); do head -c $((1000 + i)) /dev/urandom >"$T/src/f$i"; done
m=$(sb_mark)
cp -r "$T/src" "$MNT/media/proof"
wait_uploads "$J" 100
: >"$SB_CONTROL"
tree_manifest "$T/src" proof/ >"$T/want"
sb manifest media | grep '^proof/' | cut -f1-3 >"$T/got"
done_n=$(sqlite3 "$J" "select count(*) from uploads where key like 'media/proof/%' and state='done'")
puts=$(sb_since "$m" '^PUT /storage/v1/object/media/proof/')
diff -q "$T/want" "$T/got" >/dev/null && [ "$done_n" = 24 ] && [ "$puts" = 72 ] &&
	grep -q "the reply names another key" "$LOG" && grep -q "the reply names no key" "$LOG" &&
	pass "each file's first reply names another key, its second is an error in a 200: 72 PUTs for 24 files, every file on the server, 24 done" ||
	fail "reply proof" "done $done_n, $puts PUTs, $(diff "$T/want" "$T/got" | head -3)"
# two uploads failed: the daemon says so at unmount and in its exit status
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
rc=0
wait "$MFS_PID" || rc=$?
MFS_PID=
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG"; then
	fail sanitizer "$(grep -E -A5 "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" | head -8)"
fi
[ "$rc" != 0 ] && grep -q "uploads done, 2 failed" "$LOG" &&
	pass "unmount after the refusals: '2 failed' in the summary, exit status $rc" ||
	fail "unmount summary" "exit $rc, $(grep 'uploads done' "$LOG" | tail -1)"

# ---- a server without the gateway: routes at the root (F16)
echo no_prefix=1 >"$SB_CONTROL"
conf "$T/root.conf" "api_path = /"
mount_fs "$LOG" "$MNT" -o config="$T/root.conf",cache_dir="$T/cache2",journal="$J" supa: ||
	{ fail "mount root" "did not mount"; exit 1; }
m=$(sb_mark)
echo hello >"$MNT/media/root-small"
head -c 7000000 /dev/urandom >"$T/c"
cp "$T/c" "$MNT/media/root-big"
wait_uploads "$J" 100
ok=1
cmp -s "$MNT/media/root-big" "$T/c" && [ "$(cat "$MNT/media/root-small")" = hello ] || ok=0
[ "$(sb_since "$m" '^PUT /object/media/root-small 200$')" = 1 ] &&
	[ "$(sb_since "$m" '^PATCH /upload/resumable/[^ ]+ 204$')" = 2 ] &&
	[ "$(sb_since "$m" '/storage/v1/')" = 0 ] || ok=0
[ $ok = 1 ] && pass "api_path = /: REST and TUS (Location at the root) against a server without the gateway" ||
	fail "root routes" "$(tail -3 "$SB_REQLOG")"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mount_fs "$T/m2.log" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache3",journal="$J" supa: ||
	{ fail "mount default" "did not mount"; exit 1; }
ls "$MNT/media" >/dev/null 2>"$T/err" && fail "default prefix on a root server" "listed" ||
	{ grep -q "no route" "$T/m2.log" && grep -q "api_path" "$T/m2.log" &&
		pass "the default /storage/v1 on a server without the gateway: 'no route', api_path named" ||
		fail "no route" "$(tail -3 "$T/m2.log")"; }
umount_fs "$T/m2.log" "$MNT" || fail unmount "see $T/m2.log"
: >"$SB_CONTROL"
[ "$(sbmd5 media root-big)" = "$(md5sum <"$T/c" | cut -d' ' -f1)" ] &&
	pass "the root server holds the TUS upload's bytes" || fail "root md5" "differs"
