#!/bin/bash
# A folder's marker object goes from the store once a file lands in the
# folder (a DELETE after the upload). Until that DELETE is answered the
# folder is not settled: user.mediafs.upload_state said "done" and
# `mediactl wait` returned while the marker was still on the store (#15.56:
# the model tester's slow seed s3 450326 saw it at its settle point,
# through a slow proxy). "On its way" is a state, not a race: the fault
# proxy holds the DELETE until the test lets it through.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
proxy_mount mks
state() { getfattr --only-values -n user.mediafs.upload_state "$1" 2>/dev/null | head -1; }
keys() { s3 keys mks "" 2>/dev/null | tr '\n' ' '; }
has() { s3 keys mks "" 2>/dev/null | grep -qx -- "$1"; }

mkdir "$S/deep" || fail mkdir "$S/deep"
poll 60 has deep/ || fail "marker" "deep/ never stored: $(keys)"
: >"$T/control.held"
echo "hold_delete=deep/" >"$T/control"
echo f >"$S/deep/f.txt" || fail write "$S/deep/f.txt"
if nheld "mks/deep/" 1; then
	poll 60 has deep/f.txt || fail "upload" "deep/f.txt never stored: $(keys)"
	# the marker's DELETE is held now: the folder is not settled
	s_root=$(state "$S") s_dir=$(state "$S/deep")
	case "$s_root|$s_dir" in
	pending*\|pending*) pass "while the marker's DELETE is on its way the remote and the folder say pending ($s_root)" ;;
	*) fail "state while the marker's DELETE is held" "remote: $s_root; folder: $s_dir; store: $(keys)" ;;
	esac
	"$MEDIACTL" wait --timeout 2 "$S" >/dev/null 2>&1
	rc=$?
	[ "$rc" = 124 ] && pass "mediactl wait does not return while the marker is on the store (timed out: 124)" ||
		fail "mediactl wait" "exit $rc with the marker's DELETE held; store: $(keys)"
	: >"$T/control"		# let it through
	"$MEDIACTL" wait --timeout 60 "$S" >/dev/null 2>&1
	rc=$?
	k=$(keys)	# read at once: what a settle point sees
	[ "$rc" = 0 ] && [ "$k" = "deep/f.txt " ] &&
		pass "once mediactl wait returns the store holds deep/f.txt and no marker" ||
		fail "after the wait" "exit $rc; store: $k"
else
	: >"$T/control"
	fail "held DELETE" "the marker's DELETE never reached the proxy: $(cat "$T/control.held" | tr '\n' ' '); store: $(keys)"
fi

# A queued upload that a rename moves into a folder whose marker is
# stored, and that lands while the rename's own request (the old
# version's DELETE) is on its way: the marker goes too (#15.59, the model
# tester's slow seed s3 473077: the cache had not moved the file yet, so
# the landing cleared the markers above the old name)
mkdir "$S/e" "$S/d" && echo one >"$S/d/c" || fail setup "mkdir or write"
"$MEDIACTL" wait --timeout 60 "$S" >/dev/null 2>&1
has e/ && has d/c || fail setup "e/ and d/c not stored: $(keys)"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
# uploads wait 5 s after close: the rewrite is still queued when mv
# gives it the new key, and it goes up while the rename's DELETE of the
# old version is held (a later mv would make it a server-side rename:
# then the marker goes by that path, and this check passes without
# testing the window)
mount_fs "$LOG" "$MNT" -o "$OPTS,upload_delay=5000,op_timeout=120" ||
	{ fail remount "mediafs did not mount"; exit 1; }
: >"$T/control.held"
echo "hold_delete=d/c" >"$T/control"
echo two >"$S/d/c" || fail setup "rewrite d/c"
mv "$S/d/c" "$S/e/c" &
mover=$!
if nheld "mks/d/c" 1; then
	poll 60 s3 head mks e/c >/dev/null 2>&1 ||
		fail "upload" "e/c never stored: $(keys)"
	: >"$T/control"		# the rename goes on
	wait $mover || fail mv "mv d/c e/c failed"
	"$MEDIACTL" wait --timeout 60 "$S" >/dev/null 2>&1
	k=$(keys)
	case " $k" in
	*" e/ "*) fail "a file landed in e during its rename: e's marker stays" "store: $k" ;;
	*" e/c "*) pass "a file landed in e during its rename: e's marker goes (store: $k)" ;;
	*) fail "rename into e" "no e/c; store: $k" ;;
	esac
else
	: >"$T/control"
	wait $mover
	fail "held DELETE" "the rename's DELETE of d/c never reached the proxy: $(tr '\n' ' ' <"$T/control.held")"
fi
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
