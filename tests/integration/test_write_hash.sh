#!/bin/bash
# The hashes an upload sends and records (Content-MD5, the payload's
# SHA-256, the journal's sha256) are computed while a file is written when
# its bytes come strictly in order from offset 0, and by a pass over the
# staged file otherwise. Each pattern below writes through one handle (or
# two), and the server's MD5 and the journal's SHA-256 must be those of
# the bytes written: in-order writes, an overwrite, a hole, truncates to
# another and to the same size, O_APPEND, more writes after an fsync
# uploaded the file, two handles interleaved.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
write_conf "$CONF" whash
s3 mkbucket whash
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

# Each case writes MNT/NAME and the same bytes to T/exp/NAME.
mkdir -p "$T/exp"
"$SYS_PY" - "$MNT" "$T/exp" <<'PY' >"$T/py.out" 2>&1
import os, sys
mnt, exp = sys.argv[1], sys.argv[2]
rnd = os.urandom(3 << 20)

def both(name, fn, flags=0):
    for d in (mnt, exp):
        fd = os.open(os.path.join(d, name),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o644)
        fn(fd)
        os.close(fd)

def seq(fd):            # in order from 0, 128 KiB at a time, 2.5 MiB
    for off in range(0, 5 << 19, 1 << 17):
        os.pwrite(fd, rnd[off:off + (1 << 17)], off)

def overwrite(fd):      # in order, then bytes 10..19 again
    seq(fd)
    os.pwrite(fd, b'X' * 10, 10)

def hole(fd):           # 1000 bytes, then 500 at 5000
    os.pwrite(fd, rnd[:1000], 0)
    os.pwrite(fd, rnd[1000:1500], 5000)

def shrink(fd):         # in order, cut to 1000, then in order again
    seq(fd)
    os.ftruncate(fd, 1000)
    os.pwrite(fd, rnd[7:707], 1000)

def back_grow(fd):      # in order, 10 bytes at 0 again, grown by truncate
    os.pwrite(fd, rnd[:1000], 0)   # to the count of bytes written
    os.pwrite(fd, b'X' * 10, 0)
    os.ftruncate(fd, 1010)

def cut_regrow(fd):     # in order, cut to 500, grown back to 1000 (zeros)
    os.pwrite(fd, rnd[:1000], 0)
    os.ftruncate(fd, 500)
    os.ftruncate(fd, 1000)

def same(fd):           # in order, truncated to its own size
    os.pwrite(fd, rnd[:70000], 0)
    os.ftruncate(fd, 70000)

def grow(fd):           # in order, extended by truncate, one more write
    os.pwrite(fd, rnd[:70000], 0)
    os.ftruncate(fd, 90000)
    os.pwrite(fd, rnd[:10], 90000)

def append(fd):         # O_APPEND
    for i in range(5):
        os.write(fd, rnd[i * 30000:(i + 1) * 30000])

def after_fsync(fd):    # uploaded by fsync, then more in order
    os.pwrite(fd, rnd[:200000], 0)
    os.fsync(fd)
    os.pwrite(fd, rnd[200000:300000], 200000)

def rewrite(fd):        # uploaded by fsync, then its start rewritten
    os.pwrite(fd, rnd[:200000], 0)
    os.fsync(fd)
    os.pwrite(fd, b'Y' * 100, 0)

both('seq', seq)
both('overwrite', overwrite)
both('hole', hole)
both('shrink', shrink)
both('back_grow', back_grow)
both('cut_regrow', cut_regrow)
both('same', same)
both('grow', grow)
both('append', append, os.O_APPEND)
both('after_fsync', after_fsync)
both('rewrite', rewrite)
# two handles on one new file: in order across both, then one goes back
for d in (mnt, exp):
    p = os.path.join(d, 'two')
    a = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    b = os.open(p, os.O_WRONLY)
    os.pwrite(a, rnd[:4096], 0)
    os.pwrite(b, rnd[4096:8192], 4096)
    os.pwrite(a, rnd[8192:12288], 8192)
    os.pwrite(b, b'Z' * 5, 100)
    os.close(a)
    os.close(b)
print('written')
PY
grep -qx written "$T/py.out" || fail "writes through the mount" "$(tr '\n' ' ' <"$T/py.out")"
wait_uploads "$J" 120 || fail "uploads" "still pending"

for f in seq overwrite hole shrink back_grow cut_regrow same grow append after_fsync rewrite two; do
	md5=$(md5sum <"$T/exp/$f" | cut -d' ' -f1)
	sha=$(sha256sum <"$T/exp/$f" | cut -d' ' -f1)
	smd5=$(s3 manifest whash "$f" | awk -F'\t' '$1 == "" {print $3}')
	jsha=$(sqlite3 "$J" "select sha256 from uploads where key='$f' and state='done' order by id desc limit 1")
	[ "$smd5" = "$md5" ] && [ "$jsha" = "$sha" ] &&
		pass "$f: the server's MD5 and the journal's SHA-256 are the written bytes'" ||
		fail "$f" "server md5 $smd5, want $md5; journal sha256 $jsha, want $sha"
done
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
