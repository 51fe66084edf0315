#!/bin/bash
# A kill -9 between an upload's "done" in the journal and the cache's
# update (two databases, written one after the other) leaves the file's
# cache node marked as being uploaded with no pending row in the journal,
# and its staged copy swept at the next mount as a write that never
# completed. Every open for writing of the file then failed with EIO ("its
# staged content is gone"), for good (issue #15, #15.54: the model
# tester's seed "imagekit 2" after kill -9 twice). The state is made here
# as that kill leaves it (the node marked pending again in the cache, a
# stray staged copy): no timing involved. The next mount must show the
# file as the store has it (the journal's done row says what that is, when
# nothing happened to the key since), and writes to it must work.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket k9done
write_conf "$T/m.conf" k9done
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
trap 'cleanup_mounts' EXIT
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
D=$MNT/s3t
mkdir -p "$D/sub" && printf 'landed\n' >"$D/sub/f.txt" && printf 'other\n' >"$D/g.txt" &&
	printf 'renamed later\n' >"$D/sub/h.txt" ||
	fail "setup" "cannot write below $D"
wait_uploads "$J" || fail "setup" "uploads did not finish"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

DB=$(find "$T/cache" -name meta.db | head -1)
STAGE=$(dirname "$DB")/staging
done_rows=$(sqlite3 "$J" "select count(*) from uploads where key='sub/f.txt' and state='done'")
# what the kill leaves: the node still pending, its staged copy still there
# h.txt: the same, but a rename onto it recorded after its done row: the
# journal no longer says what the store holds there, the folder is listed
sqlite3 "$J" "insert into events(time,mount_id,remote,op,key,new_key) values(strftime('%s','now')+1,'x','s3t','rename','sub/other','sub/h.txt')" &&
	sqlite3 "$DB" "update node set pending=1 where name='h.txt'" &&
sqlite3 "$DB" "update node set pending=1 where name='f.txt'" &&
	mkdir -p "$STAGE" && printf 'landed\n' >"$STAGE/up-k9done" &&
	[ "$(sqlite3 "$DB" "select pending from node where name='f.txt'")" = 1 ] &&
	[ "$done_rows" -ge 1 ] ||
	{ fail "setup" "cannot make the state a kill leaves (done rows: $done_rows)"; exit 1; }

m=$(req_mark)
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
ls -l "$D/sub" >/dev/null
# the journal's done row is the key's last record: the cache takes it, no
# listing (a store whose listings lag its writes left the file out, cc46)
grep -q "1 file the cache showed as being uploaded was done in the journal (a kill between the two records)" "$LOG" &&
	pass "the file is shown from the journal's done row" ||
	fail "shown from the journal" "log: $(grep -m1 'being uploaded' "$LOG")"
[ "$(req_since "$m" 'list-type=2.*prefix=sub')" = 1 ] && grep -q "1 file the cache showed as being uploaded has no upload left" "$LOG" &&
	[ "$(cat "$D/sub/h.txt")" = "renamed later" ] &&
	pass "one renamed onto since its done row: its folder listed again (1 LIST), the store's object shown" ||
	fail "renamed since" "$(req_since "$m" 'list-type=2') LIST; h.txt: $(cat "$D/sub/h.txt" 2>&1)"
got=$(cat "$D/sub/f.txt" 2>&1)
[ "$got" = landed ] && pass "kill -9 after the journal's done, before the cache's: the file reads" ||
	fail "read after the kill" "got '$got'"
if printf 'more\n' >>"$D/sub/f.txt" 2>"$T/append.err"; then
	pass "kill -9 after the journal's done, before the cache's: the file opens for writing"
else
	fail "append after the kill" "$(cat "$T/append.err"); log: $(grep -m1 'staged content' "$LOG")"
fi
got=$(cat "$D/g.txt" 2>&1)
[ "$got" = other ] && pass "a file the cache did not mark is unchanged" ||
	fail "the other file" "got '$got'"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
want=$(printf 'landed\nmore\n' | md5sum | cut -d' ' -f1)
got=$(s3 manifest k9done "" 2>&1 | grep '^sub/f.txt' | cut -f2,3)
[ "$got" = "$(printf '12\t%s' "$want")" ] && pass "the store has the appended file" ||
	fail "the store after the append" "got '$got'"
left=$(journal_left "$J")
[ -z "$left" ] && pass "journal: no row left pending or failed" ||
	fail "journal" "rows left: $left"
[ ! -e "$STAGE/up-k9done" ] && pass "the stray staged copy is swept" ||
	fail "staging" "$STAGE/up-k9done is still there"
