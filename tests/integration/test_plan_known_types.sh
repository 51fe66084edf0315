#!/bin/bash
# mediactl plan asks the mount for a type it already knows
# (user.mediafs.known_type: the upload's type, a type sniffed from an
# earlier read, the journal, the data cache's first bytes) and reads a
# source's first 4 KiB only when the mount does not know: files written
# through mediafs plan with 0 GETs; an unknown backup is read once (one GET
# a file, types right from the bytes), a second plan costs 0 GETs, also
# after a remount or with the metadata cache deleted; the copy uploads
# the plan's type and fetches only what the plan did not (never a second
# read for the type).
. "$(dirname "$0")/../lib/common.sh"

MEDIACTL=${MEDIACTL:-$(dirname "$MEDIAFS")/mediactl}
MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
s3 mkbucket ktypes
write_conf "$T/m.conf" ktypes
mctl() { "$MEDIACTL" --journal "$J" --config "$T/m.conf" "$@"; }

# ---- sources: real PNG and GIF images (extension-less), a JPEG, an S3
# error document (XML: planned as .bin), an empty file, a PNG the store
# types image/png, a CSV text (its
# name breaks the tie, in the plan's sniff as in mediafs's); the expected
# extension of each from its first bytes
NIMG=16
[ "${MFS_TEST_PASS:-}" = mount-asan ] && NIMG=8
"$SYS_PY" "$TESTS_DIR/../scripts/gen-images.py" "$T/gen" $NIMG --seed 3 >/dev/null
mkdir -p "$T/src"
i=0
while IFS= read -r f; do
	i=$((i + 1))
	cp "$f" "$T/src/img$i"
done < <(find "$T/gen" -type f | sort)
"$SYS_PY" - "$T/src" <<'PY'
import os, sys
d = sys.argv[1]
open(f'{d}/photo', 'wb').write(b'\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00' + bytes(range(256)) * 40 + b'\xff\xd9')
open(f'{d}/denied', 'wb').write(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\n')
open(f'{d}/empty', 'wb').close()
png = [n for n in sorted(os.listdir(d)) if open(f'{d}/{n}', 'rb').read(4) == b'\x89PNG'][0]
open(f'{d}/typed', 'wb').write(open(f'{d}/{png}', 'rb').read())	# stored as image/png below
open(f'{d}/notes.csv', 'wb').write(b'id,name\n1,one\n2,two\n')	# text: the name breaks the tie
with open(f'{d}/../expected', 'w') as out:
    for n in sorted(os.listdir(d)):
        b = open(f'{d}/{n}', 'rb').read(16)
        ext = ('png' if b.startswith(b'\x89PNG') else 'gif' if b.startswith(b'GIF8')
               else 'jpg' if b.startswith(b'\xff\xd8\xff') else 'csv' if n.endswith('.csv')
               else 'bin')
        out.write(f'{n}\t{ext}\n')
PY
NSRC=$(wc -l <"$T/expected")
# raw/: a backup mediafs never saw (boto3 sends no type)
mkdir -p "$T/up" && cp -r "$T/src" "$T/up/raw" && s3 putdir ktypes "$T/up" &&
	s3 put ktypes raw/typed "$T/src/typed" --type image/png ||
	{ fail fixture "uploading raw/"; exit 1; }

mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ||
	{ fail mount "could not mount"; exit 1; }
mkdir -p "$MNT/s3t/via" "$T/to"
cp "$T"/src/* "$MNT/s3t/via/" && wait_uploads "$J" 120 ||
	{ fail fixture "writing via/ through the mount"; exit 1; }

# got_bytes MARK PREFIX: bytes of the successful GETs under PREFIX since MARK
got_bytes() {
	tail -n +"$(($1 + 1))" "$S3_REQLOG" |
		awk -v p="GET $2" 'index($0, p) == 1 && ($3 == 200 || $3 == 206) { s += $4 } END { print s + 0 }'
}
# plan_of DIR OUT: plan every file below DIR to {name}.{ext}
plan_of() {
	rm -f "$2" "$2.skipped"
	mctl plan --from "$1" --to "$T/to" --rule '{name} -> x/{name}.{ext}' -o "$2" >"$2.out" 2>&1
}
# types_ok PLAN: every planned file carries the extension its bytes say
types_ok() {
	"$SYS_PY" - "$1" "$T/expected" <<'PY'
import json, sys
exp = dict(l.rstrip('\n').split('\t') for l in open(sys.argv[2]))
got = {}
for l in list(open(sys.argv[1]))[1:]:
    o = json.loads(l)
    got[o['src']] = (o['dst'].rsplit('.', 1)[1], o.get('type'))
bad = [(k, exp.get(k), v) for k, v in got.items() if exp.get(k) != v[0] or
       (v[0] == 'bin') != (v[1] == 'application/octet-stream')]
if bad or len(got) != len(exp):
    sys.exit(f'{len(got)} planned of {len(exp)}; wrong: {bad[:4]}')
PY
}

# ---- files written through mediafs: the upload knew their type
m=$(req_mark)
plan_of "$MNT/s3t/via" "$T/via.plan"
gets=$(req_since "$m" '^GET /ktypes/via/')
heads=$(req_since "$m" '^HEAD /ktypes/via/')
if [ "$gets" = 0 ] && [ "$heads" = 0 ] && types_ok "$T/via.plan" &&
	grep -q "types: $NSRC known to the mount, 0 read" "$T/via.plan.out"; then
	pass "plan over $NSRC files written through mediafs: 0 GET, 0 HEAD, every type known to the mount"
else
	fail "plan via" "$gets GET, $heads HEAD; $(cat "$T/via.plan.out")"
fi

# ---- a backup mediafs never read: sniffed from one read each, but for
# the empty object (no byte to read) and one whose type the store gave a
# HEAD already (image/png)
ct=$(getfattr --absolute-names --only-values -n user.mediafs.content_type "$MNT/s3t/raw/typed")
[ "$ct" = image/png ] || fail "content_type" "raw/typed: '$ct', want the store's image/png"
m=$(req_mark)
plan_of "$MNT/s3t/raw" "$T/raw1.plan"
gets1=$(req_since "$m" '^GET /ktypes/raw/')
plan_bytes=$(got_bytes "$m" /ktypes/raw/)
if types_ok "$T/raw1.plan" && [ "$gets1" -ge 1 ] && [ "$gets1" -le "$NSRC" ] &&
	grep -q "types: 2 known to the mount, $((NSRC - 2)) read" "$T/raw1.plan.out"; then
	pass "first plan over $NSRC files mediafs never read: $((NSRC - 2)) types sniffed right from the bytes ($gets1 GET), the empty one and the one the store typed known"
else
	fail "plan raw 1" "$gets1 GET; $(types_ok "$T/raw1.plan" 2>&1); $(cat "$T/raw1.plan.out")"
fi

m=$(req_mark)
plan_of "$MNT/s3t/raw" "$T/raw2.plan"
gets=$(req_since "$m" '^GET /ktypes/raw/')
heads=$(req_since "$m" '^HEAD /ktypes/raw/')
if [ "$gets" = 0 ] && [ "$heads" = 0 ] && types_ok "$T/raw2.plan" &&
	cmp -s "$T/raw1.plan" "$T/raw2.plan" &&
	grep -q "types: $NSRC known to the mount, 0 read" "$T/raw2.plan.out"; then
	pass "second plan: 0 GET, 0 HEAD (was $gets1 GET), the same plan"
else
	fail "plan raw 2" "$gets GET, $heads HEAD; $(cat "$T/raw2.plan.out")"
fi

# ---- the copy uploads the plan's type and reads each source at most once
# (the bytes; what the plan read is in the data cache)
mkdir -p "$MNT/s3t/out"
rm -f "$T/out.plan" "$T/out.plan.skipped"
mctl plan --from "$MNT/s3t/raw" --to "$MNT/s3t/out" --rule '{name} -> {name}.{ext}' \
	-o "$T/out.plan" >"$T/out.plan.out" 2>&1
m=$(req_mark)
mctl copy "$T/out.plan" --jobs 2 >"$T/copy.out" 2>&1
crc=$?
wait_uploads "$J" 120
gets=$(req_since "$m" '^GET /ktypes/raw/')
heads=$(req_since "$m" '^HEAD /ktypes/raw/')
copy_bytes=$(got_bytes "$m" /ktypes/raw/)
total=$(cat "$T"/src/* | wc -c)
# the types on the store, by an independent client (boto3)
bad=$("$SYS_PY" - "$S3_PORT" "$T/expected" <<'PY'
import sys, boto3
from botocore.config import Config
c = boto3.client('s3', endpoint_url='http://127.0.0.1:%s' % sys.argv[1],
                 aws_access_key_id='test:tester', aws_secret_access_key='testing',
                 region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}))
want = {'png': 'image/png', 'gif': 'image/gif', 'jpg': 'image/jpeg', 'csv': 'text/csv'}
bad = 0
for l in open(sys.argv[2]):
    n, ext = l.rstrip('\n').split('\t')
    t = c.head_object(Bucket='ktypes', Key=f'out/{n}.{ext}')['ContentType']
    if t != want.get(ext, 'application/octet-stream'):
        bad += 1
        print(f'out/{n}.{ext}: {t}', file=sys.stderr)
print(bad)
PY
)
if [ "$crc" = 0 ] && [ "$bad" = 0 ] && [ "$gets" -le "$NSRC" ] && [ "$heads" = 0 ] &&
	[ $((plan_bytes + copy_bytes)) = "$total" ]; then
	pass "copy: $NSRC uploads with the plan's types (key and type agree: the AccessDenied XML and the empty file .bin as application/octet-stream), $gets GET, 0 HEAD of the sources: $copy_bytes bytes the first plan did not read ($plan_bytes), every byte fetched once"
else
	fail "copy" "exit $crc, $bad wrong types, $gets GET, $heads HEAD, $plan_bytes + $copy_bytes bytes of $total; $(tail -3 "$T/copy.out")"
fi

# ---- the metadata cache deleted (disposable): the journal knows what
# went through mediafs, the data cache holds the first bytes of the rest
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
rm -f "$T"/cache/*/meta.db*
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache",journal="$J" ||
	{ fail mount "could not mount again"; exit 1; }
m=$(req_mark)
plan_of "$MNT/s3t/via" "$T/via2.plan"
plan_of "$MNT/s3t/raw" "$T/raw4.plan"
gets=$(req_since "$m" '^GET /ktypes/(via|raw)/')
heads=$(req_since "$m" '^HEAD /ktypes/(via|raw)/')
if [ "$gets" = 0 ] && [ "$heads" = 0 ] && cmp -s "$T/raw1.plan" "$T/raw4.plan" &&
	cmp -s "$T/via.plan" "$T/via2.plan" &&
	grep -q "types: $NSRC known to the mount, 0 read" "$T/via2.plan.out" &&
	grep -q "types: $NSRC known to the mount, 0 read" "$T/raw4.plan.out"; then
	pass "metadata cache deleted: plans from the journal and the data cache, 0 GET, 0 HEAD, the same plans"
else
	fail "plan no mcache" "$gets GET, $heads HEAD; $(cat "$T/via2.plan.out" "$T/raw4.plan.out")"
fi

umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"

# ---- a mount that keeps no file data (data_cache=0) and a new metadata
# cache: a plan reads the backup's first bytes again once; a plan after a
# remount reads nothing (the types are in the metadata cache, no bytes are)
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache2",journal="$J",data_cache=0 ||
	{ fail mount "could not mount with data_cache=0"; exit 1; }
m=$(req_mark)
plan_of "$MNT/s3t/raw" "$T/nd1.plan"
gets1=$(req_since "$m" '^GET /ktypes/raw/')
# (remounted: the kernel's page cache would serve the bytes again)
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
mount_fs "$LOG" "$MNT" -o config="$T/m.conf",cache_dir="$T/cache2",journal="$J",data_cache=0 ||
	{ fail mount "could not mount with data_cache=0"; exit 1; }
m=$(req_mark)
plan_of "$MNT/s3t/raw" "$T/nd2.plan"
gets=$(req_since "$m" '^GET /ktypes/raw/')
heads=$(req_since "$m" '^HEAD /ktypes/raw/')
if [ "$gets1" -ge 1 ] && [ "$gets" = 0 ] && [ "$heads" = 0 ] &&
	cmp -s "$T/raw1.plan" "$T/nd1.plan" && cmp -s "$T/raw1.plan" "$T/nd2.plan"; then
	pass "data_cache=0: first plan $gets1 GET, after a remount 0 GET, 0 HEAD, the same plans"
else
	fail "plan data_cache=0" "$gets1 then $gets GET, $heads HEAD; $(cat "$T/nd2.plan.out")"
fi
umount_fs "$LOG" "$MNT" || fail "unmount" "see $LOG"
