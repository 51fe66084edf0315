#!/bin/bash
# make bench, the read part: mediafs beside s3fs and rclone mount
# (--vfs-cache-mode full) in one run on one Swift s3api server, inside a
# private network namespace. Every tool reads the same bucket; the server's
# request log gives GETs and the bytes each response carried.
#   a 200 MB object with dd bs=1M; 200 objects of 1 MiB with cat; 500
#   random 4 KiB preads in a 100 MB object; a re-read of the 200 MB and the
#   200 files; the same after an unmount and a mount.
# Prints seconds, GETs and bytes fetched / bytes read per step; the figures
# are recorded in docs/BENCHMARKS.md. Needs root (network namespace, FUSE).
#   BENCH_TOOLS="mediafs s3fs rclone"; the tool "base" is another mediafs
#   binary, BENCH_BASE=PATH (e.g. a build of the previous commit), for a
#   before/after comparison in the same run
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/bench-read
TOOLS=${BENCH_TOOLS:-mediafs s3fs rclone}

if [ -z "${MFS_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench-read: needs root (network namespace, FUSE)"; exit 1; }
	scripts/install-deps.sh bench || exit 1
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
mkdir -p "$D/data" "$D/small/files"
swift_start "$D/swift" || exit 1
PY=/usr/bin/python3
s3tool() { "$PY" tests/lib/s3tool.py --port "$S3_PORT" "$@"; }
now() { date +%s.%N; }
el() { echo "$2 - $1" | bc | awk '{printf "%.2f", $1}'; }
mark() { wc -l <"$S3_REQLOG"; }
# gets MARK: GETs of objects (not listings) since MARK; fetched MARK: their
# response bytes
gets() { tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -cE '^GET /bench-read/[^ ?]' || true; }
fetched() {
	tail -n +"$(($1 + 1))" "$S3_REQLOG" |
		awk '$1 == "GET" && $2 ~ /^\/bench-read\/[^?]+$/ && $4 ~ /^[0-9]+$/ { s += $4 } END { print s + 0 }'
}
ratio() { echo "scale=2; $1 / $2" | bc | awk '{printf "%.2f", $1}'; }

echo "== data: 200 MB, 100 MB, 200 x 1 MiB (random bytes)"
head -c 200000000 /dev/urandom >"$D/data/big"
head -c 100000000 /dev/urandom >"$D/data/rand"
for i in $(seq -w 1 200); do head -c 1048576 /dev/urandom >"$D/small/files/f$i"; done
s3tool mkbucket bench-read
s3tool put bench-read big "$D/data/big"
s3tool put bench-read rand "$D/data/rand"
s3tool putdir bench-read "$D/small" >/dev/null
SMALL=$((200 * 1048576))

cat >"$D/mediafs.conf" <<EOC
[b]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = bench-read
access_key_id = test:tester
secret_access_key = testing
EOC
chmod 600 "$D/mediafs.conf"

PID=
mount_tool() {	# mount_tool TOOL MNT
	mkdir -p "$2"
	case $1 in
	mediafs|base)
		local bin=./mediafs
		[ "$1" = base ] && bin=${BENCH_BASE:?BENCH_BASE=PATH of the base binary}
		"$bin" -f -o config="$D/mediafs.conf",cache_dir="$D/$1-cache",journal="$D/$1-journal.db" \
			b: "$2" 2>>"$D/$1.log" &
		;;
	s3fs)
		AWSACCESSKEYID=test:tester AWSSECRETACCESSKEY=testing \
			s3fs bench-read "$2" -f -o url=http://127.0.0.1:"$S3_PORT",use_path_request_style,endpoint=us-east-1,sigv4 \
			2>>"$D/s3fs.log" &
		;;
	rclone)
		env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other \
		RCLONE_CONFIG_B_ENDPOINT=http://127.0.0.1:"$S3_PORT" RCLONE_CONFIG_B_REGION=us-east-1 \
		RCLONE_CONFIG_B_ACCESS_KEY_ID=test:tester RCLONE_CONFIG_B_SECRET_ACCESS_KEY=testing \
		RCLONE_CONFIG_B_FORCE_PATH_STYLE=true \
			rclone mount b:bench-read "$2" --vfs-cache-mode full --cache-dir "$D/rclone-cache" \
			2>>"$D/rclone.log" &
		;;
	esac
	PID=$!
	for i in $(seq 1 100); do mountpoint -q "$2" && return 0; sleep 0.1; done
	echo "bench-read: $1 did not mount" >&2
	return 1
}
umount_tool() {
	fusermount3 -u "$1"
	wait "$PID" 2>/dev/null
}

# step NAME BYTES_READ COMMAND...: time COMMAND, count GETs and bytes
step() {
	local name=$1 read=$2 m t0 t1 g b
	shift 2
	m=$(mark)
	t0=$(now)
	"$@" || echo "   ($name: the command failed)"
	t1=$(now)
	g=$(gets "$m")
	b=$(fetched "$m")
	printf '   %-22s %8s s %6s GETs  fetched/read %s\n' "$name" "$(el "$t0" "$t1")" "$g" "$(ratio "$b" "$read")"
	echo "$tool|$name|$(el "$t0" "$t1")|$g|$(ratio "$b" "$read")" >>"$D/results"
}
seqread() { dd if="$1/big" of=/dev/null bs=1M 2>/dev/null; }
smallread() { cat "$1"/files/* >/dev/null; }
randread() {
	"$PY" - "$1/rand" <<'PY'
import os, random, sys
random.seed(11)
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
for _ in range(500):
    os.pread(fd, 4096, random.randrange(0, size // 4096) * 4096)
PY
}
rereads() { seqread "$1" && smallread "$1"; }

: >"$D/results"
for tool in $TOOLS; do
	echo "== $tool"
	MNT=$D/mnt-$tool
	mount_tool "$tool" "$MNT" || continue
	ls -lR "$MNT" >/dev/null
	step "dd 200 MB" 200000000 seqread "$MNT"
	step "cat 200 x 1 MiB" "$SMALL" smallread "$MNT"
	step "500 random 4 KiB" $((500 * 4096)) randread "$MNT"
	step "re-read" $((200000000 + SMALL)) rereads "$MNT"
	umount_tool "$MNT"
	mount_tool "$tool" "$MNT" || continue
	ls -lR "$MNT" >/dev/null
	step "re-read after remount" $((200000000 + SMALL)) rereads "$MNT"
	umount_tool "$MNT"
done
echo "== results (tool|step|seconds|GETs|fetched/read): $D/results"
cat "$D/results"
