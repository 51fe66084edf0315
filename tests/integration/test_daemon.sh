#!/bin/bash
# The daemon as users run it: without -f it forks into the background (and
# must open its SQLite files again in the child); uploads finish and land
# in the journal; SIGTERM unmounts and drains the queue before exiting.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
J=$T/journal.db
write_conf "$CONF" daemon
s3 mkbucket daemon
mkdir -p "$MNT" "$T/src"
for i in $(seq 1 40); do head -c $((3000 + i)) /dev/urandom >"$T/src/f$i"; done

"$MEDIAFS" -o config="$CONF",cache_dir="$T/cache",journal="$J" s3t: "$MNT" 2>"$T/start.err"
rc=$?
[ $rc -eq 0 ] && mountpoint -q "$MNT" && pass "daemonised mount returns 0 with the mount in place" ||
	{ fail "daemon mount" "exit $rc: $(cat "$T/start.err")"; exit 1; }
pid=$(pgrep -f "config=$CONF" | head -1)
cp -r "$T/src" "$MNT/d1"
wait_uploads "$J" 60 && [ "$(sqlite3 "$J" "select count(*) from uploads where state='done' and key like 'd1/f%'")" = 40 ] &&
	pass "daemonised: 40 uploads done in the journal" ||
	fail "daemon journal" "$(sqlite3 "$J" "select state, count(*) from uploads group by state")"

cp -r "$T/src" "$MNT/d2"
kill -TERM "$pid"
for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "SIGTERM" "daemon still running after 30 s" ||
	pass "SIGTERM: the daemon unmounts, drains and exits"
mountpoint -q "$MNT" && fail "SIGTERM" "still mounted" || pass "SIGTERM: unmounted"
n=$(s3 keys daemon d2/ | grep -c '/f')
left=$(sqlite3 "$J" "select count(*) from uploads where state='pending'")
[ "$n" -eq 40 ] && [ "$left" -eq 0 ] && pass "everything copied before SIGTERM is on the server" ||
	fail "drain on SIGTERM" "$n of 40 on the server, $left pending"
