# tests/lib/fake_start.sh - start a fake server on a free port (sourced by
# supabase.sh and imagekit.sh).
# fake_start DIR SCRIPT ARGS...: runs `python3 SCRIPT PORT ARGS...` with
# its output in DIR/server.out until it prints "ready"; sets FAKE_PORT and
# FAKE_PID. A free port is found, then the server binds it: another lane
# may take it in between, so a server that dies before "ready" is started
# again on a new port. Up to 60 s each: Python starts slowly at load 30+.
fake_start() {
	local dir=$1 script=$2 i try
	shift 2
	for try in 1 2 3; do
		FAKE_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		setsid /usr/bin/python3 "$script" "$FAKE_PORT" "$@" >"$dir/server.out" 2>&1 &
		FAKE_PID=$!
		for i in $(seq 1 600); do
			grep -q ready "$dir/server.out" 2>/dev/null && break
			kill -0 "$FAKE_PID" 2>/dev/null || break
			sleep 0.1
		done
		grep -q ready "$dir/server.out" 2>/dev/null && return 0
	done
	cat "$dir/server.out" >&2
	return 1
}
