#!/bin/bash
# mediactl against real mounts: scenario S1's shape (an S3 backup with
# extension-less profile pictures by role and service images, ID maps, a
# Supabase target), plan with skips and their reasons, copy killed mid-way
# and resumed with no duplicate upload, status with the live daemon,
# report --json, verify catching an object deleted behind mediafs's back,
# rollback keeping an object modified since, failed + retry through the
# daemon's control socket, and errors that name a bad map or rule.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
trap 'cleanup_mounts; supa_stop' EXIT
export TEST_SB_KEY=$SB_KEY
s3 mkbucket s1src
write_conf "$T/m.conf" s1src "
[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:TEST_SB_KEY
retry_base_ms = 20
retries = 2
public_buckets = true"
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }

# ---- the backup: generated images written into the S3 bucket (its own
# journal, so the migration's journal holds only the migration)
# (240 images; 90 in run-all's sanitizer pass, which looks for memory errors)
NIMG=240
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NIMG=90
"$SYS_PY" "$TESTS_DIR/../scripts/gen-images.py" "$T/backup" $NIMG --seed 7
mkdir -p "$T/backup/Chat-Images/c1" && cp "$(find "$T/backup/Profile-Pics" -type f | head -1)" "$T/backup/Chat-Images/c1/a.jpeg"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/c0",journal="$T/fill.db" s3t: ||
	{ fail mount "could not mount s3t:"; exit 1; }
cp -r "$T/backup/." "$MNT/" && umount_fs "$LOG" "$MNT" || { fail "fixture" "filling the bucket failed"; exit 1; }

# ID maps: users as a JSON object (all but 5 buyers/stylists), services as
# a JSON array of objects (every other service)
"$SYS_PY" - "$T" <<'PY'
import json, os, sys
t = sys.argv[1]
users = {}
for role in ('buyer', 'stylist'):
    for i, u in enumerate(sorted(os.listdir(f'{t}/backup/Profile-Pics/{role}'))):
        if i >= 5 or role == 'stylist':
            users[u] = 'new-' + u[:8]
json.dump(users, open(f'{t}/users.json', 'w'))
svcs = sorted(os.listdir(f'{t}/backup/Service-Images'))
json.dump([{'old_id': s, 'new_id': 'svc-' + s[:8], 'name': 'x'} for s in svcs[::2]],
          open(f'{t}/services.json', 'w'))
exp = {'avatars': 0, 'services': 0, 'nomap': 0, 'skiprule': 0}
for role in ('buyer', 'stylist', 'salon'):
    for u in os.listdir(f'{t}/backup/Profile-Pics/{role}'):
        if role == 'salon': exp['skiprule'] += 1
        elif u in users: exp['avatars'] += 1
        else: exp['nomap'] += 1
for s in svcs:
    n = len(os.listdir(f'{t}/backup/Service-Images/{s}'))
    if s in svcs[::2]: exp['services'] += n
    else: exp['nomap'] += n
exp['skiprule'] += 1   # Chat-Images/c1/a.jpeg
open(f'{t}/expected', 'w').write(' '.join(str(exp[k]) for k in ('avatars', 'services', 'nomap', 'skiprule')))
PY
read -r EXP_AV EXP_SVC EXP_NOMAP EXP_SKIP <"$T/expected"
EXP_PLAN=$((EXP_AV + EXP_SVC))

# cache_ttl an hour: on a loaded machine (load ~100) this mount outlived
# the default 300 s, and the avatars listing expired just when the server
# answered 500 to everything (the retry check below): cp's lookup of
# late.png failed with EIO and no upload was ever made
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J",cache_ttl=3600 ||
	{ fail mount "could not mount every remote"; exit 1; }
MAIN_PID=$MFS_PID
mkdir "$MNT/supa/avatars" "$MNT/supa/service-media"

# ---- every command has --help; a wrong one says so
bad=0
for c in status failed retry plan copy verify report rollback load work hosts; do
	mctl $c --help | grep -q "usage: mediactl $c" || bad=$((bad + 1))
done
mctl frobnicate 2>"$T/err"
[ $? -eq 2 ] && [ $bad -eq 0 ] && grep -q "unknown command 'frobnicate'" "$T/err" &&
	pass "--help for every command; an unknown command: exit 2" || fail "help" "$bad without usage; $(cat "$T/err")"

# ---- bad input: errors name the file/line or the rule
echo '{"a": "b",' >"$T/bad.json"
mctl plan --from "$MNT/s3t" --to "$MNT/supa" --map users="$T/bad.json" \
	--rule '{x} -> {x}' -o "$T/bad.plan" 2>"$T/err"
[ $? -eq 2 ] && grep -q "bad.json" "$T/err" && grep -q "line" "$T/err" &&
	pass "a broken JSON map: exit 2, the file and line named" || fail "bad map" "$(cat "$T/err")"
printf 'old,new\na,b\nc\n' >"$T/bad.csv"
mctl plan --from "$MNT/s3t" --to "$MNT/supa" --map u="$T/bad.csv" \
	--rule '{x} -> {u[x]}' -o "$T/bad.plan" 2>"$T/err"
[ $? -eq 2 ] && grep -q "bad.csv line 3" "$T/err" &&
	pass "a CSV map with a short row: the line named" || fail "bad csv" "$(cat "$T/err")"
mctl plan --from "$MNT/s3t" --to "$MNT/supa" --map users="$T/users.json" \
	--rule 'Profile-Pics/{role}/{old} -> avatars/{users[new]}/{old}' -o "$T/bad.plan" 2>"$T/err"
[ $? -eq 2 ] && grep -q "rule 1: the source captures no {new}" "$T/err" &&
	pass "a rule using an uncaptured name: the rule and name named" || fail "bad rule" "$(cat "$T/err")"

# ---- plan
mctl plan --from "$MNT/s3t" --to "$MNT/supa" \
	--map users="$T/users.json" --map svc="$T/services.json,key=old_id,value=new_id" \
	--skip 'Profile-Pics/salon' --skip 'Chat-Images/*' \
	--rule 'Profile-Pics/{role}/{old} -> avatars/{users[old]}/{old}.{ext}' \
	--rule 'Service-Images/{sid}/{img} -> service-media/{svc[sid]}/{img}.{ext}' \
	--label s1 -o "$T/s1.plan" >"$T/plan.out" 2>&1 || fail "plan" "$(cat "$T/plan.out")"
n=$(($(wc -l <"$T/s1.plan") - 1))
[ "$n" -eq "$EXP_PLAN" ] && pass "plan: $n files to copy, as the maps say" || fail "plan count" "$n != $EXP_PLAN"
ns=$(grep -c '"kind":"no-mapping"' "$T/s1.plan.skipped")
nk=$(grep -c '"kind":"skip-rule"' "$T/s1.plan.skipped")
[ "$ns" -eq "$EXP_NOMAP" ] && [ "$nk" -eq "$EXP_SKIP" ] &&
	pass "plan: $ns skipped for no mapping, $nk by --skip, each with its reason" ||
	fail "plan skips" "$ns/$EXP_NOMAP no-mapping, $nk/$EXP_SKIP skip-rule"
grep -q "no mapping for old='.*' in users" "$T/s1.plan.skipped" && grep -q "no mapping for sid='.*' in svc" "$T/s1.plan.skipped" &&
	pass "skip reasons name the capture and the map" || fail "skip reasons" "$(head -3 "$T/s1.plan.skipped")"
grep -q '"dst":"avatars/new-[0-9a-f]*/[0-9a-f-]*\.png"' "$T/s1.plan" && grep -q '\.gif"' "$T/s1.plan" &&
	pass "{ext} comes from the bytes (png, gif), {users[old]} from the map" || fail "plan targets" "$(sed -n 2,3p "$T/s1.plan")"

# ---- copy, killed mid-way, resumed
mark=$(sb_mark)
"$MEDIACTL" --journal "$J" --config "$T/m.conf" copy "$T/s1.plan" --jobs 2 >"$T/copy1.out" 2>&1 &
CPID=$!
for i in $(seq 1 200); do
	d=$(sqlite3 "$J" "select count(*) from copies where state='done'" 2>/dev/null)
	[ "${d:-0}" -ge $((NIMG / 12)) ] && break
	sleep 0.05
done
kill -9 $CPID; wait $CPID 2>/dev/null
d1=$(sqlite3 "$J" "select count(*) from copies where state='done'")
[ "$d1" -lt "$EXP_PLAN" ] && pass "copy killed (-9) after $d1 of $EXP_PLAN files" || fail "kill" "copy finished before the kill ($d1)"
sleep 6	# past mediafs's hold on temporary names
mctl copy "$T/s1.plan" --jobs 4 >"$T/copy2.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "copied by an earlier run" "$T/copy2.out" &&
	pass "the second copy resumes (exit 0, earlier files skipped)" || fail "resume" "rc=$rc $(cat "$T/copy2.out")"
# a folder the killed copy made but had not filled yet is kept as an empty
# folder (its placeholder object) when mediafs's marker timer fires first:
# right for a filesystem, and not an object of the plan
objects() { sb keys "$1" | grep -v '\.emptyFolderPlaceholder$'; }
objects avatars >"$T/k.av"; objects service-media >"$T/k.svc"
[ "$(wc -l <"$T/k.av")" -eq "$EXP_AV" ] && [ "$(wc -l <"$T/k.svc")" -eq "$EXP_SVC" ] &&
	pass "every planned object is on the server ($EXP_AV avatars, $EXP_SVC service images), nothing else" ||
	fail "objects" "$(wc -l <"$T/k.av") avatars, $(wc -l <"$T/k.svc") service images; $(grep mctlcp "$T/k.av" | head -2)"
dups=$(tail -n +"$((mark + 1))" "$SB_REQLOG" | awk '($1=="POST"||$1=="PUT") && $2 ~ /^\/storage\/v1\/object\/(avatars|service-media)\// && $2 !~ /mctlcp/ {print $2}' | sort | uniq -d | wc -l)
ups=$(sqlite3 "$J" "select count(*) from uploads where state='done' and key not like '%mctlcp' and key not like '%/'")
[ "$dups" -eq 0 ] && [ "$ups" -eq "$EXP_PLAN" ] &&
	pass "no object uploaded twice across the kill ($ups uploads for $EXP_PLAN files)" || fail "duplicates" "$dups keys uploaded twice, $ups uploads"
bad=0
while IFS=$'\t' read -r k size md5 _; do
	src=$(sqlite3 "$J" "select rel from copies where dst_key='avatars/$k' and state='done'")
	[ "$(md5sum <"$T/backup/$src" | cut -d' ' -f1)" = "$md5" ] || bad=$((bad + 1))
done < <(sb manifest avatars | grep -v '\.emptyFolderPlaceholder	')
[ $bad -eq 0 ] && pass "every avatar's bytes match its source" || fail "checksums" "$bad differ"
pairs=$(sqlite3 "$J" "select count(*) from copies where state='done' and src_remote='s3t' and dst_remote='supa' and src_url like 'http%' and dst_url like 'http%'")
[ "$pairs" -eq "$EXP_PLAN" ] && pass "the journal holds each (source, destination) pair with both URLs" || fail "pairs" "$pairs"

# ---- status: journal and the live daemon
mctl status --json >"$T/status.json"
"$SYS_PY" - "$T/status.json" "$EXP_PLAN" "$MAIN_PID" <<'PY' && pass "status --json: done per remote and label, the live daemon's queue" || fail "status" "$(cat "$T/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
r = [g for g in s['remotes'] if g['remote'] == 'supa' and g.get('label') == 's1']
assert r and r[0]['done'] == int(sys.argv[2]) and r[0]['failed'] == 0, r
d = s['daemons']
assert len(d) == 1 and d[0]['pid'] == int(sys.argv[3]) and d[0]['queued'] == 0, d
PY
mctl status >"$T/status.txt" && grep -q "^daemon $MAIN_PID on $MNT" "$T/status.txt" &&
	pass "status names the running daemon" || fail "status text" "$(cat "$T/status.txt")"
mctl status --watch=0.2 --count 3 >"$T/watch.txt" && [ "$(grep -c '^journal' "$T/watch.txt")" -eq 3 ] &&
	pass "status --watch refreshes" || fail "watch" "$(head -5 "$T/watch.txt")"

# ---- report
mctl report --label s1 --json >"$T/report.json"
"$SYS_PY" - "$T/report.json" "$EXP_AV" "$EXP_SVC" "$EXP_NOMAP" "$EXP_SKIP" <<'PY' && pass "report --json matches what was done (per category, skips by reason)" || fail "report" "$(cat "$T/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
av, svc, nomap, skip = map(int, sys.argv[2:])
c = {x['category']: x for x in r['categories']}
assert c['supa/avatars']['succeeded'] == av and c['supa/service-media']['succeeded'] == svc, c
assert r['totals']['failed'] == 0 and r['totals']['original_bytes'] == r['totals']['uploaded_bytes'] > 0
assert r['skipped']['total'] == nomap + skip, r['skipped']
assert r['skipped']['by_reason'] == {'no-mapping': nomap, 'skip-rule': skip}, r['skipped']
assert r['duration_s'] >= 0 and r['started_at'] <= r['finished_at']
PY

# ---- verify
mctl verify --label s1 >"$T/v1.out"
[ $? -eq 0 ] && grep -q "verified $EXP_PLAN objects: $EXP_PLAN ok, 0 mismatches" "$T/v1.out" &&
	pass "verify: every uploaded object present with its size and etag" || fail "verify" "$(tail -2 "$T/v1.out")"
mctl verify --label s1 --urls >"$T/v1u.out"
[ $? -eq 0 ] && grep -q "verified $EXP_PLAN objects and URLs: $EXP_PLAN ok" "$T/v1u.out" &&
	pass "verify --urls: every public URL answers 200 with the right length" || fail "verify --urls" "$(tail -2 "$T/v1u.out")"
gone=$(head -1 "$T/k.av")
sb delete avatars "$gone"
mctl verify --label s1 >"$T/v2.out"
[ $? -eq 1 ] && grep -q "MISMATCH supa:avatars/$gone: missing" "$T/v2.out" &&
	pass "verify catches an object deleted behind mediafs's back (exit 1)" || fail "verify missing" "$(tail -3 "$T/v2.out")"

# ---- failed and retry through the control socket
echo rate500=1 >"$SB_CONTROL"
cp "$T/backup/Chat-Images/c1/a.jpeg" "$MNT/supa/avatars/late.png"
for i in $(seq 1 600); do
	[ "$(sqlite3 "$J" "select count(*) from uploads where state='failed'")" -ge 1 ] && break
	sleep 0.1
done
: >"$SB_CONTROL"
mctl failed >"$T/failed.out"
grep -q "supa:avatars/late.png" "$T/failed.out" && grep -q "1 failed upload" "$T/failed.out" &&
	pass "failed lists the upload with its error" || fail "failed" "$(cat "$T/failed.out")"
mctl retry --all >"$T/retry.out" && grep -q "^1 queued again in a running mediafs" "$T/retry.out" &&
	pass "retry --all hands the failure back to the running daemon" || fail "retry" "$(cat "$T/retry.out")"
wait_uploads "$J" 20
[ "$(mctl failed | tail -1)" = "0 failed uploads" ] && sb keys avatars | grep -qx late.png &&
	pass "the retried upload landed; nothing failed any more" || fail "retry landed" "$(mctl failed)"

# ---- rollback: everything of the batch but an object modified since
changed=$(sed -n 2p "$T/k.av")
echo "edited by the app" >"$T/edit"
sb put avatars "$changed" "$T/edit"
mctl rollback --label s1 --dry-run >"$T/rb0.out"
[ "$(objects avatars | wc -l)" -eq "$EXP_AV" ] && grep -q "dry run: would have $((EXP_PLAN - 2)) deleted, 1 kept" "$T/rb0.out" &&
	pass "rollback --dry-run deletes nothing and says what it would do" || fail "dry run" "$(tail -1 "$T/rb0.out")"
mctl rollback --label s1 >"$T/rb.out"
rc=$?
left=$(objects avatars | grep -v '^late.png$'; objects service-media)
[ $rc -eq 1 ] && [ "$left" = "$changed" ] && grep -q "kept    supa:avatars/$changed: changed since" "$T/rb.out" &&
	pass "rollback removed exactly the batch's objects, kept the modified one (exit 1)" ||
	fail "rollback" "rc=$rc left=$(echo "$left" | head -3) $(tail -1 "$T/rb.out")"
[ "$(sqlite3 "$J" "select count(*) from uploads where state='rolledback' and label='s1' and key not like '%/'")" -eq $((EXP_PLAN - 1)) ] &&
	[ "$(sqlite3 "$J" "select count(*) from events where op='rollback' and key not like '%/'")" -eq $((EXP_PLAN - 2)) ] &&
	pass "the journal records each rollback" || fail "rollback journal" "$(sqlite3 "$J" "select state,count(*) from uploads group by state")"

umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
mctl status --json | grep -q '"daemons":\[\]' && pass "after unmount no daemon is listed" || fail "daemons" "$(mctl status --json)"
