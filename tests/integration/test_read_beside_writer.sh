#!/bin/bash
# A reader reads what another descriptor of the file writes (POSIX), and
# one descriptor never mixes two versions of an object; found by a review: a read-only open beside a descriptor open for writing that
# had not written yet read the writer's empty staging file (0 bytes: EOF
# to the kernel, which then showed the file's size as 0), and a reader
# opened beside a writer kept the old bytes once a write after the upload
# went on in a copy of the staging file; and a descriptor open while the
# object was replaced on the server read old, new and mixed megabytes once
# another descriptor read the new version (the kernel's page cache is the
# inode's).
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" besw
s3 mkbucket besw
head -c 3000000 /dev/urandom >"$T/big"
s3 put besw a.bin "$T/big"
s3 put besw b.bin "$T/big"
head -c 4000000 /dev/urandom >"$T/old"
head -c 4000000 /dev/urandom >"$T/new"
s3 put besw v.bin "$T/old"
want=$(md5sum <"$T/big" | cut -c1-32)
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$T/journal.db" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
S=$MNT

# a descriptor open for writing (read-write, append), nothing written yet
exec 3<>"$S/a.bin"
got=$(md5sum <"$S/a.bin" | cut -c1-32)
size=$(stat -c %s "$S/a.bin")
exec 3>&-
[ "$got" = "$want" ] && [ "$size" = 3000000 ] &&
	pass "a reader beside a read-write descriptor that wrote nothing: the object's 3,000,000 bytes" ||
	fail "reader beside an idle writer" "md5 $got (want $want), size after the read $size"
exec 3>>"$S/b.bin"
got=$(md5sum <"$S/b.bin" | cut -c1-32)
exec 3>&-
[ "$got" = "$want" ] && pass "the same beside an O_APPEND descriptor" ||
	fail "reader beside an idle appender" "md5 $got (want $want)"

# emptied by a second open (O_TRUNC) beside a descriptor that wrote
# nothing: the old bytes do not come back at the next write (review)
exec 3<>"$S/b.bin"
echo x >"$S/b.bin"
got=$(cat "$S/b.bin")
exec 3>&-
[ "$got" = x ] && pass "echo x > f beside an idle read-write descriptor: f holds x" ||
	fail "truncate beside an idle writer" "f holds $(printf '%s' "$got" | head -c 40 | od -c | head -2)"

# a write, its upload landed, a reader opened, then another write (on a
# copy of the staging file, the first one being the upload's)
out=$("$SYS_PY" - "$S/c.txt" <<'EOP'
import os, sys
p = sys.argv[1]
w = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(w, b'A' * 4096, 0)
os.fsync(w)                      # on the store now
r = os.open(p, os.O_RDONLY)
first = os.pread(r, 4096, 0)[:1]
os.pwrite(w, b'B' * 4096, 0)
second = os.pread(r, 4096, 0)[:1]
os.pwrite(w, b'C' * 10, 4096)    # and growing it
third = os.pread(r, 8192, 0)
os.close(w)
print(first.decode(), second.decode(), len(third), third[-1:].decode())
os.close(r)
EOP
)
[ "$out" = "A B 4106 C" ] &&
	pass "a reader opened beside a writer reads each later write (A, then B, then 4,106 bytes ending in C)" ||
	fail "reader follows the writer" "read: $out (want A B 4106 C)"
wait_uploads "$T/journal.db" || fail uploads "pending"
cw=$({ head -c 4096 /dev/zero | tr '\0' B; head -c 10 /dev/zero | tr '\0' C; } | md5sum | cut -c1-32)
s3 manifest besw "" | grep -q "^c.txt	4106	$cw" && pass "the store holds the last write" ||
	fail "store" "$(s3 manifest besw "" | grep c.txt) (want 4106 bytes, md5 $cw)"
# H reads MiB 0 of the old version, cat caches it all, the object is
# replaced outside and refreshed, N reads MiB 1 (the new version), then H
# reads on: old bytes (or ESTALE), never new ones
out=$(LIB_DIR=$LIB_DIR "$SYS_PY" - "$S/v.bin" "$T/old" "$T/new" <<'EOP'
import os, subprocess, sys
p, old, new = sys.argv[1], open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read()
M = 1 << 20
def which(b, off):
    return ' '.join('old' if b[i:i + M] == old[off + i:off + i + M] else
                    'new' if b[i:i + M] == new[off + i:off + i + M] else 'mixed'
                    for i in range(0, len(b), M))
h = os.open(p, os.O_RDONLY)
first = which(os.pread(h, M, 0), 0)
subprocess.run(['cat', p], stdout=subprocess.DEVNULL, check=True)
subprocess.run(['/usr/bin/python3', '-I', '-S', os.environ['LIB_DIR'] + '/s3d.py',
                os.environ['T'] + '/.s3d.sock', os.environ['MFS_S3D_OWNER'],
                '--port', os.environ['S3_PORT'], 'put', 'besw', 'v.bin', sys.argv[3]],
               check=True, stdout=subprocess.DEVNULL)
os.setxattr(p, 'user.mediafs.refresh', b'1')
n = os.open(p, os.O_RDONLY)
nread = which(os.pread(n, M, M), M)
os.close(n)
try:
    rest = which(os.pread(h, 3 * M, M), M)
except OSError as e:
    rest = 'error ' + e.strerror
os.close(h)
fresh = 'new' if open(p, 'rb').read() == new else 'not new'
print('%s | %s | %s | %s' % (first, nread, rest, fresh))
EOP
)
case "$out" in
"old | new | old old old | new"|"old | new | error Stale file handle | new"|"old | new | error "*" | new")
	pass "a descriptor open while the object was replaced (another read the new version): old bytes only ($out)" ;;
*) fail "versions mixed in one descriptor" "H first | N | H's rest | a fresh open: $out" ;;
esac
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail unmount "see $LOG"
