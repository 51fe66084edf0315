#!/bin/bash
# An upload that lands while another process holds the journal's write
# lock past the busy timeout (10 s) is recorded once the lock goes, and
# is answered "done" (upload_state, fsync) only then. Before, the failed
# "done" write was ignored: the mount said done and dropped the staged
# copy while the journal row stayed pending for good, so `mediactl copy`
# run again took the file for stored and its rewrite, report and
# rollback never saw it (test_examples_s3, seed 1056882326: a mediactl
# killed mid-write, its exit waiting on this mount, held the lock ~50 s).
# "In flight" is a state: the fault proxy holds the PUT until told.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
# the bucket, made and seen (a slow server may take the first try badly)
for i in $(seq 1 30); do
	s3 mkbucket jbusy >"$T/mkbucket.out" 2>&1
	s3 keys jbusy >/dev/null 2>>"$T/mkbucket.out" && break
	sleep 2
done
s3 keys jbusy >/dev/null 2>&1 || { fail "bucket" "cannot make bucket jbusy: $(tail -2 "$T/mkbucket.out")"; exit 1; }
proxy_start "$T/control" 2>"$T/proxy.err" ||
	{ fail "proxy" "$(cat "$T/proxy.err")"; exit 1; }
locker=
trap 'touch "$T/unlock"; [ -n "$locker" ] && kill $locker 2>/dev/null; cleanup_mounts; kill $proxy 2>/dev/null' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" jbusy
mount_fs "$LOG" "$MNT" -o "config=$T/m.conf,cache_dir=$T/cache,journal=$J" ||
	{ fail mount "mediafs did not mount: $(tail -3 "$LOG" | tr '\n' ' ')"; exit 1; }
# poll SECONDS COMMAND...: until COMMAND succeeds
poll() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
held() { grep -q busy1 "$T/control.held" 2>/dev/null; }
row() { sqlite3 "$J" "SELECT state FROM uploads WHERE key='busy1.bin' ORDER BY id DESC LIMIT 1" 2>/dev/null; }
ustate() { getfattr --only-values -n user.mediafs.upload_state "$MNT/s3t/busy1.bin" 2>/dev/null; }

echo "hold_key=busy1" >"$T/control"
head -c 5000 /dev/urandom >"$T/busy1.bin"
cp "$T/busy1.bin" "$MNT/s3t/busy1.bin" || fail "write" "cp failed"
poll 60 held || { fail "hold" "the upload never reached the proxy"; exit 1; }
# another process takes the journal's write lock and keeps it until told
/usr/bin/python3 - "$J" "$T/unlock" >"$T/locker.out" 2>&1 <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute('BEGIN IMMEDIATE')
print('locked', flush=True)
t = time.time()
while not os.path.exists(sys.argv[2]) and time.time() - t < 300:
	time.sleep(0.1)
db.execute('COMMIT')
print('unlocked', flush=True)
PY
locker=$!
poll 60 grep -q locked "$T/locker.out" || { fail "lock" "the journal lock was not taken: $(cat "$T/locker.out")"; exit 1; }
: >"$T/control"	# the upload lands now, the journal locked
landed() { grep -q '^PUT /jbusy/busy1.bin 200' "$S3_REQLOG"; }	# the server's own log
poll 60 landed || fail "landed" "the object never reached the server"
# a process waiting in fsync for that upload is killed: it must be able to
# exit (FUSE_INTERRUPT ends the wait; the kernel cannot drop a sent fsync).
# Before, it stayed in D state until the upload was recorded, and a killed
# process whose other thread held the journal lock never exited at all
# (clean-clone make check: test_mediactl's mediactl copy, killed -9)
/usr/bin/python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print("fsync", flush=True); os.fsync(fd)' \
	"$MNT/s3t/busy1.bin" >"$T/fsync.out" 2>&1 &
fpid=$!
poll 30 grep -q fsync "$T/fsync.out"
sleep 1		# (in the fsync now: the upload cannot be recorded)
kill -9 "$fpid"
gone() { ! grep -qs '^State:.*[RSD]' "/proc/$fpid/status"; }	# exited (a zombie, or reaped)
poll 30 gone && pass "a process killed while its fsync waits for the locked journal exits at once" ||
	fail "killed fsync" "$(grep State "/proc/$fpid/status" 2>&1) $(cat /proc/$fpid/stack 2>/dev/null | head -2 | tr '\n' ' ')"
wait "$fpid" 2>/dev/null
# the journal's busy timeout (10 s) passes while the lock is held: the
# "done" write has failed at least once by now (a lower bound; on a slow
# machine it may still be waiting, which the checks below allow)
sleep 12
st=$(ustate) r=$(row)
[ "$r" = pending ] && [ "$st" != done ] &&
	pass "an upload landed while the journal is locked (12 s, past its busy timeout of 10 s): the journal row stays pending and the mount says '$st', not done" ||
	fail "while locked" "row=$r upload_state=$st"
touch "$T/unlock"
poll 60 grep -q unlocked "$T/locker.out" || fail "unlock" "the lock holder did not finish"
wait $locker 2>/dev/null
locker=
done_now() { [ "$(row)" = done ] && [ "$(ustate)" = done ]; }
if poll 60 done_now && /usr/bin/python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/s3t/busy1.bin" &&
	cmp -s "$T/busy1.bin" "$MNT/s3t/busy1.bin" &&
	[ "$(sqlite3 "$J" "SELECT count(*) FROM uploads WHERE state='pending'")" = 0 ]; then
	pass "once the lock goes the upload is recorded done (etag $(sqlite3 "$J" "SELECT etag FROM uploads WHERE key='busy1.bin' AND state='done'")), the mount says done, fsync answers, no row left pending"
else
	fail "after the lock" "row=$(row) upload_state=$(ustate); $(grep -i journal "$LOG" | tail -3)"
fi
grep -q "the journal cannot record it yet" "$LOG" && grep -q "recorded in the journal after" "$LOG" &&
	pass "the log says the journal could not record it, then that it did" ||
	fail "log" "$(tail -5 "$LOG")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
# the next mount finds nothing to resume or fail
mount_fs "$LOG" "$MNT" -o "config=$T/m.conf,cache_dir=$T/cache,journal=$J" ||
	{ fail remount "mediafs did not mount"; exit 1; }
[ "$(sqlite3 "$J" "SELECT count(*) FROM uploads WHERE state!='done' AND key='busy1.bin'")" = 0 ] &&
	cmp -s "$T/busy1.bin" "$MNT/s3t/busy1.bin" &&
	pass "remounted: the row is still done, the file reads back byte for byte" ||
	fail "remount" "$(sqlite3 "$J" "SELECT id,state,error FROM uploads")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
