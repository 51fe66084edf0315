#!/usr/bin/python3
"""A host's link to a server, for scripts/bench-fleet.sh: listens on a Unix
socket (which crosses network namespaces) and forwards every connection to
127.0.0.1:PORT, holding each chunk back DELAY_MS in each direction (one-way
delay: a round trip costs 2 x DELAY_MS), in order, like netem's delay (this
kernel has no sch_netem; the bandwidth cap is tc's tbf inside the host's
namespace).

Usage: bench-link.py SOCKET PORT DELAY_MS
"""
import asyncio
import os
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def rd():
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b''
            await q.put((loop.time() + delay, data))
            if not data:
                return

    async def wr():
        while True:
            t, data = await q.get()
            dt = t - loop.time()
            if dt > 0:
                await asyncio.sleep(dt)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(rd(), wr())


async def main():
    path, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000

    async def conn(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection('127.0.0.1', port)
        except OSError:
            w1.close()
            return
        await asyncio.gather(pipe(r1, w2, delay), pipe(r2, w1, delay))
        w1.close()
        w2.close()

    if os.path.exists(path):
        os.unlink(path)
    srv = await asyncio.start_unix_server(conn, path)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
