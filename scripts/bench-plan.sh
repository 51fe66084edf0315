#!/bin/bash
# make bench, part 3: mediactl plan at scale. A tree of N extension-less
# files (S1's shape: Profile-Pics/<role>/<user>, 100 users a folder), a
# JSON user map of N entries (every 20th user unmapped), a rule with a map
# lookup and {ext} (so every source's first bytes are read and sniffed).
# Prints the time and peak RSS of the plan, and the same without {ext}.
#   BENCH_PLAN_FILES=100000
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${BENCH_PLAN_FILES:-100000}
D=$ROOT/build/bench-plan
T=$D/tree-$N
[ -x build/mediactl ] || make -s build/mediactl

if [ ! -f "$T/.done" ]; then
	echo "bench-plan: making $N files in $T (once)"
	rm -rf "$T"
	/usr/bin/python3 - "$T" "$N" "$D/users-$N.json" <<'PY'
import json, os, sys
t, n, mp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
png = bytes.fromhex('89504e470d0a1a0a0000000d4948445200000001000000010806'
                    '0000001f15c4890000000d49444154789c636000000200015'
                    '4a24f5d0000000049454e44ae426082'.replace(' ', ''))
jpg = b'\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00' + b'\x00' * 64 + b'\xff\xd9'
users = {}
for i in range(n):
    role = ('buyer', 'stylist')[i % 2]
    d = f'{t}/Profile-Pics/{role}/{i // 100:05d}'
    if i % 100 == 0 or i % 100 == 1:
        os.makedirs(d, exist_ok=True)
    u = f'user-{i:07d}'
    with open(f'{d}/{u}', 'wb') as f:
        f.write(png if i % 3 else jpg)
    if i % 20:
        users[u] = f'new-{i:07d}'
json.dump(users, open(mp, 'w'))
PY
	touch "$T/.done"
fi

run() {	# run LABEL RULE
	local out=$D/out.$$ t0 t1
	rm -f "$D/plan.json"*
	/usr/bin/python3 - "$1" "$out" build/mediactl --journal "$D/j.db" plan \
		--from "$T" --to "$D" --map "users=$D/users-$N.json" \
		--rule "$2" -o "$D/plan.json" <<'PY'
import resource, subprocess, sys, time
label, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.time()
r = subprocess.run(cmd, capture_output=True, text=True)
dt = time.time() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if r.returncode:
    sys.exit(r.stderr)
print(f'| {label} | {dt:.2f} s | {rss:.0f} MB | {r.stdout.split(":")[1].split("(")[0].strip()} |')
PY
}
rm -f "$D/j.db"*
echo
echo "mediactl plan, $N sources, a $(/usr/bin/python3 -c "import json;print(len(json.load(open('$D/users-$N.json'))))")-entry JSON map"
echo "| rule | time | peak RSS | planned |"
echo "|---|---|---|---|"
run "map lookup + {ext} (sniffs every file)" 'Profile-Pics/{role}/{b}/{old} -> avatars/{users[old]}/{old}.{ext}'
run "map lookup only" 'Profile-Pics/{role}/{b}/{old} -> avatars/{users[old]}/{old}'
