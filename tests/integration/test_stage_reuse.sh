#!/bin/bash
# Spare staging files (core/stage.c): once a file is on the store its
# staging file is emptied and kept for the next file written -- but only
# when nothing else has it open. Through the mount, with real descriptors:
# a writer that keeps its descriptor after an fsync uploaded the file, and a
# reader opened before the upload landed, both still read the bytes they
# had while later files are written and uploaded; a landed file nobody
# holds leaves a spare that the next create takes (the same inode, a new
# name), and that file's bytes reach the store and read back.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
write_conf "$CONF" sreuse
s3 mkbucket sreuse
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",journal="$J" s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }
STAGE=$(find "$T/cache" -maxdepth 2 -type d -name staging | head -1)
[ -d "$STAGE" ] || { fail "staging" "no staging directory under $T/cache"; exit 1; }

mkdir -p "$T/exp"
"$SYS_PY" - "$MNT" "$T/exp" "$J" "$STAGE" <<'PY' >"$T/py.out" 2>&1
import os, sqlite3, sys, time
mnt, exp, jpath, stage = sys.argv[1:5]

def landed(key, secs=60):
    """until the journal has key done (its upload on the store)"""
    end = time.time() + secs
    while time.time() < end:
        try:
            c = sqlite3.connect(jpath, timeout=5)
            n = c.execute("select count(*) from uploads where key like ? "
                          "and state='done'", ('%' + key,)).fetchone()[0]
            c.close()
            if n:
                return True
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    return False

def keep(name, data):
    with open(os.path.join(exp, name), 'wb') as f:
        f.write(data)

def spares():
    return sorted(os.stat(os.path.join(stage, n)).st_ino
                  for n in os.listdir(stage) if n.startswith('sp-'))

def put(name, data):
    keep(name, data)
    with open(os.path.join(mnt, name), 'wb') as f:
        f.write(data)

def churn(tag):
    """files written and landed one by one: each leaves a spare the next
    one takes"""
    for i in range(6):
        name = '%s%d' % (tag, i)
        put(name, os.urandom(150000 + i))
        if not landed(name):
            return False
    return True

out = []
# 1. a writer keeps its descriptor after the fsync that uploaded the file
a = os.urandom(300000)
keep('a', a)
fa = os.open(os.path.join(mnt, 'a'), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fa, a)
os.fsync(fa)
out.append('a landed %s' % landed('a', 5))
out.append('churn1 %s' % churn('b'))
out.append('writer reads its bytes %s' % (os.pread(fa, len(a) + 10, 0) == a))
os.close(fa)

# 2. a reader opened before the upload landed (its writer closed)
c = os.urandom(250000)
keep('c', c)
fw = os.open(os.path.join(mnt, 'c'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fw, c)
fr = os.open(os.path.join(mnt, 'c'), os.O_RDONLY)
os.close(fw)
os.fsync(fr)            # waits for the upload of c
out.append('c landed %s' % landed('c', 5))
out.append('churn2 %s' % churn('d'))
out.append('reader reads its bytes %s' % (os.pread(fr, len(c) + 10, 0) == c))
os.close(fr)

# 3. a spare is taken by the next create: same inode, a new name
put('e', os.urandom(120000))
ok = landed('e')
sp = spares()
fe = os.open(os.path.join(mnt, 'f'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
ups = {os.stat(os.path.join(stage, n)).st_ino for n in os.listdir(stage)
       if n.startswith('up-')}
f = os.urandom(123457)
keep('f', f)
os.write(fe, f)
os.close(fe)
out.append('spare reused %s (spares %d, taken %s)' %
           (ok and len(sp) >= 1 and sp[-1] in ups, len(sp),
            bool(set(sp) & ups)))
out.append('f landed %s' % landed('f'))
print('\n'.join(out))
PY
cat "$T/py.out" | sed 's/^/  (/; s/$/)/'
grep -q '^a landed True$' "$T/py.out" && grep -q '^churn1 True$' "$T/py.out" &&
	grep -q '^writer reads its bytes True$' "$T/py.out" &&
	pass "a writer holding its descriptor after the fsync that uploaded the file reads its own bytes while 6 more files are written and uploaded" ||
	fail "writer" "$(tr '\n' ' ' <"$T/py.out")"
grep -q '^c landed True$' "$T/py.out" && grep -q '^churn2 True$' "$T/py.out" &&
	grep -q '^reader reads its bytes True$' "$T/py.out" &&
	pass "a reader opened before the upload landed reads the same bytes after 6 more files are written and uploaded" ||
	fail "reader" "$(tr '\n' ' ' <"$T/py.out")"
grep -q '^spare reused True' "$T/py.out" && grep -q '^f landed True$' "$T/py.out" &&
	pass "a landed file nobody holds leaves a spare; the next create takes it (same inode, a new name)" ||
	fail "spare" "$(tr '\n' ' ' <"$T/py.out")"

# the store and the mount hold every file's own bytes
(cd "$T/exp" && for f in *; do printf '%s\t%s\t%s\n' "$f" "$(stat -c %s "$f")" "$(md5sum <"$f" | cut -d' ' -f1)"; done) | sort >"$T/want"
s3 manifest sreuse "" | sort >"$T/store"
bad=
for f in "$T"/exp/*; do cmp -s "$f" "$MNT/$(basename "$f")" || bad="$bad $(basename "$f")"; done
cmp -s "$T/want" "$T/store" && [ -z "$bad" ] &&
	pass "store and mount: all $(wc -l <"$T/want") files byte for byte" ||
	fail "contents" "store: $(diff "$T/want" "$T/store" | tr '\n' ' '); mount differs:$bad"
umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
