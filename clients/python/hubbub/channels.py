"""Commands out and messages in: requests matched to replies, per-channel order, recovery, gaps.

The connection loop (``client.py``) hands every decoded message to
``_dispatch``; this half knows channels and subscriptions, not sockets.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from websockets.exceptions import ConnectionClosed

from . import codec
from .api import Commands, Room
from .errors import ClientClosed, ConnectionLost, HubError, QueueFull, RequestTimeout
from .subscription import EventCallback, Subscription
from .types import Event, Gap, Recovered, SubscribedChannel


class _Pending:
    __slots__ = ("message", "future", "sent", "since", "hook")

    def __init__(self, message: Dict[str, Any], future: "asyncio.Future[Dict[str, Any]]") -> None:
        self.message = message
        self.future = future
        self.sent = False
        self.since: Dict[str, Dict[str, Any]] = {}
        self.hook: Optional[Callable[[Dict[str, Any]], None]] = None


class Channels(Commands):
    """Subscriptions and what the hub delivers on them (mixed into :class:`hubbub.Client`)."""

    state: str
    subscription_buffer: int
    _pending: Dict[int, _Pending]
    _outbox: Deque[int]
    _ids: Iterator[int]
    encoding: str
    request_timeout: float
    queue_limit: int
    _subs: Dict[str, List[Subscription]]
    _positions: Dict[str, Tuple[int, str]]
    _ready: bool
    _ws: Any
    _closing: bool

    def _emit(self, name: str, payload: Any) -> None:
        raise NotImplementedError

    def _call(self, cb: Callable[[Any], Any], payload: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ receiving

    def _dispatch(self, msg: Dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "event":
            self._on_event(Event.from_wire(msg))
            return
        cid = msg.get("correlation_id")
        p = self._pending.get(cid) if isinstance(cid, int) else None
        if kind == "subscribed":
            self._on_subscribed(msg, p.since if p else {})
        elif kind == "unsubscribed" and p is None:
            for ch in msg.get("channels", []):  # dropped by the hub (e.g. narrower token)
                for s in self._subs.pop(ch, []):
                    s._end()
        if p is None:
            if kind == "error":
                self._emit("error", HubError(str(msg.get("code")), str(msg.get("message"))))
            return
        if p.future.done():
            return
        if kind == "error":
            err = HubError(str(msg.get("code")), str(msg.get("message")))
            if p.message.get("type") == "subscribe":
                for ch in p.message.get("channels", []):
                    # A refused channel is not retried on reconnect; a room's
                    # or job's stays: rejoining still delivers its events.
                    subs = self._subs.get(ch, [])
                    for s in [s for s in subs if s.managed]:
                        subs.remove(s)
                        s._failed(err)
                    if not subs:
                        self._subs.pop(ch, None)
                        self._positions.pop(ch, None)
            p.future.set_exception(err)
            p.future.exception()
        else:
            if p.hook is not None:
                p.hook(msg)
            p.future.set_result(msg)

    def _on_subscribed(self, msg: Dict[str, Any], since: Dict[str, Dict[str, Any]]) -> None:
        for c in msg.get("channels", []):
            entry = SubscribedChannel(
                str(c["channel"]), int(c["offset"]), str(c["epoch"]),
                bool(c["recovered"]), int(c["missed"]),
            )
            asked = since.get(entry.channel)
            if asked is not None and entry.recovered:
                self._notice(entry.channel, Recovered(entry.channel, entry.missed))
            elif asked is not None:
                same = asked["epoch"] == entry.epoch
                gap = Gap(
                    entry.channel,
                    "not_recovered" if same else "epoch_changed",
                    int(asked["offset"]),
                    entry.offset if same else None,
                    str(asked["epoch"]),
                    entry.epoch,
                )
                self._notice(entry.channel, gap)
                self._positions[entry.channel] = (entry.offset, entry.epoch)
            else:
                self._positions[entry.channel] = (entry.offset, entry.epoch)
            for s in self._subs.get(entry.channel, []):
                s._replied(entry)

    def _notice(self, channel: str, item: Any) -> None:
        if isinstance(item, Gap):
            self._emit("gap", item)
            for s in self._subs.get(channel, []):
                s._push(item)
        else:
            self._emit("recovered", item)

    def _on_event(self, ev: Event) -> None:
        if ev.offset is not None and ev.epoch is not None:
            pos = self._positions.get(ev.channel)
            if pos is not None:
                last, epoch = pos
                if epoch == ev.epoch and ev.offset <= last:
                    return  # seen already: never hand an offset out twice
                # Holes that are no loss: a filter skips event types, and a
                # room member is not sent its own user_joined / user_left.
                filtered = ev.channel.startswith("room:") or any(
                    s.event_types for s in self._subs.get(ev.channel, [])
                )
                if epoch == ev.epoch and ev.offset > last + 1 and not filtered:
                    self._notice(
                        ev.channel, Gap(ev.channel, "offset_gap", last, ev.offset - 1, epoch, epoch)
                    )
                elif epoch != ev.epoch:
                    self._notice(ev.channel, Gap(ev.channel, "epoch_changed", last, None, epoch, ev.epoch))
            self._positions[ev.channel] = (ev.offset, ev.epoch)
        self._emit("event", ev)
        room = self._rooms_state(ev.channel)
        if room is not None:
            room._apply(ev)
            if room.deleted:  # gone for good: not rejoined after a reconnect
                self._rooms.pop(room.name, None)
        for s in self._subs.get(ev.channel, []):
            s._push(ev)

    def _rooms_state(self, channel: str) -> Optional[Room]:
        return self._rooms.get(channel[5:]) if channel.startswith("room:") else None

    # ------------------------------------------------------------ subscriptions

    def subscribe(
        self,
        channel: str,
        *,
        event_types: Optional[List[str]] = None,
        on_event: Optional[EventCallback] = None,
        buffer: Optional[int] = None,
    ) -> Subscription:
        """Subscribes to ``channel``; iterate the result (``async for``) or pass ``on_event``.

        Returns at once; ``await`` the subscription for the hub's reply (a
        :class:`HubError` such as ``forbidden`` is raised there). Made while
        disconnected, it goes out after the next ``connected``.
        """
        sub = self._attach(channel, event_types, on_event, buffer, managed=True)
        if len(self._subs[channel]) == 1 and self._ws is not None and self.state == "connected":
            msg: Dict[str, Any] = {"type": "subscribe", "channels": [channel]}
            if event_types:
                msg["event_types"] = list(event_types)
            self._spawn(self._subscribe_now(msg, sub))
        elif len(self._subs[channel]) > 1:
            first = self._subs[channel][0]
            if first._reply.done() and not first._reply.exception():
                sub._replied(first._reply.result())
            else:
                first._reply.add_done_callback(
                    lambda f: sub._replied(f.result()) if not f.exception() else sub._failed(f.exception())  # type: ignore[arg-type]
                )
        return sub

    async def _subscribe_now(self, msg: Dict[str, Any], sub: Subscription) -> None:
        try:
            await self._request(msg, queue=False, tracked=False)
        except HubError:
            pass  # delivered to the subscription by _dispatch
        except ConnectionLost:
            pass  # the next connection resubscribes

    def _attach(
        self,
        channel: str,
        event_types: Optional[List[str]],
        on_event: Optional[EventCallback],
        buffer: Optional[int],
        managed: bool,
    ) -> Subscription:
        if self._closing:
            raise ClientClosed("client closed")
        sub = Subscription(
            self, channel, event_types, buffer or self.subscription_buffer, on_event, managed
        )
        self._subs.setdefault(channel, []).append(sub)
        return sub

    async def _drop_subscription(self, sub: Subscription, tell_hub: bool = True) -> None:
        subs = self._subs.get(sub.channel, [])
        if sub in subs:
            subs.remove(sub)
        if subs:
            return
        self._subs.pop(sub.channel, None)
        self._positions.pop(sub.channel, None)
        if tell_hub and self._ready and not self._closing:
            try:
                await self._request({"type": "unsubscribe", "channels": [sub.channel]}, queue=False)
            except (ConnectionLost, RequestTimeout, HubError, ClientClosed):
                pass

    # ------------------------------------------------------------ requests

    async def _request(
        self,
        message: Dict[str, Any],
        *,
        timeout: Optional[float] = None,
        queue: bool = True,
        tracked: bool = True,
        hook: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> Dict[str, Any]:
        """Sends a command and returns its reply (the message with the same ``correlation_id``)."""
        if self._closing:
            raise ClientClosed("client closed")
        pid = next(self._ids)
        message = dict(message, id=pid)
        fut: asyncio.Future[Dict[str, Any]] = asyncio.get_running_loop().create_future()
        p = _Pending(message, fut)
        p.hook = hook
        if message["type"] == "subscribe":
            since = {c: self._positions[c] for c in message["channels"] if c in self._positions}
            if since:
                p.since = {c: {"offset": o, "epoch": e} for c, (o, e) in since.items()}
                message["since"] = p.since
        ws = self._ws
        if (self._ready or not queue) and ws is not None:
            self._pending[pid] = p
            p.sent = True
            try:
                await ws.send(codec.encode(self.encoding, message))
            except ConnectionClosed:
                self._pending.pop(pid, None)
                raise ConnectionLost("the connection closed while sending") from None
        elif not queue or not tracked:
            raise ConnectionLost("not connected")
        else:
            if len(self._outbox) >= self.queue_limit:
                raise QueueFull(f"{self.queue_limit} sends are already waiting for a connection")
            self._pending[pid] = p
            self._outbox.append(pid)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout or self.request_timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(f"no reply to {message['type']} in time") from None
        finally:
            self._pending.pop(pid, None)
            if not p.sent:
                try:
                    self._outbox.remove(pid)
                except ValueError:
                    pass

    def _fail_sent(self) -> None:
        for pid, p in list(self._pending.items()):
            if p.sent and not p.future.done():
                p.future.set_exception(ConnectionLost("connection lost before the reply"))
                p.future.exception()
                del self._pending[pid]
