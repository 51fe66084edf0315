#!/bin/bash
# The ledger's PostgreSQL restarts mid-copy (issue #19): a 16-file plan
# copied by 'mediactl work' through one mount whose journal is the same
# PostgreSQL. The first files' uploads are held at a fault proxy (the
# worker's threads wait in fsync: a state, not a race); the throwaway
# cluster is restarted (pg_ctl restart -m fast: every connection ends);
# the uploads are let go. The daemon's journal write for each held upload
# and the worker's ledger statements meet a dead connection: both
# reconnect (logged) and send the statement again. Checked: the worker
# exits 0, every entry done, no journal row pending, every object on the
# store with its bytes, each key PUT once.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/pg.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
N=16
pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$T/control"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$T/control" >"$T/proxy.out" 2>&1 &
proxy=$!
trap 'cleanup_mounts; kill $proxy 2>/dev/null; pg_stop' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
s3 mkbucket pgr
export MFS_JPW=$PG_PASS
J="postgres://mediafs@127.0.0.1:$PG_PORT/postgres"
poll() {	# poll SECONDS COMMAND...: until COMMAND succeeds
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
nheld() { [ "$(grep -c -- held- "$T/control.held" 2>/dev/null)" -ge "$1" ]; }
"$SYS_PY" - "$T/src" "$N" <<'PY'
import os, random, sys
rnd = random.Random(1919)
n = int(sys.argv[2])
for i in range(n):
    d = os.path.join(sys.argv[1], 'a' if i < 4 else 'b')
    os.makedirs(d, exist_ok=True)
    name = ('held-%02d.bin' if i < 4 else 'f%02d.bin') % i
    with open(os.path.join(d, name), 'wb') as f:
        f.write(rnd.randbytes(rnd.randint(500, 40000)))
PY
S3_PORT=$PPORT write_conf "$T/r.conf" pgr "
[src]
type = local
path = $T/src"
"$SYS_PY" - "$T/src" "$T/mnt" >"$T/r.plan" <<'PY'
import json, os, sys
top, mnt = sys.argv[1], sys.argv[2]
print(json.dumps({"mediactl_plan": 1, "from": mnt + "/src", "to": mnt + "/s3t/out"}))
for d, _, fs in sorted(os.walk(top)):
    for f in sorted(fs):
        rel = os.path.relpath(os.path.join(d, f), top)
        print(json.dumps({"src": rel, "dst": rel, "size": os.path.getsize(os.path.join(d, f))}))
PY
mount_fs "$T/r.log" "$T/mnt" -o config="$T/r.conf",cache_dir="$T/cache",journal="$J",journal_password=env:MFS_JPW,host_id=hostR ||
	{ fail mount "could not mount"; exit 1; }
mctl() { "$MEDIACTL" --journal "$J" --journal-password env:MFS_JPW --config "$T/r.conf" "$@"; }
out=$(mctl load "$T/r.plan" 2>&1)
check "load: $N entries queued" grep -q "$N entries queued" <<<"$out"
mark=$(req_mark)
: >"$T/control.held"
echo "hold_key=held-" >"$T/control"
mctl work --host hostR --threads 2 --batch 2 >"$T/work.out" 2>&1 &
wpid=$!
if poll 60 nheld 1; then
	pass "mid-copy: the first uploads held at the proxy ($(grep -c held- "$T/control.held"))"
else
	fail "held uploads" "none reached the proxy: $(tail -3 "$T/work.out")"
fi
t0=$SECONDS
if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 restart >"$T/restart.log" 2>&1; then
	pass "pg_ctl restart -m fast mid-copy ($((SECONDS - t0)) s)"
else
	fail "restart" "$(tail -3 "$T/restart.log")"
fi
: >"$T/control"	# the held uploads go on
for i in $(seq 1 1800); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$wpid" 2>/dev/null && { kill "$wpid"; fail "worker" "still running after 180 s"; }
wait "$wpid"
rc=$?
[ $rc = 0 ] && grep -q "$N files ($N uploaded" "$T/work.out" &&
	pass "the worker carried on and finished: $N files uploaded, exit 0" ||
	fail "worker" "exit $rc: $(tail -3 "$T/work.out")"
grep -q "reconnected" "$T/work.out" && pass "the worker reconnected: $(grep -m1 reconnected "$T/work.out")" ||
	fail "worker reconnect" "not logged: $(grep -i postgres "$T/work.out" | tail -2)"
grep -q "reconnected" "$T/r.log" && pass "the daemon reconnected: $(grep -m1 reconnected "$T/r.log")" ||
	fail "daemon reconnect" "not logged: $(grep -i postgres "$T/r.log" | tail -2)"
st=$(psql_ -c "select state || '=' || count(*) from ledger_entries group by state")
[ "$st" = "done=$N" ] && pass "ledger: $N entries done" || fail "ledger" "$st"
np=$(psql_ -c "select count(*) from uploads where state='pending'")
nd=$(psql_ -c "select count(distinct key) from uploads where state='done' and key like 'out/%' and key not like '%/'")
[ "$np" = 0 ] && [ "$nd" = $N ] && pass "journal: $nd keys done, 0 pending (no journal write dropped)" ||
	fail "journal" "$np pending, $nd keys done"
umount_fs "$T/r.log" "$T/mnt" || fail "unmount" "see $T/r.log"
tree_manifest "$T/src" >"$T/want"
s3 manifest pgr out/ | awk -F'\t' '$1 !~ /\/$/' >"$T/have"
cmp -s "$T/want" "$T/have" && pass "store: the $N objects, right size and MD5" ||
	fail "store" "$(diff "$T/want" "$T/have" | head -3)"
puts=$(tail -n +"$((mark + 1))" "$S3_REQLOG" | grep -E '^PUT /pgr/out/.*[^/] 2' | awk '{print $2}')
n=$(grep -c . <<<"$puts")
u=$(sort -u <<<"$puts" | grep -c .)
[ "$n" = $N ] && [ "$u" = $N ] && pass "$N PUTs for $N keys: no upload twice" ||
	fail "PUTs" "$n PUTs of $u keys, want $N of $N"
echo "  ($SECONDS s)"
