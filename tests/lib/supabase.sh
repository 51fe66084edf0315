# tests/lib/supabase.sh - start/stop the fake Supabase Storage server
# (tests/servers/fake_supabase.py; sourced).
# supa_start DIR [KEY]: a free port; exports SB_PORT, SB_KEY, SB_DIR,
# SB_REQLOG (one line per request: METHOD PATH STATUS), SB_CONTROL.
. "$(dirname "${BASH_SOURCE[0]}")/fake_start.sh"

supa_start() {
	local dir=$1 rc
	SB_KEY=${2:-sb_secret_test-$$-key}
	SB_DIR=$dir
	SB_REQLOG=$dir/requests.log
	SB_CONTROL=$dir/control
	mkdir -p "$dir"
	fake_start "$dir" "$(dirname "${BASH_SOURCE[0]}")/../servers/fake_supabase.py" \
		"$SB_KEY" "$dir"
	rc=$?
	SB_PORT=$FAKE_PORT SB_PID=$FAKE_PID
	export SB_PORT SB_KEY SB_DIR SB_REQLOG SB_CONTROL SB_PID
	return $rc
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

# supa_conf FILE: adds the remote "supa" (the fake, key from the
# environment as TEST_SB_KEY) to the mediafs config FILE.
supa_conf() {
	export TEST_SB_KEY=$SB_KEY
	cat >>"$1" <<EOC

[supa]
type = supabase
url = http://127.0.0.1:$SB_PORT
key = env:TEST_SB_KEY
retry_base_ms = 20
EOC
}

# both_start BUCKET: an S3 bucket behind the fault proxy (proxy_start
# "$T/control") and the Supabase fake, both in "$T/m.conf" (S3's through
# the proxy); stopped at exit. Exits the test if one does not start.
both_start() {
	s3 mkbucket "$1"
	supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
	proxy_start "$T/control" || { fail proxy "did not start"; exit 1; }
	trap 'cleanup_mounts; kill $proxy 2>/dev/null; supa_stop' EXIT
	S3_PORT=$PPORT write_conf "$T/m.conf" "$1"
	supa_conf "$T/m.conf"
}

# sb_test [conf]: how a Supabase test begins: MNT, LOG and J, the fake
# started (stopped at exit, after the mounts); with "conf", $T/m.conf
# holds the remote "supa" (supa_conf).
sb_test() {
	MNT=$T/mnt
	LOG=$T/mediafs.log
	J=$T/journal.db
	supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
	trap 'cleanup_mounts; supa_stop' EXIT
	[ "${1:-}" = conf ] || return 0
	: >"$T/m.conf"
	chmod 600 "$T/m.conf"
	supa_conf "$T/m.conf"
}
