#!/bin/bash
# ImageKit cannot rename a file or folder into another folder under another
# name in one request: mediafs renames it to a name of its own
# (.mediafs-mv-...) in the old folder, moves it, then renames it there. A
# kill -9 between those requests left it under that name, hidden from
# listings and from the mount, for good (#15.55: the model tester's slow
# seed imagekit 450308). The move is now recorded in the journal while its
# steps run, and the next mount puts back what it left. "Between the
# steps" is a state, not a race: the fake does the step's work and keeps
# its reply until the daemon is dead.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

ik_test
control() { printf '%s\n' "$@" >"$IK_CONTROL"; }
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
mount_fs "$LOG" "$MNT" -o "$OPTS" ik: || { fail mount "mediafs did not mount ik:"; exit 1; }

mkdir -p "$MNT/a/dir1" "$MNT/b" || fail setup "mkdir"
for i in 1 2 3; do printf 'file %s of the move test\n' "$i" >"$MNT/a/f$i.txt"; done
printf 'inside the folder\n' >"$MNT/a/dir1/x.txt"
wait_uploads "$J" || fail setup "uploads pending"
ik manifest /a | cut -d' ' -f1-3 >"$T/before"
[ "$(wc -l <"$T/before")" = 4 ] || fail setup "the store holds $(cat "$T/before")"
leftovers() { { ik manifest / | cut -d' ' -f1; ik folders /; } | grep -c 'mediafs-mv-'; }

# case WHAT HOLD SRC DST: mv SRC DST in the mount, the daemon killed while
# the fake keeps the reply of the request matching HOLD, then a remount
case_() {
	local what=$1 hold=$2 src=$3 dst=$4 left mvpid
	: >"$IK_DIR/held"
	control "hold_after=$hold"
	mv "$MNT/$src" "$MNT/$dst" 2>/dev/null &
	mvpid=$!
	if ! poll 30 test -s "$IK_DIR/held"; then
		fail "$what" "no request held: $(tail -3 "$IK_REQLOG")"
		control
		wait "$mvpid"
		return
	fi
	kill9_fs "$MNT"
	wait "$mvpid"
	control		# its reply goes to a dead daemon
	left=$(leftovers)
	[ "$left" -ge 1 ] && pass "$what: the kill left it under a move name ($(head -1 "$IK_DIR/held" | cut -d'?' -f1))" ||
		fail "$what" "the kill did not land between the steps: $left move names"
	mount_fs "$LOG" "$MNT" -o "$OPTS" ik: || { fail remount "mediafs did not mount ik:"; exit 1; }
	ik manifest /a | cut -d' ' -f1-3 >"$T/after"
	left=$(leftovers)
	if [ "$left" = 0 ] && diff -q "$T/before" "$T/after" >/dev/null &&
		[ -z "$(ik manifest /b)" ]; then
		pass "$what: the next mount put it back under its name, bytes unchanged, no move name left on ImageKit"
	else
		fail "$what" "move names $left; /a: $(diff "$T/before" "$T/after" | tr '\n' ' '); /b: $(ik manifest /b | tr '\n' ' ')"
	fi
	[ "$(sqlite3 "$J" 'select count(*) from moves')" = 0 ] &&
		pass "$what: the journal holds no move left to put back" ||
		fail "$what" "journal moves: $(sqlite3 "$J" 'select * from moves')"
}

case_ "file renamed in its folder, not moved yet" "PUT /v1/files/rename" a/f1.txt b/g1.txt
case_ "file moved, not renamed yet" "POST /v1/files/move" a/f2.txt b/g2.txt
case_ "folder moved, not renamed yet" "POST /v1/bulkJobs/moveFolder" a/dir1 b/dir9
# the mount still shows the old names, with their bytes
[ "$(cat "$MNT/a/f1.txt" "$MNT/a/f2.txt" "$MNT/a/dir1/x.txt" 2>/dev/null | md5sum)" = \
	"$(printf 'file 1 of the move test\nfile 2 of the move test\ninside the folder\n' | md5sum)" ] &&
	! ls "$MNT/b" | grep -q . &&
	pass "the mount shows each under its old name, with its bytes; b/ is empty" ||
	fail "mount after the kills" "$(ls -R "$MNT/a" "$MNT/b" | tr '\n' ' ')"
# a move that is not stopped leaves nothing in the journal either
mv "$MNT/a/f3.txt" "$MNT/b/g3.txt" || fail "mv" "a/f3.txt"
[ "$(ik manifest /b | cut -d' ' -f1)" = /b/g3.txt ] && [ "$(leftovers)" = 0 ] &&
	[ "$(sqlite3 "$J" 'select count(*) from moves')" = 0 ] &&
	pass "a move that is not stopped: b/g3.txt on ImageKit, no move name, no move left in the journal" ||
	fail "plain move" "/b: $(ik manifest /b | tr '\n' ' '), move names $(leftovers)"
# the old name taken again while the daemon was dead (another client's
# upload): the next mount finishes the move instead (the new name is free)
printf 'file 4 of the move test\n' >"$MNT/a/f4.txt" && wait_uploads "$J" || fail setup "a/f4.txt"
: >"$IK_DIR/held"
control "hold_after=PUT /v1/files/rename"
mv "$MNT/a/f4.txt" "$MNT/b/g4.txt" 2>/dev/null &
mvpid=$!
if poll 30 test -s "$IK_DIR/held"; then
	kill9_fs "$MNT"
	wait "$mvpid"
	control
	printf 'another client\n' >"$T/other.txt"
	ik put /a f4.txt "$T/other.txt" >/dev/null || fail "other client" "ik put"
	mount_fs "$LOG" "$MNT" -o "$OPTS" ik: || { fail remount "mediafs did not mount ik:"; exit 1; }
	g4=$(ik manifest /b | grep '^/b/g4.txt ' | cut -d' ' -f3)
	f4=$(ik manifest /a | grep '^/a/f4.txt ' | cut -d' ' -f3)
	[ "$g4" = "$(printf 'file 4 of the move test\n' | md5sum | cut -d' ' -f1)" ] &&
		[ "$f4" = "$(md5sum <"$T/other.txt" | cut -d' ' -f1)" ] && [ "$(leftovers)" = 0 ] &&
		[ "$(sqlite3 "$J" 'select count(*) from moves')" = 0 ] &&
		pass "the old name taken again meanwhile: the next mount finished the move (b/g4.txt has the file's bytes, a/f4.txt the other client's), no move name left" ||
		fail "old name taken again" "/a: $(ik manifest /a | tr '\n' ' '); /b: $(ik manifest /b | tr '\n' ' '); move names $(leftovers); moves $(sqlite3 "$J" 'select * from moves')"
else
	control
	wait "$mvpid"
	fail "old name taken again" "no request held"
fi
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
