#!/bin/bash
# The ledger on one host (issue #19): 'mediactl load / work / hosts' on the
# SQLite journal, the same SQL as on PostgreSQL but the claim without SKIP
# LOCKED. 30 files through one mount; a second load changes nothing; a
# second worker finds nothing left; every object on the store once.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
s3 mkbucket one
"$SYS_PY" - "$T/src" <<'PY'
import os, random, sys
rnd = random.Random(7)
for i in range(30):
    d = os.path.join(sys.argv[1], 'd%d' % (i % 3))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%02d.bin' % i), 'wb') as f:
        f.write(rnd.randbytes(rnd.randint(1, 30000)))
PY
write_conf "$T/m.conf" one "
[src]
type = local
path = $T/src"
"$SYS_PY" - "$T/src" "$MNT" >"$T/one.plan" <<'PY'
import json, os, sys
top, mnt = sys.argv[1], sys.argv[2]
print(json.dumps({"mediactl_plan": 1, "from": mnt + "/src", "to": mnt + "/s3t/out"}))
for d, _, fs in sorted(os.walk(top)):
    for f in sorted(fs):
        rel = os.path.relpath(os.path.join(d, f), top)
        print(json.dumps({"src": rel, "dst": rel, "size": os.path.getsize(os.path.join(d, f))}))
PY
J=$T/one.db
mount_fs "$T/one.log" "$MNT" -o config="$T/m.conf",cache_dir="$T/c1",journal="$J" ||
	{ fail mount "could not mount"; exit 1; }
mark=$(req_mark)
out=$("$MEDIACTL" --journal "$J" load "$T/one.plan" 2>&1)
check "load: 30 entries queued" grep -q "30 entries queued" <<<"$out"
out=$("$MEDIACTL" --journal "$J" load "$T/one.plan" 2>&1)
check "load again changes nothing" grep -q "nothing changed" <<<"$out"
"$MEDIACTL" --journal "$J" --config "$T/m.conf" work --host solo --threads 2 >"$T/one.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "30 files (30 uploaded" "$T/one.out" && pass "work: 30 files uploaded, exit 0" ||
	fail "work" "exit $rc: $(tail -2 "$T/one.out")"
"$MEDIACTL" --journal "$J" --config "$T/m.conf" work --host late >"$T/two.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q ": 0 files" "$T/two.out" && pass "a second worker finds nothing left" ||
	fail "second worker" "exit $rc: $(tail -2 "$T/two.out")"
umount_fs "$T/one.log" "$MNT" || fail "unmount" "see $T/one.log"
tree_manifest "$T/src" >"$T/want"
s3 manifest one out/ >"$T/have"
cmp -s "$T/want" "$T/have" && pass "store: the 30 objects, right size and MD5" ||
	fail "store" "$(diff "$T/want" "$T/have" | head -3)"
n=$(req_since "$mark" '^PUT /one/out/.*[^/] 2')
[ "$n" = 30 ] && pass "30 PUTs for 30 files" || fail "PUTs" "$n, want 30"
out=$("$MEDIACTL" --journal "$J" hosts 2>&1)
check "hosts: 30 done" grep -q "30 entries: 30 done, 0 failed, 0 claimed, 0 queued" <<<"$out"
check "hosts: solo finished with 30 files" grep -qE "host solo +finished +30 files" <<<"$out"
n=$(sqlite3 "$J" "select count(*) from ledger_entries where state='done' and dst_remote='s3t' and dst_key like 'out/%'")
[ "$n" = 30 ] && pass "ledger rows name remote and key" || fail "ledger rows" "$n"
