#!/bin/bash
# Odd keys: names with spaces, +, %, #, ?, unicode and 255 bytes are shown
# and read; keys with '..' or '//' segments or 256-byte segments cannot be
# path names: they are skipped with a warning naming the key, and
# everything else in the directory still shows. Marker objects (dir/) are
# directories, empty ones included; a name that is both a file and a
# directory shows the directory.
. "$(dirname "$0")/../lib/common.sh"

CONF=$T/mediafs.conf
MNT=$T/mnt
LOG=$T/mediafs.log
write_conf "$CONF" names
s3 mkbucket names

long=$(printf 'L%.0s' $(seq 1 255))
toolong=$(printf 'T%.0s' $(seq 1 256))
good=("sp ace" "plus+sign" "per%25cent" "hash#tag" "quest?ion" "café ☕" "$long" "semi;colon" "tab	tab" "new
line" "'quote'" '"dq"' "back\\slash" "  lead")
i=0
for k in "${good[@]}"; do
	echo "body $i" | s3 put names "odd/$k" -
	i=$((i + 1))
done
for k in "odd/../escape" "odd//double" "odd/./dot" "odd/$toolong"; do
	echo bad | s3 put names "$k" -
done
: | s3 put names "emptydir/" -
: | s3 put names "marked/" -
echo x | s3 put names "marked/inside" -
echo clash | s3 put names "clash" -
echo child | s3 put names "clash/child" -

# negative_ttl=60: a missing name is asked of the store at most once a
# minute (and not at all while the listing is younger than that)
mount_fs "$LOG" "$MNT" -o config="$CONF",cache_dir="$T/cache",negative_ttl=60 s3t: ||
	{ fail mount "mediafs did not mount"; exit 1; }

ok=1
i=0
for k in "${good[@]}"; do
	[ "$(cat "$MNT/odd/$k" 2>/dev/null)" = "body $i" ] || { ok=0; echo "bad: $k" >&2; }
	i=$((i + 1))
done
[ $ok = 1 ] && pass "${#good[@]} odd names (space + % # ? unicode 255-byte tab newline quotes) read back" ||
	fail "odd names" "some did not read back"
n=$(find "$MNT/odd" -mindepth 1 -printf . | wc -c)
[ "$n" -eq "${#good[@]}" ] && pass "only showable names are listed ($n)" ||
	fail "listing of odd/" "$n entries, expected ${#good[@]}"
for what in "odd/../" "odd//" "odd/./" "256 bytes"; do
	case $what in
	"256 bytes") grep -q "longer than 255 bytes" "$LOG" ;;
	*) grep -qF "key '$what" "$LOG" ;;
	esac && pass "skipped key '$what' named in the log" || fail "skip log" "no line for $what"
done
[ -d "$MNT/emptydir" ] && [ -z "$(ls -A "$MNT/emptydir")" ] &&
	pass "empty marker object dir/ is an empty directory" || fail "emptydir" "not an empty dir"
[ "$(ls "$MNT/marked")" = inside ] && pass "marker dir with content" || fail "marked" "$(ls "$MNT/marked")"
[ -d "$MNT/clash" ] && [ "$(cat "$MNT/clash/child")" = child ] &&
	grep -q "both a file and a directory" "$LOG" &&
	pass "file and directory with one name: directory shown, warning logged" ||
	fail "clash" "not handled"
stat "$MNT/odd/nope" >/dev/null 2>&1 && fail "missing name" "stat succeeded" ||
	pass "missing name: ENOENT"
m=$(req_mark)
for i in 1 2 3; do stat "$MNT/odd/missing-$i" >/dev/null 2>&1; done
n1=$(req_since "$m")
h1=$(req_since "$m" '^HEAD /[^ ]*/odd/missing-[123] 404')
m=$(req_mark)
for i in 1 2 3; do stat "$MNT/odd/missing-$i" >/dev/null 2>&1; done
# the first round asks the store only if the listing is over 60 s old
[ "$n1" -eq "$h1" ] && [ "$n1" -le 3 ] && [ "$(req_since "$m")" -eq 0 ] &&
	pass "negative lookups in a listed directory: $n1 HEAD, then 0 requests within negative_ttl" ||
	fail "negative lookups" "$n1 then $(req_since "$m") requests"

# extended attributes
f="$MNT/odd/sp ace"
et=$(getfattr --only-values -n user.mediafs.etag "$f" 2>/dev/null)
want=$(echo "body 0" | md5sum | cut -d' ' -f1)
[ "$et" = "$want" ] && pass "user.mediafs.etag" || fail "etag xattr" "'$et' != '$want'"
url=$(getfattr --only-values -n user.mediafs.url "$f" 2>/dev/null)
[ "$url" = "http://127.0.0.1:$S3_PORT/names/odd/sp%20ace" ] && pass "user.mediafs.url is the encoded object URL" ||
	fail "url xattr" "'$url'"
# read above, stored without a type: the type sniffed from that read,
# shown once one HEAD (then kept) has said the store has no better one;
# asked again, no request
m=$(req_mark)
ct=$(getfattr --only-values -n user.mediafs.content_type "$f" 2>/dev/null)
n1=$(req_since "$m")
h1=$(req_since "$m" '^HEAD ')
m=$(req_mark)
ct2=$(getfattr --only-values -n user.mediafs.content_type "$f" 2>/dev/null)
[ "$ct" = text/plain ] && [ "$ct2" = text/plain ] && [ "$n1" -le 1 ] && [ "$n1" -eq "$h1" ] &&
	[ "$(req_since "$m")" -eq 0 ] &&
	pass "user.mediafs.content_type of a file read: '$ct', sniffed, $n1 HEAD, then no request" ||
	fail "sniffed content_type xattr" "'$ct'/'$ct2', $n1 requests ($h1 HEAD), then $(req_since "$m")"
# never read: the store's type, one HEAD, then cached
m=$(req_mark)
ct=$(getfattr --only-values -n user.mediafs.content_type "$MNT/marked/inside" 2>/dev/null)
ct2=$(getfattr --only-values -n user.mediafs.content_type "$MNT/marked/inside" 2>/dev/null)
[ -n "$ct" ] && [ "$ct" = "$ct2" ] && [ "$(req_since "$m" '^HEAD')" -eq 1 ] &&
	pass "user.mediafs.content_type of a file not read ('$ct'): one HEAD, then cached" ||
	fail "content_type xattr" "'$ct', $(req_since "$m" '^HEAD') HEAD"
getfattr -d "$f" 2>/dev/null | grep -c '^user.mediafs' | grep -q 3 && pass "getfattr -d lists 3 attributes" ||
	fail "getfattr -d" "$(getfattr -d "$f" 2>&1)"
getfattr -n user.other "$f" >/dev/null 2>&1 && fail "unknown xattr" "succeeded" ||
	pass "unknown xattr: ENODATA"

# a key longer than S3 holds (1,024 bytes) is refused at mkdir and create
# (ENAMETOOLONG, no request), not made and then failed at upload
L=$(printf 'l%.0s' $(seq 1 200))
mkdir -p "$MNT/long/$L/$L/$L/$L/$L" || fail "long keys" "mkdir of a 1,009-byte key failed"
m=$(req_mark)
mkdir "$MNT/long/$L/$L/$L/$L/$L/$L" 2>"$T/err1"; r1=$?
{ echo x >"$MNT/long/$L/$L/$L/$L/$L/$L.txt"; } 2>"$T/err2"; r2=$?
[ $r1 != 0 ] && [ $r2 != 0 ] && grep -q "File name too long" "$T/err1" && grep -q "File name too long" "$T/err2" &&
	[ "$(req_since "$m")" = 0 ] && [ ! -e "$MNT/long/$L/$L/$L/$L/$L/$L" ] &&
	pass "a folder or file whose key passes 1,024 bytes: ENAMETOOLONG, no request" ||
	fail "long keys" "mkdir: $(cat "$T/err1"); create: $(cat "$T/err2"); $(req_since "$m") requests"
# a folder renamed so that a key below it would pass 1,024 bytes: refused
# before any COPY (not stopped half way)
mkdir -p "$MNT/lk/$L/$L/$L/$L" && echo deep >"$MNT/lk/$L/$L/$L/$L/$L" || fail "long rename" "setup"
m=$(req_mark)
mv "$MNT/lk" "$MNT/lk-renamed-to-a-longer-name" 2>"$T/err3"; r3=$?
[ $r3 != 0 ] && grep -q "File name too long" "$T/err3" && [ "$(req_since "$m" '^(COPY|DELETE|POST)')" = 0 ] &&
	[ "$(cat "$MNT/lk/$L/$L/$L/$L/$L")" = deep ] &&
	pass "a folder rename that would make a key below it pass 1,024 bytes: ENAMETOOLONG, no COPY" ||
	fail "long rename" "mv: $(cat "$T/err3"); $(req_since "$m" '^(COPY|DELETE|POST)') COPY/DELETE"
rm -r "$MNT/long" "$MNT/lk"

umount_fs "$LOG" "$MNT" && pass "clean unmount" || fail "unmount" "see $LOG"
