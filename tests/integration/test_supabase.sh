#!/bin/bash
# Supabase Storage (type = supabase) against the fake server in
# tests/servers/fake_supabase.py (API-NOTES B, F): buckets as directories,
# rsync -a of 1,050 files with odd but legal names (and a re-run that sends
# nothing, also from a cold cache), read-back checksums, rename, refused
# names (EINVAL, no request), TUS for a 100 MB file, injected 429/500, the
# list-v1 fallback, URLs, and a clear error for a wrong key.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

sb_test

conf() {	# conf FILE [EXTRA]
	cat >"$1" <<EOC
[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:TEST_SB_KEY
retry_base_ms = 20
${2:-}
EOC
	chmod 600 "$1"
}
export TEST_SB_KEY=$SB_KEY
conf "$T/m.conf"
# negative_ttl=3600 (>= cache_ttl): names missing from a listing are not
# asked of the store, so the request counts below stay exact; creating a
# name in a directory listed over negative_ttl ago costs one HEAD by
# default (test_outside_writer_seen_by_name covers that check)
# cache_ttl=3600: the second rsync below must find every listing still
# trusted however long the first one and its checks took (at load ~75 they
# took over the default 300 s, and the re-run listed the tree again)
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,negative_ttl=3600,cache_ttl=3600

# local manifest: key size md5, like sbtool's first three columns
manifest() { tree_manifest "$1" "$2"; }

mount_fs "$LOG" "$MNT" -o "$OPTS" supa: || { fail mount "mediafs did not mount supa:"; exit 1; }

# ---- buckets
mkdir "$MNT/media" && mkdir "$MNT/scratch"
sb buckets >"$T/b1"
grep -qx "media private" "$T/b1" && grep -qx "scratch private" "$T/b1" &&
	pass "mkdir at the top level creates private buckets" || fail "bucket create" "$(cat "$T/b1")"
rmdir "$MNT/scratch"
sb buckets | grep -q scratch && fail "bucket delete" "still there" || pass "rmdir of an empty bucket deletes it"
echo x >"$MNT/media/keep"
wait_uploads "$J"
rmdir "$MNT/media" 2>"$T/err" && fail "rmdir non-empty bucket" "succeeded" ||
	{ grep -q "not empty" "$T/err" && pass "rmdir of a non-empty bucket: ENOTEMPTY" || fail "rmdir non-empty" "$(cat "$T/err")"; }
rm "$MNT/media/keep"

# ---- rsync of 1,050 files with odd names, twice
python3 "$LIB_DIR/mktree.py" "$T/src" 1050 --supabase --small >/dev/null
touch -d '2022-03-04 05:06:07' "$T/src/Profile-Pics/buyer/0000-plain"
m=$(sb_mark)
rsync -a "$T/src/" "$MNT/media/tree/" 2>"$T/rsync.err" || fail "rsync" "$(head -3 "$T/rsync.err")"
wait_uploads "$J" 120
# rsync makes every folder first: a folder's empty-folder placeholder waits
# while files are on their way and is dropped when a file lands below it
# (test_supabase_late_folders: none for folders filled 20 s later). One
# can still go out if the copy stops for longer than the marker's wait,
# or be on its way when the folder's first file comes: it is deleted when
# that file lands, just after the file's journal row is done. So the files
# are counted here, and the store must end with no placeholder.
# (listings hide placeholders: the request log says which were deleted)
placed=$(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/.*/\.emptyFolderPlaceholder ')
puts=$(( $(sb_since "$m" '^(PUT|POST) /storage/v1/object/media/') - placed ))
stays() {	# placeholders put since mark $1 and not deleted after
	tail -n +"$(($1 + 1))" "$SB_REQLOG" | awk '$2 ~ /\/\.emptyFolderPlaceholder$/ {
		if ($1 == "DELETE") n[$2] = 0; else if ($1 == "PUT" || $1 == "POST") n[$2] = 1 }
		END { s = 0; for (k in n) s += n[k]; print s }'
}
for i in $(seq 1 600); do
	[ "$(stays "$m")" = 0 ] && break
	sleep 0.1
done
[ "$puts" = 1050 ] && [ "$(stays "$m")" = 0 ] &&
	pass "rsync -a of 1,050 files: 1,050 uploads ($placed placeholders sent on the way, each deleted when a file landed)" ||
	fail "upload count" "$puts uploads, $placed placeholders, $(stays "$m") not deleted"
manifest "$T/src" tree/ >"$T/want"
sb manifest media >"$T/got.full"
cut -f1-3 "$T/got.full" >"$T/got"
diff -q "$T/want" "$T/got" >/dev/null && pass "every key, size and md5 on the server matches the source" ||
	fail "server content" "$(diff "$T/want" "$T/got" | head -4)"
grep -P '^tree/Profile-Pics/buyer/0000-plain\t' "$T/got.full" | grep -q "$(date -d '2022-03-04 05:06:07' +%s)" &&
	pass "the source mtime is in the object's user metadata" || fail "mtime metadata" "$(grep 0000-plain "$T/got.full")"
m=$(sb_mark)
sent=$(rsync -a --stats "$T/src/" "$MNT/media/tree/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
[ "$sent" = 0 ] && [ "$(sb_since "$m")" = 0 ] && pass "second rsync -a: nothing sent, no request" ||
	fail "second rsync" "sent $sent, $(sb_since "$m") requests"
# cp -r: one upload per file too; the journal row carries the URL
m=$(sb_mark)
cp -r "$T/src/Service-Images/svc-02" "$MNT/media/cp"
wait_uploads "$J"
n=$(find "$T/src/Service-Images/svc-02" -type f | wc -l)
[ "$(sb_since "$m")" = "$n" ] && [ "$(sb_since "$m" '^PUT /storage/v1/object/media/cp/')" = "$n" ] &&
	pass "cp -r of $n files: $n requests, all uploads" || fail "cp -r" "$(sb_since "$m") requests for $n files"
[ "$(sqlite3 "$J" "select count(*) from uploads where state='done' and key like 'media/cp/%' and url like 'http://127.0.0.1:$SB_PORT/storage/v1/object/authenticated/media/cp/%'")" = "$n" ] &&
	pass "journal rows: done, with the object URL" || fail "journal" "$(sqlite3 "$J" "select key,url from uploads where key like 'media/cp/%' limit 2")"
# touch and chmod of an uploaded object: copy onto itself with new metadata
f=$(cd "$MNT/media/cp" && find . -type f | head -1 | sed 's|^\./||')
m=$(sb_mark)
touch -d '2020-02-02 02:02:02' "$MNT/media/cp/$f" && chmod 600 "$MNT/media/cp/$f"
wait_uploads "$J"
sb manifest media | grep -P "^cp/\Q$f\E\t" | cut -f5 >"$T/mt"
[ "$(cat "$T/mt")" = "$(date -d '2020-02-02 02:02:02' +%s)" ] && [ "$(sb_since "$m" '^POST /storage/v1/object/copy')" -ge 1 ] &&
	[ "$(sb_since "$m" '^PUT ')" = 0 ] &&
	pass "touch/chmod of an uploaded object: copied onto itself with new user metadata, no re-upload" ||
	fail "touch" "mtime $(cat "$T/mt"), $(sb_since "$m") requests"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# a cold cache (another cache directory): listing, then reads
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache2",journal="$J",negative_ttl=3600 supa: ||
	{ fail remount "did not mount"; exit 1; }
echo max_list=50 >"$SB_CONTROL"
m=$(sb_mark)
manifest "$MNT/media/tree" tree/ >"$T/read"
: >"$SB_CONTROL"
dirs=$(find "$T/src" -type d | wc -l)
[ "$(sb_since "$m" list-v2)" -gt "$dirs" ] && diff -q "$T/want" "$T/read" >/dev/null &&
	pass "list-v2 cursor paging (50 a page): $(sb_since "$m" list-v2) pages for $dirs directories" ||
	fail "paging" "$(sb_since "$m" list-v2) list-v2 requests for $dirs dirs"
diff -q "$T/want" "$T/read" >/dev/null && pass "read back through the mount: every md5 matches" ||
	fail "read back" "$(diff "$T/want" "$T/read" | head -4)"
[ "$(sb_since "$m" '^GET /storage/v1/object/authenticated/')" -ge 1050 ] &&
	pass "reads use the authenticated download route" || fail "read route" "$(tail -2 "$SB_REQLOG")"

# ---- rename: a file (move API), a directory (each key moved)
mv "$MNT/media/tree/Profile-Pics/buyer/0000-plain" "$MNT/media/tree/renamed file"
mv "$MNT/media/tree/Service-Images/svc-01" "$MNT/media/tree/svc-one"
sb manifest media | cut -f1 >"$T/keys"
grep -qx "tree/renamed file" "$T/keys" && ! grep -q "tree/Profile-Pics/buyer/0000-plain" "$T/keys" &&
	! grep -q "^tree/Service-Images/svc-01/" "$T/keys" &&
	[ "$(grep -c '^tree/svc-one/' "$T/keys")" = "$(cd "$T/src/Service-Images/svc-01" && find . -type f | wc -l)" ] &&
	pass "mv of a file and of a directory: keys moved on the server" || fail "rename" "$(grep -c svc-one "$T/keys")"
cmp -s "$MNT/media/tree/renamed file" "$T/src/Profile-Pics/buyer/0000-plain" &&
	pass "the moved file reads back" || fail "moved read" "differs"

echo new >"$MNT/media/tree/over-a" && echo old-longer >"$MNT/media/tree/over-b"
wait_uploads "$J"
mv "$MNT/media/tree/over-a" "$MNT/media/tree/over-b"
sb manifest media | grep -P '^tree/over-' | cut -f1,2 >"$T/over"
[ "$(cat "$T/over")" = "tree/over-b	4" ] && [ "$(cat "$MNT/media/tree/over-b")" = new ] &&
	pass "mv onto an existing file replaces it (move answers ResourceAlreadyExists: delete, then move)" ||
	fail "mv replace" "$(cat "$T/over")"

# ---- refused names: EINVAL, a log line naming the rule, no request
m=$(sb_mark)
for n in 'hash#tag' 'per%cent' 'caf'$'\xc3\xa9' 'br[ack]et' 'back\slash'; do
	if { echo x >"$MNT/media/$n"; } 2>"$T/err"; then fail "refused name $n" "created"
	elif ! grep -q "Invalid argument" "$T/err"; then fail "refused name $n" "$(cat "$T/err")"; fi
done
mkdir "$MNT/media/dir#1" 2>/dev/null && fail "refused dir" "created"
mv "$MNT/media/tree/renamed file" "$MNT/media/tree/re#named" 2>/dev/null && fail "refused rename" "renamed"
{ echo x >"$MNT/loose-file"; } 2>/dev/null && fail "file at the top" "created"
[ "$(sb_since "$m")" = 0 ] && grep -q "refuses '#' in keys" "$LOG" && grep -q "non-ASCII" "$LOG" &&
	pass "refused names: EINVAL with the rule in the log, no request" || fail "refused names" "$(sb_since "$m") requests"

# ---- 100 MB through TUS (20 MB, 4 chunks, in run-all's sanitizer pass)
BIG=100000000 CHUNKS=16
[ "${MFS_TEST_PASS:-}" = mount-asan ] && BIG=20000000 CHUNKS=4
head -c $BIG /dev/urandom >"$T/big"
m=$(sb_mark)
cp "$T/big" "$MNT/media/big.bin"
wait_uploads "$J" 120
patches=$(sb_since "$m" '^PATCH /storage/v1/upload/resumable/')
[ "$(sb_since "$m" '^POST /storage/v1/upload/resumable ')" = 1 ] && [ "$patches" = $CHUNKS ] &&
	pass "$((BIG / 1000000)) MB file: one TUS upload in $CHUNKS chunks of 6 MiB" || fail "TUS" "$patches PATCH"
[ "$(sb manifest media | grep -P '^big.bin\t' | cut -f3)" = "$(md5sum <"$T/big" | cut -d' ' -f1)" ] &&
	pass "the TUS upload's md5 matches" || fail "TUS md5" "differs"

# ---- xattrs: URL of a private bucket
url=$(getfattr --only-values -n user.mediafs.url "$MNT/media/big.bin")
[ "$url" = "http://127.0.0.1:$SB_PORT/storage/v1/object/authenticated/media/big.bin" ] &&
	pass "user.mediafs.url of a private bucket: the authenticated URL" || fail "url" "$url"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- injected 429 and 500, a public bucket, the list-v1 fallback
printf 'rate429=0.15\nrate500=0.1\nseed=3\nno_list_v2=1\n' >"$SB_CONTROL"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache3",journal="$J",negative_ttl=3600,supabase_public_buckets supa: ||
	{ fail mount3 "did not mount"; exit 1; }
mkdir "$MNT/pub"
python3 "$LIB_DIR/mktree.py" "$T/src2" 200 --supabase --small --seed 9 >/dev/null
cp -r "$T/src2/." "$MNT/pub/"
wait_uploads "$J" 120
ls -R "$MNT/media/tree" >/dev/null
: >"$SB_CONTROL"
manifest "$T/src2" "" >"$T/want2"
sb manifest pub | cut -f1-3 >"$T/got2"
diff -q "$T/want2" "$T/got2" >/dev/null && [ "$(grep -c ' 429$' "$SB_REQLOG")" -gt 10 ] &&
	[ "$(grep -c ' 500$' "$SB_REQLOG")" -gt 10 ] &&
	pass "with 15% 429 and 10% 500 injected: all 200 files correct" || fail "faults" "$(diff "$T/want2" "$T/got2" | head -3)"
n=$(sb manifest media | grep -c '^tree/')
grep -q "listing with v1" "$LOG" && [ "$(find "$MNT/media/tree" -type f | wc -l)" = "$n" ] &&
	pass "without list-v2 the listing falls back to v1 (all $n files)" || fail "v1 fallback" "$(find "$MNT/media/tree" -type f | wc -l) of $n"
sb buckets | grep -qx "pub public" && url=$(getfattr --only-values -n user.mediafs.url "$MNT/pub/$(cd "$T/src2" && find . -type f | head -1 | sed 's|^\./||')") &&
	case $url in http://127.0.0.1:$SB_PORT/storage/v1/object/public/pub/*) true ;; *) false ;; esac &&
	pass "-o supabase_public_buckets: a public bucket, public URLs" || fail "public" "$url"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- one bucket as the mount's root: supa:media
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache6",journal="$J",negative_ttl=3600 supa:media ||
	{ fail "mount supa:media" "did not mount"; exit 1; }
[ -d "$MNT/tree" ] && cmp -s "$MNT/big.bin" "$T/big" &&
	pass "supa:media mounts one bucket as the root" || fail "supa:media" "$(ls "$MNT" | head -3)"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
"$MEDIAFS" -f -o config="$T/m.conf",cache_dir="$T/c7",journal="$J" supa:nosuchbucket "$MNT" 2>"$T/err" &&
	fail "missing bucket" "mounted" ||
	{ grep -q "no such bucket" "$T/err" && pass "a missing bucket: 'no such bucket'" || fail "missing bucket" "$(cat "$T/err")"; }

# ---- a wrong key: a clear error, the key never in the log
TEST_SB_KEY=sb_secret_wrong-key-$$ "$MEDIAFS" -f -o config="$T/m.conf",cache_dir="$T/c4",journal="$J" supa: "$MNT" 2>"$T/err" &&
	fail "wrong key" "mounted" ||
	{ grep -q "refused the key" "$T/err" && ! grep -q "wrong-key-$$" "$T/err" &&
		pass "a wrong key: 'the server refused the key', key not shown" || fail "wrong key" "$(cat "$T/err")"; }
grep -q "$SB_KEY" "$LOG" && fail "secret in log" "the key appears in $LOG" || pass "the key never reaches the log"

# ---- across stores: a mounted S3 bucket into a mounted Supabase bucket
s3 mkbucket xstore
python3 "$TESTS_DIR/../scripts/gen-images.py" "$T/imgs" 40 >/dev/null
s3 putdir xstore "$T/imgs"
echo '{"a": 1}' >"$T/json"
s3 put xstore "data/custom" "$T/json" --type application/x-mediafs-test
s3 manifest xstore "" >"$T/xwant"
write_conf "$T/x.conf" xstore
cat >>"$T/x.conf" <<EOC

[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:TEST_SB_KEY
EOC
mount_fs "$LOG" "$MNT" -o config="$T/x.conf",cache_dir="$T/cache5",journal="$J",negative_ttl=3600 ||
	{ fail "mount all" "did not mount"; exit 1; }
mkdir "$MNT/supa/xcopy"
rsync -aX "$MNT/s3t/" "$MNT/supa/xcopy/" 2>"$T/rsync.err" || fail "cross rsync" "$(head -3 "$T/rsync.err")"
wait_uploads "$J"
sb manifest xcopy >"$T/xgot.full"
diff -q "$T/xwant" <(cut -f1-3 "$T/xgot.full") >/dev/null &&
	pass "rsync -aX from an S3 bucket to a Supabase bucket in one mount: every md5 matches" ||
	fail "cross-store content" "$(diff "$T/xwant" <(cut -f1-3 "$T/xgot.full") | head -3)"
want_types=$(cd "$T/imgs" && find . -type f -exec file -b --mime-type {} + | sort | uniq -c)
[ "$(grep -v '^data/custom' "$T/xgot.full" | cut -f4 | sort | uniq -c)" = "$want_types" ] &&
	grep -qP '^data/custom\t.*\tapplication/x-mediafs-test\t' "$T/xgot.full" &&
	pass "content types: images sniffed (S3 said binary/octet-stream), a custom type kept through the xattr" ||
	fail "cross-store types" "$(cut -f1,4 "$T/xgot.full" | head -5)"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
