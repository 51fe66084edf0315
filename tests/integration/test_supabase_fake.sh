#!/bin/bash
# The fake Supabase Storage server speaks the shapes API-NOTES B and F
# describe (so the backend is tested against them, not against our own
# assumptions): HTTP 400 with the real code as a string in statusCode,
# KeyAlreadyExists / ResourceAlreadyExists / InvalidKey / NoSuchKey,
# list of a missing bucket = 200 [], HEAD of a missing object = 400 with no
# body, unknown routes = a real 404 with a numeric statusCode, 416 on a
# range past the end, TUS errors as text/plain with real statuses.
. "$(dirname "$0")/../lib/common.sh"
. "$LIB_DIR/supabase.sh"
supa_start "$T/sb" || { fail "fake server" "did not start"; exit 1; }
trap supa_stop EXIT
B=http://127.0.0.1:$SB_PORT/storage/v1
c() { curl -s -o "$T/body" -w '%{http_code}' -H "apikey: $SB_KEY" "$@"; }
expect() {	# expect NAME STATUS BODY-REGEX (after a c call that printed STATUS)
	if [ "$got" = "$2" ] && grep -qE "$3" "$T/body"; then pass "$1"; else fail "$1" "HTTP $got $(head -c 200 "$T/body")"; fi
}
got=$(c -X POST -H 'Content-Type: application/json' -d '{"id":"b","name":"b"}' "$B/bucket")
expect "create bucket" 200 '"name": ?"b"'
got=$(c -X POST -H 'Content-Type: application/json' -d '{"id":"b","name":"b"}' "$B/bucket")
expect "duplicate bucket: 400 BucketAlreadyExists, statusCode \"409\"" 400 '"statusCode": ?"409".*"code": ?"BucketAlreadyExists"'
got=$(c -X POST --data-binary x "$B/object/b/k1")
expect "upload" 200 '"Key": ?"b/k1"'
got=$(c -X POST --data-binary x "$B/object/b/k1")
expect "duplicate upload: 400 KeyAlreadyExists, statusCode \"409\"" 400 '"statusCode": ?"409".*"code": ?"KeyAlreadyExists"'
got=$(c -X PUT --data-binary y "$B/object/b/k1")
expect "PUT upserts" 200 '"Key"'
got=$(c -X POST --data-binary x "$B/object/b/bad%23key")
expect "a '#' in the key: 400 InvalidKey" 400 '"statusCode": ?"400".*"code": ?"InvalidKey"'
got=$(c "$B/object/authenticated/b/missing")
expect "missing object: 400 with statusCode \"404\" NoSuchKey" 400 '"statusCode": ?"404".*"code": ?"NoSuchKey"'
got=$(c -I "$B/object/b/missing")	# -I: the headers go to $T/body
[ "$got" = 400 ] && grep -qi '^content-length: 0' "$T/body" && pass "HEAD of a missing object: 400, no body" ||
	fail "HEAD missing" "$got $(cat "$T/body")"
got=$(c -X POST -H 'Content-Type: application/json' -d '{"prefix":""}' "$B/object/list/nobucket")
expect "v1 list of a missing bucket: 200 []" 200 '^\[\]$'
got=$(c -X POST --data-binary z "$B/object/b/k2")
got=$(c -X POST -H 'Content-Type: application/json' -d '{"bucketId":"b","sourceKey":"k2","destinationKey":"k1"}' "$B/object/move")
expect "move onto an existing key: ResourceAlreadyExists" 400 '"code": ?"ResourceAlreadyExists"'
got=$(c -H 'Range: bytes=5-9' "$B/object/authenticated/b/k1")
expect "range past the end: real 416, statusCode \"416\"" 416 '"code": ?"InvalidRange"'
got=$(c "$B/nosuchroute")
expect "unknown route: a real 404, numeric statusCode, no code" 404 '"statusCode": ?404[,}]'
got=$(c -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10' -H "Upload-Metadata: bucketName $(printf b | base64),objectName $(printf k1 | base64)" "$B/upload/resumable")
[ "$got" = 409 ] && ! grep -q '{' "$T/body" && pass "TUS onto an existing object without x-upsert: 409 text/plain" ||
	fail "TUS 409" "$got $(cat "$T/body")"
got=$(curl -s -o "$T/body" -w '%{http_code}' -H 'apikey: sb_secret_wrong' "$B/object/authenticated/b/k1")
expect "a wrong key: 400 AccessDenied, statusCode \"403\"" 400 '"statusCode": ?"403".*"code": ?"AccessDenied"'
