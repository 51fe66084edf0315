#!/bin/bash
# Durability: kill -9 of the daemon during a copy of 500 files loses
# nothing that close() returned success for; the next mount of the same
# cache finishes the pending uploads.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
write_conf "$CONF" crash
s3 mkbucket crash
mkdir -p "$T/src"
for i in $(seq 1 500); do head -c $((2000 + i * 37)) /dev/urandom >"$T/src/f$i"; done

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$J",upload_workers=2 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
mkdir "$MNT/dst"
# a writer that records each file only after close() returned success
/usr/bin/python3 - "$T/src" "$MNT/dst" "$T/closed" <<'PY' 2>"$T/writer.err" &
import os, sys
src, dst, log = sys.argv[1:4]
with open(log, 'w', buffering=1) as out:
    for i in range(1, 501):
        data = open(os.path.join(src, 'f%d' % i), 'rb').read()
        try:
            fd = os.open(os.path.join(dst, 'f%d' % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.close(fd)
        except OSError as e:
            print('stopped at f%d: %s' % (i, e), file=sys.stderr)
            break
        out.write('f%d\n' % i)
PY
writer=$!
# kill it once a good part of the files were written, most not uploaded
for i in $(seq 1 200); do
	[ "$(wc -l <"$T/closed" 2>/dev/null || echo 0)" -ge 200 ] && break
	sleep 0.02
done
kill -9 "$MFS_PID"
wait "$MFS_PID" 2>/dev/null
MFS_PID=
wait $writer
closed=$(wc -l <"$T/closed")
pending=$(sqlite3 "$J" "select count(*) from uploads where state='pending'")
done_before=$(sqlite3 "$J" "select count(*) from uploads where state='done'")
echo "killed after $closed closes: $done_before uploaded, $pending pending" >&2
[ "$closed" -ge 200 ] && [ "$pending" -gt 0 ] &&
	pass "kill -9 after $closed files closed: $pending uploads were still pending" ||
	fail "crash setup" "closed $closed, pending $pending (the queue was too fast to test this)"
fusermount3 -u -z "$MNT" 2>/dev/null

mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail remount "mediafs did not mount after the crash"; exit 1; }
grep -q "resuming $pending uploads left pending by the last run" "$LOG" &&
	pass "the next mount resumes the $pending pending uploads" || fail "resume" "$(grep -i resum "$LOG")"
n=$(ls "$MNT/dst" | wc -l)
[ "$n" -ge "$closed" ] && pass "all $closed closed files are visible at once after the remount" ||
	fail "visible after remount" "$n files"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

s3 manifest crash dst/ >"$T/server"
missing=0
wrong=0
while read -r f; do
	got=$(awk -F'\t' -v k="$f" '$1 == k {print $3}' "$T/server")
	want=$(md5sum <"$T/src/$f" | cut -d' ' -f1)
	[ -z "$got" ] && missing=$((missing + 1))
	[ -n "$got" ] && [ "$got" != "$want" ] && wrong=$((wrong + 1))
done <"$T/closed"
[ "$missing" -eq 0 ] && [ "$wrong" -eq 0 ] &&
	pass "every file close() accepted ($closed) is on the server with the right checksum" ||
	fail "after crash" "$missing missing, $wrong wrong of $closed"
left=$(sqlite3 "$J" "select count(*) from uploads where state='pending'")
[ "$left" -eq 0 ] && pass "journal: nothing left pending" || fail "journal" "$left pending"
[ -z "$(ls "$T/cache"/*/staging 2>/dev/null)" ] && pass "staging directory empty afterwards" ||
	fail "staging" "$(ls "$T/cache"/*/staging | head -3)"
