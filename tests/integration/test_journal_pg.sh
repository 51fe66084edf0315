#!/bin/bash
# The journal in PostgreSQL (issue #19): two mounts on one machine (their
# own configs, caches and staging, -o host_id=hostA / hostB) write to one
# throwaway PostgreSQL journal, the password given as
# journal_password=env:VAR. hostB is killed with kill -9 while its uploads
# are held at the fault proxy (a state, not a race); hostA is remounted
# meanwhile and must not touch hostB's pending rows; hostB's remount
# resumes them. Checked: every file on the store with the right bytes, no
# pending row left, 'mediactl status' against the PostgreSQL journal shows
# both hosts, 'failed' and 'verify' run against it, the password printed
# nowhere.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/pg.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
N=12	# files per host
pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
PPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: >"$T/control"
"$SYS_PY" "$TESTS_DIR/servers/fault_proxy.py" "$PPORT" "$S3_PORT" "$T/control" >"$T/proxy.out" 2>&1 &
proxy=$!
trap 'cleanup_mounts; kill $proxy 2>/dev/null; pg_stop' EXIT
for i in $(seq 1 100); do grep -q ready "$T/proxy.out" && break; sleep 0.1; done
s3 mkbucket pgj
# the password: in the environment, named by the options, never in argv
export MFS_JPW=$PG_PASS
J="postgres://mediafs@127.0.0.1:$PG_PORT/postgres"
S3_PORT=$PPORT write_conf "$T/a.conf" pgj
S3_PORT=$PPORT write_conf "$T/b.conf" pgj
OPTS_A=config=$T/a.conf,cache_dir=$T/cache-a,journal=$J,journal_password=env:MFS_JPW,host_id=hostA
OPTS_B=config=$T/b.conf,cache_dir=$T/cache-b,journal=$J,journal_password=env:MFS_JPW,host_id=hostB
mctl() { "$MEDIACTL" --journal "$J" --journal-password env:MFS_JPW --config "$T/a.conf" "$@"; }
poll() {	# poll SECONDS COMMAND...: until COMMAND succeeds
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
nheld() { [ "$(grep -c -- "$1" "$T/control.held" 2>/dev/null)" -ge "$2" ]; }
pending() { psql_ -c "select count(*) from uploads where state='pending' and mount_id like '$1%'"; }
none_pending() { [ "$(pending '')" = 0 ]; }
echo "  (setup: $SECONDS s)"

mount_fs "$T/a.log" "$T/mnt-a" -o "$OPTS_A" || { fail mount "hostA did not mount"; exit 1; }
PA=$MFS_PID
mount_fs "$T/b.log" "$T/mnt-b" -o "$OPTS_B" || { fail mount "hostB did not mount"; exit 1; }
PB=$MFS_PID
mkdir -p "$T/src"
for i in $(seq 1 $N); do
	head -c $((1000 + i * 997)) /dev/urandom >"$T/src/a$i"
	head -c $((1500 + i * 991)) /dev/urandom >"$T/src/held-b$i"
done
: >"$T/control.held"
echo "hold_key=held-" >"$T/control"
mkdir -p "$T/mnt-a/s3t/a" "$T/mnt-b/s3t/b"
for i in $(seq 1 $N); do cp "$T/src/a$i" "$T/mnt-a/s3t/a/"; done
for i in $(seq 1 $N); do cp "$T/src/held-b$i" "$T/mnt-b/s3t/b/"; done
# hostB's uploads are in flight (held at the proxy), its rows pending
if poll 60 nheld held- 1; then
	pass "hostB's uploads held at the proxy ($(grep -c held- "$T/control.held") in flight)"
else
	fail "held uploads" "none reached the proxy: $(cat "$T/control.held")"
fi
kill -9 "$PB"
wait "$PB" 2>/dev/null
fusermount3 -u -z "$T/mnt-b" 2>/dev/null
# counted once hostB is dead: its rows cannot change any more (the held
# files' and perhaps the folder marker's)
nb=$(pending hostB:)
[ "${nb:-0}" -ge $N ] && pass "the PostgreSQL journal holds hostB's $nb pending rows" ||
	fail "hostB pending rows" "$nb, want at least $N"
# hostA finishes and is remounted: it resumes nothing of hostB's
MFS_PID=$PA
poll 60 eval '[ "$(pending hostA:)" = 0 ]' || fail "hostA uploads" "still pending: $(pending hostA:)"
umount_fs "$T/a.log" "$T/mnt-a" && pass "hostA unmounts cleanly" || fail "hostA unmount" "see $T/a.log"
mount_fs "$T/a.log" "$T/mnt-a" -o "$OPTS_A" || { fail remount "hostA did not mount"; exit 1; }
PA=$MFS_PID
nb2=$(pending hostB:)
[ "$nb2" = "$nb" ] && ! grep -q "resuming" "$T/a.log" &&
	pass "hostA's remount left hostB's $nb2 pending rows alone" ||
	fail "hostA resumed hostB's rows" "pending hostB: $nb -> $nb2; $(grep resuming "$T/a.log")"
# the held requests land (a server that got them before the kill), then
# hostB comes back and finishes its own rows
: >"$T/control"
mount_fs "$T/b.log" "$T/mnt-b" -o "$OPTS_B" || { fail remount "hostB did not mount"; exit 1; }
PB=$MFS_PID
grep -q "resuming $nb uploads" "$T/b.log" && pass "hostB's remount resumes its $nb uploads" ||
	fail "hostB resume" "$(grep -i resum "$T/b.log" | tail -2)"
poll 90 none_pending && pass "no pending row left in the PostgreSQL journal" ||
	fail "pending rows" "$(pending '')"

# every file on the store with its bytes
s3 manifest pgj "" >"$T/store" 2>/dev/null
bad=0
for i in $(seq 1 $N); do
	for f in a/a$i b/held-b$i; do
		want=$(md5sum <"$T/src/${f#*/}" | cut -d' ' -f1)
		got=$(awk -F'\t' -v k="$f" '$1 == k {print $3}' "$T/store")
		[ "$want" = "$got" ] || { bad=$((bad + 1)); echo "  $f: store md5 '$got', want $want" >&2; }
	done
done
[ "$bad" = 0 ] && pass "all $((2 * N)) files on the store with the right bytes" ||
	fail "store" "$bad files missing or wrong"
n=$(psql_ -c "select count(distinct mount_id) from uploads where state='done' and (mount_id like 'hostA:%' or mount_id like 'hostB:%')")
[ "$n" = 2 ] && pass "done rows carry both hosts' mount ids" || fail "mount ids" "$n"

out=$(mctl status 2>&1)
echo "$out" >"$T/mctl.out"
echo "$out" | sed 's/^/  | /'
grep -qE "^hostA:[^ ]+ +0 +$N +0 " <<<"$out" && grep -qE "^hostB:[^ ]+ +0 +$N +0 " <<<"$out" &&
	pass "mediactl status on the PostgreSQL journal: both hosts, $N done each, 0 pending" ||
	fail "status" "no per-host rows"
grep -qE "^s3t +- +0 +$((2 * N)) +0 " <<<"$out" && pass "status: s3t $((2 * N)) done, 0 pending, 0 failed" ||
	fail "status totals" "$(grep s3t <<<"$out")"
js=$(mctl status --json 2>&1)
echo "$js" >>"$T/mctl.out"
"$SYS_PY" -c 'import json,sys; o=json.loads(sys.argv[1]); h=o["hosts"]; assert len(h)==2 and all(x["pending"]==0 for x in h), h' "$js" &&
	pass "status --json: a hosts array with both mounts" || fail "status --json" "$js"
out=$(mctl failed 2>&1)
echo "$out" >>"$T/mctl.out"
grep -q "^0 failed uploads" <<<"$out" && pass "mediactl failed on the PostgreSQL journal: 0" || fail "failed" "$out"
out=$(mctl verify 2>&1)
rc=$?
echo "$out" >>"$T/mctl.out"
[ $rc = 0 ] && pass "mediactl verify on the PostgreSQL journal: $(tail -1 <<<"$out")" ||
	fail "verify" "exit $rc: $(tail -3 <<<"$out")"
out=$(mctl rollback --label none --dry-run 2>&1)
grep -q "^dry run: would have 0 deleted" <<<"$out" && pass "rollback --dry-run on the PostgreSQL journal: nothing of label none" ||
	fail "rollback on PostgreSQL" "$out"

MFS_PID=$PB
umount_fs "$T/b.log" "$T/mnt-b" || fail "hostB unmount" "see $T/b.log"
MFS_PID=$PA
umount_fs "$T/a.log" "$T/mnt-a" || fail "hostA unmount" "see $T/a.log"
# a wrong password: refused, and said so without the password
"$MEDIACTL" --journal "postgres://mediafs:not-$$-it@127.0.0.1:$PG_PORT/postgres" status >>"$T/mctl.out" 2>&1 &&
	fail "wrong password" "status succeeded"
grep -q "not-$$-it" "$T/mctl.out" && fail "wrong password" "printed"
if grep -qF -- "$PG_PASS" "$T/a.log" "$T/b.log" "$T/mctl.out"; then
	fail "password" "printed: $(grep -lF -- "$PG_PASS" "$T/a.log" "$T/b.log" "$T/mctl.out")"
else
	pass "the password is in no log and no mediactl output ($(wc -l <"$T/mctl.out") lines read)"
fi
echo "  ($SECONDS s)"
