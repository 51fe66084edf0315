#!/bin/bash
# mediactl tells the whole truth (issue #17), between two local remotes of
# one mount and a SQLite database: map columns reach templates, the team's
# own skip reasons, sources a map names but the store lacks, a failed copy
# counted by the report, a copy's temporary never stored under its
# temporary name, a copy whose target the mount cannot name after the
# fsync (ENOTCONN) counted failed, a template without a value refusing the
# whole rewrite, the rollback of inserted rows keeping a row changed since,
# and progress lines that end with a newline.
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
DB=$T/app.db
mkdir -p "$T/src/imgs" "$T/src/skipme" "$T/dst"
cat >"$T/m.conf" <<EOC
[src]
type = local
path = $T/src

[dst]
type = local
path = $T/dst
EOC
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }
trap cleanup_mounts EXIT
for i in 1 2 3 4 5; do echo "image $i" >"$T/src/imgs/i$i.jpg"; done
echo "not wanted" >"$T/src/skipme/x.jpg"
# the map: i1..i5 are in the store, i6 is not
printf 'slug,image,city\nv-a,i1.jpg,Leeds\nv-a,i2.jpg,Leeds\nv-b,i3.jpg,York\nv-b,i4.jpg,York\nv-c,i5.jpg,Bath\nv-c,i6.jpg,Bath\n' >"$T/venues.csv"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ||
	{ fail mount "could not mount"; exit 1; }

# ---- plan: user-named reasons, missing sources, every column in the vars
mctl plan --from "$MNT/src" --to "$MNT/dst" \
	--map "v=$T/venues.csv,key=image,value=slug,miss=not_a_venue_image,missing=missing_source" \
	--skip 'skipme,reason=team_reason' \
	--rule 'imgs/{img} -> venues/{v[img]}/{v[img].city}-{img}' \
	--label t -o "$T/t.plan" >"$T/plan.out" 2>&1 || fail "plan" "$(cat "$T/plan.out")"
grep -q '"src":"skipme/x.jpg","kind":"skip-rule","reason":"team_reason","detail":"matches --skip' "$T/t.plan.skipped" &&
	pass "a --skip GLOB,reason=NAME skip carries the team's reason in PLAN.skipped" ||
	fail "skip reason" "$(cat "$T/t.plan.skipped")"
grep -q '"src":"i6.jpg","kind":"missing-source","reason":"missing_source"' "$T/t.plan.skipped" &&
	[ "$(grep -c missing-source "$T/t.plan.skipped")" -eq 1 ] &&
	grep -q "1 missing_source" "$T/plan.out" &&
	pass "a source the map names but the store lacks is in PLAN.skipped and the plan's counts" ||
	fail "missing source" "$(cat "$T/t.plan.skipped"; cat "$T/plan.out")"
grep -q '"dst":"venues/v-b/York-i3.jpg"' "$T/t.plan" && grep -q '"v\[img\].city":"York"' "$T/t.plan" &&
	pass "{map[capture].column} in a rule; every column of the record reaches the plan's variables" ||
	fail "map columns" "$(sed -n 2,3p "$T/t.plan")"

# ---- copy with one source gone after the plan: a failed copy
rm "$T/src/imgs/i5.jpg"
mctl copy "$T/t.plan" --jobs 2 >"$T/copy.out" 2>&1
rc=$?
[ $rc -eq 1 ] && [ "$(find "$T/dst/venues" -type f | wc -l)" -eq 4 ] &&
	pass "copy: 4 files stored, the vanished source failed (exit 1)" ||
	fail "copy" "rc=$rc $(cat "$T/copy.out")"
mctl report --label t --json >"$T/report.json"
"$SYS_PY" - "$T/report.json" <<'PY' && pass "report counts the failed copy, and skips by the team's reasons" || fail "report" "$(cat "$T/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r['totals']['failed'] == 1 and r['totals']['succeeded'] == 4, r['totals']
assert r['skipped']['by_reason'] == {'team_reason': 1, 'missing_source': 1}, r['skipped']
PY

# ---- the mount gone after the fsync (gap 9): getxattr of the target's
# remote answers ENOTCONN (an LD_PRELOAD shim; the file is stored). The
# copy must count it failed, never done with an empty destination, and a
# re-run must finish it
cat >"$T/enotconn.c" <<'EOC'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
	static ssize_t (*real)(const char *, const char *, void *, size_t);
	const char *m = getenv("SHIM_ENOTCONN");

	if (m && strstr(path, m) && !strcmp(name, "user.mediafs.remote")) {
		errno = ENOTCONN;
		return -1;
	}
	if (!real)
		real = (ssize_t (*)(const char *, const char *, void *, size_t))dlsym(RTLD_NEXT, "getxattr");
	return real(path, name, value, size);
}
EOC
if ${CC:-cc} -shared -fPIC -o "$T/enotconn.so" "$T/enotconn.c" -ldl 2>"$T/cc.err"; then
	mctl plan --from "$MNT/src" --to "$MNT/dst" --rule 'imgs/{img} -> g9/{img}' \
		--skip 'imgs/i5.jpg,reason=removed' --skip 'skipme,reason=other' \
		--label g9 -o "$T/g9.plan" >"$T/g9.plan.out" 2>&1 || fail "g9 plan" "$(cat "$T/g9.plan.out")"
	SHIM_ENOTCONN=/dst/g9/ LD_PRELOAD=$T/enotconn.so \
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		mctl copy "$T/g9.plan" --jobs 2 >"$T/g9.copy1" 2>&1
	rc1=$?
	q9() { sqlite3 "$J" "SELECT count(*) FROM copies WHERE label='g9' AND $1"; }
	f1=$(q9 "state='failed' AND error LIKE '%destination''s key (xattr)%Transport endpoint is not connected%'")
	e1=$(q9 "state='done' AND (coalesce(dst_remote,'')='' OR coalesce(dst_key,'')='')")
	mctl copy "$T/g9.plan" --jobs 2 >"$T/g9.copy2" 2>&1
	rc2=$?
	d2=$(q9 "state='done' AND dst_remote='dst' AND dst_key LIKE 'g9/i_.jpg'")
	[ $rc1 -eq 1 ] && [ "$f1" -eq 4 ] && [ "$e1" -eq 0 ] && [ $rc2 -eq 0 ] && [ "$d2" -eq 4 ] &&
		[ "$(find "$T/dst/g9" -type f | wc -l)" -eq 4 ] &&
		pass "copy: a destination whose key the mount cannot give after the fsync (ENOTCONN) is failed, not done with an empty destination (exit 1); the re-run records all 4 with their keys (exit 0)" ||
		fail "ENOTCONN after fsync" "rc1=$rc1 failed=$f1 done-empty=$e1 rc2=$rc2 done=$d2; $(tail -2 "$T/g9.copy1") $(tail -2 "$T/g9.copy2")"
else
	fail "ENOTCONN shim" "cannot compile: $(head -3 "$T/cc.err")"
fi

# ---- a copy's temporary is never stored under its temporary name
printf 'partial' >"$MNT/dst/venues/.i9.jpg.mctlcp"
sleep 7	# past the 5 s mediafs holds other temporary names
[ ! -e "$T/dst/venues/.i9.jpg.mctlcp" ] && [ -e "$MNT/dst/venues/.i9.jpg.mctlcp" ] &&
	pass "a closed .mctlcp temporary stays in the mount, not in the store" ||
	fail "temporary held" "$(ls -a "$T/dst/venues")"
rm "$MNT/dst/venues/.i9.jpg.mctlcp"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"
[ -z "$(find "$T/dst" -name '*.mctlcp')" ] &&
	[ "$(sqlite3 "$J" "SELECT count(*) FROM uploads WHERE key LIKE '%mctlcp' AND state='done'")" -eq 0 ] &&
	pass "removed, it never reached the store (nor the journal as an upload)" ||
	fail "temporary stored" "$(find "$T/dst" -name '*.mctlcp')"

# ---- rewrite insert: a template without a value refuses everything
sqlite3 "$DB" "CREATE TABLE media(id INTEGER PRIMARY KEY, path TEXT, slug TEXT, city TEXT)"
n0=$(sqlite3 "$J" "SELECT count(*) FROM rewrites")
mctl rewrite insert --db "sqlite:$DB" --table media --label t \
	--set path='{key}' --set city='{nosuch}' --apply >"$T/rw0.out" 2>"$T/rw0.err"
rc=$?
[ $rc -eq 2 ] && [ "$(sqlite3 "$J" "SELECT count(*) FROM rewrites")" -eq "$n0" ] &&
	[ "$(sqlite3 "$DB" "SELECT count(*) FROM media")" -eq 0 ] &&
	grep -q "no value for {nosuch}" "$T/rw0.err" && grep -q "not recorded, nothing written" "$T/rw0.err" &&
	pass "a template without a value: exit 2, no rewrite recorded, no row written" ||
	fail "unresolved template" "rc=$rc $(cat "$T/rw0.out" "$T/rw0.err")"

# ---- map columns in rewrite templates: the plan's and a --map of its own
mctl rewrite insert --db "sqlite:$DB" --table media --label t \
	--map "v2=$T/venues.csv,key=slug,value=city" \
	--set path='{key}' --set slug='{v[img]}' --set city='{v[img].city}/{v2[path[1]]}' \
	--apply >"$T/rw1.out" 2>&1 || fail "insert" "$(cat "$T/rw1.out")"
[ "$(sqlite3 "$DB" "SELECT city FROM media WHERE path='venues/v-b/York-i3.jpg'")" = "York/York" ] &&
	[ "$(sqlite3 "$DB" "SELECT count(*) FROM media WHERE path LIKE 'venues/%'")" -eq 4 ] &&
	pass "rewrite templates: {v[img].city} from the plan, {v2[path[1]]} from the rewrite's own --map" ||
	fail "template lookups" "$(sqlite3 "$DB" "SELECT * FROM media"; cat "$T/rw1.out")"
rw=$(sqlite3 "$J" "SELECT max(id) FROM rewrites")

# ---- rollback of the insert: compare-and-set keeps a changed row
sqlite3 "$DB" "UPDATE media SET city='edited' WHERE path='venues/v-a/Leeds-i1.jpg'"
mctl rollback --rewrite "$rw" --db "sqlite:$DB" >"$T/rb.out" 2>&1
rc=$?
[ $rc -eq 1 ] && [ "$(sqlite3 "$DB" "SELECT path FROM media")" = "venues/v-a/Leeds-i1.jpg" ] &&
	grep -q "3 rows restored, 1 kept (changed meanwhile)" "$T/rb.out" &&
	pass "rollback of inserted rows deletes only rows still as inserted, keeps the changed one (exit 1)" ||
	fail "insert rollback" "rc=$rc $(cat "$T/rb.out"); $(sqlite3 "$DB" "SELECT * FROM media")"

# ---- progress lines (stderr) of rewrite apply and rollback end with a
# newline: with both streams in one file, each progress line is whole and
# the summary starts a line of its own (gap 11)
PROG='^[0-9]+/[0-9]+ rows, [0-9]+ rows/s, ETA [^ ]+$'
bad=
for f in rw1.out rb.out; do
	grep -Eq "$PROG" "$T/$f" && grep -q '^rewrite #[0-9]* ' "$T/$f" &&
		! grep -E ' rows/s, ETA ' "$T/$f" | grep -Evq "$PROG" || bad="$bad $f: $(cat "$T/$f");"
done
[ -z "$bad" ] &&
	pass "rewrite apply and rollback: each progress line ends with a newline; the summary starts its own line" ||
	fail "progress lines" "$bad"
