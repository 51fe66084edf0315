#!/bin/bash
# ImageKit (type = imagekit) against the fake server in
# tests/servers/fake_imagekit.py (API-NOTES C, D3): cp -r and rsync -a of
# 520 images (a re-run sends nothing, from a warm and from a cold cache),
# read-back checksums of the original bytes (CDN cache and ignored Range
# included), rename within and across folders, a refused clobber, directory
# rename through bulk jobs, mkdir/rmdir through the folder API, refused
# names and empty files, the shell's redirection pattern, a mode read back
# from a cold cache, a lost upload reply that is not sent again, a
# rate-limit storm, and fileId + URL in xattrs and the journal.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/imagekit.sh"

ik_test
KEY1=$IK_KEY
N=520 PAGE=50
[ "${MFS_TEST_PASS:-}" = mount-asan ] && N=130 PAGE=10
ik_conf ik "list_limit = $PAGE" >"$T/m.conf"
chmod 600 "$T/m.conf"
control() { printf '%s\n' "$@" >"$IK_CONTROL"; }

# local manifest in iktool's shape: /path size md5
manifest() { tree_manifest "$1" "$2" " "; }
server() { ik manifest "$1" | cut -d' ' -f1-3; }
uploads() { ik_since "$1" '^POST /api/v1/files/upload '; }
# requests since MARK other than folder listings
not_lists() { echo $(($(ik_since "$1") - $(ik_since "$1" '^GET /v1/files\?path=[^&]*&type=all&'))); }

/usr/bin/python3 "$TESTS_DIR/../scripts/gen-images.py" "$T/src" "$N" --seed 5 >/dev/null
touch -d '2021-06-07 08:09:10' "$T/src/Service-Images"/*/* 2>/dev/null
# negative_ttl=3600 (>= cache_ttl): names missing from a listing are not
# asked of the store, so the request counts below stay exact; creating a
# name in a directory listed over negative_ttl ago costs one HEAD by
# default (test_outside_writer_seen_by_name covers that check)
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,negative_ttl=3600
mount_fs "$LOG" "$MNT" -o "$OPTS" ik: || { fail mount "mediafs did not mount ik:"; exit 1; }

# ---- cp -r: one upload per file, fields made once, fileId and URL journaled
m=$(ik_mark)
mkdir "$MNT/venues"
cp -r "$T/src/." "$MNT/venues/" 2>"$T/cp.err" || fail "cp -r" "$(head -3 "$T/cp.err")"
wait_uploads "$J" 120
[ "$(uploads "$m")" = "$N" ] && pass "cp -r of $N images: $N uploads" || fail "upload count" "$(uploads "$m")"
[ "$(ik_since "$m" '^POST /v1/customMetadataFields ')" = 2 ] &&
	pass "the custom metadata fields mtime and mode are created once" ||
	fail "custom fields" "$(ik_since "$m" 'customMetadataFields')"
manifest "$T/src" /venues/ >"$T/want"
server /venues >"$T/got"
diff -q "$T/want" "$T/got" >/dev/null && pass "every path, size and md5 (original bytes) on ImageKit matches the source" ||
	fail "server content" "$(diff "$T/want" "$T/got" | head -4)"
ik ids /venues | awk '{print substr($1, 2) "|" $2 "|" $3}' >"$T/ids"
sqlite3 "$J" "select key || '|' || file_id || '|' || url from uploads where state='done' and key like 'venues/%' and key not like '%/' order by key" >"$T/jids"
[ "$(wc -l <"$T/jids")" = "$N" ] && diff -q "$T/ids" "$T/jids" >/dev/null &&
	pass "the journal holds each upload's fileId and URL, as ImageKit has them" ||
	fail "journal ids" "$(diff "$T/ids" "$T/jids" | head -4)"
f=$(cd "$T/src" && find . -type f | sort | head -1 | sed 's|^\./||')
id=$(getfattr --only-values -n user.mediafs.file_id "$MNT/venues/$f" 2>/dev/null)
url=$(getfattr --only-values -n user.mediafs.url "$MNT/venues/$f" 2>/dev/null)
grep -qx "venues/$f|$id|$url" "$T/ids" && getfattr -d "$MNT/venues/$f" 2>/dev/null | grep -q user.mediafs.file_id &&
	pass "xattrs user.mediafs.file_id and user.mediafs.url: $id" || fail "xattrs" "$id $url"

# ---- rsync -a, and re-runs that send nothing (warm, then cold cache)
m=$(ik_mark)
rsync -a "$T/src/" "$MNT/rs/" 2>"$T/rsync.err" || fail "rsync" "$(head -3 "$T/rsync.err")"
wait_uploads "$J" 120
[ "$(uploads "$m")" = "$N" ] && pass "rsync -a of $N images: $N uploads (temporary names never uploaded)" ||
	fail "rsync uploads" "$(uploads "$m")"
manifest "$T/src" /rs/ >"$T/want.rs"
server /rs >"$T/got.rs"
diff -q "$T/want.rs" "$T/got.rs" >/dev/null && pass "rsync: every file on ImageKit matches" ||
	fail "rsync content" "$(diff "$T/want.rs" "$T/got.rs" | head -4)"
ik manifest /rs | grep "/Service-Images/" | head -1 | grep -q " $(date -d '2021-06-07 08:09:10' +%s)" &&
	pass "the source mtime is in the file's custom metadata" || fail "mtime metadata" "$(ik manifest /rs | grep Service-Images | head -1)"
m=$(ik_mark)
sent=$(rsync -a --stats "$T/src/" "$MNT/rs/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
[ "$sent" = 0 ] && [ "$(ik_since "$m")" = 0 ] && pass "second rsync -a: nothing sent, no request" ||
	fail "second rsync" "sent $sent, $(ik_since "$m") requests"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache-cold",journal="$J",negative_ttl=3600 ik: ||
	{ fail mount "remount"; exit 1; }
control shift_pages=1
big=$(cd "$T/src" && for d in */*/; do echo "$(ls "$d" | wc -l) $d"; done | sort -n | tail -1 | cut -d' ' -f2)
ls "$MNT/rs/$big" >"$T/paged"
control
[ "$(sort -u "$T/paged" | wc -l)" = "$(wc -l <"$T/paged")" ] && [ "$(wc -l <"$T/paged")" = "$(ls "$T/src/$big" | wc -l)" ] &&
	[ "$(wc -l <"$T/paged")" -gt "$PAGE" ] &&
	pass "overlapping pages ($PAGE a page, each one entry early): $(wc -l <"$T/paged") names in $big, each once" ||
	fail "paging" "$(wc -l <"$T/paged") listed, $(sort -u "$T/paged" | wc -l) distinct, $(ls "$T/src/$big" | wc -l) wanted"
m=$(ik_mark)
sent=$(rsync -a --stats "$T/src/" "$MNT/rs/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
[ "$sent" = 0 ] && [ "$(uploads "$m")" = 0 ] && [ "$(not_lists "$m")" = 0 ] &&
	pass "rsync -a from a cold cache: nothing sent, only $(ik_since "$m") listings (mtimes come with them)" ||
	fail "cold rsync" "sent $sent, $(ik_since "$m") requests"

# ---- reads: the original bytes, the new version after an overwrite,
# and right when the CDN ignores Range
(cd "$T/src" && find . -type f | sort | head -40 | while IFS= read -r f; do
	cmp -s "$f" "$MNT/rs/$f" || echo "$f"; done) >"$T/bad"
[ ! -s "$T/bad" ] && pass "40 files read back through the mount: identical" || fail "read back" "$(head -3 "$T/bad")"
control ignore_range=1
g=$(cd "$T/src" && find . -type f -size +3k | sort | head -1)
cmp -s <(dd if="$T/src/$g" bs=1000 skip=2 count=1 2>/dev/null) \
	<(dd if="$MNT/rs/$g" bs=1000 skip=2 count=1 iflag=direct 2>/dev/null) &&
	pass "a ranged read is right when the CDN answers 200 with the whole file" || fail "200 for a range" "$g"
control
cat "$MNT/rs/$g" >/dev/null	# the CDN now caches this version
cp "$T/src/$f" "$T/newver"
printf 'another version' >>"$T/newver"
id1=$(getfattr --only-values -n user.mediafs.file_id "$MNT/rs/$g")
cp "$T/newver" "$MNT/rs/$g"
wait_uploads "$J"
sync
echo 3 >/proc/sys/vm/drop_caches
id2=$(getfattr --only-values -n user.mediafs.file_id "$MNT/rs/$g")
cmp -s "$T/newver" "$MNT/rs/$g" && [ "$id1" = "$id2" ] &&
	pass "an overwrite is a new version of the same fileId, read back new (not the CDN's cached old bytes)" ||
	fail "overwrite" "ids $id1 $id2; $(cmp "$T/newver" "$MNT/rs/$g" 2>&1)"

# ---- rename: same folder, other folder, other folder + name; no clobber
d=$(dirname "$g")
# two other files of that folder (g was overwritten)
a=$(cd "$MNT/rs/$d" && ls | grep -vx "$(basename "$g")" | sed -n 1p)
b=$(cd "$MNT/rs/$d" && ls | grep -vx "$(basename "$g")" | sed -n 2p)
ida=$(getfattr --only-values -n user.mediafs.file_id "$MNT/rs/$d/$a")
m=$(ik_mark)
mv "$MNT/rs/$d/$a" "$MNT/rs/$d/renamed-$a" &&
	[ "$(ik_since "$m" '^PUT /v1/files/rename ')" = 1 ] && [ "$(uploads "$m")" = 0 ] &&
	ik ids /rs | grep -q "^/rs/${d#./}/renamed-$a $ida " &&
	pass "rename in a folder: the rename API, same fileId, no upload" || fail "rename" "$(tail -3 "$IK_REQLOG")"
mkdir -p "$MNT/moved"
m=$(ik_mark)
mv "$MNT/rs/$d/renamed-$a" "$MNT/moved/" && mv "$MNT/rs/$d/$b" "$MNT/moved/other-$b" &&
	[ "$(ik_since "$m" '^POST /v1/files/move ')" = 2 ] && [ "$(ik_since "$m" '^PUT /v1/files/rename ')" = 2 ] &&
	[ "$(uploads "$m")" = 0 ] && ik ids /moved | grep -q "^/moved/renamed-$a $ida " &&
	! ik ids /moved | grep -q mediafs-mv && ! ik ids "/rs/${d#./}" | grep -q mediafs-mv &&
	cmp -s "$T/src/$d/$a" "$MNT/moved/renamed-$a" && cmp -s "$T/src/$d/$b" "$MNT/moved/other-$b" &&
	pass "rename across folders: a move; for a new name a rename to a move name, the move, the rename (#15.43), same fileId, bytes intact" ||
	fail "move" "$(tail -4 "$IK_REQLOG")"
mv "$MNT/moved/other-$b" "$MNT/moved/renamed-$a" 2>"$T/err" && fail "clobber" "mv onto an existing file succeeded" ||
	{ grep -q "File exists" "$T/err" && cmp -s "$T/src/$d/$b" "$MNT/moved/other-$b" &&
		cmp -s "$T/src/$d/$a" "$MNT/moved/renamed-$a" &&
		pass "mv onto an existing ImageKit file: EEXIST, both intact" || fail "clobber" "$(cat "$T/err")"; }

# ---- directory rename: bulk jobs, polled until done
control job_ms=700
sd=$(cd "$MNT/venues/Service-Images" && ls | head -1)
cnt=$(ls "$MNT/venues/Service-Images/$sd" | wc -l)
m=$(ik_mark)
mv "$MNT/venues/Service-Images/$sd" "$MNT/venues/Service-Images/$sd-new" || fail "dir rename" "mv failed"
polls=$(ik_since "$m" '^GET /v1/bulkJobs/')
[ "$(ik_since "$m" '^POST /v1/bulkJobs/renameFolder ')" = 1 ] && [ "$polls" -ge 2 ] &&
	[ "$(ik manifest "/venues/Service-Images/$sd-new" | wc -l)" = "$cnt" ] &&
	[ "$(ik manifest "/venues/Service-Images/$sd" 2>/dev/null | wc -l)" = 0 ] && [ "$(uploads "$m")" = 0 ] &&
	pass "directory rename ($cnt files): one renameFolder job, polled $polls times until Completed" ||
	fail "dir rename" "$(ik_since "$m") requests; $(tail -3 "$IK_REQLOG")"
m=$(ik_mark)
mv "$MNT/venues/Service-Images/$sd-new" "$MNT/moved/svc" || fail "dir move" "mv failed"
[ "$(ik_since "$m" '^POST /v1/bulkJobs/moveFolder ')" = 1 ] && [ "$(ik_since "$m" '^POST /v1/bulkJobs/renameFolder ')" = 2 ] &&
	[ "$(ik manifest /moved/svc | wc -l)" = "$cnt" ] &&
	diff <(cd "$T/src/Service-Images/$sd" && md5sum * | sort) <(cd "$MNT/moved/svc" && md5sum * | sort) >/dev/null &&
	pass "directory move to another folder with a new name: renameFolder to a move name, moveFolder, renameFolder (#15.45), files intact" ||
	fail "dir move" "$(tail -4 "$IK_REQLOG")"
control

# ---- folders: mkdir, rmdir, and rmdir of a folder holding unknown files
mkdir "$MNT/empty-one" "$MNT/guarded"
wait_uploads "$J"
ik folders / | grep -qx /empty-one && pass "mkdir: a folder on ImageKit (POST /v1/folder)" || fail "mkdir" "$(ik folders /)"
rmdir "$MNT/empty-one" && ! ik folders / | grep -qx /empty-one && pass "rmdir of an empty folder deletes it" ||
	fail "rmdir" "$(ik folders /)"
echo "behind our back" >"$T/bb.txt"
ik put /guarded bb.txt "$T/bb.txt" >/dev/null
rmdir "$MNT/guarded" 2>"$T/err" && fail "rmdir guarded" "deleted a folder holding a file" ||
	{ grep -q "not empty" "$T/err" && ik manifest /guarded | grep -q bb.txt &&
		pass "rmdir of a folder holding a file the mount never listed: ENOTEMPTY, the file survives (the API's delete is recursive)" ||
		fail "rmdir guarded" "$(cat "$T/err"); $(ik manifest /guarded)"; }

# ---- names ImageKit would rewrite, empty files: refused, said, nothing sent
m=$(ik_mark)
touch "$MNT/moved/a photo.jpg" 2>"$T/err" && fail "bad name" "created" ||
	{ grep -q "Invalid argument" "$T/err" && grep -q "would store ' ' as '_'" "$LOG" &&
		pass "a name with a space: EINVAL before any upload, the log names the rule" || fail "bad name" "$(cat "$T/err")"; }
cp "$T/bb.txt" "$MNT/moved/café.txt" 2>/dev/null && fail "non-ASCII" "created" || pass "a non-ASCII name: refused"
: >"$T/empty"
cp "$T/empty" "$MNT/moved/empty.txt" 2>"$T/err" && fail "empty" "cp of an empty file succeeded" ||
	{ grep -q "Operation not supported" "$T/err" && grep -q "cannot store empty files" "$LOG" &&
		[ ! -e "$MNT/moved/empty.txt" ] &&
		pass "an empty file: close() fails with EOPNOTSUPP, a log line says why, nothing left behind" ||
		fail "empty" "$(cat "$T/err")"; }
[ "$(not_lists "$m")" = 0 ] && pass "nothing was sent for the refused names and the empty file" ||
	fail "refusals sent requests" "$(tail -3 "$IK_REQLOG")"

# ---- a lost reply: the upload is found on ImageKit, not sent again
control upload500=3
mkdir -p "$T/lost"
for i in $(seq 1 12); do head -c $((2000 + i)) /dev/urandom >"$T/lost/l$i.bin"; done
m=$(ik_mark)
cp -r "$T/lost" "$MNT/lost"
wait_uploads "$J"
control
[ "$(uploads "$m")" = 12 ] && [ "$(ik_since "$m" '^POST /api/v1/files/upload 500')" -ge 3 ] &&
	grep -q "reply was lost, but ImageKit holds it" "$LOG" &&
	diff <(manifest "$T/lost" /lost/) <(server /lost) >/dev/null &&
	pass "every 3rd upload's reply lost (HTTP 500 after storing): re-checked, found, not sent again (12 uploads)" ||
	fail "lost reply" "$(uploads "$m") uploads; $(ik_since "$m" '^POST /api/v1/files/upload 500') lost"

# ---- a rate-limit storm: every 3rd request answers 429
control every429=3 reset_ms=40 limit_uploads=1
mkdir -p "$T/storm"
(cd "$T/src" && find . -type f | sort | head -$((N / 4))) >"$T/storm.list"
rsync -a --files-from="$T/storm.list" "$T/src/" "$T/storm/"
m=$(ik_mark)
cp -r "$T/storm" "$MNT/storm" 2>"$T/err" || fail "storm cp" "$(head -3 "$T/err")"
mv "$MNT/storm/Profile-Pics" "$MNT/storm/pp" 2>>"$T/err"
wait_uploads "$J" 120
ls -lR "$MNT/storm" >/dev/null
n429=$(ik_since "$m" ' 429$')
control
(cd "$T/storm" && find . -type f | sed 's|^\./||; s|^Profile-Pics/|pp/|' | sort | while IFS= read -r f; do
	o=$f; case $f in pp/*) o=Profile-Pics/${f#pp/};; esac
	printf '/storm/%s %s %s\n' "$f" "$(stat -c %s "$o")" "$(md5sum <"$o" | cut -d' ' -f1)"; done) >"$T/want.storm"
server /storm >"$T/got.storm"
k=$(wc -l <"$T/want.storm")
bad=$(sqlite3 "$J" "select count(*) from uploads where key like 'storm/%' and key not like '%/' and (state != 'done' or file_id is null or url is null)")
[ "$n429" -gt 10 ] && diff -q "$T/want.storm" "$T/got.storm" >/dev/null && [ "$bad" = 0 ] &&
	[ "$(sqlite3 "$J" "select count(*) from uploads where key like 'storm/%' and key not like '%/' and state='done'")" = "$k" ] &&
	pass "rate-limit storm ($n429 answers 429): all $k files right, each journal row with its fileId and URL" ||
	fail "storm" "429s $n429, $bad rows without ids; $(diff "$T/want.storm" "$T/got.storm" | head -3)"

# ---- the shell's redirection (open, dup, close the first descriptor, then
# write through the copy: issue 15 #5) and dd of=: the flush of the still
# empty file does not fail it; a mode set by chmod is read back from the
# listing's custom metadata once the cache is lost (#10)
printf 'written through a redirection\n' >"$T/redir"
cat "$T/redir" >"$MNT/moved/redir.txt" 2>"$T/err" &&
	dd if="$T/redir" of="$MNT/moved/dd.txt" status=none 2>>"$T/err" &&
	chmod 600 "$MNT/moved/dd.txt" 2>>"$T/err" ||
	fail "shell redirection into ImageKit" "$(cat "$T/err")"
wait_uploads "$J" 120
want=" $(stat -c %s "$T/redir") $(md5sum <"$T/redir" | cut -d' ' -f1)"
server /moved >"$T/got.redir"
grep -qx "/moved/redir.txt$want" "$T/got.redir" && grep -qx "/moved/dd.txt$want" "$T/got.redir" &&
	pass "cat f > mnt/x and dd of=mnt/x (open, dup, close, write): exit 0, the bytes on ImageKit" ||
	fail "shell redirection into ImageKit" "$(grep -E 'redir|dd' "$T/got.redir")"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache-modes",journal="$J" ik: ||
	{ fail mount "remount with a new cache"; exit 1; }
modes="$(stat -c %a "$MNT/moved/dd.txt") $(stat -c %a "$MNT/moved/redir.txt")"
[ "$modes" = "600 644" ] &&
	pass "a mode set by chmod (600) shows after the cache is lost: from the listing's custom metadata" ||
	fail "mode after the cache is lost" "dd.txt and redir.txt show $modes, want 600 644"

# ---- an account whose field 'mtime' is not a Number: said once, files
# still go up (without mtimes)
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
ik_stop
ik_start "$T/ik2" || { fail "fake server" "the second one did not start"; exit 1; }
export MFS_TEST_IK_KEY=$IK_KEY
ik field mtime Text
ik_conf ik2 >"$T/m2.conf"
chmod 600 "$T/m2.conf"
mount_fs "$T/m2.log" "$MNT" -o config="$T/m2.conf",cache_dir="$T/cache-m2",journal="$T/m2.db",negative_ttl=3600 ik2: ||
	{ fail mount "second server"; exit 1; }
cp "$T/bb.txt" "$MNT/x.txt" && cp "$T/bb.txt" "$MNT/y.txt"
wait_uploads "$T/m2.db"
[ "$(ik manifest / | grep -c '^/[xy].txt 16 ')" = 2 ] && [ "$(grep -c "field 'mtime' is of type Text, not Number" "$T/m2.log")" = 1 ] &&
	grep -q "use rsync --size-only" "$T/m2.log" &&
	pass "a field 'mtime' of another type: one warning (rsync --size-only), the files go up without mtimes" ||
	fail "field type" "$(ik manifest /; tail -3 "$T/m2.log")"
umount_fs "$T/m2.log" "$MNT" || fail unmount "see $T/m2.log"

# ---- a wrong key: a clear error, the key in no log
ik_conf bad >"$T/bad.conf"
chmod 600 "$T/bad.conf"
MFS_TEST_IK_KEY=private_wrong-key-$$ "$MEDIAFS" -f -o config="$T/bad.conf",cache_dir="$T/cache-bad",journal="$T/bad.db" bad: "$MNT" >"$T/bad.log" 2>&1 &&
	fail "wrong key" "mounted" ||
	{ grep -q "cannot mount: remote \[bad\]: ImageKit refused the private key" "$T/bad.log" &&
		! grep -q "wrong-key-$$" "$T/bad.log" &&
		pass "a wrong private key: the mount fails at once, 'ImageKit refused the private key', the key nowhere" ||
		fail "wrong key" "$(tail -2 "$T/bad.log")"; }
grep -qF -e "$KEY1" -e "$IK_KEY" "$LOG" "$J" "$T/m2.log" "$T/m2.db" &&
	fail "secrets" "a private key is in a log or journal" ||
	pass "the private keys are in neither the logs nor the journals"
