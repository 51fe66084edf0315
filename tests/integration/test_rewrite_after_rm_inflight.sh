#!/bin/bash
# A file deleted while its upload runs, then written again under the same
# name: the upload of the deleted file deletes what it landed when it
# finishes; that delete must not take the new file (issue #15, #15.48:
# the model tester's Supabase soak seed 429013, `rm d.png` while its
# upload ran, `d.png` written again, which then read ENOENT: the new
# upload had landed first, the old one's delete of the name took it, the
# mount showing it stored). Likewise a file renamed while its upload
# runs, then written again under its old name: the old upload, copied to
# the new name once it lands, must copy its own bytes, and the delete of
# its old name must not take the new file. The order is forced: the old
# files are large
# (a multipart upload on S3, TUS on Supabase), its part requests are held
# at the fault proxy and the Supabase fake (the new file's single PUT is
# not) until the new file has landed or is seen waiting for the old one.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
both_start rmrw
echo "tus_threshold = 6291456" >>"$T/m.conf"
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,multipart_threshold=5242880
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
mkdir "$MNT/supa/rmrw" || { fail mount "no Supabase bucket"; exit 1; }
P=$MNT/supa/rmrw

head -c 7340032 /dev/urandom >"$T/old"	# 7 MiB: multipart, TUS
echo "the new file, written after the rm" >"$T/new"
new_line() { echo "$1	$(stat -c %s "$T/new")	$(md5sum <"$T/new" | cut -d' ' -f1)"; }
old_line() { echo "$1	$(stat -c %s "$T/old")	$(md5sum <"$T/old" | cut -d' ' -f1)"; }
s3_snap() { s3 manifest rmrw "" >"$T/s3.snap"; }
sb_snap() { sb manifest rmrw | cut -f1-3 >"$T/sb.snap"; }
# the new files landed (without the fix), or wait for the old uploads
landed() { grep -qxF "$(new_line "$2")" "$T/$1.snap"; }
waits() { grep -q "$1 waits for an earlier upload of that name" "$LOG"; }
settled() {
	s3_snap && sb_snap &&
		{ landed s3 a.bin || waits a.bin; } &&
		{ landed s3 c.bin || waits c.bin; } &&
		{ landed sb b.bin || waits rmrw/b.bin; } &&
		{ landed sb d.bin || waits rmrw/d.bin; }
}

# the old files' part requests wait at the servers
echo "hold_key=uploadId" >"$T/control"	# S3: PUT ?partNumber=&uploadId=
echo "hold_key=resumable" >"$SB_CONTROL"	# Supabase: POST/PATCH /upload/resumable
for f in "$S/a.bin" "$S/c.bin" "$P/b.bin" "$P/d.bin"; do
	cp "$T/old" "$f" || fail "write" "cannot write $f"
done
if nheld a.bin 1 && nheld c.bin 1 && nheld resumable 2; then
	rm "$S/a.bin" "$P/b.bin" || fail "rm" "of files being uploaded"
	mv "$S/c.bin" "$S/g.bin" && mv "$P/d.bin" "$P/h.bin" ||
		fail "mv" "of files being uploaded"
	for f in "$S/a.bin" "$S/c.bin" "$P/b.bin" "$P/d.bin"; do
		cp "$T/new" "$f" || fail "write" "cannot write the new $f"
	done
	poll 60 settled ||
		fail "new files" "neither landed nor waiting after 60 s: $(tail -5 "$LOG" | tr '\n' ' ')"
	release
	wait_uploads "$J" 120 || fail "uploads" "still pending"
	s3_snap
	sb_snap
	if landed s3 a.bin && landed sb b.bin; then
		pass "rm while the upload runs, the name written again: S3 and Supabase keep the new file"
	else
		fail "rm, then the name written again" "S3: $(tr '\n' ' ' <"$T/s3.snap") Supabase: $(tr '\n' ' ' <"$T/sb.snap")"
	fi
	if landed s3 c.bin && landed sb d.bin &&
		grep -qxF "$(old_line g.bin)" "$T/s3.snap" &&
		grep -qxF "$(old_line h.bin)" "$T/sb.snap"; then
		pass "mv while the upload runs, the old name written again: S3 and Supabase keep both files"
	else
		fail "mv, then the old name written again" "S3: $(tr '\n' ' ' <"$T/s3.snap") Supabase: $(tr '\n' ' ' <"$T/sb.snap")"
	fi
	for f in "$S/a.bin" "$S/c.bin" "$P/b.bin" "$P/d.bin"; do
		if cmp -s "$T/new" "$f"; then
			pass "the mount reads the new $(basename "$f")"
		else
			fail "read $f" "$(head -c 100 "$f" 2>&1)"
		fi
	done
	left=$(journal_left "$J")
	[ -z "$left" ] && pass "journal: no row left pending or failed" ||
		fail "journal" "rows left: $left"
else
	release
	fail "uploads in flight" "the old files' requests never reached the servers: $(cat "$T/control.held" "$SB_CONTROL.held" 2>/dev/null | tr '\n' ' ')"
fi
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
# after a remount (the cache lost): still there, still the new bytes
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
ok=1
for f in "$S/a.bin" "$S/c.bin" "$P/b.bin" "$P/d.bin"; do
	cmp -s "$T/new" "$f" || { ok=0; fail "after a remount" "$f: $(head -c 100 "$f" 2>&1)"; }
done
for f in "$S/g.bin" "$P/h.bin"; do
	cmp -s "$T/old" "$f" || { ok=0; fail "after a remount" "$f: not the old bytes"; }
done
[ $ok = 1 ] && pass "after a remount both stores serve the new files and the renamed ones"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
