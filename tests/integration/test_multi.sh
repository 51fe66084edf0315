#!/bin/bash
# Interface: every remote of the config as a top-level directory, and
# REMOTE:PREFIX mounting only part of a bucket.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
s3 mkbucket multi-a
s3 mkbucket multi-b
echo a1 | s3 put multi-a "photos/2024/a1.jpg" -
echo a2 | s3 put multi-a "photos/2025/a2.jpg" -
echo b1 | s3 put multi-b "b1.png" -
cat >"$T/m.conf" <<EOC
[alpha]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = multi-a
access_key_id = test:tester
secret_access_key = testing

[beta]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = multi-b
access_key_id = test:tester
secret_access_key = testing
EOC
chmod 600 "$T/m.conf"

mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache" ||
	{ fail mount "mediafs did not mount"; exit 1; }
[ "$(ls "$MNT" | tr '\n' ' ')" = "alpha beta " ] && pass "all remotes as top-level directories" ||
	fail "root listing" "$(ls "$MNT")"
[ "$(cat "$MNT/alpha/photos/2025/a2.jpg")" = a2 ] && [ "$(cat "$MNT/beta/b1.png")" = b1 ] &&
	pass "each remote reads from its own bucket" || fail "reads" "wrong content"
ls "$MNT/gamma" >/dev/null 2>&1 && fail "unknown remote dir" "exists" || pass "no directory for an unknown remote"
url=$(getfattr --only-values -n user.mediafs.url "$MNT/beta/b1.png" 2>/dev/null)
[ "$url" = "http://127.0.0.1:$S3_PORT/multi-b/b1.png" ] && pass "URL names the remote's bucket" || fail url "$url"
ls -R "$MNT" >"$T/first"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"

m=$(req_mark)
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache" ||
	{ fail remount "mediafs did not mount"; exit 1; }
ls -R "$MNT" >"$T/second"
cmp -s "$T/first" "$T/second" && [ "$(req_since "$m")" -eq 0 ] &&
	pass "remount of all remotes: same tree, 0 requests" ||
	fail "remount" "$(req_since "$m") requests"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache" alpha:/photos/2024/ ||
	{ fail "prefix mount" "mediafs did not mount"; exit 1; }
[ "$(ls "$MNT")" = a1.jpg ] && [ "$(cat "$MNT/a1.jpg")" = a1 ] &&
	pass "REMOTE:PREFIX mounts only that part of the bucket" || fail "prefix" "$(ls "$MNT")"
url=$(getfattr --only-values -n user.mediafs.url "$MNT/a1.jpg" 2>/dev/null)
[ "$url" = "http://127.0.0.1:$S3_PORT/multi-a/photos/2024/a1.jpg" ] && pass "URL keeps the prefix" ||
	fail "prefix url" "$url"
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
