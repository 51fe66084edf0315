#!/bin/bash
# Ready for users: make install into a scratch root (binaries, man pages);
# the Debian package built with dpkg-buildpackage, installed on this
# machine, mounting a remote from an fstab line with mount -a (mount.fuse3
# starts mediafs, which daemonises), a copy through it, umount; the systemd
# unit checked by systemd-analyze and its own commands run as systemd would
# (start, copy, stop with uploads pending); removal.
. "$(dirname "$0")/../lib/common.sh"

SRC=$(cd "$TESTS_DIR/.." && pwd)
MNT=$T/mnt
if [ "${MFS_TEST_PASS:-}" = mount-asan ]; then
	skip "package" "the package is built from source once, in the first pass; the sanitizer build is not what it ships"
	exit 0
fi

# ---- make install DESTDIR=… PREFIX=/usr
make -s -C "$SRC" install DESTDIR="$T/root" PREFIX=/usr >"$T/install.log" 2>&1
for f in usr/bin/mediafs usr/bin/mediactl usr/share/man/man1/mediafs.1 usr/share/man/man1/mediactl.1 usr/share/man/man5/mediafs.conf.5; do
	[ -f "$T/root/$f" ] || { fail "make install" "$f missing"; break; }
done
"$T/root/usr/bin/mediafs" --version | grep -q "^mediafs 0.1.0" && "$T/root/usr/bin/mediactl" --version | grep -q "^mediactl 0.1.0" &&
	pass "make install DESTDIR PREFIX: both programs and the three man pages" || fail "make install" "$(cat "$T/install.log")"

# ---- the Debian package
if dpkg -s mediafs >/dev/null 2>&1; then
	fail "package" "a mediafs package is installed already; not touching it"
	exit 0
fi
make -s -C "$SRC" deb >"$T/deb.log" 2>&1 || { fail "dpkg-buildpackage" "$(tail -5 "$T/deb.log")"; exit 0; }
DEB=$(ls "$SRC"/build/deb/mediafs_*_*.deb)
pass "dpkg-buildpackage -us -uc -b builds $(basename "$DEB")"
trap 'cleanup_mounts; dpkg -r mediafs >/dev/null 2>&1' EXIT
dpkg -i "$DEB" >"$T/dpkg.log" 2>&1 && [ -x /usr/bin/mediafs ] && /usr/bin/mediafs --version | grep -q "^mediafs 0.1.0" &&
	[ -f /usr/lib/systemd/system/mediafs@.service ] && [ -f /usr/share/man/man1/mediactl.1.gz ] &&
	pass "dpkg -i: mediafs --version runs; man pages and the systemd unit installed" || fail "dpkg -i" "$(tail -5 "$T/dpkg.log")"

# ---- the systemd template unit, as systemd reads it (instance "backup")
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T/units"
	cp /usr/lib/systemd/system/mediafs@.service "$T/units/"
	ln -sf mediafs@.service "$T/units/mediafs@backup.service"
	(cd "$T/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./mediafs@backup.service) >"$T/sd.log" 2>&1 &&
		pass "systemd-analyze verify accepts mediafs@backup.service" || fail "systemd unit" "$(cat "$T/sd.log")"
else
	skip "systemd unit" "systemd-analyze is not installed here"
fi

# ---- the unit's own command lines, run as systemd runs them (PID 1 here
# is not systemd): ExecStartPre, ExecStart in the foreground, then the
# KillSignal; the daemon must unmount, upload everything queued, exit 0
UNIT=/usr/lib/systemd/system/mediafs@.service
if [ -f "$UNIT" ]; then
	s3 mkbucket unit >/dev/null 2>&1
	write_conf "$T/unit.conf" unit
	sub() { sed "s|%i|s3t|g; s|/etc/mediafs.conf|$T/unit.conf|; s|/var/cache/mediafs|$T/ucache|; s|/var/lib/mediafs/journal.db|$T/uj.db|; s|/mnt/|$T/umnt/|g"; }
	pre=$(sed -n 's/^ExecStartPre=//p' "$UNIT" | sub)
	cmd=$(sed -n 's/^ExecStart=//p' "$UNIT" | sub)
	sig=$(sed -n 's/^KillSignal=//p' "$UNIT")
	$pre
	$cmd >"$T/unit.log" 2>&1 &
	upid=$!
	for i in $(seq 1 100); do mountpoint -q "$T/umnt/s3t" && break; sleep 0.1; done
	mkdir -p "$T/unit-src"
	for i in $(seq 1 150); do head -c 20000 /dev/urandom >"$T/unit-src/f$i"; done
	cp -r "$T/unit-src" "$T/umnt/s3t/batch"
	pending=$(sqlite3 "$T/uj.db" "select count(*) from uploads where state='pending'")
	kill -s "${sig:-TERM}" "$upid"
	wait "$upid"
	urc=$?
	n=$(s3 keys unit batch | wc -l)
	[ "$urc" = 0 ] && ! mountpoint -q "$T/umnt/s3t" && [ "$n" = 150 ] &&
		[ "$(sqlite3 "$T/uj.db" "select count(*) from uploads where state='pending'")" = 0 ] &&
		pass "the unit's ExecStart mounts s3t: at /mnt/s3t; its KillSignal ($sig) with $pending uploads pending: unmounted, all 150 uploaded, exit 0" ||
		fail "unit commands" "rc=$urc, $n of 150 on the server; $(tail -3 "$T/unit.log")"
fi

# ---- an fstab line, mount -a (mount.fuse3 -> /usr/bin/mediafs)
mkdir -p "$T/store" "$MNT"
printf '[disk]\ntype = local\npath = %s\n' "$T/store" >"$T/m.conf"
echo "disk: $MNT fuse.mediafs config=$T/m.conf,cache_dir=$T/cache,journal=$T/j.db,_netdev,allow_other 0 0" >"$T/fstab"
PATH=/usr/sbin:/usr/bin:/sbin:/bin mount -T "$T/fstab" -a 2>"$T/mount.err"
if mountpoint -q "$MNT" && grep -q "^disk: $MNT fuse.mediafs " /proc/mounts; then
	pass "mount -a with the fstab line: mounted (fuse.mediafs, shown as 'disk:', daemonised)"
else
	fail "mount -a" "$(cat "$T/mount.err")"
fi
echo "through the fstab mount" >"$MNT/hello.txt"
umount "$MNT"
for i in $(seq 1 100); do pgrep -f "cache_dir=$T/cache" >/dev/null || break; sleep 0.1; done
[ "$(cat "$T/store/hello.txt" 2>/dev/null)" = "through the fstab mount" ] && ! pgrep -f "cache_dir=$T/cache" >/dev/null &&
	pass "a copy through it; umount: the daemon finished the upload and exited" || fail "copy" "$(ls -l "$T/store")"

# ---- removal
dpkg -r mediafs >"$T/dpkg-r.log" 2>&1 && [ ! -e /usr/bin/mediafs ] && [ ! -e /usr/lib/systemd/system/mediafs@.service ] &&
	pass "dpkg -r removes it cleanly" || fail "dpkg -r" "$(tail -3 "$T/dpkg-r.log")"
