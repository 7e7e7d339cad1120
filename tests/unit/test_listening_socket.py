"""The socket ``learnloop serve`` listens on: what it accepts sends each write at once.

A response is written as two sends (headers, then body). With Nagle's algorithm on, the body
waits until the client acknowledges the headers, and a client on a keep-alive connection
delays that acknowledgement (~40 ms on Linux): every request after a connection's first took
~45 ms instead of ~1 ms. asyncio turns Nagle off only on accepted sockets whose ``proto`` says
TCP, so the listening socket names it (and turns Nagle off itself, which accepted sockets
inherit)."""

from __future__ import annotations

import asyncio
import socket

from learnloop.cli.serve import _bind


def test_the_listening_socket_says_tcp_and_what_it_accepts_has_nagle_off() -> None:
    listener = _bind("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_an_asyncio_server_on_it_has_nagle_off_on_every_connection() -> None:
    """The path uvicorn takes: ``loop.create_server(sock=...)``, the transport's own socket."""
    listener = _bind("127.0.0.1", 0)
    seen: list[int] = []

    async def scenario() -> None:
        def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            host, port = listener.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert seen and seen[0] != 0
