# tests/lib/supabase.sh - start/stop the fake Supabase Storage server
# (tests/servers/fake_supabase.py; sourced).
# supa_start DIR [KEY]: a free port; exports SB_PORT, SB_KEY, SB_DIR,
# SB_REQLOG (one line per request: METHOD PATH STATUS), SB_CONTROL.
supa_start() {
	local dir=$1 i
	SB_KEY=${2:-sb_secret_test-$$-key}
	SB_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	SB_DIR=$dir
	SB_REQLOG=$dir/requests.log
	SB_CONTROL=$dir/control
	mkdir -p "$dir"
	setsid /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../servers/fake_supabase.py" \
		"$SB_PORT" "$SB_KEY" "$dir" >"$dir/server.out" 2>&1 &
	SB_PID=$!
	# up to 60 s (a Python start-up at load average 80 took 30 s), polled
	# every 0.05 s; not longer once the server has exited
	for i in $(seq 1 1200); do
		grep -q ready "$dir/server.out" 2>/dev/null && break
		kill -0 "$SB_PID" 2>/dev/null || break
		sleep 0.05
	done
	export SB_PORT SB_KEY SB_DIR SB_REQLOG SB_CONTROL SB_PID
	grep -q ready "$dir/server.out" || { cat "$dir/server.out" >&2; return 1; }
}

supa_stop() {
	[ -n "${SB_PID:-}" ] && kill "$SB_PID" 2>/dev/null
	SB_PID=
	return 0
}

# sb ARGS...: the independent client (tests/lib/sbtool.py).
sb() { /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/sbtool.py" --port "$SB_PORT" --key "$SB_KEY" "$@"; }

# sb_mark / sb_since MARK [REGEX]: requests in the fake's log.
sb_mark() { wc -l <"$SB_REQLOG"; }
sb_since() { tail -n +"$(($1 + 1))" "$SB_REQLOG" | grep -cE "${2:-.}" || true; }
