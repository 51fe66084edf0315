#!/bin/bash
# The shared ledger read and acted on from a third host (issue #19): a
# 24-file plan in a throwaway PostgreSQL ledger (the daemons' journal too)
# copied by two workers, each with its own mount, config, cache and
# -o host_id; then a third "host" with a work directory of its own, no
# mount and only the ledger's URL (its config names the store, for verify
# and rollback) runs status, report, verify, rewrite map (an application
# table in PostgreSQL: old URL -> new URL, from the ledger's pairs), the
# rewrite's rollback (the table byte for byte as before) and rollback
# --label (every uploaded object deleted, each recorded).
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/pg.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
N=24
CDN=https://cdn.example.test/m
pg_start "$T/pg" || { fail "postgresql" "the throwaway cluster did not start"; exit 1; }
trap 'cleanup_mounts; pg_stop' EXIT
s3 mkbucket lrw
export MFS_JPW=$PG_PASS
J="postgres://mediafs@127.0.0.1:$PG_PORT/postgres"
APPDB="host=$PG_SOCK port=$PG_PORT dbname=postgres user=mediafs"
"$SYS_PY" - "$T/src" "$N" <<'PY'
import os, random, sys
rnd = random.Random(19)
for i in range(int(sys.argv[2])):
    d = os.path.join(sys.argv[1], 'd%d' % (i % 3))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'p%02d.jpg' % i), 'wb') as f:
        f.write(rnd.randbytes(rnd.randint(100, 20000)))
PY
for h in a b; do
	write_conf "$T/$h.conf" lrw "public_url = $CDN
[src]
type = local
path = $T/src"
done
mkdir -p "$T/third"
write_conf "$T/third/mediafs.conf" lrw "public_url = $CDN"
"$SYS_PY" - "$T/src" "$T/mnt-a" >"$T/photos.plan" <<'PY'
import json, os, sys
top, mnt = sys.argv[1], sys.argv[2]
print(json.dumps({"mediactl_plan": 1, "from": mnt + "/src", "to": mnt + "/s3t/out", "label": "photos"}))
for d, _, fs in sorted(os.walk(top)):
    for f in sorted(fs):
        rel = os.path.relpath(os.path.join(d, f), top)
        print(json.dumps({"src": rel, "dst": rel, "size": os.path.getsize(os.path.join(d, f))}))
PY
for h in a b; do
	H=$(tr a-z A-Z <<<"$h")
	mount_fs "$T/$h.log" "$T/mnt-$h" -o config="$T/$h.conf",cache_dir="$T/cache-$h",journal="$J",journal_password=env:MFS_JPW,host_id=host$H,label=photos ||
		{ fail mount "host$H did not mount"; exit 1; }
	eval "P$H=\$MFS_PID"
done
mctl() { "$MEDIACTL" --journal "$J" --journal-password env:MFS_JPW "$@"; }
out=$(mctl load "$T/photos.plan" 2>&1)
check "load: $N entries queued" grep -q "$N entries queued" <<<"$out"
# the application's table: every source's URL, and two rows of others
psql_ -c "create table photos(id integer primary key, url text, note text)"
"$SYS_PY" - "$T/photos.plan" "$T/src" >"$T/photos.sql" <<'PY'
import json, sys, urllib.parse
lines = open(sys.argv[1]).read().splitlines()[1:]
q = lambda s: "'" + s.replace("'", "''") + "'"
for i, l in enumerate(lines):
    rel = json.loads(l)["src"]
    url = "file://" + urllib.parse.quote(sys.argv[2]) + "/" + urllib.parse.quote(rel)
    print("insert into photos values (%d, %s, 'n%d');" % (i + 1, q(url), i))
print("insert into photos values (900, 'https://elsewhere.example/x.jpg', 'keep');")
print("insert into photos values (901, NULL, 'empty');")
PY
psql_ -f "$T/photos.sql" >/dev/null
psql_ -c "select id, url, note from photos order by id" >"$T/before"

# two workers, one a host, at once (each through its own mount)
for h in a b; do
	H=$(tr a-z A-Z <<<"$h")
	mctl --config "$T/$h.conf" work --host "host$H" --threads 2 --batch 2 \
		--from "$T/mnt-$h/src" --to "$T/mnt-$h/s3t/out" >"$T/work-$h.out" 2>&1 &
	eval "W$H=\$!"
done
wait "$WA"; ra=$?
wait "$WB"; rb=$?
na=$(psql_ -c "select count(*) from ledger_entries where host='hostA' and state='done'")
nb=$(psql_ -c "select count(*) from ledger_entries where host='hostB' and state='done'")
[ $ra = 0 ] && [ $rb = 0 ] && [ $((na + nb)) = $N ] &&
	pass "two workers: $N entries done (hostA $na, hostB $nb), exit 0" ||
	fail "workers" "exit $ra/$rb, done $na + $nb: $(tail -2 "$T/work-a.out" "$T/work-b.out")"
for h in a b; do
	H=$(tr a-z A-Z <<<"$h")
	eval "MFS_PID=\$P$H"
	umount_fs "$T/$h.log" "$T/mnt-$h" || fail "host$H unmount" "see $T/$h.log"
done
n=$(psql_ -c "select count(*) from ledger_entries where state='done' and src_url like 'file://%' and dst_url like '$CDN/out/%'")
[ "$n" = $N ] && pass "the ledger holds each entry's old and new URL ($n)" || fail "ledger URLs" "$n of $N"

# ---- the third host: its own directories, no mount, the ledger's URL
export XDG_CONFIG_HOME=$T/third XDG_STATE_HOME=$T/third/state XDG_CACHE_HOME=$T/third/cache
third() { (cd "$T/third" && "$MEDIACTL" --journal "$J" --journal-password env:MFS_JPW --config "$T/third/mediafs.conf" "$@"); }
out=$(third status 2>&1)
echo "$out" >"$T/third.out"
grep -qE "^hostA:[^ ]+ +0 +[0-9]+ +0 " <<<"$out" && grep -qE "^hostB:[^ ]+ +0 +[0-9]+ +0 " <<<"$out" &&
	grep -qE "host hostA +finished +$na files" <<<"$out" && grep -qE "host hostB +finished +$nb files" <<<"$out" &&
	pass "status from the third host: both mounts, and each worker's files ($na, $nb)" ||
	fail "status" "$(tail -6 <<<"$out")"
out=$(third report --json 2>&1)
echo "$out" >>"$T/third.out"
"$SYS_PY" - "$out" "$na" "$nb" <<'PY' && pass "report --json from the third host: per host files, bytes, rate, failures, heartbeat" || fail "report" "$out"
import json, sys
ws = {w["host"]: w for w in json.loads(sys.argv[1]) if "worker" in w}
want = {"hostA": int(sys.argv[2]), "hostB": int(sys.argv[3])}
for h, n in want.items():
    w = ws[h]
    assert w["files"] == n and w["failed"] == 0 and w["state"] == "finished", w
    assert (w["bytes"] > 0) == (n > 0) and "bytes_per_s" in w and "heartbeat_age_s" in w, w
PY
out=$(third verify 2>&1)
rc=$?
echo "$out" >>"$T/third.out"
[ $rc = 0 ] && grep -q "verified $N objects: $N ok, 0 mismatches" <<<"$out" &&
	pass "verify from the third host: $N objects on the store as the journal says" ||
	fail "verify" "exit $rc: $(tail -2 <<<"$out")"
out=$(third rewrite map --db "$APPDB" --table photos --column url --label photos --apply 2>&1)
rc=$?
echo "$out" >>"$T/third.out"
id=$(sed -n 's/^rewrite #\([0-9]*\):.*/\1/p' <<<"$out" | head -1)
"$SYS_PY" - "$T/photos.plan" "$CDN" >"$T/want" <<'PY'
import json, sys, urllib.parse
lines = open(sys.argv[1]).read().splitlines()[1:]
for i, l in enumerate(lines):
    rel = json.loads(l)["dst"]
    print("%d|%s/out/%s|n%d" % (i + 1, sys.argv[2], urllib.parse.quote(rel), i))
print("900|https://elsewhere.example/x.jpg|keep")
print("901||empty")
PY
psql_ -c "select id, url, note from photos order by id" >"$T/after"
[ $rc = 0 ] && [ -n "$id" ] && grep -q "$N moved objects in the journal" <<<"$out" && cmp -s "$T/want" "$T/after" &&
	pass "rewrite map from the third host (#$id): $N rows point at the store, 2 others untouched" ||
	fail "rewrite" "exit $rc: $(tail -3 <<<"$out"); $(diff "$T/want" "$T/after" | head -4)"
out=$(third rewrite list 2>&1)
grep -qE "^$id +[0-9T:-]{19} +map +photos.url +applied +$N +$N +0" <<<"$out" &&
	pass "rewrite list: #$id applied, $N rows" || fail "rewrite list" "$out"
out=$(third rollback --rewrite "$id" --db "$APPDB" 2>&1)
rc=$?
echo "$out" >>"$T/third.out"
psql_ -c "select id, url, note from photos order by id" >"$T/restored"
[ $rc = 0 ] && cmp -s "$T/before" "$T/restored" &&
	pass "rollback --rewrite $id from the third host: the table byte for byte as before" ||
	fail "rewrite rollback" "exit $rc: $(tail -2 <<<"$out"); $(diff "$T/before" "$T/restored" | head -4)"
out=$(third rollback --label photos 2>&1)
rc=$?
echo "$out" >>"$T/third.out"
s3 manifest lrw out/ 2>/dev/null | awk -F"\t" '$1 !~ /\/$/' >"$T/left"
n=$(psql_ -c "select count(*) from uploads where state='rolledback' and label='photos'")
[ $rc = 0 ] && grep -q "^$N deleted, 0 kept" <<<"$out" && [ ! -s "$T/left" ] && [ "$n" = $N ] &&
	pass "rollback --label photos from the third host: $N objects deleted, $n rows rolled back" ||
	fail "rollback --label" "exit $rc: $(tail -2 <<<"$out"); left $(wc -l <"$T/left"), rows $n"
if grep -qF -- "$PG_PASS" "$T/third.out" "$T/a.log" "$T/b.log" "$T/work-a.out" "$T/work-b.out"; then
	fail "password" "printed"
else
	pass "the password is in no log and no output"
fi
echo "  ($SECONDS s)"
