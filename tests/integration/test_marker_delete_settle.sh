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
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
