#!/bin/bash
# make bench, the file-manager part: a real GTK file manager (pcmanfm, from
# Debian) under Xvfb opens a folder of 600 extension-less images in the mount
# (cold, warm, after a remount), and `file --mime-type` runs over the same
# 600 files (cold, warm): mediafs beside rclone mount (--vfs-cache-mode full)
# and s3fs, in one run on one Swift s3api server inside a private network
# namespace. The server's request log gives requests and the bytes each GET
# carried. Prints, per step: requests, object GETs, bytes fetched / folder
# bytes, seconds until the requests stop (no request for 5 s), seconds until
# the first thumbnails are on screen (from screenshots); saves a screenshot of each settled
# window. The figures are recorded in docs/BENCHMARKS.md. Needs root.
#   BENCH_TOOLS="mediafs rclone s3fs"   BENCH_FM_FILES=600
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
D=$ROOT/build/bench-fm
TOOLS=${BENCH_TOOLS:-mediafs rclone s3fs}
NF=${BENCH_FM_FILES:-600}

if [ -z "${MFS_BENCH_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "bench-fm: needs root (network namespace, FUSE)"; exit 1; }
	scripts/install-deps.sh fm || exit 1
	exec env MFS_BENCH_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up

. tests/lib/swift.sh
XPID=
cleanup() {
	for m in "$D"/mnt-*; do fusermount3 -u "$m" 2>/dev/null; done
	[ -n "$XPID" ] && kill "$XPID" 2>/dev/null
	umount -l "$D/home/.cache/gvfs" 2>/dev/null
	swift_stop 2>/dev/null
}
trap cleanup EXIT
umount -l "$D/home/.cache/gvfs" 2>/dev/null
rm -rf "$D"
mkdir -p "$D/src/photos" "$D/shots"
swift_start "$D/swift" || exit 1
PY=/usr/bin/python3
s3tool() { "$PY" tests/lib/s3tool.py --port "$S3_PORT" "$@"; }
now() { date +%s.%N; }
el() { echo "$2 - $1" | bc | awk '{printf "%.1f", $1}'; }
mark() { wc -l <"$S3_REQLOG"; }
reqs() { tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -c . || true; }
gets() { tail -n +"$(($1 + 1))" "$S3_REQLOG" | grep -cE '^GET /bench-fm/[^ ?]' || true; }
fetched() {
	tail -n +"$(($1 + 1))" "$S3_REQLOG" |
		awk '$1 == "GET" && $2 ~ /^\/bench-fm\/[^?]+$/ && $4 ~ /^[0-9]+$/ { s += $4 } END { print s + 0 }'
}
ratio() { echo "scale=2; $1 / $2" | bc | awk '{printf "%.2f", $1}'; }

# 600 extension-less JPEGs of ~480 KB (the folder of issue #18: 290.6 MB): 20
# distinct noise photos, each copy made unique by bytes after the JPEG's end
# (decoders stop at EOI), so every object has its own ETag.
echo "== data: $NF extension-less JPEGs"
for i in $(seq 1 20); do
	convert -size 800x600 -seed "$i" plasma:fractal +noise Gaussian -quality 93 "$D/base$i.jpg"
done
for i in $(seq 1 "$NF"); do
	b=$(( (i - 1) % 20 + 1 ))
	{ cat "$D/base$b.jpg"; printf 'mediafs-bench-%06d' "$i"; } >"$D/src/photos/IMG$(printf %04d "$i")"
done
FOLDER=$(cat "$D"/src/photos/* | wc -c)
echo "   folder: $NF files, $FOLDER bytes"
s3tool mkbucket bench-fm
s3tool putdir bench-fm "$D/src" >/dev/null

cat >"$D/mediafs.conf" <<EOC
[b]
type = s3
endpoint = http://127.0.0.1:$S3_PORT
bucket = bench-fm
access_key_id = test:tester
secret_access_key = testing
EOC
chmod 600 "$D/mediafs.conf"

PID=
mount_tool() {	# mount_tool TOOL MNT
	mkdir -p "$2"
	case $1 in
	mediafs)
		./mediafs -f -o config="$D/mediafs.conf",cache_dir="$D/mfs-cache",journal="$D/journal.db" \
			b: "$2" 2>>"$D/mediafs.log" &
		;;
	s3fs)
		AWSACCESSKEYID=test:tester AWSSECRETACCESSKEY=testing \
			s3fs bench-fm "$2" -f -o url=http://127.0.0.1:"$S3_PORT",use_path_request_style,endpoint=us-east-1,sigv4 \
			2>>"$D/s3fs.log" &
		;;
	rclone)
		env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other \
		RCLONE_CONFIG_B_ENDPOINT=http://127.0.0.1:"$S3_PORT" RCLONE_CONFIG_B_REGION=us-east-1 \
		RCLONE_CONFIG_B_ACCESS_KEY_ID=test:tester RCLONE_CONFIG_B_SECRET_ACCESS_KEY=testing \
		RCLONE_CONFIG_B_FORCE_PATH_STYLE=true \
			rclone mount b:bench-fm "$2" --vfs-cache-mode full --cache-dir "$D/rclone-cache" \
			2>>"$D/rclone.log" &
		;;
	esac
	PID=$!
	for i in $(seq 1 300); do mountpoint -q "$2" && return 0; sleep 0.1; done
	echo "bench-fm: $1 did not mount" >&2
	return 1
}
umount_tool() {
	fusermount3 -u "$1"
	wait "$PID" 2>/dev/null
}
wipe_caches() { rm -rf "$D/mfs-cache" "$D/journal.db"* "$D/rclone-cache"; }

# settle MARK T0: wait until the server has had no request for 5 s (at most
# 600 s); prints the seconds from T0 to the last request seen
settle() {
	local n last tlast=$2 quiet=0 waited=0
	# the last request already seen (e.g. while waiting for the first icons)
	last=$(mark)
	[ "$last" != "$1" ] && tlast=$(stat -c %.9Y "$S3_REQLOG")
	while [ "$quiet" -lt 50 ] && [ "$waited" -lt 6000 ]; do
		sleep 0.1
		waited=$((waited + 1))
		n=$(mark)
		if [ "$n" != "$last" ]; then last=$n; tlast=$(now); quiet=0; else quiet=$((quiet + 1)); fi
	done
	el "$2" "$tlast"
}

# the X server, a session bus and a private HOME whose thumbnail cache
# belongs to this run (thumbnails are keyed by URI, so each tool's mount
# path has its own; a remount at the same path reuses them, as a user's does)
# GIO_USE_VFS=local keeps GIO from starting gvfs (whose FUSE mount and
# daemons would outlive the run)
export HOME=$D/home DISPLAY=:77 GIO_USE_VFS=local GVFS_DISABLE_FUSE=1
mkdir -p "$HOME/.config/libfm" "$HOME/.cache/thumbnails/normal" "$HOME/.cache/thumbnails/large"
# pcmanfm's defaults, with thumbnails for files up to 4 MiB (default 2 MiB)
cat >"$HOME/.config/libfm/libfm.conf" <<EOC
[config]
show_thumbnail=1
thumbnail_local=1
thumbnail_max=4096
EOC
Xvfb :77 -screen 0 1600x1000x24 -nolisten tcp >"$D/xvfb.log" 2>&1 &
XPID=$!
for i in $(seq 1 100); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

# icons_shown: the icon area of the screen holds thumbnails (photos have
# thousands of colours; the generic icons and the empty view a few hundred)
icons_shown() {
	local k
	import -window root -crop 420x380+170+70 "$D/probe.png" 2>/dev/null || return 1
	k=$(convert "$D/probe.png" -format %k info: 2>/dev/null)
	[ "${k:-0}" -gt 3000 ]
}

# fm TOOL STEP: open the folder in pcmanfm, wait for the requests to stop,
# screenshot, close
fm() {
	local m t0 first="-" s
	# no file manager left from the step before (pcmanfm is single-
	# instance per display: a second one hands its folder to the first)
	# and nothing of its window left on the screen
	for i in $(seq 1 300); do
		pgrep -x pcmanfm >/dev/null || icons_shown || break
		pkill -9 -x pcmanfm
		sleep 0.1
	done
	m=$(mark)
	t0=$(now)
	# its own session (process group) so that closing it ends every process it started
	setsid dbus-run-session -- pcmanfm --no-desktop "$MNT/photos" >>"$D/pcmanfm.log" 2>&1 &
	local fpid=$!
	# first icons: the first screenshot showing thumbnails, at most 300 s
	for i in $(seq 1 600); do
		echo "$1 $2 $(el "$t0" "$(now)") s: $(($(mark) - m)) requests" >>"$D/timeline"
		icons_shown && { first=$(el "$t0" "$(now)"); break; }
		[ "$(el "$t0" "$(now)" | cut -d. -f1)" -ge 300 ] && break
	done
	s=$(settle "$m" "$t0")
	import -window root "$D/shots/$1-$2.png" 2>/dev/null
	kill -- -"$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null
	pkill -9 -x pcmanfm
	row "$1" "pcmanfm $2" "$m" "$s" "$first"
}
row() {	# row TOOL STEP MARK SECONDS FIRST
	local r g b
	r=$(reqs "$3"); g=$(gets "$3"); b=$(fetched "$3")
	printf '   %-24s %6s requests %5s GETs  fetched/folder %s  settled %s s  first icons %s s\n' \
		"$2" "$r" "$g" "$(ratio "$b" "$FOLDER")" "$4" "$5"
	echo "$1|$2|$r|$g|$(ratio "$b" "$FOLDER")|$4|$5" >>"$D/results"
}
# mime TOOL STEP [FILE-OPTIONS]: file --mime-type over the 600 files (file
# 5.44 reads up to 7 MiB of each in one read(); -P bytes=65536 makes it read
# 64 KiB, the size of a sniff)
mime() {
	local m t0 t1 b
	m=$(mark); t0=$(now)
	file ${3:-} --mime-type "$MNT"/photos/* >"$D/mime-$1-$2.txt"
	t1=$(now)
	b=$(fetched "$m")
	row "$1" "file --mime-type $2" "$m" "$(el "$t0" "$t1")" "-"
	echo "      per file: $(echo "$b / $NF / 1024" | bc) KiB fetched; image/jpeg: $(grep -c 'image/jpeg' "$D/mime-$1-$2.txt") of $NF"
}

: >"$D/results"
for tool in $TOOLS; do
	echo "== $tool"
	MNT=$D/mnt-$tool
	wipe_caches
	mount_tool "$tool" "$MNT" || continue
	fm "$tool" cold
	fm "$tool" warm
	umount_tool "$MNT"
	mount_tool "$tool" "$MNT" || continue
	fm "$tool" remount
	umount_tool "$MNT"
	wipe_caches
	mount_tool "$tool" "$MNT" || continue
	mime "$tool" "64K cold" "-P bytes=65536"
	mime "$tool" cold
	mime "$tool" warm
	umount_tool "$MNT"
done
echo "== results (tool|step|requests|GETs|fetched/folder|settled s|first icons s): $D/results"
cat "$D/results"
echo "== screenshots: $D/shots"
