#!/bin/bash
# An ImageKit upload is done only when the new content is proven on the
# store (API-NOTES C2, C10; issue 16 item 4): after a failed overwrite the
# previous version (same size, same mtime) is still there and must not
# count; a lost reply after the store is proven by the version's time on
# ImageKit's clock or its bytes, and not sent again; a 200 naming another
# file proves nothing. Every case ends with the server compared byte for
# byte with the source and with the journal.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

ik_test "retries = 6"
control() { printf '%s\n' "$@" >"$IK_CONTROL"; }
manifest() { tree_manifest "$1" "$2" " "; }
server() { ik manifest "$1" | cut -d' ' -f1-3; }
uploads() { ik_since "$1" '^POST /api/v1/files/upload '; }
N=12
# gen DIR SEED: N files of fixed sizes, one fixed mtime
gen() {
	local i
	mkdir -p "$1"
	for i in $(seq 1 $N); do
		/usr/bin/python3 -c "import random,sys; r=random.Random($2*1000+$i); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(3000+$i)))" >"$1/f$i.bin"
	done
	touch -d '2021-06-07 08:09:10' "$1"/*
}
# journal_ok DIR: the newest journal row of each of the N files is done
journal_ok() {
	[ "$(sqlite3 "$J" "select count(*) from uploads u where key like '$1/f%.bin' and state='done' and
		id = (select max(id) from uploads v where v.key = u.key and v.state != 'cancelled')")" = $N ]
}

gen "$T/v1" 1
gen "$T/v2" 2
gen "$T/v3" 3
gen "$T/v4" 4
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ik: ||
	{ fail mount "mediafs did not mount"; exit 1; }
mkdir "$MNT/ovr"
rsync -a "$T/v1/" "$MNT/ovr/" || fail "rsync v1" "failed"
wait_uploads "$J" 100
diff -q <(manifest "$T/v1" /ovr/) <(server /ovr) >/dev/null && pass "version 1 of $N files on ImageKit" ||
	fail "v1" "$(diff <(manifest "$T/v1" /ovr/) <(server /ovr) | head -3)"

# ---- failed overwrites: the old version (same size and mtime) stays
control upload_fail_first=1
m=$(ik_mark)
rsync -a -I "$T/v2/" "$MNT/ovr/" || fail "rsync v2" "failed"
wait_uploads "$J" 100
control
failed500=$(ik_since "$m" '^POST /api/v1/files/upload 500$')
diff -q <(manifest "$T/v2" /ovr/) <(server /ovr) >/dev/null && journal_ok ovr && [ "$failed500" = $N ] &&
	[ "$(uploads "$m")" = $((2 * N)) ] &&
	pass "each file's first upload fails before storing ($failed500 of $(uploads "$m")): the old version (same size, same mtime) is not taken for the new, every file ends with the new bytes" ||
	fail "failed overwrite" "$failed500 failed; $(diff <(manifest "$T/v2" /ovr/) <(server /ovr) | head -3)"

# ---- lost replies after the store: proven new, not sent again
control upload500=3
m=$(ik_mark)
rsync -a -I "$T/v3/" "$MNT/ovr/" || fail "rsync v3" "failed"
wait_uploads "$J" 100
control
lost=$(ik_since "$m" '^POST /api/v1/files/upload 500$')
diff -q <(manifest "$T/v3" /ovr/) <(server /ovr) >/dev/null && journal_ok ovr && [ "$lost" -ge 3 ] &&
	[ "$(uploads "$m")" = $N ] && grep -q "proven new): not sent again" "$LOG" &&
	pass "every 3rd reply lost after the store ($lost): proven by version time or bytes, $N uploads for $N files" ||
	fail "lost reply" "$lost lost, $(uploads "$m") uploads; $(diff <(manifest "$T/v3" /ovr/) <(server /ovr) | head -3)"

# ---- lying replies: a 200 naming another file proves nothing
control upload_lie_first=1
m=$(ik_mark)
rsync -a -I "$T/v4/" "$MNT/ovr/" || fail "rsync v4" "failed"
wait_uploads "$J" 100
control
diff -q <(manifest "$T/v4" /ovr/) <(server /ovr) >/dev/null && journal_ok ovr &&
	grep -q "the reply names another file" "$LOG" && [ "$(uploads "$m")" = $((2 * N)) ] &&
	pass "each file's first reply names another file: re-checked and sent again ($(uploads "$m") uploads), every file ends with the new bytes" ||
	fail "lying reply" "$(uploads "$m") uploads; $(diff <(manifest "$T/v4" /ovr/) <(server /ovr) | head -3)"
cmp -s "$MNT/ovr/f1.bin" "$T/v4/f1.bin" && pass "the mount reads the new bytes" || fail "read back" "differs"

# ---- uploads that never succeed are reported failed, never done
control upload_fail=1
echo never >"$T/never.txt"
cp "$T/never.txt" "$MNT/ovr/never.txt"
for i in $(seq 1 600); do
	s=$(sqlite3 "$J" "select state from uploads where key='ovr/never.txt' order by id desc limit 1")
	[ "$s" = failed ] || [ "$s" = done ] && break
	sleep 0.1
done
control
[ "$s" = failed ] && [ -z "$(server /ovr | grep never.txt)" ] &&
	pass "an upload ImageKit never stores: failed in the journal, nothing on the server" ||
	fail "never stored" "state '$s'"
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
rc=0
wait "$MFS_PID" || rc=$?
MFS_PID=
grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" &&
	fail sanitizer "$(grep -E -A5 "AddressSanitizer|LeakSanitizer|runtime error:" "$LOG" | head -8)"
[ "$rc" != 0 ] && grep -q "1 failed" "$LOG" && pass "the unmount summary and exit status ($rc) say 1 upload failed" ||
	fail "unmount" "exit $rc"
