# reap_under DIR: make sure nothing a test started below DIR outlives it.
# Aborts the FUSE connection of every mount below DIR (a daemon that hangs
# cannot then hold a caller in D state), unmounts it lazily, and kills every
# process whose command line or working directory is below DIR. Used by the
# runner when a test exceeds its time and after every test.
reap_under() {
	local dir=$1 m dev minor pids p c
	[ -n "$dir" ] && [ "$dir" != / ] || return 0
	# mountinfo: ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... (no stat of a
	# mount point: that would hang on a daemon that does not answer).
	while read -r _ _ dev _ m _; do
		case "$m" in "$dir"/*) ;; *) continue ;; esac
		minor=${dev#*:}
		[ -w "/sys/fs/fuse/connections/$minor/abort" ] &&
			echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
		umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	done </proc/self/mountinfo
	pids=$(pgrep -f -- "$dir/" 2>/dev/null)
	# working directories: one find, not a readlink per process (that took
	# 18 s at load average 20); glob characters in DIR matched literally
	c=$(printf '%s' "$dir" | sed 's/[][*?\\]/\\&/g')
	pids="$pids $(find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$c" -o -lname "$c/*" \) \
		-printf '%h\n' 2>/dev/null | sed 's|^/proc/||')"
	for p in $pids; do
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		kill -9 "$p" 2>/dev/null
	done
	true
}
