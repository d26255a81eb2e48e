"""A hand-written Python `websockets` (asyncio) broadcast hub speaking just
enough of hubbub's protocol for `hubbub bench`: `connected` on open,
`subscribe` -> `subscribed`; `POST /api/publish` on PORT+1 (websockets
serves only GET), broadcast with `websockets.broadcast`.
Usage: python python_websockets.py PORT
"""
import asyncio
import json
import os
import sys
import time

import websockets
from websockets.asyncio.server import serve, broadcast

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9102
channels = {}


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def now():
    return int(time.time() * 1000)


async def handler(ws):
    mine = set()
    await ws.send(dumps({"type": "connected", "connection_id": str(id(ws)), "user_id": None,
                              "server_time": now(), "heartbeat_interval_ms": 0,
                              "max_message_size": 65536, "encoding": "json", "features": [],
                              "timestamp": now()}))
    try:
        async for raw in ws:
            try:
                m = json.loads(raw)
            except ValueError:
                continue
            if m.get("type") == "subscribe":
                for c in m.get("channels", []):
                    channels.setdefault(c, set()).add(ws)
                    mine.add(c)
                await ws.send(dumps({"type": "subscribed", "channels": m.get("channels"),
                                          "correlation_id": m.get("id"), "timestamp": now()}))
    except websockets.ConnectionClosed:
        pass
    finally:
        for c in mine:
            channels.get(c, set()).discard(ws)


async def http_conn(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            body = json.loads(await reader.readexactly(length)) if length else {}
            subs = channels.get(body.get("channel"), ())
            text = dumps({"type": "event", "channel": body.get("channel"),
                               "event_type": body.get("event_type"), "data": body.get("data"),
                               "timestamp": now()})
            broadcast(subs, text)
            out = dumps({"channel": body.get("channel"), "subscribers": len(subs)}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(out), out))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    async with serve(handler, "127.0.0.1", PORT, compression=None, max_queue=None,
                     ping_interval=None):
        server = await asyncio.start_server(http_conn, "127.0.0.1", PORT + 1)
        print(f"python-websockets {os.getpid()} listening on {PORT} (HTTP {PORT + 1})", file=sys.stderr)
        async with server:
            await asyncio.Future()


asyncio.run(main())
