#!/bin/bash
# A file whose upload was on its way at a kill -9 lands on the store after
# the daemon died (the fault proxy and the Supabase fake hold the request,
# then let it through); its journal row is still pending, so the next mount
# uploads it again. If it is then moved, removed, or its folder moved
# before that upload runs, the object the dead daemon's request stored
# under the old name must go too: else the old name is back once the cache
# is lost (issue #15, #15.47: the model tester's fixed seed "s3 1" listed
# d16/s1/x/e.json beside its new name). "In flight" is a state, not a
# race: the uploads are held until the daemon is dead, and the next mount
# (upload_delay of 10 min) keeps them queued until the renames are done.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
both_start k9mv
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
mkdir "$MNT/supa/k9mv" || { fail mount "no Supabase bucket"; exit 1; }
P=$MNT/supa/k9mv

# snap: one listing of each store; s3_has and sb_has read the last one
snap() {
	s3 keys k9mv "" >"$T/s3.snap" 2>/dev/null
	sb manifest k9mv 2>/dev/null | cut -f1 >"$T/sb.snap"
}
s3_has() { grep -qx -- "$1" "$T/s3.snap"; }
sb_has() { grep -qx -- "$1" "$T/sb.snap"; }
both_have() { s3_has "$1" && sb_has "$1"; }
neither_has() { ! s3_has "$1" && ! sb_has "$1"; }
OLD="mvf/inflight1.json rmf/inflight2.json dirf/sub/inflight3.json"
landed() {
	local k
	snap
	for k in $OLD; do both_have "$k" || return 1; done
}
shown() { cat "$T/s3.snap" "$T/sb.snap" | tr '\n' ' '; }

# the folders exist (stored) before the uploads that will be held
for d in "$S" "$P"; do
	mkdir -p "$d/mvf" "$d/rmf" "$d/dirf/sub" && echo keep >"$d/mvf/keep.txt" &&
		echo keep >"$d/rmf/keep.txt" && echo keep >"$d/dirf/keep.txt" ||
		fail "setup" "cannot write below $d"
done
wait_uploads "$J"
: >"$T/control.held"; : >"$SB_CONTROL.held"
hold inflight
for d in "$S" "$P"; do
	for k in $OLD; do
		printf '{"n": "%s"}\n' "$k" >"$d/$k" || fail "write" "$d/$k"
	done
done
# the three uploads on their way to each store
if nheld mvf/inflight1.json 2 && nheld rmf/inflight2.json 2 &&
	nheld dirf/sub/inflight3.json 2; then
	kill9_fs "$MNT"
	release	# they land now, after the daemon died
	poll 60 landed || fail "held uploads" "did not land: $(shown)"
	# the rows are still pending: the next mount sends them again, after
	# upload_delay (10 min, or at the unmount): the renames come first.
	# landing_grace=0: the removed file's key is deleted once, at the rm
	# (its upload was tried by the killed run; the second delete after
	# the grace is test_late_landing's and test_rm_after_failed_upload's)
	mount_fs "$LOG" "$MNT" -o "$OPTS,upload_delay=600000,landing_grace=0" ||
		{ fail remount "mediafs did not mount"; exit 1; }
	for d in "$S" "$P"; do
		mv "$d/mvf/inflight1.json" "$d/mvf/moved.json" || fail "mv" "in $d"
		rm "$d/rmf/inflight2.json" || fail "rm" "in $d"
		mv "$d/dirf" "$d/dirg" || fail "mv of the folder" "in $d"
	done
	umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
	snap
	if both_have mvf/moved.json && neither_has mvf/inflight1.json; then
		pass "kill -9 while an upload was on its way, then mv of the file: S3 and Supabase keep only the new name"
	else
		fail "mv after kill -9" "mvf/inflight1.json or mvf/moved.json: $(shown)"
	fi
	if neither_has rmf/inflight2.json && both_have rmf/keep.txt; then
		pass "kill -9 while an upload was on its way, then rm of the file: gone from S3 and Supabase"
	else
		fail "rm after kill -9" "rmf/inflight2.json: $(shown)"
	fi
	if both_have dirg/sub/inflight3.json && both_have dirg/keep.txt &&
		neither_has dirf/sub/inflight3.json && neither_has dirf/keep.txt; then
		pass "kill -9 while an upload was on its way, then mv of its folder: S3 and Supabase keep only the new folder"
	else
		fail "folder mv after kill -9" "dirf/sub/inflight3.json or dirg/...: $(shown)"
	fi
	left=$(journal_left "$J")
	[ -z "$left" ] && pass "journal: no row left pending or failed" ||
		fail "journal" "rows left: $left"
	# what the mount shows after the cache is lost: the store's truth
	rm -rf "$T/cache"
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
	got=$(cd "$MNT" && find s3t/mvf s3t/rmf s3t/dirg supa/k9mv/mvf supa/k9mv/rmf supa/k9mv/dirg -type f 2>&1 | sort | tr '\n' ' ')
	want="s3t/dirg/keep.txt s3t/dirg/sub/inflight3.json s3t/mvf/keep.txt s3t/mvf/moved.json s3t/rmf/keep.txt supa/k9mv/dirg/keep.txt supa/k9mv/dirg/sub/inflight3.json supa/k9mv/mvf/keep.txt supa/k9mv/mvf/moved.json supa/k9mv/rmf/keep.txt "
	if [ "$got" = "$want" ] && [ ! -e "$S/dirf" ] && [ ! -e "$P/dirf" ]; then
		pass "after the cache is lost the mount lists the new names only"
	else
		fail "listing after the cache is lost" "$got (dirf: $(ls -d "$S/dirf" "$P/dirf" 2>/dev/null))"
	fi
	umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
else
	release
	fail "uploads in flight" "the uploads never reached the servers: $(cat "$T/control.held" "$SB_CONTROL.held" 2>/dev/null | tr '\n' ' ')"
	umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
fi
