#!/usr/bin/env python3
"""A recording TCP proxy, for fuzz seeds taken from real clients.

    record_proxy.py LISTEN_PORT UPSTREAM_PORT OUT_DIR

Every connection to 127.0.0.1:LISTEN_PORT is forwarded to
127.0.0.1:UPSTREAM_PORT (a culex); the bytes of each direction are saved
as OUT_DIR/<n>.c2s (client to broker) and OUT_DIR/<n>.s2c (broker to
client). Stops on SIGTERM. See fuzz/capture/capture.sh.
"""
import asyncio
import itertools
import os
import sys

counter = itertools.count()


async def pump(reader, writer, sink):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            sink.write(data)
            sink.flush()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def handle(creader, cwriter, upstream, out):
    n = next(counter)
    sreader, swriter = await asyncio.open_connection("127.0.0.1", upstream)
    with open(os.path.join(out, f"{n:03}.c2s"), "wb") as c2s, open(
        os.path.join(out, f"{n:03}.s2c"), "wb"
    ) as s2c:
        await asyncio.gather(pump(creader, swriter, c2s), pump(sreader, cwriter, s2c))


async def main():
    listen, upstream, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, out), "127.0.0.1", listen
    )
    async with server:
        await server.serve_forever()


asyncio.run(main())
