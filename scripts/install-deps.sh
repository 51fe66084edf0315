#!/bin/sh
# Install what mediafs needs to build, test and demo on Debian 12, once:
# a package already present is not touched, so re-runs take a second.
# Used by 'make check', 'make demo' and 'make bench'.
set -eu

# Build: compiler, libraries (through pkg-config).
BUILD_PKGS="gcc make pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
libssl-dev libsqlite3-dev libxml2-dev libmagic-dev libjansson-dev
libvips-dev libpq-dev"
# Tests: the S3 test server (OpenStack Swift + s3api, Debian's
# python3-swift 2.30), an independent S3 client to upload fixtures
# (python3-boto3), the tools the mounted tests drive, and PostgreSQL
# (server binaries for a throwaway cluster per test run); socat and
# iproute2 for the hosts in network namespaces of test_ledger and
# scripts/bench-fleet.sh (tests/lib/netns.sh).
TEST_PKGS="python3 python3-swift python3-boto3 attr rsync sqlite3 procps file
imagemagick libvips-tools curl
psmisc postgresql debhelper dpkg-dev fakeroot socat iproute2"
# Fuzzing (tests/fuzz, 'make fuzz'): clang's libFuzzer and its sanitizer
# runtimes (UBSan's float-cast checks are clang's; gcc's has none).
FUZZ_PKGS="clang libclang-rt-14-dev"

# Benchmarks (scripts/install-deps.sh bench): the peers measured beside
# mediafs, and bc for the figures.
BENCH_PKGS=""
[ "${1:-}" = bench ] && BENCH_PKGS="s3fs rclone bc"
# The file-manager benchmark (scripts/install-deps.sh fm): the peers, an X
# server without a screen, a GTK file manager and a session bus for it.
[ "${1:-}" = fm ] && BENCH_PKGS="s3fs rclone bc xvfb x11-utils pcmanfm dbus"

missing=""
for p in $BUILD_PKGS $TEST_PKGS $FUZZ_PKGS $BENCH_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done

if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

# The test tier is pinned to what Debian 12 ships; say so if it moved.
v=$(dpkg-query -W -f='${Version}' python3-swift 2>/dev/null || true)
case "$v" in
2.30.*) ;;
*) echo "install-deps: warning: python3-swift is '$v', tests were written against 2.30.x (tests/README.md)" >&2 ;;
esac

[ -e /dev/fuse ] || echo "install-deps: warning: /dev/fuse is missing; mounted tests and the demo need FUSE" >&2
exit 0
