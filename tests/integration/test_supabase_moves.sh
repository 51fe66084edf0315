#!/bin/bash
# Two moves of one key never reach Supabase at once (API-NOTES F19: the
# real server can answer 500 and leave an orphan version). The fake answers
# 500 to a move of a key another move still has in flight (move_ms keeps
# each in flight 1.5 s) and notes the orphan. Through the mount, the kernel
# serialises renames inside one directory, but not a rename of a folder
# with a rename of a file inside it: `mv d1/x d2/x & mv d1 d3` both move
# d1/x. Each round: no 500, no orphan, x's bytes exactly once on the store,
# where the rename that succeeded put them, and the mount agrees.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"

sb_test
B=http://127.0.0.1:$SB_PORT/storage/v1
c() { curl -s -o "$1" -w '%{http_code}' -H "apikey: $SB_KEY" "${@:2}"; }
mv_req() {	# mv_req OUT SRC DST: one move request to the fake
	c "$1" -X POST -H 'Content-Type: application/json' \
		-d "{\"bucketId\":\"f\",\"sourceKey\":\"$2\",\"destinationKey\":\"$3\"}" "$B/object/move"
}

# ---- the fake: a second move of a key in flight answers 500, one orphan
c /dev/null -X POST -H 'Content-Type: application/json' -d '{"id":"f","name":"f"}' "$B/bucket" >/dev/null
c /dev/null -X POST --data-binary x "$B/object/f/a" >/dev/null
echo move_ms=3000 >"$SB_CONTROL"
mv_req "$T/r1" a b >"$T/s1" &
p1=$!
mv_req "$T/r2" a c >"$T/s2" &
p2=$!
wait "$p1" "$p2"
got=$(sort "$T/s1" "$T/s2" | tr '\n' ' ')
if [ "$got" = "200 500 " ] && cat "$T/r1" "$T/r2" | grep -q ENOENT && grep -qx f/a "$T/sb/orphans"; then
	pass "fake: of two moves of one key at once, one answers 500 (ENOENT) and leaves an orphan"
elif [ "$got" = "200 400 " ]; then
	skip "fake concurrent move" "the two moves did not overlap within 3 s (machine too slow)"
else
	fail "fake concurrent move" "answers $got$(cat "$T/r1" "$T/r2")"
fi
rm -f "$T/sb/orphans"
: >"$SB_CONTROL"
k=b
[ "$(cat "$T/s2")" = 200 ] && k=c
s3=$(mv_req "$T/r3" $k d)$(mv_req "$T/r4" d e)
[ "$s3" = 200200 ] && [ ! -e "$T/sb/orphans" ] && pass "fake: moves of one key one after the other: 200, 200" ||
	fail "fake sequential moves" "$s3 $(cat "$T/r3" "$T/r4")"
: >"$SB_CONTROL"

# ---- through the mount
: >"$T/m.conf"
chmod 600 "$T/m.conf"
supa_conf "$T/m.conf"
mount_fs "$LOG" "$MNT" -o "config=$T/m.conf,cache_dir=$T/cache,journal=$J" supa: ||
	{ fail mount "mediafs did not mount supa:"; exit 1; }
mkdir "$MNT/m"
ROUNDS=3
for r in $(seq 1 $ROUNDS); do
	mkdir -p "$MNT/m/d1_$r" "$MNT/m/d2_$r"
	head -c 3000 /dev/urandom >"$T/x_$r"
	echo "other $r" >"$MNT/m/d1_$r/y"
	cp "$T/x_$r" "$MNT/m/d1_$r/x"
done
wait_uploads "$J" 120 || fail "uploads" "still pending"
m=$(sb_mark)
echo move_ms=1500 >"$SB_CONTROL"
for r in $(seq 1 $ROUNDS); do
	( mv "$MNT/m/d1_$r/x" "$MNT/m/d2_$r/x" 2>"$T/mvf_$r.err"; echo $? >"$T/mvf_$r" ) &
	p1=$!
	( mv "$MNT/m/d1_$r" "$MNT/m/d3_$r" 2>"$T/mvd_$r.err"; echo $? >"$T/mvd_$r" ) &
	p2=$!
	wait "$p1" "$p2"	# not a bare wait: mediafs is a child too
done
: >"$SB_CONTROL"
n500=$(sb_since "$m" '^POST /storage/v1/object/move 500')
nmoves=$(sb_since "$m" '^POST /storage/v1/object/move ')
waits=$(grep -c 'waited for another move of the same key' "$LOG")
[ "$n500" = 0 ] && [ ! -e "$T/sb/orphans" ] &&
	pass "$ROUNDS rounds of mv d1/x d2/x & mv d1 d3: $nmoves moves, none answered 500, no orphan ($waits moves waited for another of their key)" ||
	fail "concurrent moves" "$n500 of $nmoves moves answered 500; orphans: $(cat "$T/sb/orphans" 2>/dev/null | tr '\n' ' ')"
sb manifest m >"$T/man"
for r in $(seq 1 $ROUNDS); do
	md5=$(md5sum <"$T/x_$r" | cut -d' ' -f1)
	where=$(awk -F'\t' -v h="$md5" '$3 == h {print $1}' "$T/man" | tr '\n' ' ')
	want="d3_$r/x "
	[ "$(cat "$T/mvf_$r")" = 0 ] && want="d2_$r/x "
	shown=$(cd "$MNT/m" && ls -d d2_$r/x d3_$r/x 2>/dev/null | tr '\n' ' ')
	if [ "$where" = "$want" ] && [ "$shown" = "$want" ] && cmp -s "$T/x_$r" "$MNT/m/${want% }"; then
		pass "round $r: x once on the store, at $want(file mv rc $(cat "$T/mvf_$r"), folder mv rc $(cat "$T/mvd_$r")), the mount agrees"
	else
		fail "round $r" "store: '$where', mount: '$shown', want '$want'; mv rcs $(cat "$T/mvf_$r") $(cat "$T/mvd_$r"): $(cat "$T/mvf_$r.err" "$T/mvd_$r.err")"
	fi
done
# the folder's other file went with it when its rename succeeded
for r in $(seq 1 $ROUNDS); do
	if [ "$(cat "$T/mvd_$r")" = 0 ]; then
		grep -qP "^d3_$r/y\t" "$T/man" && ! grep -qP "^d1_$r/" "$T/man" &&
			pass "round $r: the renamed folder's other file is at d3_$r/y, nothing left under d1_$r" ||
			fail "round $r folder" "$(grep -P "^d[13]_$r/" "$T/man" | cut -f1 | tr '\n' ' ')"
	fi
done
umount_fs "$LOG" "$MNT" && pass "unmount: clean" || fail "unmount" "$(tail -5 "$LOG")"
