# tests/lib/imagekit.sh - start/stop the fake ImageKit server
# (tests/servers/fake_imagekit.py; sourced).
# ik_start DIR [KEY]: a free port; exports IK_PORT, IK_KEY, IK_DIR,
# IK_REQLOG (one line per request: METHOD PATH?QUERY STATUS), IK_CONTROL,
# IK_ENDPOINT (the URL endpoint: http://127.0.0.1:PORT/demo).
ik_start() {
	local dir=$1 i
	IK_KEY=${2:-private_test-$$-key}
	IK_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	IK_DIR=$dir
	IK_REQLOG=$dir/requests.log
	IK_CONTROL=$dir/control
	IK_ENDPOINT=http://127.0.0.1:$IK_PORT/demo
	mkdir -p "$dir"
	touch "$IK_REQLOG"
	setsid /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../servers/fake_imagekit.py" \
		"$IK_PORT" "$IK_KEY" "$dir" demo >"$dir/server.out" 2>&1 &
	IK_PID=$!
	# up to 60 s (a Python start-up at load average 80 took 30 s), polled
	# every 0.05 s; not longer once the server has exited
	for i in $(seq 1 1200); do
		grep -q ready "$dir/server.out" 2>/dev/null && break
		kill -0 "$IK_PID" 2>/dev/null || break
		sleep 0.05
	done
	export IK_PORT IK_KEY IK_DIR IK_REQLOG IK_CONTROL IK_ENDPOINT IK_PID
	grep -q ready "$dir/server.out" || { cat "$dir/server.out" >&2; return 1; }
}

ik_stop() {
	[ -n "${IK_PID:-}" ] && kill "$IK_PID" 2>/dev/null
	IK_PID=
	return 0
}

# ik_conf NAME [EXTRA LINES]: a config section for the fake.
ik_conf() {
	cat <<EOC
[$1]
type = imagekit
private_key = env:MFS_TEST_IK_KEY
url_endpoint = $IK_ENDPOINT
api_url = http://127.0.0.1:$IK_PORT
upload_url = http://127.0.0.1:$IK_PORT
retry_base_ms = 20
${2:-}
EOC
}

# ik ARGS...: the independent client (tests/lib/iktool.py).
ik() { /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/iktool.py" --port "$IK_PORT" --key "$IK_KEY" "$@"; }

# ik_mark / ik_since MARK [REGEX]: requests in the fake's log.
ik_mark() { wc -l <"$IK_REQLOG"; }
ik_since() { tail -n +"$(($1 + 1))" "$IK_REQLOG" | grep -cE "${2:-.}" || true; }
