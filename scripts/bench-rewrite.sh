#!/bin/bash
# make bench, part 4: mediactl rewrite at scale. A table of N rows
# (id, url text) in a throwaway PostgreSQL cluster and in SQLite; a prefix
# rewrite of every row (plan = dry run into the journal, then apply, each
# row compare-and-set), then its rollback. Prints time, rows/s and the
# peak RSS of each mediactl run.   BENCH_REWRITE_ROWS=1000000
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${BENCH_REWRITE_ROWS:-1000000}
D=$ROOT/build/bench-rewrite
[ -x build/mediactl ] || make -s build/mediactl
rm -rf "$D"
mkdir -p "$D"
T=$D . tests/lib/pg.sh
pg_start "$D/pg" >/dev/null
trap pg_stop EXIT

psql_ -c "CREATE TABLE frames(id bigint PRIMARY KEY, image_url text);
	  INSERT INTO frames SELECT g, 'https://ref.supabase.co/storage/v1/object/public/images/f/' || g || '.png'
	  FROM generate_series(1, $N) g;" >/dev/null
sqlite3 "$D/app.db" "CREATE TABLE frames(id integer PRIMARY KEY, image_url text);
	WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < $N)
	INSERT INTO frames SELECT x, 'https://ref.supabase.co/storage/v1/object/public/images/f/' || x || '.png' FROM g;"

timed() {	# timed LABEL ROWS CMD...: a table row
	/usr/bin/python3 - "$@" <<'PY'
import resource, subprocess, sys, time
label, rows, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
t0 = time.time()
r = subprocess.run(cmd, capture_output=True, text=True)
dt = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if r.returncode:
    sys.exit(r.stdout + r.stderr)
print(f'| {label} | {dt:.1f} s | {rows / dt:,.0f} | {rss:.0f} MB |', flush=True)
PY
}
echo
echo "mediactl rewrite prefix, $N rows (id, url); one mediactl process per step"
echo "| step | time | rows/s | peak RSS (largest so far) |"
echo "|---|---|---|---|"
for db in pg sqlite; do
	if [ $db = pg ]; then CONN=$PG_URL; else CONN=sqlite:$D/app.db; fi
	J=$D/journal-$db.db
	timed "$db: plan (dry run)" "$N" build/mediactl --journal "$J" rewrite prefix --db "$CONN" \
		--table frames --column image_url \
		--from https://ref.supabase.co/storage/v1/object/public/images/ \
		--to https://images.s3.eu-west-1.amazonaws.com/
	timed "$db: apply" "$N" build/mediactl --journal "$J" rewrite apply 1 --db "$CONN"
	q="SELECT count(*) FROM frames WHERE image_url LIKE 'https://images.s3.%'"
	n=$(if [ $db = pg ]; then psql_ -c "$q"; else sqlite3 "$D/app.db" "$q"; fi)
	[ "$n" = "$N" ] || { echo "bench-rewrite: $db: $n of $N rows rewritten" >&2; exit 1; }
	timed "$db: rollback" "$N" build/mediactl --journal "$J" rollback --rewrite 1 --db "$CONN"
	n=$(if [ $db = pg ]; then psql_ -c "$q"; else sqlite3 "$D/app.db" "$q"; fi)
	[ "$n" = 0 ] || { echo "bench-rewrite: $db: $n rows not rolled back" >&2; exit 1; }
done
echo "(every row checked: all rewritten after apply, all restored after rollback)"
