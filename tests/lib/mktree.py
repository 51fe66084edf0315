#!/usr/bin/python3
"""Write a deterministic local tree for copy tests.

  mktree.py DIR N [--big BYTES] [--seed S] [--supabase] [--small]

--supabase: only names Supabase Storage accepts (API-NOTES B2: ASCII, no
% # [ ] { } ...), still odd ones. --small: sizes 1 KB .. 64 KB.

N files of mixed sizes (10 KB .. 2 MB, plus --big bytes once) with odd but
legal names in nested folders, extension-less names among them. Prints the
number of directories created (the root not counted).
"""
import os
import random
import sys

NAMES = ['plain', 'with space', 'plus+sign', 'per%cent', 'hash#tag',
         'caf\u00e9', 'semi;colon', "quote'", 'amp&er', 'eq=ual', 'a,b',
         '\u65e5\u672c\u8a9e']
SUPABASE_NAMES = ['plain', 'with space', 'plus+sign', 'amp&er', 'eq=ual',
                  'semi;colon', "quote'", 'a,b', 'at@home', 'dol$lar',
                  'paren(1)', 'co:lon', 'bang!', 'star*', 'what?']


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    big = int(sys.argv[sys.argv.index('--big') + 1]) \
        if '--big' in sys.argv else 0
    seed = int(sys.argv[sys.argv.index('--seed') + 1]) \
        if '--seed' in sys.argv else 7
    rnd = random.Random(seed)
    names = SUPABASE_NAMES if '--supabase' in sys.argv else NAMES
    sizes = [1024, 4096, 9000, 30 * 1024, 64 * 1024] \
        if '--small' in sys.argv else \
        [10 * 1024, 30 * 1024, 100 * 1024, 300 * 1024, 2 * 1024 * 1024]
    dirs = set()
    for i in range(n):
        sub = os.path.join('Service-Images', 'svc-%02d' % (i % 9),
                           names[i % len(names)]) if i % 3 else \
            os.path.join('Profile-Pics', ['buyer', 'stylist'][i % 2])
        p = os.path.join(d, sub)
        os.makedirs(p, exist_ok=True)
        parts = sub.split(os.sep)
        for k in range(1, len(parts) + 1):
            dirs.add(os.sep.join(parts[:k]))
        size = rnd.choice(sizes)
        name = '%04d-%s' % (i, names[(i * 7) % len(names)])
        with open(os.path.join(p, name), 'wb') as f:
            f.write(rnd.randbytes(size))
    if big:
        with open(os.path.join(d, 'big.bin'), 'wb') as f:
            left = big
            while left:
                c = min(left, 1 << 20)
                f.write(rnd.randbytes(c))
                left -= c
    print(len(dirs))


if __name__ == '__main__':
    main()
