#!/bin/bash
# A folder rename on Supabase is a move per key, then the placeholders'
# deletes: a daemon killed half way left some files under the old folder
# and some under the new one, and the next mount showed what its cache
# held, not what the store did. The move is now recorded in the journal
# while it runs (core/moves.h, as for S3's folders) and the next mount
# finishes it: every key still under the old folder is moved, an empty
# folder's placeholder made under the new one. "Half way" is a state, not
# a race: the fake holds one of the moves (hold_key matches its JSON body)
# until the daemon is dead, then lets it land.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

sb_test conf
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
mount_fs "$LOG" "$MNT" -o "$OPTS" supa: || { fail mount "mediafs did not mount supa:"; exit 1; }
mkdir "$MNT/media" || { fail setup "bucket media"; exit 1; }
S=$MNT/media
keys() { sb keys media 2>/dev/null | tr '\n' ' '; }
moves() { sqlite3 "$J" 'select count(*) from moves'; }
has() { sb keys media 2>/dev/null | grep -qx -- "$1"; }
ph=.emptyFolderPlaceholder

# make_tree DIR: three files, a subfolder with one, an empty subfolder
make_tree() {
	mkdir -p "$S/$1/sub" "$S/$1/empty" && for f in f1 f2 f3; do echo "in $1: $f" >"$S/$1/$f.txt"; done &&
		echo "in $1/sub" >"$S/$1/sub/g.txt" || fail setup "folder $1"
	wait_uploads "$J" || fail setup "uploads pending"
	poll 30 has "$1/empty/$ph" || fail setup "placeholder of $1/empty: $(keys)"
}
# tree_ok SRC DST WHAT: the store and the mount hold SRC's tree under DST,
# nothing under SRC, and no move is left in the journal
tree_ok() {
	local src=$1 dst=$2 k got want f
	k=$(sb keys media | grep -E "^($src|$dst)/" | tr '\n' ' ')
	got=$(cd "$S" && find "$src" "$dst" -type f 2>/dev/null | sort | xargs -r md5sum | tr '\n' ' ')
	want=$(for f in f1 f2 f3; do printf '%s  %s/%s.txt\n' "$(echo "in $src: $f" | md5sum | cut -d' ' -f1)" "$dst" "$f"; done
		printf '%s  %s/sub/g.txt\n' "$(echo "in $src/sub" | md5sum | cut -d' ' -f1)" "$dst")
	want=$(printf '%s\n' "$want" | tr '\n' ' ')
	[ "$k" = "$dst/empty/$ph $dst/f1.txt $dst/f2.txt $dst/f3.txt $dst/sub/g.txt " ] && [ "$got" = "$want" ] &&
		[ -d "$S/$dst/empty" ] && [ ! -e "$S/$src" ] && [ "$(moves)" = 0 ] &&
		pass "$3: $dst/ holds every file and the empty folder's placeholder, $src/ is gone on the store and in the mount" ||
		fail "$3" "store: $k; mount: $got; want $want; $src: $(ls "$S/$src" 2>&1); journal moves: $(moves)"
}
# kill_during WHAT HOLD SRC DST: mv SRC DST, the daemon killed while the
# fake holds the move whose body holds HOLD, then that move let land
kill_during() {
	local mvpid k
	: >"$SB_CONTROL.held"
	hold "$2"
	mv "$S/$3" "$S/$4" 2>/dev/null &
	mvpid=$!
	if ! nheld "$2" 1; then
		release
		wait "$mvpid"
		fail "$1" "no move held: $(keys)"
		return 1
	fi
	kill9_fs "$MNT"
	wait "$mvpid"
	release		# it reaches the store now
	if ! poll 30 has "$4/f2.txt"; then
		fail "$1" "the held move did not land: $(keys)"
		return 1
	fi
	k=$(keys)
	case "$k" in
	*"$3/"*"$4/"*|*"$4/"*"$3/"*) pass "$1: the kill left files under both $3/ and $4/ on the store" ;;
	*) fail "$1: the kill's state" "store: $k" ;;
	esac
	return 0
}

# 1: the cache kept (it shows d/ whole, as before the mv)
make_tree d
if kill_during "a folder move killed between its moves" "e/f2.txt" d e; then
	mount_fs "$LOG" "$MNT" -o "$OPTS" supa: || { fail remount "mediafs did not mount"; exit 1; }
	tree_ok d e "a folder move killed between its moves, finished by the next mount"
fi
# 2: the cache lost as well (the mount lists the store)
make_tree p
if kill_during "with the cache lost too" "q/f2.txt" p q; then
	rm -rf "$T/cache"
	mount_fs "$LOG" "$MNT" -o "$OPTS" supa: || { fail remount "mediafs did not mount"; exit 1; }
	tree_ok p q "with the cache lost too, finished by the next mount"
fi
# a folder move that is not stopped: a move per key, no record left
make_tree s
mv "$S/s" "$S/t" && tree_ok s t "a folder move that is not stopped (a move per key, no record left)"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail unmount "see $LOG"
grep -q "finished the move of the folder d to e\|finished the move of the folder media/d to media/e" "$LOG" &&
	pass "the log says the mount finished the move" || fail "log" "$(grep -i move "$LOG" | tail -3)"
