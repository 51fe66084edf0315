#!/bin/sh
# mediafs-worker: mount, work the plan off the ledger, unmount (draining
# uploads). Environment: MEDIAFS_LEDGER (postgres://user@host/db),
# PGPASSWORD (from a Secret), MEDIAFS_PLAN, MEDIAFS_CONFIG (default
# /etc/mediafs/mediafs.conf, from a Secret: it holds store keys),
# MEDIAFS_MOUNT (default /mnt/m: the path the plan was made for),
# MEDIACTL_WORK_ARGS (e.g. "--threads 8 --lease 60").
# JOB_COMPLETION_INDEX (an indexed Job) names the host in the ledger.
set -eu
conf=${MEDIAFS_CONFIG:-/etc/mediafs/mediafs.conf}
mnt=${MEDIAFS_MOUNT:-/mnt/m}
mkdir -p "$mnt"
mediafs -f -o config="$conf",cache_dir=/var/cache/mediafs "$mnt" &
fs=$!
i=0
until mountpoint -q "$mnt"; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "mount failed" >&2; exit 3; }
	kill -0 $fs 2>/dev/null || exit 3
	sleep 0.1
done
rc=0
# shellcheck disable=SC2086
mediactl --journal "$MEDIAFS_LEDGER" --config "$conf" work --plan "$MEDIAFS_PLAN" \
	--host "${HOSTNAME:-pod}-${JOB_COMPLETION_INDEX:-0}" ${MEDIACTL_WORK_ARGS:-} || rc=$?
fusermount3 -u "$mnt"
wait $fs || true
exit $rc
