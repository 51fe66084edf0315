# tests/lib/imagekit.sh - start/stop the fake ImageKit server
# (tests/servers/fake_imagekit.py; sourced).
# ik_start DIR [KEY]: a free port; exports IK_PORT, IK_KEY, IK_DIR,
# IK_REQLOG (one line per request: METHOD PATH?QUERY STATUS), IK_CONTROL,
# IK_ENDPOINT (the URL endpoint: http://127.0.0.1:PORT/demo).
. "$(dirname "${BASH_SOURCE[0]}")/fake_start.sh"

ik_start() {
	local dir=$1 rc
	IK_KEY=${2:-private_test-$$-key}
	IK_DIR=$dir
	IK_REQLOG=$dir/requests.log
	IK_CONTROL=$dir/control
	mkdir -p "$dir"
	touch "$IK_REQLOG"
	fake_start "$dir" "$(dirname "${BASH_SOURCE[0]}")/../servers/fake_imagekit.py" \
		"$IK_KEY" "$dir" demo
	rc=$?
	IK_PORT=$FAKE_PORT IK_PID=$FAKE_PID
	IK_ENDPOINT=http://127.0.0.1:$IK_PORT/demo
	export IK_PORT IK_KEY IK_DIR IK_REQLOG IK_CONTROL IK_ENDPOINT IK_PID
	return $rc
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

# ik_test [EXTRA CONF LINES]: how an ImageKit test begins: MNT, LOG and J
# set, the fake started in $T/ik (the test exits if it did not start) and
# stopped at exit with the mounts, MFS_TEST_IK_KEY exported, $T/m.conf
# (mode 600) holding the remote "ik".
ik_test() {
	MNT=$T/mnt
	LOG=$T/mediafs.log
	J=$T/journal.db
	ik_start "$T/ik" || { fail "fake server" "did not start"; exit 1; }
	trap 'cleanup_mounts; ik_stop' EXIT
	export MFS_TEST_IK_KEY=$IK_KEY
	ik_conf ik "${1:-}" >"$T/m.conf"
	chmod 600 "$T/m.conf"
}
