#!/usr/bin/python3
"""Write a small, deterministic tree of real images without any imaging
library: PNG (zlib) and GIF, extension-less, laid out like scenario S1's
backup: Profile-Pics/<role>/<user-uuid> and Service-Images/<svc>/<img>.

  gen-images.py DIR [COUNT] [--seed N]
"""
import os
import random
import struct
import sys
import uuid
import zlib


def png(w, h, rnd):
    rows = []
    r0, g0, b0 = rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            row += bytes(((r0 + x) & 255, (g0 + y) & 255,
                          (b0 + x * y) & 255))
        rows.append(bytes(row))
    raw = zlib.compress(b''.join(rows), 6)

    def chunk(t, d):
        c = struct.pack('>I', len(d)) + t + d
        return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', raw) + chunk(b'IEND', b''))


def gif(rnd):
    # 1x1 GIF89a with a random colour
    c = bytes([rnd.randrange(256) for _ in range(3)])
    return (b'GIF89a\x01\x00\x01\x00\x80\x00\x00' + c + b'\x00\x00\x00'
            b',\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;')


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 and \
        not sys.argv[2].startswith('-') else 60
    seed = int(sys.argv[sys.argv.index('--seed') + 1]) \
        if '--seed' in sys.argv else 1
    rnd = random.Random(seed)
    u = lambda: str(uuid.UUID(int=rnd.getrandbits(128)))
    services = [u() for _ in range(max(2, count // 10))]
    for i in range(count):
        if i % 2 == 0:
            d = os.path.join(out, 'Profile-Pics',
                             ['buyer', 'stylist', 'salon'][i % 3])
        else:
            d = os.path.join(out, 'Service-Images', rnd.choice(services))
        os.makedirs(d, exist_ok=True)
        data = gif(rnd) if i % 7 == 0 else \
            png(rnd.randrange(40, 200), rnd.randrange(40, 200), rnd)
        with open(os.path.join(d, u()), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
