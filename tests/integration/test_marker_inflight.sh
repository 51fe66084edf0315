#!/bin/bash
# An empty folder's marker object whose upload was on its way at a kill -9
# lands on the store after the daemon died (the fault proxy and the
# Supabase fake hold it, then let it through). The next mount resumes the
# marker from the journal; when the folder gets files (a file written into
# it, or a folder with files moved into it) that marker must go from the
# store too, not just from the queue: a folder that holds files keeps no
# marker (issue #15, #15.44: the model tester's slow seed "s3 11" left the
# marker of y/deep7 on S3 and on Supabase). "In flight" is a state, not a
# race: the marker requests are held until the daemon is dead.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
both_start bkt
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
mkdir "$MNT/supa/bkt" || { fail mount "no Supabase bucket"; exit 1; }
P=$MNT/supa/bkt

kill9() { kill9_fs "$MNT"; }
# snap: one listing of each store (S3's keys with the markers "d/"); s3_has
# and sb_has read the last one
snap() {
	s3 keys bkt "" >"$T/s3.snap" 2>/dev/null
	sb manifest bkt 2>/dev/null | cut -f1 >"$T/sb.snap"
}
s3_has() { grep -qx -- "$1" "$T/s3.snap"; }
sb_has() { grep -qx -- "$1" "$T/sb.snap"; }
PH=.emptyFolderPlaceholder
markers_landed() {
	snap
	s3_has mkf/ && s3_has mkm/ && sb_has mkf/$PH && sb_has mkm/$PH
}
filled() {	# the files are stored, the four markers gone
	snap
	s3_has mkf/f.txt && s3_has mkm/sub/g.txt && sb_has mkf/f.txt &&
		sb_has mkm/sub/g.txt && ! s3_has mkf/ && ! s3_has mkm/ &&
		! sb_has mkf/$PH && ! sb_has mkm/$PH
}

# folders to move in later, their files stored first
for d in "$S" "$P"; do
	mkdir "$d/src" && echo g >"$d/src/g.txt" ||
		fail "setup" "cannot write $d/src/g.txt"
done
wait_uploads "$J"
: >"$T/control.held"; : >"$SB_CONTROL.held"
hold /mk	# the markers of mkf and mkm (bucket bkt), nothing else
for d in "$S" "$P"; do
	mkdir "$d/mkf" "$d/mkm" || fail "mkdir" "in $d"
done
# both folders' markers on their way to each store (after marker_ms)
if nheld mkf/ 2 && nheld mkm/ 2; then
	kill9
	release	# they land now, after the daemon died
	poll 60 markers_landed ||
		fail "held markers" "did not land: $(tr '\n' ' ' <"$T/s3.snap") / $(tr '\n' ' ' <"$T/sb.snap")"
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
	# one folder gets a file, the other a folder with a file (the
	# model's case: mv of a folder into y/deep7)
	for d in "$S" "$P"; do
		echo f >"$d/mkf/f.txt" && mv "$d/src" "$d/mkm/sub" ||
			fail "fill" "in $d"
	done
	if poll 60 filled; then
		pass "kill -9 while empty folders' markers were on their way, then files in them: S3 and Supabase keep no marker of a folder that holds files"
	else
		fail "markers of filled folders after kill -9" "S3: $(tr '\n' ' ' <"$T/s3.snap") Supabase: $(tr '\n' ' ' <"$T/sb.snap")"
	fi
	left=$(journal_left "$J")
	[ -z "$left" ] && pass "journal: no marker row left pending or failed" ||
		fail "journal" "rows left: $left"
else
	release
	fail "markers in flight" "the marker requests never reached the servers: $(cat "$T/control.held" "$SB_CONTROL.held" 2>/dev/null | tr '\n' ' ')"
fi
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
