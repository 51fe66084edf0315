#!/bin/bash
# URL-list remotes (type = http), scenario S4: 1,000 images on a local
# origin listed in 100 JSON files (image_url, thumb_url), 10 of them 404
# and three that answer 503 twice; rsync -a from the read-only mount into
# a mounted S3 bucket copies every existing image with the right bytes
# under the URL's path, reports the missing ones (rsync's "vanished", the
# journal), and a re-run sends nothing and makes no request. Plus: a text
# manifest, EROFS for writes, ranged reads from an origin that ignores
# Range, the tree from the cache after a remount.
. "$(dirname "$0")/../lib/common.sh"

MNT=$T/mnt
LOG=$T/mediafs.log
J=$T/journal.db
O=$T/origin
OPORT=$("$SYS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/state" "$T/json"

# ---- the origin and the JSON lists (10 URLs a file). 100 files in both
# passes: every assertion below is the same at 500 (the rsync alone took
# 80 s of the test's 90 there); S4's own size, 256,694 URLs, is measured by
# scripts/bench-http.sh (make bench, docs/BENCHMARKS.md)
NJ=100
NURL=$((NJ * 10)) NMISS=$((NJ / 10))
"$SYS_PY" - "$T" "$OPORT" "$NJ" <<'PY'
import json, os, random, sys
t, port, nj = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(4)
base = f'http://127.0.0.1:{port}/auctionimages'
missing, flaky, n = [], [], 0
for j in range(nj):
    lot = 3000 + j // 5
    items = []
    for k in range(5):
        ts = 1713553344 + j
        rel = [f'{lot}/{ts}/i{k:04d}-{j}.jpg', f'{lot}/{ts}/thumbs/i{k:04d}-{j}.jpg']
        for r in rel:
            n += 1
            if n % 100 == 7:
                missing.append(r)          # listed, never on the origin
                continue
            p = f'{t}/origin/auctionimages/{r}'
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'wb') as f:
                f.write(b'\xff\xd8\xff\xe0' + rnd.randbytes(rnd.randrange(500, 3000)))
            if n in (10, 4 * nj, 8 * nj):
                flaky.append('/auctionimages/' + r)
        items.append({'lot': lot, 'image_url': f'{base}/{rel[0]}',
                      'thumb_url': f'{base}/{rel[1]}', 'title': 'x'})
    # a duplicate URL (collapses) in every tenth file
    if j % 10 == 0:
        items.append({'image_url': items[0]['image_url']})
    json.dump({'page': j, 'lots': items}, open(f'{t}/json/page-{j:04d}.json', 'w'))
# two big files for ranged reads
for name, size in (('big/a.bin', 3 << 20), ('big/b.bin', 700000)):
    p = f'{t}/origin/auctionimages/{name}'
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, 'wb').write(rnd.randbytes(size))
open(f'{t}/urls.txt', 'w').write(f'# big files\n{base}/big/a.bin\n\n{base}/big/b.bin\n{base}/big/a.bin\n')
open(f'{t}/missing', 'w').write('\n'.join(missing) + '\n')
open(f'{t}/flaky', 'w').write(','.join(flaky))
print(n, len(missing), file=sys.stderr)
PY
setsid "$SYS_PY" "$TESTS_DIR/servers/http_origin.py" "$OPORT" "$O" "$T/state" >"$T/origin.out" 2>&1 &
OPID=$!
trap 'cleanup_mounts; kill $OPID 2>/dev/null' EXIT
for i in $(seq 1 50); do grep -q ready "$T/origin.out" && break; sleep 0.1; done
echo "flaky=$(cat "$T/flaky")" >"$T/state/control"
OLOG=$T/state/requests.log
touch "$OLOG"
omark() { wc -l <"$OLOG"; }
osince() { tail -n +"$(($1 + 1))" "$OLOG" | grep -cE "${2:-.}" || true; }

s3 mkbucket httpdst
write_conf "$T/m.conf" httpdst "
[cf]
type = http
json_glob = $T/json/*.json
json_fields = image_url, thumb_url
strip_prefix = /auctionimages/
retry_base_ms = 20

[list]
type = http
manifest = $T/urls.txt
strip_prefix = /auctionimages/
retry_base_ms = 20"
# no data cache: the origin's failures below are met by reads of bytes
# read before (it would answer them with no request)
OPTS=config=$T/m.conf,cache_dir=$T/cache,journal=$J,data_cache=0

mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail mount "did not mount"; exit 1; }

# ---- the tree: no request to the origin for listing
m=$(omark)
nfiles=$(find "$MNT/cf" -type f | wc -l)
[ "$nfiles" -eq $NURL ] && [ "$(osince "$m")" -eq 0 ] &&
	pass "find lists the $NURL URLs of $NJ JSON files (duplicates collapsed) without a request to the origin" ||
	fail "tree" "$nfiles files, $(osince "$m") requests"

# ---- rsync -a into the S3 bucket
m=$(omark)
t0=$SECONDS
rsync -a "$MNT/cf/" "$MNT/s3t/" >"$T/rsync.out" 2>&1
rc=$?
nvan=$(grep -c "^file has vanished" "$T/rsync.out")
echo "  (rsync: $((SECONDS - t0)) s)"
[ $rc -eq 24 ] && [ "$nvan" -eq $NMISS ] &&
	pass "rsync -a: $NMISS files 'vanished' (404 at the origin), exit 24, the rest copied" ||
	fail "rsync" "rc=$rc vanished=$nvan $(grep -v vanished "$T/rsync.out" | head -3)"
wait_uploads "$J" 120
echo "  (rsync and uploads: $((SECONDS - t0)) s)"
nmiss=$(sqlite3 "$J" "select count(distinct key) from events where op='missing' and remote='cf'")
[ "$nmiss" -eq $NMISS ] && sqlite3 "$J" "select detail from events where op='missing' limit 1" | grep -q "HTTP 404" &&
	pass "the journal has a 'missing' row for each of the $NMISS, with the origin's answer" || fail "journal missing" "$nmiss"
s3 manifest httpdst "" >"$T/server.man"
(cd "$O/auctionimages" && find . -type f -not -path './big/*' -print0 | xargs -0 md5sum |
	sed -E 's|^([0-9a-f]{32})  \./(.*)$|\2\t\1|' | sort) >"$T/origin.man"
cut -f1,3 "$T/server.man" | sort >"$T/server.km"
if cmp -s "$T/origin.man" "$T/server.km"; then
	pass "all $((NURL - NMISS)) existing images on S3 under the URL's path, every md5 identical"
else
	fail "copied bytes" "$(diff "$T/origin.man" "$T/server.km" | head -3)"
fi
nfl=0
for p in $(tr , ' ' <"$T/flaky"); do
	[ "$(grep -c "^GET $p 200\|^HEAD $p 200" "$OLOG")" -ge 1 ] && [ "$(grep -c " $p 503" "$OLOG")" -eq 2 ] && nfl=$((nfl + 1))
done
[ $nfl -eq 3 ] && pass "the three flaky URLs answered 503 twice, were retried, and copied" || fail "flaky" "$nfl of 3"
heads=$(osince "$m" '^HEAD'); gets=$(osince "$m" '^GET')
echo "  (origin: $heads HEAD, $gets GET for $NURL URLs)"

# ---- a re-run sends nothing and makes no request at all
m=$(omark)
rsync -a --stats "$MNT/cf/" "$MNT/s3t/" >"$T/rsync2.out" 2>&1
[ "$(osince "$m")" -eq 0 ] && grep -q "Number of regular files transferred: 0" "$T/rsync2.out" &&
	pass "second rsync -a: nothing transferred, no request to the origin" ||
	fail "rerun" "$(osince "$m") requests; $(grep transferred "$T/rsync2.out")"

# ---- read-only
touch "$MNT/cf/new.jpg" 2>"$T/e1"; (echo x >"$MNT/cf/3000/x") 2>"$T/e2"
rm "$(find "$MNT/cf" -type f | head -1)" 2>"$T/e3"
grep -q "Read-only file system" "$T/e1" && grep -q "Read-only file system" "$T/e2" && grep -q "Read-only file system" "$T/e3" &&
	pass "writes, creates and deletes on an http remote: EROFS" || fail "erofs" "$(cat "$T/e1" "$T/e2" "$T/e3")"

# ---- a text manifest; ranged reads, also from an origin that ignores Range
[ "$(ls "$MNT/list/big")" = "$(printf 'a.bin\nb.bin')" ] && pass "a text manifest: comments and blank lines skipped, duplicates collapsed" ||
	fail "manifest" "$(ls -R "$MNT/list")"
cmp -s "$MNT/list/big/a.bin" "$O/auctionimages/big/a.bin" && pass "a 3 MiB file reads back identical (ranged GETs)" || fail "ranged read" "differs"
echo "norange=1" >"$T/state/control"
dd if="$MNT/list/big/b.bin" bs=1000 skip=300 count=100 2>/dev/null | cmp -s - <(dd if="$O/auctionimages/big/b.bin" bs=1000 skip=300 count=100 2>/dev/null) &&
	pass "an origin that answers 200 to a Range: the right bytes all the same" || fail "norange" "differs"
: >"$T/state/control"
# an origin that keeps failing: retried with backoff (5 retries), then EIO
echo "rate503=1" >"$T/state/control"
m=$(omark)
dd if="$MNT/list/big/a.bin" of=/dev/null bs=64k skip=40 count=1 iflag=direct 2>"$T/eio"
rc=$?
[ $rc -ne 0 ] && grep -q "Input/output error" "$T/eio" && [ "$(osince "$m" ' 503$')" -ge 6 ] &&
	pass "an origin answering 503 to everything: retried ($(osince "$m" ' 503$') tries), then EIO" ||
	fail "eio" "rc=$rc $(cat "$T/eio") $(osince "$m") requests"
: >"$T/state/control"
[ "$(getfattr --only-values -n user.mediafs.url "$MNT/list/big/b.bin")" = "http://127.0.0.1:$OPORT/auctionimages/big/b.bin" ] &&
	pass "user.mediafs.url is the source URL" || fail "url xattr" "$(getfattr -d "$MNT/list/big/b.bin")"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- remount: sizes and the tree from the cache
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "did not mount"; exit 1; }
m=$(omark)
n=$(ls -lR "$MNT/cf" | grep -c '^-')
[ "$n" -eq $((NURL - NMISS)) ] && [ "$(osince "$m")" -eq 0 ] && pass "remount + ls -lR: $((NURL - NMISS)) files with sizes, 0 requests" ||
	fail "remount" "$n files, $(osince "$m") requests"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- a changed manifest: the tree is built again at the next mount
echo "http://127.0.0.1:$OPORT/auctionimages/big/c.bin" >>"$T/urls.txt"
mount_fs "$LOG" "$MNT" -o "$OPTS" || { fail remount "did not mount"; exit 1; }
[ "$(ls "$MNT/list/big" | tr '\n' ' ')" = "a.bin b.bin c.bin " ] && pass "a changed manifest: the cached tree is dropped and built again" ||
	fail "manifest change" "$(ls "$MNT/list/big")"
umount_fs "$LOG" "$MNT" || fail unmount "see $LOG"

# ---- config errors
printf '[bad]\ntype = http\nstrip_prefix = /x/\n' >"$T/bad.conf"
"$MEDIAFS" -f -o config="$T/bad.conf",cache_dir="$T/c2" bad: "$MNT" 2>"$T/err" && fail "bad config" "mounted" ||
	{ grep -q "needs 'manifest = FILE' and/or 'json_glob = PATTERN'" "$T/err" && pass "an http remote without a manifest: a clear error" || fail "bad config" "$(cat "$T/err")"; }
