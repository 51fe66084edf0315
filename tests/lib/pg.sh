# tests/lib/pg.sh - a throwaway PostgreSQL cluster for one test file
# (Debian's server binaries; sourced). TCP on 127.0.0.1 needs a password
# (scram-sha-256), the Unix socket in DIR is trusted.
# pg_start DIR: exports PG_PORT, PG_PASS, PG_URL (postgres://… with the
# password), PG_SOCK (the socket directory), PG_BIN.
pg_start() {
	local dir=$1
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server binaries (apt install postgresql)" >&2; return 1; }
	PG_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	PG_PASS="pw-$$-x'y\"z"
	PG_SOCK=$dir
	mkdir -p "$dir"
	printf '%s\n' "$PG_PASS" >"$dir/pwfile"
	chown -R postgres "$dir"
	chmod 700 "$dir"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U mediafs --pwfile="$dir/pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	# a port taken meanwhile by another lane: start again on a new one
	local try
	for try in 1 2 3; do
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
			-o "-k $dir -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null && break
		[ $try -eq 3 ] && { tail -20 "$dir/server.log" >&2; return 1; }
		PG_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	done
	# the password in a URL: percent-encoded
	PG_URL="postgres://mediafs:$(/usr/bin/python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$PG_PASS")@127.0.0.1:$PG_PORT/postgres"
	PG_DIR=$dir
	export PG_PORT PG_PASS PG_URL PG_SOCK PG_BIN PG_DIR
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
	PG_DIR=
}

# psql_ SQL...: run SQL through the trusted socket, unaligned, tuples only.
psql_() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U mediafs -d postgres "$@"; }
