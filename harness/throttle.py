"""A TCP proxy that slows what clients send to a fixed rate: a slow link for uploads.

``ThrottlingProxy(target_port, bytes_per_second)`` listens on 127.0.0.1 (a free port), forwards
every connection to ``127.0.0.1:target_port`` (TLS passes through untouched), sends the client's
bytes on at most ``bytes_per_second`` per connection, and the server's answers at full speed. It
runs an asyncio loop in a thread of its own: use it as a context manager. ``sent`` counts the
client bytes forwarded, ``longest`` the longest connection in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType

CHUNK = 64 * 1024


class ThrottlingProxy:
    def __init__(self, target_port: int, bytes_per_second: float) -> None:
        self.target_port = target_port
        self.bytes_per_second = bytes_per_second
        self.port = 0
        self.sent = 0
        self.longest = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        started = time.monotonic()
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            client_writer.close()
            return
        upstream = asyncio.ensure_future(self._pipe(client_reader, server_writer, throttled=True))
        downstream = asyncio.ensure_future(self._pipe(server_reader, client_writer))
        try:
            # Each direction ends when its sender closes (half-close passed on with EOF).
            await asyncio.gather(upstream, downstream, return_exceptions=True)
        finally:
            for task in (upstream, downstream):
                task.cancel()
            for writer in (server_writer, client_writer):
                writer.close()
            self.longest = max(self.longest, time.monotonic() - started)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, throttled: bool = False
    ) -> None:
        started = time.monotonic()
        forwarded = 0
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
                if throttled:
                    forwarded += len(data)
                    self.sent += len(data)
                    # Sleep until the bytes so far fit the rate since this connection started.
                    ahead = forwarded / self.bytes_per_second - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            if writer.can_write_eof():
                writer.write_eof()
