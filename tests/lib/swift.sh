# tests/lib/swift.sh - start/stop the Swift s3api server (sourced).
# swift_start DIR [PORT]: a free port unless given; exports S3_PORT,
# S3_REQLOG, SWIFT_PID. Restarting on the same DIR keeps the data.
swift_start() {
	local dir=$1 i try
	mkdir -p "$dir"
	S3_REQLOG=$dir/requests.log
	touch "$S3_REQLOG"
	# A free port unless given; a server that dies before "ready" (that
	# port taken meanwhile by another lane) is started again on a new one.
	for try in 1 2 3; do
		S3_PORT=${2:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
		rm -f "$dir/swift.out"
		PYTHONPATH=$(dirname "${BASH_SOURCE[0]}")/../servers \
			setsid /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../servers/swift_s3.py" \
			"$dir" "$S3_PORT" --reqlog "$S3_REQLOG" >"$dir/swift.out" 2>&1 &
		SWIFT_PID=$!
		# Up to 120 s: at load average 30 the four servers start slowly.
		for i in $(seq 1 1200); do
			grep -q ready "$dir/swift.out" 2>/dev/null && break
			kill -0 "$SWIFT_PID" 2>/dev/null || break
			sleep 0.1
		done
		grep -q ready "$dir/swift.out" 2>/dev/null && break
		[ -n "${2:-}" ] && break	# a given port: no other to try
	done
	SWIFT_DIR=$dir
	export S3_PORT S3_REQLOG SWIFT_PID SWIFT_DIR
	grep -q ready "$dir/swift.out" 2>/dev/null || {
		echo "Swift did not start:" >&2
		cat "$dir/swift.out" >&2
		return 1
	}
}

# swift_stop: stop the server of $SWIFT_DIR, whoever started it (a test may
# have restarted it under another pid).
swift_stop() {
	local pid
	pid=$(cat "$SWIFT_DIR/pid" 2>/dev/null)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null	# either may be gone already
	[ -n "${SWIFT_PID:-}" ] && kill "$SWIFT_PID" 2>/dev/null
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$SWIFT_DIR/pid"
	SWIFT_PID=
	return 0
}
