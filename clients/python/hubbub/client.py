"""The connection: state machine, reconnects, recovery, commands and the send queue."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Set, Tuple

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from . import codec
from .api import Room
from .channels import Channels, _Pending
from .backoff import Backoff
from .errors import ClientClosed, ConnectionLost, HubError, RequestTimeout, Unauthorized
from .subscription import Subscription
from .tokens import TokenProvider, fetch_token, jwt_expiry
from .types import ConnectionInfo, Disconnected, Reconnecting

log = logging.getLogger("hubbub")

#: Close codes after which the client must not reconnect (docs/protocol.md
#: section 9): a normal close, forbidden, and the faults that reconnecting
#: would only repeat (protocol error, invalid UTF-8, message too big), as
#: the Rust and JavaScript clients do.
NO_RECONNECT = frozenset({1000, 1002, 1007, 1009, 4003})
#: Local code for a connection given up because ``ping`` went unanswered.
PING_TIMEOUT = 4010


class Client(Channels):
    """A hubbub connection that stays up: ``async with Client(url, token=...) as c``.

    States: ``idle`` -> ``connecting`` -> ``connected`` -> ``disconnected`` ->
    ``reconnecting`` -> ``connecting`` ... -> ``closed``; each change is an
    event (``c.on("connected", cb)``). Subscriptions survive reconnects and
    recover from the last offset seen; commands made while disconnected wait
    in a bounded queue (``queue_limit``) and go out in order.
    """

    def __init__(
        self,
        url: str,
        *,
        token: Optional[str] = None,
        token_provider: Optional[TokenProvider] = None,
        encoding: str = "json",
        backoff: Backoff = Backoff(),
        request_timeout: float = 10.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: float = 10.0,
        queue_limit: int = 1000,
        refresh_margin: float = 30.0,
        refresh_before_expiry: bool = True,
        subscription_buffer: int = 10000,
        max_message_size: Optional[int] = 256 * 1024 * 1024,
    ) -> None:
        codec.check_encoding(encoding)
        self.url = url
        self.encoding = encoding
        self.backoff = backoff
        self.request_timeout = request_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.queue_limit = queue_limit
        self.refresh_margin = refresh_margin
        self.refresh_before_expiry = refresh_before_expiry
        self.subscription_buffer = subscription_buffer
        self.state = "idle"
        self.info: Optional[ConnectionInfo] = None
        self._token = token
        self._provider = token_provider
        self._listeners: Dict[str, List[Callable[[Any], Any]]] = {}
        self._ids = itertools.count(1)
        self._pending: Dict[int, _Pending] = {}
        self._outbox: Deque[int] = deque()
        self._ready = False
        self._ws: Optional[ClientConnection] = None
        self._subs: Dict[str, List[Subscription]] = {}
        self._positions: Dict[str, Tuple[int, str]] = {}
        self._rooms: Dict[str, Room] = {}
        self._closing = False
        self._runner: Optional["asyncio.Task[None]"] = None
        self._first: Optional["asyncio.Future[None]"] = None
        self._wake: Optional["asyncio.Future[None]"] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._last_close: Optional[Disconnected] = None
        self._ping_lost = False
        self.max_message_size = max_message_size

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Starts the connection loop and waits for the first ``connected``.

        Raises :class:`ClientClosed` (or :class:`Unauthorized`) when the client
        gives up before ever connecting.
        """
        if self._runner is None:
            self._first = asyncio.get_running_loop().create_future()
            self._runner = asyncio.create_task(self._run())
        assert self._first is not None
        await asyncio.shield(self._first)

    async def close(self) -> None:
        """Closes with 1000 (no reconnect); pending commands fail with :class:`ClientClosed`."""
        if self._closing:
            if self._runner is not None:
                await asyncio.gather(self._runner, return_exceptions=True)
            return
        self._closing = True
        self._interrupt()
        ws = self._ws
        if ws is not None:
            await ws.close(1000, "client closed")
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
        else:
            self._finish(ClientClosed("client closed", 1000))

    def on(self, name: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Calls ``callback(payload)`` on each ``name`` event; returns a function that stops it.

        Names: ``connecting`` (attempt), ``connected`` (:class:`ConnectionInfo`),
        ``disconnected`` / ``closed`` (:class:`Disconnected`), ``reconnecting``
        (:class:`Reconnecting`), ``recovered`` (:class:`Recovered`), ``gap``
        (:class:`Gap`), ``event`` (every :class:`Event`), ``error`` (a
        :class:`HubError` no command is waiting for), ``token_refreshed``.
        Callbacks may be coroutines.
        """
        self._listeners.setdefault(name, []).append(callback)
        return lambda: self._listeners.get(name, []).remove(callback)

    def _emit(self, name: str, payload: Any) -> None:
        for cb in list(self._listeners.get(name, [])):
            self._call(cb, payload)

    def _call(self, cb: Callable[[Any], Any], payload: Any) -> None:
        try:
            result = cb(payload)
        except Exception:  # an application bug must not kill the connection
            log.exception("hubbub callback failed")
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await aw
            except Exception:
                log.exception("hubbub callback failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, state: str, payload: Any = None) -> None:
        self.state = state
        self._emit(state, payload)

    def _interrupt(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            error = await self._loop()
        except Exception as e:  # a bug or a bad URL: end visibly, never hang connect()
            log.exception("hubbub connection loop failed")
            error = e
        self._finish(error)

    async def _loop(self) -> Exception:
        """Connects and reconnects until told not to; returns why it stopped."""
        attempt = 0
        error: Exception = ClientClosed("client closed", 1000)
        while not self._closing:
            self._set_state("connecting", attempt)
            delay: Optional[float] = None
            code = 1006
            if self._token is None and self._provider is not None:
                await self._refresh_token()
            try:
                headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
                ws = await connect(
                    self.url,
                    subprotocols=[codec.SUBPROTOCOLS[self.encoding]],  # type: ignore[list-item]
                    additional_headers=headers,
                    ping_interval=None,
                    close_timeout=2,
                    max_size=self.max_message_size,  # a job's graph event can be megabytes
                    compression=None,
                    proxy=None,
                )
            except InvalidStatus as e:
                status = e.response.status_code
                if status == 401 and self._provider is None:
                    error = Unauthorized("the hub refused the token (HTTP 401)")
                    break
                if status == 401 and self._provider is not None:
                    await self._refresh_token()
                self._set_state("disconnected", Disconnected(status, "handshake refused", True))
            except InvalidURI:
                raise
            except (OSError, asyncio.TimeoutError, WebSocketException) as e:
                self._set_state("disconnected", Disconnected(1006, str(e), True))
            else:
                if self._closing:  # close() came during the handshake
                    await ws.close(1000, "client closed")
                    break
                self._ws = ws
                closed = await self._session(ws)
                self._ws = None
                self._ready = False
                self._last_close = closed
                self._fail_sent()
                self._set_state("disconnected", closed)
                code = closed.code
                if self._closing:
                    break
                if not closed.reconnect or code in NO_RECONNECT:
                    error = ClientClosed(f"closed by the hub: {code} {closed.reason}", code)
                    break
                if self.info is not None:
                    attempt = 0  # a connection that reached `connected` resets the count
                if code == 4001:
                    if self._provider is None:
                        error = ClientClosed("token expired and no token_provider", code)
                        break
                    await self._refresh_token()
                    delay = 0.0
                elif code == 4009:
                    delay = 0.0
                elif code == 4029:
                    delay = max(self.backoff.rate_limited, self.backoff.delay(attempt))
            if self._closing:
                break
            if self.backoff.attempts is not None and attempt >= self.backoff.attempts:
                error = ClientClosed(f"gave up after {attempt} reconnect attempts", code)
                break
            if delay is None:
                delay = self.backoff.delay(attempt)
            attempt += 1
            self.info = None
            self._set_state("reconnecting", Reconnecting(delay, attempt, code))
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._wake), delay)
            except asyncio.TimeoutError:
                pass
        return error

    def _finish(self, error: Exception) -> None:
        self._closing = True
        for p in list(self._pending.values()):
            if not p.future.done():
                p.future.set_exception(error)
                p.future.exception()
        self._pending.clear()
        self._outbox.clear()
        for subs in self._subs.values():
            for s in subs:
                s._failed(error)
        if self._first is not None and not self._first.done():
            self._first.set_exception(error)
            self._first.exception()
        last = self._last_close or Disconnected(1000, "client closed", False)
        self._set_state("closed", last)

    async def _session(self, ws: ClientConnection) -> Disconnected:
        """Runs one connection to its end; returns how it ended."""
        told: Optional[Disconnected] = None
        self._ping_lost = False
        helpers: List["asyncio.Task[None]"] = []
        try:
            first = codec.decode(await asyncio.wait_for(ws.recv(), self.request_timeout))
            if first.get("type") != "connected":
                raise ValueError("the first message was not `connected`")
            self.info = ConnectionInfo(
                connection_id=str(first.get("connection_id")),
                user_id=first.get("user_id"),
                server_time=int(first.get("server_time", 0)),
                heartbeat_interval_ms=int(first.get("heartbeat_interval_ms", 0)),
                max_message_size=int(first.get("max_message_size", 0)),
                encoding=str(first.get("encoding", self.encoding)),
                features=list(first.get("features", [])),
            )
            self._set_state("connected", self.info)
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            await self._restore(ws)
            helpers.append(asyncio.create_task(self._pinger(ws)))
            helpers.append(asyncio.create_task(self._refresher()))
            async for frame in ws:
                msg = codec.decode(frame)
                if msg.get("type") == "disconnect":
                    told = Disconnected(
                        int(msg.get("code", 1006)),
                        str(msg.get("reason", "")),
                        bool(msg.get("reconnect", True)),
                    )
                else:
                    try:
                        self._dispatch(msg)
                    except (KeyError, TypeError, ValueError) as e:  # a message of the wrong shape
                        log.warning("hubbub: ignored a malformed %s message: %r", msg.get("type"), e)
        except ConnectionClosed:
            pass
        except (ValueError, asyncio.TimeoutError, OSError) as e:
            log.warning("hubbub connection failed: %s", e)
            await ws.close(1002, "protocol error")
        finally:
            for h in helpers:
                h.cancel()
        if told is not None:
            return told
        code = ws.close_code if ws.close_code is not None else 1006
        if self._ping_lost:
            return Disconnected(PING_TIMEOUT, "ping timeout", True)
        reason = ws.close_reason or ""
        return Disconnected(code, reason, code not in NO_RECONNECT)

    async def _restore(self, ws: ClientConnection) -> None:
        """After ``connected``: resubscribe with ``since``, rejoin rooms, flush the queue."""
        groups: Dict[Optional[Tuple[str, ...]], List[str]] = {}
        for channel, subs in self._subs.items():
            if subs:  # rooms and jobs too: `since` recovers what they missed
                groups.setdefault(subs[0].event_types, []).append(channel)
        for types, channels in groups.items():
            msg: Dict[str, Any] = {"type": "subscribe", "channels": channels}
            if types:
                msg["event_types"] = list(types)
            self._spawn(self._quiet(self._request(msg, queue=False, tracked=False)))
        for room, handle in self._rooms.items():
            msg = {"type": "join_room", "room": room}
            if handle.info is not None:
                msg["info"] = handle.info
            self._spawn(
                self._quiet(self._request(msg, queue=False, tracked=False, hook=handle._joined))
            )
        await asyncio.sleep(0)  # let the spawned sends go first, in order
        while self._outbox:
            pid = self._outbox.popleft()
            p = self._pending.get(pid)
            if p is not None:
                p.sent = True
                await ws.send(codec.encode(self.encoding, p.message))
        self._ready = True

    @staticmethod
    async def _quiet(aw: Awaitable[Any]) -> None:
        """Runs an internal command whose failure is reported elsewhere (or retried)."""
        try:
            await aw
        except HubError as e:
            log.info("hubbub: %s", e)
        except (ConnectionLost, RequestTimeout, ClientClosed):
            pass

    async def _pinger(self, ws: ClientConnection) -> None:
        if not self.ping_interval:
            return
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._request({"type": "ping"}, timeout=self.ping_timeout, queue=False)
            except RequestTimeout:
                self._ping_lost = True
                ws.transport.abort()
                return
            except Exception:
                return

    async def _refresher(self) -> None:
        if self._provider is None or not self.refresh_before_expiry:
            return
        while True:
            exp = jwt_expiry(self._token) if self._token else None
            if exp is None:
                return
            # `refresh_margin` before expiry, or at 60 % of a shorter remaining lifetime.
            left = exp - time.time()
            if left <= 0:
                return  # too late: the hub closes with 4001 and the loop refreshes then
            await asyncio.sleep(max(left - self.refresh_margin, left * 0.6))
            await self._refresh_token()
            try:
                await self._request({"type": "auth", "token": self._token}, queue=False)
            except HubError as e:
                self._emit("error", e)  # kept going: a 4001 at expiry fetches again
            except (ConnectionLost, RequestTimeout, ClientClosed):
                return  # the connection is going; the loop takes over

    async def _refresh_token(self) -> None:
        assert self._provider is not None
        try:
            self._token = await fetch_token(self._provider)
            self._emit("token_refreshed", jwt_expiry(self._token))
        except Exception as e:
            log.warning("hubbub token provider failed: %s", e)
            self._emit("error", e)
