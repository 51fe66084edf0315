# tests/lib/netns.sh - hosts of their own on one machine (sourced): each
# host a network namespace of its own (unshare -n) that reaches the
# servers on the outer 127.0.0.1 through a Unix socket, which crosses
# network namespaces: socat on 127.0.0.1:PORT inside the host's namespace
# -> NS_SOCKDIR/NAME.sock -> socat to 127.0.0.1:PORT outside. Inside, the
# same address and port as outside, so one config and one URL serve every
# host. No interface, address or route is made outside: nothing is left
# behind and nothing collides with another test or benchmark.
#   ns_usable               0 when unshare -n -m, ip and socat work here;
#                           else 1 with the reason in NS_WHY
#   ns_forward_out NAME PORT  outside: NAME.sock -> 127.0.0.1:PORT
#   ns_forward_in NAME PORT   inside a host's namespace (lo up first):
#                           127.0.0.1:PORT -> NAME.sock; 0 once it carries
#                           a connection (up to 60 s)
#   ns_reachable PORT       0 when 127.0.0.1:PORT accepts a connection here
#   ns_stop_forwarders      stop every forwarder of NS_SOCKDIR
#   ns_drop_inherited_mounts  inside a host's new mount namespace, first:
#                           detach the FUSE mounts copied from outside
#                           (other tests' mounts: a copy held here keeps
#                           their daemons from ending at their unmount)
# NS_SOCKDIR: $T/ns, or a short directory in /tmp when $T is too long
# for a socket's path (108 bytes).

ns_usable() {
	NS_WHY=
	command -v unshare >/dev/null || NS_WHY="no unshare(1)"
	[ -z "$NS_WHY" ] && ! command -v socat >/dev/null && NS_WHY="no socat (scripts/install-deps.sh)"
	[ -z "$NS_WHY" ] && ! command -v ip >/dev/null && NS_WHY="no ip(8) (iproute2)"
	[ -z "$NS_WHY" ] && ! unshare -m -n true 2>/dev/null && NS_WHY="unshare -m -n not permitted here"
	[ -z "$NS_WHY" ] || return 1
	if [ ${#T} -le 80 ]; then
		NS_SOCKDIR=$T/ns
		mkdir -p "$NS_SOCKDIR"
	else
		NS_SOCKDIR=$(mktemp -d /tmp/mfsns.XXXXXX)
	fi
	: >"$NS_SOCKDIR/pids"
	export NS_SOCKDIR
}

ns_reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ns_forward_out() {
	local i
	rm -f "$NS_SOCKDIR/$1.sock"
	socat "UNIX-LISTEN:$NS_SOCKDIR/$1.sock,fork" "TCP:127.0.0.1:$2" 2>>"$NS_SOCKDIR/$1.out.log" &
	echo $! >>"$NS_SOCKDIR/pids"
	for i in $(seq 1 600); do
		[ -S "$NS_SOCKDIR/$1.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

ns_forward_in() {
	local i
	socat "TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$NS_SOCKDIR/$1.sock" \
		2>>"$NS_SOCKDIR/$1.in.log" &
	echo $! >>"$NS_SOCKDIR/pids"
	for i in $(seq 1 600); do
		ns_reachable "$2" && return 0
		sleep 0.1
	done
	return 1
}

ns_stop_forwarders() {
	local p
	[ -n "${NS_SOCKDIR:-}" ] && [ -f "$NS_SOCKDIR/pids" ] || return 0
	for p in $(cat "$NS_SOCKDIR/pids"); do
		kill "$p" 2>/dev/null
	done
	case "$NS_SOCKDIR" in /tmp/mfsns.*) rm -rf "$NS_SOCKDIR" ;; esac
	true
}

ns_drop_inherited_mounts() {
	local m
	awk '$3 ~ /^fuse/ {print $2}' /proc/self/mounts | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	true
}
