#!/bin/bash
# A rename on S3 is a COPY to the new key and a DELETE of the old one. A
# kill -9 between them left both keys: the mount still showed the old name
# (its cache was never told), and a mount with a cold cache listed the file
# twice. The move is now recorded in the journal while it runs, and the
# next mount makes the store match what the mount shows (core/moves.h,
# core/fs_moves.c; #15.55's mechanism); a folder's move (a COPY per key)
# stopped half way is finished. "Between them" is a state, not a race:
# the fault proxy holds the COPY (or the DELETE) until the daemon is dead.
. "$(dirname "$0")/../lib/common.sh"

proxy_mount mvk
keys() { s3 keys mvk "" 2>/dev/null | grep -v '^r/' | tr '\n' ' '; }
moves() { sqlite3 "$J" 'select count(*) from moves'; }
for i in 1 2 3; do echo "file $i" >"$S/a$i.txt"; done
wait_uploads "$J" || fail setup "uploads pending"
[ "$(keys)" = "a1.txt a2.txt a3.txt " ] || fail setup "store: $(keys)"

# a rename that fails while the daemon runs (the COPY refused) is settled
# at once, as what the mount shows: no record outlives the mv the user saw
# fail, and a file the user made under the new name (the same bytes: the
# same ETag) stays, also on a first mount (a cache made anew) and after a
# remount (found by review: a record, or the first mount's blank cache,
# made the settling delete r/a5.txt)
mkdir "$S/r" && echo "file 5" >"$S/r/a5.txt" && cp "$S/r/a5.txt" "$S/r/b5.txt" &&
	wait_uploads "$J" || fail setup "r/a5.txt"
echo "refuse_key=r/b5.txt" >"$T/control"
mv -f "$S/r/a5.txt" "$S/r/b5.txt" 2>/dev/null && fail "refused rename" "mv succeeded"
: >"$T/control"
rk() { s3 keys mvk r/ 2>/dev/null | tr '\n' ' '; }
[ "$(moves)" = 0 ] && [ "$(rk)" = "r/a5.txt r/b5.txt " ] &&
	pass "a rename onto a file of the same bytes that failed (COPY refused) on a first mount: both kept, no move left in the journal" ||
	fail "refused rename" "r/: $(rk); journal moves: $(moves)"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
[ "$(rk)" = "r/a5.txt r/b5.txt " ] &&
	[ "$(cat "$S/r/a5.txt" "$S/r/b5.txt" 2>&1 | tr '\n' ' ')" = "file 5 file 5 " ] &&
	pass "and after a remount: both r/a5.txt and r/b5.txt kept, on S3 and in the mount" ||
	fail "after the failed rename" "r/: $(rk); mount: $(ls "$S/r" | tr '\n' ' ')"

# kill_during WHAT RULE SRC DST LANDED: mv SRC DST, the daemon killed
# while the proxy holds the request RULE names, then the request let
# through until the shell condition LANDED holds (what it did is on S3)
kill_during() {
	local what=$1 rule=$2 src=$3 dst=$4 landed=$5 mvpid
	: >"$T/control.held"
	echo "$rule" >"$T/control"
	mv "$S/$src" "$S/$dst" 2>/dev/null &
	mvpid=$!
	if ! nheld "mvk/" 1; then
		: >"$T/control"
		wait "$mvpid"
		fail "$what" "no request held: $(keys)"
		return 1
	fi
	kill9_fs "$MNT"
	wait "$mvpid"
	: >"$T/control"		# it reaches the store now
	if ! poll 30 eval "$landed"; then
		fail "$what" "the held request did not land: $(keys)"
		return 1
	fi
	return 0
}
has() { s3 keys mvk "" 2>/dev/null | grep -qx -- "$1"; }

# 1: the COPY lands after the kill, no DELETE sent: both keys; the warm
# cache shows a1.txt, so the copy goes
if kill_during "copy landed, delete never sent" "hold_key=b1.txt" a1.txt b1.txt "has b1.txt"; then
	k=$(keys)
	case "$k" in *a1.txt*b1.txt*) pass "the kill left both a1.txt and b1.txt on S3" ;;
	*) fail "the kill's state" "store: $k" ;; esac
	# the top's listing older than cache_ttl: the mount lists it again,
	# after the settling (listed first, the cache showed both names)
	sleep 2
	mount_fs "$LOG" "$MNT" -o "$OPTS,cache_ttl=1" || { fail remount "mediafs did not mount"; exit 1; }
	[ "$(keys)" = "a1.txt a2.txt a3.txt " ] && [ "$(ls "$S" | grep -vx r | tr '\n' ' ')" = "a1.txt a2.txt a3.txt " ] &&
		[ "$(cat "$S/a1.txt")" = "file 1" ] && [ "$(moves)" = 0 ] &&
		pass "the next mount deleted the copy b1.txt: the store matches the mount (a1.txt), no move left in the journal" ||
		fail "after the remount" "store: $(keys); mount: $(ls "$S" | tr '\n' ' '); journal moves: $(moves)"
fi
# 2: the DELETE lands after the kill: only b2.txt; the mount shows a2.txt,
# so it goes back
if kill_during "copy done, delete landed after the kill" "hold_delete=a2.txt" a2.txt b2.txt "! has a2.txt"; then
	k=$(keys)
	case "$k" in *a2.txt*) fail "the kill's state" "a2.txt still stored: $k" ;;
	*b2.txt*) pass "the kill left only b2.txt on S3 (a2.txt deleted after the kill)" ;;
	*) fail "the kill's state" "store: $k" ;; esac
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
	[ "$(keys)" = "a1.txt a2.txt a3.txt " ] && [ "$(cat "$S/a2.txt" 2>&1)" = "file 2" ] &&
		[ "$(moves)" = 0 ] &&
		pass "the next mount put a2.txt back from b2.txt: the store matches the mount, the bytes read back" ||
		fail "after the remount" "store: $(keys); a2.txt: $(cat "$S/a2.txt" 2>&1); journal moves: $(moves)"
fi
# 3: as 1, then the cache lost: nothing shows either name, the listing
# will: the move goes on (the old key goes)
if kill_during "copy landed, cache lost" "hold_key=b3.txt" a3.txt b3.txt "has b3.txt"; then
	rm -rf "$T/cache"
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
	[ "$(keys)" = "a1.txt a2.txt b3.txt " ] && [ "$(ls "$S" | grep -vx r | tr '\n' ' ')" = "a1.txt a2.txt b3.txt " ] &&
		[ "$(cat "$S/b3.txt")" = "file 3" ] && [ "$(moves)" = 0 ] &&
		pass "with the cache lost the next mount finished the move (a3.txt deleted): listed once, as b3.txt" ||
		fail "after the remount, cache lost" "store: $(keys); mount: $(ls "$S" | tr '\n' ' '); journal moves: $(moves)"
fi
# 4: a folder (a COPY per key, then the DELETEs), killed while the copy
# of one of its files is held: the next mount finishes the move (the rows
# of uploads below it were renamed already; the mount lists the store)
mkdir -p "$S/d/sub" && for f in f1 f2 f3; do echo "in d: $f" >"$S/d/$f.txt"; done &&
	echo "in d/sub" >"$S/d/sub/g.txt" && mkdir "$S/d/empty" || fail setup "folder d"
wait_uploads "$J" || fail setup "uploads pending"
poll 30 eval 's3 keys mvk "" | grep -qx d/empty/' || fail setup "marker d/empty/: $(keys)"
if kill_during "folder: a copy held" "hold_key=e/f2.txt" d e "has e/f2.txt"; then
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
	k=$(s3 keys mvk "" | grep -E '^[de]/' | tr '\n' ' ')
	got=$(cd "$S" && find d e -type f 2>/dev/null | sort | xargs -r md5sum | tr '\n' ' ')
	want=$(for f in f1 f2 f3; do echo "in d: $f" >"$T/w.$f.txt"; done; echo "in d/sub" >"$T/w.g.txt"
		cd "$T" && for f in f1 f2 f3; do printf '%s  e/%s.txt\n' "$(md5sum <"w.$f.txt" | cut -d' ' -f1)" "$f"; done
		printf '%s  e/sub/g.txt\n' "$(md5sum <"$T/w.g.txt" | cut -d' ' -f1)")
	want=$(printf '%s\n' "$want" | tr '\n' ' ')
	[ "$k" = "e/empty/ e/f1.txt e/f2.txt e/f3.txt e/sub/g.txt " ] && [ "$got" = "$want" ] &&
		[ -d "$S/e/empty" ] && [ ! -e "$S/d" ] && [ "$(moves)" = 0 ] &&
		pass "a folder move killed between its copies: the next mount finished it (e/ holds every file and the empty folder's marker, d/ is gone on S3 and in the mount)" ||
		fail "folder after the remount" "store: $k; mount: $got; want $want; d: $(ls "$S/d" 2>&1); journal moves: $(moves)"
fi
# a rename that is not stopped leaves no record
mv "$S/a1.txt" "$S/c1.txt" && [ "$(moves)" = 0 ] &&
	[ "$(s3 keys mvk "" | grep -v / | tr '\n' ' ')" = "a2.txt b3.txt c1.txt " ] &&
	pass "a rename that is not stopped: COPY and DELETE, no move left in the journal" ||
	fail "plain rename" "store: $(keys); journal moves: $(moves)"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
