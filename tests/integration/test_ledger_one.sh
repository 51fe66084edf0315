#!/bin/bash
# The ledger on one host (issue #19): 'mediactl load / work / hosts' on the
# SQLite journal, the same SQL as on PostgreSQL but the claim without SKIP
# LOCKED. 30 files through one mount; a second load changes nothing; a
# second worker finds nothing left; every object on the store once. Then
# the limits on a ledger file of its own (--ledger PATH): a plan's global
# rate across two workers, a worker's bandwidth cap, verify --ledger.
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

# ---- limits, on a ledger file of its own (--ledger PATH, created): the
# plan's global rate (held in the ledger, on its clock) for two workers
# together, one worker's bandwidth cap; then verify against that ledger,
# before and after two objects go wrong behind its back. Lower bounds on
# time only (a loaded machine is slower, never faster).
L=$T/limits.db
R=8 M=24 BW=16384
"$SYS_PY" - "$T/one.plan" "$MNT" "$M" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
mnt, m = sys.argv[2], int(sys.argv[3])
for name, part in (("rate", lines[1:1 + m]), ("bw", lines[1 + m:])):
    with open(sys.argv[1].replace("one.plan", name + ".plan"), "w") as f:
        print(json.dumps({"mediactl_plan": 1, "from": mnt + "/src", "to": mnt + "/s3t/" + name}), file=f)
        print("\n".join(part), file=f)
PY
NB=$((30 - M))
out=$("$MEDIACTL" --ledger "$L" load "$T/rate.plan" --rate "$R" 2>&1)
check "load --rate: $M entries at most $R files/s" grep -q "$M entries queued.*at most $R files/s" <<<"$out"
for i in 1 2; do
	"$MEDIACTL" --config "$T/m.conf" work --ledger "$L" --plan rate --host "rate$i" \
		--threads 2 --batch 2 >"$T/rate$i.log" 2>&1 &
	eval "rw$i=\$!"
done
wait "$rw1"; r1=$?
wait "$rw2"; r2=$?
st=$(sqlite3 "$L" "select state || '=' || count(*) from ledger_entries where plan='rate' group by state")
span=$(sqlite3 "$L" "select round(max(finished_at) - min(claimed_at), 2) from ledger_entries where plan='rate'")
per=$(sqlite3 "$L" "select host || ':' || count(*) from ledger_entries where plan='rate' group by host order by host" | tr '\n' ' ')
if [ $r1 = 0 ] && [ $r2 = 0 ] && [ "$st" = "done=$M" ] &&
	awk -v s="$span" -v m="$M" -v r="$R" 'BEGIN {exit !(s >= (m - 1) / r)}'; then
	pass "global rate $R files/s: $M files ($per) took $span s on the ledger's clock (>= ($M - 1) / $R s)"
else
	fail "global rate" "exit $r1/$r2, $st, $span s for $M files at $R/s: $(tail -2 "$T/rate1.log")"
fi
out=$("$MEDIACTL" --ledger "$L" load "$T/bw.plan" 2>&1)
check "load: $NB entries for the bandwidth cap" grep -q "$NB entries queued" <<<"$out"
"$MEDIACTL" --ledger "$L" --config "$T/m.conf" work --plan bw --host bw1 --threads 2 \
	--bwlimit 16K >"$T/bw.log" 2>&1
rc=$?
IFS='|' read -r span bb bmax n < <(sqlite3 "$L" "select round(max(finished_at) - min(claimed_at), 2), sum(size), max(size), count(*) from ledger_entries where plan='bw' and state='done'")
if [ $rc = 0 ] && [ "$n" = "$NB" ] &&
	awk -v s="$span" -v b="$bb" -v m="$bmax" -v r="$BW" 'BEGIN {exit !(s >= (b - m) / r)}'; then
	pass "--bwlimit 16K: $NB files, $bb bytes took $span s (>= (bytes - largest file) / cap = $(((bb - bmax) / BW)) s)"
else
	fail "bandwidth cap" "exit $rc, $n files, $span s for $bb bytes (largest $bmax) at $BW B/s: $(tail -2 "$T/bw.log")"
fi
out=$("$MEDIACTL" --ledger "$L" --config "$T/m.conf" verify 2>&1)
rc=$?
[ $rc = 0 ] && grep -q "30 done entries checked on the store: 30 as recorded, 0 wrong; 0 entries not done" <<<"$out" &&
	pass "verify --ledger: 30 objects as recorded, exit 0" || fail "verify" "exit $rc: $(tail -3 <<<"$out")"
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
# two objects go wrong behind the ledger's back: one deleted, one replaced
k1=$(sqlite3 "$L" "select dst_key from ledger_entries where plan='rate' order by seq limit 1")
k2=$(sqlite3 "$L" "select dst_key from ledger_entries where plan='bw' order by seq desc limit 1")
s3 delete one "$k1"
head -c 1234 /dev/urandom >"$T/other"
s3 put one "$k2" "$T/other"
out=$("$MEDIACTL" --config "$T/m.conf" verify --ledger "$L" 2>&1)
rc=$?
echo "$out" | grep -E "wrong|verify:" | sed 's/^/  /'
[ $rc = 1 ] && grep -q "30 done entries checked on the store: 28 as recorded, 2 wrong" <<<"$out" &&
	grep -q "wrong: s3t:$k1 .*missing on the store" <<<"$out" && grep -q "wrong: s3t:$k2 .*etag" <<<"$out" &&
	pass "verify --ledger: a deleted and a replaced object listed, exit 1" ||
	fail "verify finds what is wrong" "exit $rc: $(tail -4 <<<"$out")"
