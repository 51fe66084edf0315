#!/bin/bash
# rm of a file while its upload runs stops the upload: its requests end
# within a second or two, not when the last byte has gone (before, a
# deleted 20 MB file was sent whole and then deleted, and an unmount or a
# rename onto its name waited for all of it). What the stopped request may
# have left is deleted, now and after the landing grace, as for any upload
# of a deleted file that failed; a stopped multipart upload is aborted.
# The transfer is made slow, not raced: the fault proxy reads the bodies of
# these PUTs at 200 KB/s (slow_put), so a 6 MB PUT takes 30 s and a part
# of 8 MiB 42 s, and says when the client hung up and how much of the body
# it had read by then (what the client's and its own socket buffers held
# goes first: a few MB). A multipart start whose answer the proxy keeps
# (lose_reply) is stopped the same way; the upload it made is swept.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket stopb
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" stopb
mount_fs "$LOG" "$MNT" -o config=$T/m.conf,cache_dir=$T/cache,journal=$J,landing_grace=3,multipart_threshold=8388608 ||
	{ fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
on_store() { s3 head stopb "$1" >/dev/null 2>&1; }
gone() { ! on_store "$1"; }
short_of() {	# short_of NAME: every CLOSED line of NAME read less than all
	grep "^CLOSED slow_put PUT .*$1" "$T/proxy.out" |
		awk '{ if ($(NF-3) >= $(NF-1)) bad = 1; n++ } END { exit !(n && !bad) }'
}
no_abort_failure() { ! grep -q "could not abort multipart upload of $1" "$LOG"; }
slow_started() { [ "$(grep -c "^SLOW PUT .*$1" "$T/proxy.out")" -ge "${2:-1}" ]; }
closed() { grep -q "^CLOSED slow_put PUT .*$1" "$T/proxy.out"; }
settled() { timeout 120 "$MEDIACTL" wait "$S" >/dev/null 2>&1; }
pending_rows() { sqlite3 "$J" "select count(*) from uploads where state='pending'"; }

# ---- one PUT
printf 'slow_put=stop-one\nslow_rate=200000\n' >"$T/control"
head -c 6000000 /dev/urandom >"$S/stop-one.bin" || { fail write "cannot write stop-one.bin"; exit 1; }
poll 60 slow_started stop-one || { fail setup "the upload never reached the proxy"; exit 1; }
rm "$S/stop-one.bin" || fail rm "cannot remove stop-one.bin"
if poll 60 closed stop-one && short_of stop-one; then
	pass "rm stops the running PUT: the proxy had $(grep "^CLOSED slow_put PUT .*stop-one" "$T/proxy.out" | sed 's/.* after //')"
else
	fail "one PUT" "not stopped: $(grep stop-one "$T/proxy.out" | tail -2 | tr '\n' ' ')"
fi
check "the log says the upload is stopped" \
	poll 30 grep -q "stop-one.bin was deleted while uploading; its upload is stopped" "$LOG"
: >"$T/control"
settled || fail "one PUT: settle" "the mount did not settle"
check "nothing of it is on the store" gone stop-one.bin
check "the file stays deleted in the mount" [ ! -e "$S/stop-one.bin" ]

# ---- multipart (20 MB: 3 parts of 8 MiB)
printf 'slow_put=stop-mp\nslow_rate=200000\n' >"$T/control"
head -c 20000000 /dev/urandom >"$S/stop-mp.bin" || { fail write "cannot write stop-mp.bin"; exit 1; }
poll 60 slow_started stop-mp || { fail setup "no part reached the proxy"; exit 1; }
rm "$S/stop-mp.bin" || fail rm "cannot remove stop-mp.bin"
if poll 60 closed stop-mp && short_of stop-mp; then
	pass "rm stops the running parts: $(grep -c "^CLOSED slow_put PUT .*stop-mp" "$T/proxy.out") part(s) hung up, each short of its body"
else
	fail "multipart" "not stopped: $(grep stop-mp "$T/proxy.out" | tail -2 | tr '\n' ' ')"
fi
: >"$T/control"
settled || fail "multipart: settle" "the mount did not settle"
check "the multipart upload is aborted (none left on the store)" \
	[ -z "$(s3 uploads stopb)" ]
check "nothing of it is on the store" gone stop-mp.bin
check "the log has no failure to abort" no_abort_failure stop-mp

# ---- stopped while its multipart start waits for an answer the server
# made (an upload exists, its id never came back): swept at once
: >"$T/control.held"
echo "lose_reply=stop-mpb" >"$T/control"
head -c 9000000 /dev/urandom >"$S/stop-mpb.bin" || { fail write "cannot write stop-mpb.bin"; exit 1; }
started_mpu() { [ -n "$(s3 uploads stopb)" ]; }
poll 60 started_mpu || { fail setup "no multipart upload started"; exit 1; }
rm "$S/stop-mpb.bin" || fail rm "cannot remove stop-mpb.bin"
check "the log says the upload is stopped" \
	poll 30 grep -q "stop-mpb.bin was deleted while uploading; its upload is stopped" "$LOG"
: >"$T/control"
settled || fail "start: settle" "the mount did not settle"
check "the upload its unanswered start made is aborted" [ -z "$(s3 uploads stopb)" ]
check "nothing of it is on the store" gone stop-mpb.bin

# ---- a rename onto the name no longer waits for the whole transfer
echo keep >"$S/keep.txt" && settled || fail setup "keep.txt did not land"
printf 'slow_put=stop-mv\nslow_rate=200000\n' >"$T/control"
head -c 6000000 /dev/urandom >"$S/stop-mv.bin" || { fail write "cannot write stop-mv.bin"; exit 1; }
poll 60 slow_started stop-mv || { fail setup "the upload never reached the proxy"; exit 1; }
mv "$S/keep.txt" "$S/stop-mv.bin" &
mvp=$!
mv_done() { ! pid_alive "$mvp"; }
check "a rename over the uploading file ends before its transfer would" poll 15 mv_done
wait $mvp
check "the rename succeeded" [ $? = 0 ]
: >"$T/control"
settled || fail "rename: settle" "the mount did not settle"
check "the renamed file is on the store under the name" \
	[ "$(s3 get stopb stop-mv.bin 2>/dev/null)" = keep ]
check "and reads back in the mount" [ "$(cat "$S/stop-mv.bin")" = keep ]
settled || fail "rename: settle" "the mount did not settle"	# (rechecks too)
check "the renamed file stays after the grace" [ "$(s3 get stopb stop-mv.bin 2>/dev/null)" = keep ]
check "no row stays pending" [ "$(pending_rows)" = 0 ]
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
