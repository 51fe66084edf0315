#!/bin/bash
# Write hooks (core/hooks): on_write = compress on an S3 remote with real
# images (JPEG, PNG with alpha, animated GIF, WebP, TIFF, a corrupt JPEG,
# text named .jpg, a 40-megapixel PNG, and the same without extensions):
# content types, smaller-or-equal sizes, identical pixels for lossless
# PNG, the GIF still animated, the corrupt file unchanged with the reason
# in the journal, getfattr's original_size; exec: hooks that succeed,
# crash or hang; rsync -a of 300 extension-less images twice: the second
# run uploads nothing.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/mkimages.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket hooks
mkimages "$T/img" 2>"$T/mkimages.err" || { fail "test images" "$(tail -3 "$T/mkimages.err")"; exit 1; }
write_conf "$T/m.conf" hooks "on_write = compress"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

cp "$T/img/"* "$MNT/"
wait_uploads "$J" 120
row() { sqlite3 -separator ' | ' "$J" "select $2 from uploads where key='$1' and state='done' order by id desc limit 1"; }
ok=1
while read -r f want; do
	got=$(getfattr --only-values -n user.mediafs.content_type "$MNT/$f" 2>/dev/null)
	[ "$got" = "$want" ] || { ok=0; fail "content type of $f" "$got, not $want"; }
done <<EOT
photo.jpg image/jpeg
noext-photo image/jpeg
alpha.png image/png
noext-alpha image/png
anim.gif image/gif
noext-anim image/gif
pic.webp image/webp
noext-pic image/webp
scan.tiff image/tiff
noext-scan image/tiff
corrupt.jpg image/jpeg
notes.jpg text/plain
big.png image/png
EOT
[ $ok = 1 ] && pass "content types from the bytes, with or without extensions (text named .jpg is text/plain)"

ok=1
for f in "$T/img/"*; do
	b=$(basename "$f")
	[ "$(stat -c %s "$MNT/$b")" -le "$(stat -c %s "$f")" ] || { ok=0; fail "never larger: $b" "$(stat -c %s "$MNT/$b") > $(stat -c %s "$f")"; }
done
[ $ok = 1 ] && pass "no stored object is larger than what was written"
for b in photo.jpg noext-photo pic.webp alpha.png big.png; do
	[ "$(stat -c %s "$MNT/$b")" -lt "$(stat -c %s "$T/img/$b")" ] || ok=0
done
[ $ok = 1 ] && pass "JPEG, WebP, PNG (alpha, 40 MP) stored smaller: $(row photo.jpg hook_result); $(row alpha.png hook_result)" ||
	fail "smaller" "$(sqlite3 "$J" "select key,orig_size,size,hook_result from uploads where state='done'")"
cp "$MNT/alpha.png" "$MNT/big.png" "$MNT/anim.gif" "$T/"
[ "$(identify -format '%#' "$T/img/alpha.png")" = "$(identify -format '%#' "$T/alpha.png")" ] &&
	[ "$(identify -format '%#' "$T/img/big.png")" = "$(identify -format '%#' "$T/big.png")" ] &&
	[ "$(identify -format '%[channels]' "$T/alpha.png")" = "$(identify -format '%[channels]' "$T/img/alpha.png")" ] &&
	pass "lossless PNG (alpha, 16-bit; 40 MP): decoded pixels identical" || fail "pixels" "differ"
[ "$(identify "$T/anim.gif" | wc -l)" = 3 ] && cmp -s "$T/anim.gif" "$T/img/anim.gif" &&
	pass "the animated GIF is stored untouched (3 frames)" || fail "gif" "$(identify "$T/anim.gif" | wc -l) frames"
cmp -s "$MNT/corrupt.jpg" "$T/img/corrupt.jpg" && row corrupt.jpg hook_result | grep -q "failed, original kept: .*Premature end" &&
	pass "the corrupt JPEG went up unchanged; the journal says why ($(row corrupt.jpg hook_result))" ||
	fail "corrupt" "$(row corrupt.jpg hook_result)"
cp "$MNT/oriented.jpg" "$T/oriented.jpg"
[ "$(identify -format '%[orientation]' "$T/oriented.jpg")" = RightTop ] &&
	[ "$(convert "$T/oriented.jpg" icc:- | wc -c)" -gt 1000 ] &&
	[ "$(stat -c %s "$T/oriented.jpg")" -lt "$(stat -c %s "$T/img/oriented.jpg")" ] &&
	grep -q SecretCam "$T/oriented.jpg" &&
	pass "a recompressed JPEG keeps its ICC profile, EXIF orientation and XMP" ||
	fail "icc/orientation" "$(identify -format '%[orientation] %wx%h' "$T/oriented.jpg")"
cmp -s "$MNT/scan.tiff" "$T/img/scan.tiff" && cmp -s "$MNT/notes.jpg" "$T/img/notes.jpg" &&
	pass "TIFF and text pass through unchanged" || fail "pass-through" "changed"
[ "$(row photo.jpg orig_size)" = "$(stat -c %s "$T/img/photo.jpg")" ] &&
	[ "$(row photo.jpg orig_sha256)" = "$(sha256sum <"$T/img/photo.jpg" | cut -d' ' -f1)" ] &&
	[ "$(row photo.jpg sha256)" = "$(sha256sum <"$MNT/photo.jpg" | cut -d' ' -f1)" ] &&
	[ "$(row photo.jpg hook)" = compress ] &&
	pass "journal row: original size and sha256, uploaded size and sha256, hook and result" ||
	fail "journal" "$(row photo.jpg 'orig_size,orig_sha256,size,sha256,hook')"
getfattr -d "$MNT/photo.jpg" 2>/dev/null | grep -q "user.mediafs.original_size=\"$(stat -c %s "$T/img/photo.jpg")\"" &&
	pass "getfattr -d shows user.mediafs.original_size" || fail "xattr" "$(getfattr -d "$MNT/photo.jpg")"
rss=$(awk '/VmHWM/ {print $2}' /proc/"$MFS_PID"/status)
[ "$rss" -lt 400000 ] && pass "peak RSS with a 40 MP image in the queue: $((rss / 1024)) MB" || fail "memory" "$rss kB"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- rsync of 300 extension-less images, twice
python3 "$TESTS_DIR/../scripts/gen-images.py" "$T/many" 300 >/dev/null
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
m=$(req_mark)
rsync -a "$T/many/" "$MNT/many/"
wait_uploads "$J" 120
n=$(find "$T/many" -type f | wc -l)
smaller=$(sqlite3 "$J" "select count(*) from uploads where key like 'many/%' and state='done' and size < orig_size")
[ "$(req_since "$m" '^PUT /hooks/many/')" = "$n" ] && [ "$smaller" -gt 0 ] &&
	pass "rsync -a of $n extension-less images: $n uploads, $smaller stored smaller" || fail "rsync 1" "$(req_since "$m" '^PUT /hooks/many/') PUT"
m=$(req_mark)
sent=$(rsync -a --stats "$T/many/" "$MNT/many/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
wait_uploads "$J" 120
puts=$(req_since "$m" '^PUT /hooks/many/')
[ "$puts" = 0 ] && pass "second rsync -a: rsync re-sent $sent compressed files, mediafs uploaded nothing ($(req_since "$m" '^HEAD /hooks/many/') HEAD)" ||
	fail "rsync 2" "$puts PUT"
sqlite3 "$J" "select hook_result from uploads where key like 'many/%' order by id desc limit 1" | grep -q "not sent" &&
	pass "the journal says 'unchanged since upload #N: not sent'" || fail "rerun journal" "$(sqlite3 "$J" "select hook_result from uploads order by id desc limit 1")"
touch -d '2021-01-01' "$T/many/Profile-Pics/"*/* 2>/dev/null
m=$(req_mark)
rsync -a "$T/many/" "$MNT/many/"
wait_uploads "$J" 120
[ "$(req_since "$m" '^PUT /hooks/many/')" = 0 ] && [ "$(req_since "$m" '^COPY /hooks/many/')" -gt 0 ] &&
	pass "a source touched since: metadata copied in place, no upload ($(req_since "$m" '^COPY /hooks/many/') COPY)" ||
	fail "touched" "$(req_since "$m" '^PUT /hooks/many/') PUT, $(req_since "$m" '^COPY /hooks/many/') COPY"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- exec: hooks on a local remote: success, crash, hang
mkdir -p "$T/store" "$T/bin"
cat >"$T/bin/upper" <<'EOS'
#!/bin/sh
tr a-z A-Z <"$1" >"$2"
EOS
cat >"$T/bin/crash" <<'EOS'
#!/bin/sh
echo "about to crash" >&2
kill -SEGV $$
EOS
cat >"$T/bin/hang" <<'EOS'
#!/bin/sh
sleep 60
EOS
chmod +x "$T/bin/"*
for h in upper crash hang; do
	cat >>"$T/e.conf" <<EOC
[$h]
type = local
path = $T/store/$h
on_write = exec:$T/bin/$h {in} {out}
hook_timeout = 2

EOC
	mkdir -p "$T/store/$h"
done
cat >>"$T/e.conf" <<EOC
[strip]
type = local
path = $T/store/strip
on_write = compress
compress.strip_metadata = true
compress.max_dimension = 600
EOC
mkdir -p "$T/store/strip"
mount_fs "$LOG" "$MNT" -o config="$T/e.conf",cache_dir="$T/cache-e",journal="$J" ||
	{ fail mount "mediafs did not mount"; exit 1; }
cp "$T/img/oriented.jpg" "$MNT/strip/"
for h in upper crash hang; do echo "hello hooks" >"$MNT/$h/f.txt"; done
t0=$(date +%s)
wait_uploads "$J" 30
[ "$(cat "$T/store/upper/f.txt")" = "HELLO HOOKS" ] && pass "exec: hook output replaces the file ($(sqlite3 "$J" "select hook_result from uploads where remote='upper' and state='done' limit 1"))" ||
	fail "exec ok" "$(cat "$T/store/upper/f.txt")"
[ "$(cat "$T/store/crash/f.txt")" = "hello hooks" ] &&
	sqlite3 "$J" "select hook_result from uploads where remote='crash'" | grep -q "signal 11: about to crash" &&
	pass "a crashing hook: original uploaded, journal says 'died of signal 11' with its output" ||
	fail "exec crash" "$(sqlite3 "$J" "select hook_result from uploads where remote='crash'")"
[ "$(cat "$T/store/hang/f.txt")" = "hello hooks" ] && [ $(($(date +%s) - t0)) -lt 20 ] &&
	sqlite3 "$J" "select hook_result from uploads where remote='hang'" | grep -q "killed after 2 s" &&
	pass "a hanging hook is killed after hook_timeout; original uploaded" ||
	fail "exec hang" "$(sqlite3 "$J" "select hook_result from uploads where remote='hang'")"
o=$(identify -format '%[orientation] %w %h' "$T/store/strip/oriented.jpg")
[ "$o" = "TopLeft 450 600" ] && [ "$(convert "$T/store/strip/oriented.jpg" icc:- | wc -c)" -gt 1000 ] &&
	! grep -q SecretCam "$T/store/strip/oriented.jpg" &&
	pass "strip_metadata + max_dimension: rotated upright into 450x600, XMP gone, ICC kept" ||
	fail "strip" "$o; $(grep -c SecretCam "$T/store/strip/oriented.jpg") XMP"
pgrep -f "$T/bin/hang" >/dev/null && fail "hang" "the hook process is still running" || pass "no hook process left behind"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- a hook that changes the size, its upload sent at the unmount: the
# kernel was told the new size through the FUSE session after it was
# freed (a review: a use after free, a notice written to whatever the
# session's descriptor number had become)
cat >"$T/bin/grow" <<'EOS'
#!/bin/sh
cat "$1" >"$2" && echo "grown by the hook" >>"$2"
EOS
chmod +x "$T/bin/grow"
mkdir -p "$T/store/grow"
printf '[grow]\ntype = local\npath = %s\non_write = exec:%s {in} {out}\n' "$T/store/grow" "$T/bin/grow" >"$T/g.conf"
: >"$T/grow.log"
mount_fs "$T/grow.log" "$MNT" -o config="$T/g.conf",cache_dir="$T/cache-g",journal="$T/g.db",upload_delay=600000 ||
	{ fail mount "mediafs did not mount"; exit 1; }
echo "sent at the unmount" >"$MNT/grow/late.txt"
umount_fs "$T/grow.log" "$MNT"
check "a size-changing hook's upload drained at the unmount: the daemon exits cleanly" \
	[ $? = 0 ]
# (libfuse is not instrumented: its write to the closed descriptor shows
# as "fuse: writing device: Bad file descriptor")
no_asan() { ! grep -q "AddressSanitizer\|runtime error\|fuse: writing device" "$T/grow.log"; }
check "and nothing is told to the freed session" no_asan
check "and the hook's output is stored" grep -q "grown by the hook" "$T/store/grow/late.txt"

printf '[x]\ntype = local\npath = %s\non_write = exec:relative/tool {in} {out}\n' "$T/store" >"$T/bad.conf"
"$MEDIAFS" -f -o config="$T/bad.conf",cache_dir="$T/c9" x: "$MNT" 2>"$T/err" && fail "bad hook" "mounted" ||
	{ grep -q "needs an absolute path" "$T/err" && pass "a relative hook path is a config error" || fail "bad hook" "$(cat "$T/err")"; }
