#!/usr/bin/python3
"""The benchmark corpus (deterministic): 1,000 images of 20-300 KB and 5
files of about 10 MB, extension-less names in nested
Service-Images/<uuid>/<uuid> folders, like scenario S1's backup.
  bench-corpus.py DIR [NIMAGES]
"""
import os
import random
import sys
import uuid

MAGIC = [b'\x89PNG\r\n\x1a\n', b'\xff\xd8\xff\xe0\x00\x10JFIF\x00',
         b'GIF89a', b'RIFF\x00\x00\x00\x00WEBPVP8 ']


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rnd = random.Random(2026)
    u = lambda: str(uuid.UUID(int=rnd.getrandbits(128)))
    services = [u() for _ in range(100)]
    for i in range(n + 5):
        d = os.path.join(out, 'Service-Images', services[i % 100])
        os.makedirs(d, exist_ok=True)
        size = 10 * 1024 * 1024 + rnd.randrange(4096) if i >= n else \
            rnd.randrange(20 * 1024, 300 * 1024)
        head = MAGIC[i % len(MAGIC)]
        with open(os.path.join(d, u()), 'wb') as f:
            f.write(head + rnd.randbytes(size - len(head)))


if __name__ == '__main__':
    main()
