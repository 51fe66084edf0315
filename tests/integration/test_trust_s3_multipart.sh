#!/bin/bash
# Trust no reply, multipart (issue 16): through a proxy that lies
# deterministically, a CompleteMultipartUpload whose reply is garbled, or
# whose connection is reset after the server did it, is settled by HEAD
# (the ETag of the parts), parts answered without their ETag are sent
# again, and a multipart upload open at a kill -9 is aborted by the next
# mount, also one whose start's reply never came (the journal holds only
# its intent); a start whose reply is lost while the daemon keeps running
# is settled at once (1 LIST, 1 ABORT). Checked on the server with boto3.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
CTL=$T/control
B=trustmp
s3 mkbucket $B
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$CTL"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$CTL" >"$T/proxy.out" 2>"$T/proxy.err" &
proxy=$!
trap 'kill $proxy 2>/dev/null; cleanup_mounts' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
S3_PORT=$PPORT write_conf "$T/m.conf" $B "retries = 6"
mopts=config="$T/m.conf",cache_dir="$T/cache",journal="$J",multipart_threshold=5242880
lies() { grep -c "^LIE $1" "$T/proxy.out" || true; }

# 8 MiB + 1 MiB: two parts each
"$SYS_PY" - "$T" <<'PY'
import os, sys
for name in ('garbled', 'reset', 'hold', 'lost', 'running'):
    with open('%s/%s.bin' % (sys.argv[1], name), 'wb') as f:
        f.write(os.urandom(9437184))
PY
mount_fs "$LOG" "$MNT" -o "$mopts" s3t: || { fail mount "mediafs did not mount through the proxy"; exit 1; }

# A garbled completion reply, a completion whose connection
# is reset after the server did it, parts answered without their ETag
printf 'complete_garble=garbled.bin\nreset_once=reset.bin?uploadId\npart_noetag_every=3\n' >"$CTL"
cp "$T/garbled.bin" "$T/reset.bin" "$MNT/"
wait_uploads "$J" 100
printf '' >"$CTL"
rows=$(sqlite3 "$J" "select group_concat(state) from uploads where key in ('garbled.bin','reset.bin')")
s3 manifest $B "" >"$T/store1"
m1=$(grep "^garbled.bin	" "$T/store1" | cut -f3)
m2=$(grep "^reset.bin	" "$T/store1" | cut -f3)
[ "$rows" = "done,done" ] && [ "$m1" = "$(md5sum <"$T/garbled.bin" | cut -d' ' -f1)" ] &&
	[ "$m2" = "$(md5sum <"$T/reset.bin" | cut -d' ' -f1)" ] && [ "$(lies complete_garble)" -ge 1 ] &&
	[ "$(lies reset)" -ge 1 ] && grep -q "the object is there with the ETag of its parts" "$LOG" &&
	pass "garbled and lost completion replies settled by HEAD: both done, both byte-exact" ||
	fail "completion settle" "rows '$rows', $(lies complete_garble) garbled, $(lies reset) resets"

# kill -9 while a multipart upload is open; the next mount aborts it
printf 'hold=hold.bin?partNumber\n' >"$CTL"
cp "$T/hold.bin" "$MNT/"
for i in $(seq 1 600); do
	[ "$(sqlite3 "$J" "select count(*) from multipart where upload_id not like '?%'" 2>/dev/null)" -ge 1 ] && [ "$(lies hold)" -ge 1 ] && break
	sleep 0.1
done
uid=$(sqlite3 "$J" "select upload_id from multipart where key='hold.bin' and upload_id not like '?%'")
kill -9 "$MFS_PID"
wait "$MFS_PID" 2>/dev/null
MFS_PID=
fusermount3 -u -z "$MNT" 2>/dev/null
printf '' >"$CTL"
open_before=$(s3 uploads $B)
[ -n "$uid" ] && [ "$open_before" = hold.bin ] &&
	pass "kill -9 during a multipart upload: the journal names its upload id, the server has it open" ||
	fail "kill setup" "upload id '$uid', open: '$open_before'"
mount_fs "$LOG" "$MNT" -o "$mopts" s3t: || { fail remount "mediafs did not mount again"; exit 1; }
wait_uploads "$J" 100
open_after=$(s3 uploads $B)
left=$(sqlite3 "$J" "select count(*) from multipart")
m3=$(s3 manifest $B hold.bin | cut -f3)
[ -z "$open_after" ] && [ "$left" = 0 ] && [ "$m3" = "$(md5sum <"$T/hold.bin" | cut -d' ' -f1)" ] &&
	grep -q "aborted 1 multipart upload left open" "$LOG" &&
	pass "after the remount: the old upload aborted, no open upload, the file byte-exact" ||
	fail "abort on resume" "open: '$open_after', journal rows $left, md5 $m3"

# kill -9 while the reply to CreateMultipartUpload is lost: the journal
# never learned the upload id, only its intent; the next mount lists the
# key's uploads started since and aborts them
printf 'lose_reply=lost.bin?uploads\n' >"$CTL"
cp "$T/lost.bin" "$MNT/"
for i in $(seq 1 600); do
	[ "$(lies lose_reply)" -ge 1 ] && break
	sleep 0.1
done
intents=$(sqlite3 "$J" "select count(*) from multipart where key='lost.bin' and upload_id like '?%'")
known=$(sqlite3 "$J" "select count(*) from multipart where key='lost.bin' and upload_id not like '?%'")
kill -9 "$MFS_PID"
wait "$MFS_PID" 2>/dev/null
MFS_PID=
fusermount3 -u -z "$MNT" 2>/dev/null
printf '' >"$CTL"
open_before=$(s3 uploads $B)
[ "$intents" = 1 ] && [ "$known" = 0 ] && echo "$open_before" | grep -qx lost.bin &&
	pass "kill -9 with the reply to CreateMultipartUpload lost: the journal holds only the intent, the server has $(echo "$open_before" | grep -cx lost.bin) upload open" ||
	fail "lost start setup" "intents $intents, known ids $known, open: '$open_before'"
mount_fs "$LOG" "$MNT" -o "$mopts" s3t: || { fail remount "mediafs did not mount again"; exit 1; }
wait_uploads "$J" 100
open_after=$(s3 uploads $B)
left=$(sqlite3 "$J" "select count(*) from multipart")
m4=$(s3 manifest $B lost.bin | cut -f3)
[ -z "$open_after" ] && [ "$left" = 0 ] && [ "$m4" = "$(md5sum <"$T/lost.bin" | cut -d' ' -f1)" ] &&
	grep -q "of lost.bin whose start the journal never saw answered" "$LOG" &&
	pass "after the remount: the upload nobody knew the id of aborted, no open upload, the file byte-exact" ||
	fail "abort of a lost start" "open: '$open_after', journal rows $left, md5 $m4"

# The reply to CreateMultipartUpload lost while the daemon keeps running
# (the server started the upload, the connection reset without an
# answer): the start is sent again, and the key's uploads started since,
# but the one in use, are aborted at once: no orphan, without a remount
resets0=$(lies reset)
mark=$(req_mark)
printf 'reset_once=running.bin?uploads\n' >"$CTL"
cp "$T/running.bin" "$MNT/"
wait_uploads "$J" 100
printf '' >"$CTL"
starts=$(req_since "$mark" '^POST /trustmp/running\.bin\?uploads')
lists=$(req_since "$mark" '^GET /trustmp\?[^ ]*(prefix=running\.bin[^ ]*uploads|uploads[^ ]*prefix=running\.bin)')
aborts=$(req_since "$mark" '^DELETE /trustmp/running\.bin\?uploadId=')
open_after=$(s3 uploads $B)
left=$(sqlite3 "$J" "select count(*) from multipart")
row=$(sqlite3 "$J" "select state from uploads where key='running.bin' order by id desc limit 1")
m5=$(s3 manifest $B running.bin | cut -f3)
[ "$(lies reset)" -gt "$resets0" ] && [ "$starts" = 2 ] && [ -z "$open_after" ] && [ "$left" = 0 ] &&
	[ "$row" = done ] && [ "$m5" = "$(md5sum <"$T/running.bin" | cut -d' ' -f1)" ] &&
	[ "$lists" = 1 ] && [ "$aborts" -le 1 ] && grep -q "of running.bin whose start went unanswered" "$LOG" &&
	pass "a start's reply lost while running: $starts starts, $lists LIST, $aborts ABORT, 0 open uploads, 0 journal rows, the file byte-exact" ||
	fail "lost start while running" "starts $starts, lists $lists, aborts $aborts, open: '$open_after', journal rows $left, row '$row', md5 $m5"
umount_fs "$LOG" "$MNT" && pass "unmount: clean exit, no sanitizer report" || fail unmount "see $LOG"
