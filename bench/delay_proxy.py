#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed time in each direction,
for a WAN made on one machine (the netem qdisc is not available here; the
rate limit is tc tbf's, on the link behind the proxy).

Usage: bench/delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS

Each direction reads in chunks and writes each chunk ONE_WAY_MS after it
was read, in order. At most BUFFER bytes wait in each direction (the
reader stops reading past it), so a sender cannot run ahead of the link by
more than a TCP window would let it. Standard library only.
"""

import asyncio
import sys
import time

CHUNK = 64 * 1024
BUFFER = 4 * 1024 * 1024


async def pump(reader, writer, delay):
    queue = asyncio.Queue(maxsize=max(1, BUFFER // CHUNK))

    async def read():
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen_port, host, port, one_way_ms = (
        int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
    )
    delay = one_way_ms / 1000

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, server_writer, delay),
            pump(server_reader, client_writer, delay),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
