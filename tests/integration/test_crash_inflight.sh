#!/bin/bash
# kill -9 while uploads are in flight loses no rename, chmod, type or
# delete made meanwhile (issue 15, #15.12, #15.13, #15.15): each is in the
# journal before it is answered, and the next mount finishes it. Then a
# folder renamed while a file below it uploads keeps that file readable
# (#15.16), and a file whose upload failed stays readable from its staged
# copy after a remount until 'mediactl retry' sends it (#15.8).
# "In flight" is a state, not a race: the fault proxy (S3) and the
# Supabase fake hold a PUT/POST whose URL contains hold_key until the line
# goes; the held uploads are let land before the remount, so the next
# mount must also delete what landed under the old names.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
s3 mkbucket fly
supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
trap 'cleanup_mounts; kill $proxy 2>/dev/null; supa_stop' EXIT
S3_PORT=$PPORT write_conf "$T/m.conf" fly
supa_conf "$T/m.conf"
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "mediafs did not mount"; exit 1; }
S=$MNT/s3t
mkdir "$MNT/supa/fly" || { fail mount "no Supabase bucket"; exit 1; }
P=$MNT/supa/fly

# poll SECONDS COMMAND...: until COMMAND succeeds
poll() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
in_rename() {	# in_rename PID: PID is in rename/renameat/renameat2, or gone
	kill -0 "$1" 2>/dev/null || return 0
	case $(cat "/proc/$1/syscall" 2>/dev/null) in
	82\ * | 264\ * | 316\ *) return 0 ;;
	esac
	return 1
}
remount() {
	mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "mediafs did not mount"; exit 1; }
}
kill9() { kill9_fs "$MNT"; }
# snap: one listing of each store (a tool start costs seconds under load);
# s3_has, s3_md5 and sb_has read the last one
snap() {
	s3 manifest fly "" >"$T/s3.snap" 2>/dev/null
	sb manifest fly 2>/dev/null | cut -f1 >"$T/sb.snap"
}
s3_has() { cut -f1 "$T/s3.snap" | grep -qx -- "$1"; }
s3_md5() { awk -F'\t' -v k="$1" '$1 == k {print $3}' "$T/s3.snap"; }
md5() { md5sum <"$1" | cut -d' ' -f1; }
sb_has() { grep -qx -- "$1" "$T/sb.snap"; }
all_landed() {	# the uploads held before the kill reached the stores
	snap
	s3_has fly-ren && s3_has fly-mode && s3_has fly-del &&
		sb_has fly-ren && sb_has fly-del
}

# ---- kill -9 with rename, chmod + type, unlink of running uploads
echo "t=$SECONDS s: kill -9 during uploads" >&2
: >"$T/control.held"; : >"$SB_CONTROL.held"
hold fly-
for n in fly-ren fly-mode fly-del; do
	head -c 20000 /dev/urandom >"$T/$n"
	cp "$T/$n" "$S/$n"
done
for n in fly-ren fly-del; do
	head -c 20000 /dev/urandom >"$T/sb-$n"
	cp "$T/sb-$n" "$P/$n"
done
if ! nheld fly- 5; then
	release
	fail "uploads in flight" "the uploads never reached the servers: $(cat "$T/control.held" "$SB_CONTROL.held" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
mv "$S/fly-ren" "$S/moved-ren" && chmod 600 "$S/fly-mode" &&
	setfattr -n user.mediafs.content_type -v image/webp "$S/fly-mode" &&
	rm "$S/fly-del" && mv "$P/fly-ren" "$P/moved-ren" && rm "$P/fly-del" ||
	fail "changes during the uploads" "a command failed"
kill9
# the held requests now land under their old names, as a server that got
# them just before the kill would have them
release
poll 60 all_landed || fail "held uploads" "did not land: $(tr '\n' ' ' <"$T/s3.snap") / $(tr '\n' ' ' <"$T/sb.snap")"
remount
wait_uploads "$J"
snap
[ "$(cmp "$T/fly-ren" "$S/moved-ren" 2>&1)" = "" ] && [ ! -e "$S/fly-ren" ] &&
	s3_has moved-ren && ! s3_has fly-ren &&
	[ "$(s3_md5 moved-ren)" = "$(md5 "$T/fly-ren")" ] &&
	pass "S3: mv of a file whose upload ran, then kill -9: the new name is kept and stored, the old one deleted" ||
	fail "S3 rename then kill -9" "mount: $(ls "$S" | tr '\n' ' ') store: $(cut -f1 "$T/s3.snap" | tr '\n' ' ')"
mode=$(stat -c %a "$S/fly-mode" 2>/dev/null)
s3 head fly fly-mode >"$T/head" 2>&1
[ "$mode" = 600 ] && grep -qx "mode=$((0100600))" "$T/head" &&
	grep -qx content-type=image/webp "$T/head" &&
	[ "$(getfattr --only-values -n user.mediafs.content_type "$S/fly-mode" 2>/dev/null)" = image/webp ] &&
	pass "S3: chmod and setfattr of a file whose upload ran, then kill -9: mode 600 and image/webp shown and stored" ||
	fail "S3 chmod then kill -9" "mode $mode; $(tr '\n' ' ' <"$T/head")"
[ ! -e "$S/fly-del" ] && ! s3_has fly-del &&
	pass "S3: rm of a file whose upload ran, then kill -9: it does not come back, on the mount or the store" ||
	fail "S3 rm then kill -9" "mount: $(ls "$S" | tr '\n' ' ') store: $(cut -f1 "$T/s3.snap" | tr '\n' ' ')"
cmp -s "$T/sb-fly-ren" "$P/moved-ren" && [ ! -e "$P/fly-ren" ] && [ ! -e "$P/fly-del" ] &&
	sb_has moved-ren && ! sb_has fly-ren && ! sb_has fly-del &&
	pass "Supabase: mv and rm of files whose uploads ran, then kill -9: kept as done, on the mount and the store" ||
	fail "Supabase mv/rm then kill -9" "mount: $(ls "$P" | tr '\n' ' ') store: $(tr '\n' ' ' <"$T/sb.snap")"
left=$(journal_left "$J")
[ -z "$left" ] && pass "journal: nothing pending or failed after the remount finished them" ||
	fail "journal" "rows left: $left"

# ---- #15.51: a file renamed while its upload ran is copied to its new
# name once it lands; rm of the new name while that copy is on its way,
# then kill -9: the next mount deletes both names (the journal said only
# the old one, and the new one stayed on the store and in listings; the
# model tester's seed "s3 2" at load ~35). The copy is held, not raced.
echo "t=$SECONDS s: rm during a rename's copy, kill -9" >&2
: >"$T/control.held"
hold c51-
head -c 20000 /dev/urandom >"$T/c51"
cp "$T/c51" "$S/c51-old"
if nheld c51-old 1; then
	mv "$S/c51-old" "$S/c51-new"
	hold c51-new	# the upload lands; its copy to the new name is held
	if nheld c51-new 1; then
		rm "$S/c51-new"
		kill9
		release
		poll 60 eval 'snap; s3_has c51-new' || fail "held copy" "did not land: $(tr '\n' ' ' <"$T/s3.snap")"
		remount
		wait_uploads "$J"
		snap
		! s3_has c51-new && ! s3_has c51-old && [ ! -e "$S/c51-new" ] && [ ! -e "$S/c51-old" ] &&
			pass "S3: rm of a renamed file while its rename's copy ran, then kill -9: neither name stays, on the mount or the store" ||
			fail "S3 rm during a rename's copy then kill -9" "mount: $(ls "$S" | grep c51 | tr '\n' ' ') store: $(cut -f1 "$T/s3.snap" | grep c51 | tr '\n' ' ')"
	else
		release
		fail "S3 rm during a rename's copy" "the copy never reached the server: $(tr '\n' ' ' <"$T/control.held")"
	fi
else
	release
	fail "S3 rm during a rename's copy" "the upload never reached the server"
fi

# ---- a folder renamed while a file below it uploads
echo "t=$SECONDS s: folder rename during an upload" >&2
mkdir "$S/y" && head -c 30000 /dev/urandom >"$T/r44" && cp "$T/r44" "$S/y/r44.bin"
wait_uploads "$J"
: >"$T/control.held"
hold r44
head -c 40000 /dev/urandom >"$T/r44b"
cp "$T/r44b" "$S/y/r44.bin"
if nheld r44 1; then
	mv "$S/y" "$S/y2" &
	mvpid=$!
	# mv reaches the daemon (in rename(2)) while the upload is held; it
	# waits for the upload, which lands under the old name once released
	poll 60 in_rename $mvpid
	release
	wait $mvpid
	mvrc=$?
	cmp -s "$T/r44b" "$S/y2/r44.bin" && [ $mvrc -eq 0 ] && [ ! -e "$S/y" ] &&
		wait_uploads "$J" && snap && s3_has y2/r44.bin && ! s3_has y/r44.bin &&
		[ "$(s3_md5 y2/r44.bin)" = "$(md5 "$T/r44b")" ] &&
		pass "S3: mv of a folder while a file below it uploads: the file reads back under the new name and is stored there" ||
		fail "S3 folder rename during an upload" "mv $mvrc; $(cmp "$T/r44b" "$S/y2/r44.bin" 2>&1) store: $(cut -f1 "$T/s3.snap" | grep ^y | tr '\n' ' ')"
else
	release
	fail "S3 folder rename during an upload" "the upload never reached the server"
fi

# ---- a failed upload after a remount
echo "t=$SECONDS s: failed upload, remount" >&2
echo "refuse_key=doomed" >"$T/control"
head -c 5000 /dev/urandom >"$T/doomed"
cp "$T/doomed" "$S/doomed.bin"
doomed_failed() {
	[ "$(sqlite3 "$J" "select count(*) from uploads where key='doomed.bin' and state='failed'")" -ge 1 ]
}
poll 60 doomed_failed ||
	fail "failed upload" "the upload did not fail"
: >"$T/control"
fusermount3 -u "$MNT"
wait "$MFS_PID"
MFS_PID=
remount
cmp -s "$T/doomed" "$S/doomed.bin" &&
	[ "$(getfattr --only-values -n user.mediafs.upload_state "$S/doomed.bin" 2>/dev/null | cut -c1-6)" = failed ] &&
	pass "a file whose upload failed reads back from its staged copy after a remount (state: failed)" ||
	fail "failed upload after a remount" "$(cmp "$T/doomed" "$S/doomed.bin" 2>&1) state: $(getfattr --only-values -n user.mediafs.upload_state "$S/doomed.bin" 2>&1)"
mctl retry --all >"$T/retry.out" 2>&1
if grep -q "^0 queued again in a running mediafs, 1 pending" "$T/retry.out"; then
	# no control socket (its path is over 107 bytes): the row is pending
	# again in the journal, and the next start sends it
	umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
	remount
fi
grep -q "^1 queued again in a running mediafs\|^0 queued again in a running mediafs, 1 pending" "$T/retry.out" &&
	wait_uploads "$J" && snap &&
	[ "$(s3_md5 doomed.bin)" = "$(md5 "$T/doomed")" ] &&
	[ "$(sqlite3 "$J" "select count(*) from uploads where state='failed'")" -eq 0 ] &&
	pass "mediactl retry after the remount sends it: stored, nothing failed" ||
	fail "retry after a remount" "$(cat "$T/retry.out") store: $(grep doomed "$T/s3.snap")"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
