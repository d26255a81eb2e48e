"""Typed helpers over the commands: publish, history, presence, rooms, rpc and graph jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional

from .types import (
    JOB_TERMINAL,
    Event,
    HistoryPage,
    PresenceEntry,
    PresenceStats,
    Published,
)

if TYPE_CHECKING:  # pragma: no cover
    from .subscription import EventCallback, Subscription


class Room:
    """A joined room: its live member list and its events (``async for ev in room``).

    ``members`` (by connection id) follows ``user_joined`` / ``user_left`` and
    is reset from ``room_joined`` after each reconnect's automatic rejoin.
    """

    def __init__(self, name: str, info: Optional[Dict[str, Any]], sub: "Subscription") -> None:
        self.name = name
        self.info = info
        self.subscription = sub
        self.members: Dict[str, PresenceEntry] = {}
        self.deleted = False

    def _joined(self, reply: Dict[str, Any]) -> None:
        self.members = {m["connection_id"]: m for m in reply.get("members", [])}

    def _apply(self, ev: Event) -> None:
        data = ev.data if isinstance(ev.data, dict) else {}
        if ev.event_type == "user_joined":
            self.members[str(data.get("connection_id"))] = PresenceEntry(
                user_id=data.get("user_id"),
                connection_id=str(data.get("connection_id")),
                info=data.get("info") or {},
                joined_at=int(ev.timestamp or 0),
            )
        elif ev.event_type == "user_left":
            self.members.pop(str(data.get("connection_id")), None)
        elif ev.event_type == "room_deleted":
            self.deleted = True
            self.members.clear()
            self.subscription._end()

    def __aiter__(self) -> "Subscription":
        return self.subscription

    @property
    def user_ids(self) -> List[Optional[str]]:
        """Users present, once per connection."""
        return [m["user_id"] for m in self.members.values()]


class Job:
    """A graph-algorithm job: ``async for ev in job.events()`` until its terminal event."""

    def __init__(self, client: "Commands", job_id: str, channel: str, sub: "Subscription") -> None:
        self.job_id = job_id
        self.channel = channel
        self.subscription = sub
        self._client = client
        self.terminal: Optional[Event] = None

    async def events(self) -> AsyncIterator[Event]:
        """``graph``, work events, then exactly one terminal event, after which it ends."""
        async for ev in self.subscription:
            if ev.event_type in JOB_TERMINAL:
                self.terminal = ev
                yield ev
                await self.subscription.unsubscribe()
                return
            yield ev

    async def result(self) -> Event:
        """Drains the events and returns the terminal one (``algorithm_complete`` ...)."""
        async for _ in self.events():
            pass
        if self.terminal is None:
            raise RuntimeError("the job's stream ended without a terminal event")
        return self.terminal

    async def stop(self) -> None:
        """Asks the hub to stop the job; its ``algorithm_stopped`` event still follows."""
        await self._client._request({"type": "algorithm_stop", "job_id": self.job_id})


class Commands:
    """The protocol's commands as typed coroutines (mixed into :class:`hubbub.Client`)."""

    _rooms: Dict[str, Room]

    async def _request(
        self,
        message: Dict[str, Any],
        *,
        timeout: Optional[float] = None,
        queue: bool = True,
        tracked: bool = True,
        hook: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> Dict[str, Any]:
        raise NotImplementedError

    def _attach(
        self,
        channel: str,
        event_types: Optional[List[str]],
        on_event: "Optional[EventCallback]",
        buffer: Optional[int],
        managed: bool,
    ) -> "Subscription":
        raise NotImplementedError

    def _spawn(self, aw: Awaitable[Any]) -> None:
        raise NotImplementedError

    async def request(self, message: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        """Any command as a dict; returns the reply (raises :class:`HubError` on ``error``)."""
        return await self._request(message, timeout=timeout)

    async def publish(self, channel: str, event_type: str, data: Any) -> Published:
        """Publishes where the namespace (and token) allow it."""
        r = await self._request(
            {"type": "publish", "channel": channel, "event_type": event_type, "data": data}
        )
        return Published(str(r["channel"]), r.get("offset"))

    async def ping(self) -> None:
        """One round trip to the hub."""
        await self._request({"type": "ping"})

    async def history(
        self, channel: str, since_offset: Optional[int] = None, limit: Optional[int] = None
    ) -> HistoryPage:
        """A channel's retained events (``since_offset`` exclusive)."""
        msg: Dict[str, Any] = {"type": "history", "channel": channel}
        if since_offset is not None:
            msg["since_offset"] = since_offset
        if limit is not None:
            msg["limit"] = limit
        r = await self._request(msg)
        events = [Event.from_wire(dict(e, channel=e.get("channel", channel))) for e in r["events"]]
        return HistoryPage(str(r["channel"]), str(r["epoch"]), int(r["offset"]), events)

    async def subscriptions(self) -> List[str]:
        """The connection's channels as the hub sees them."""
        r = await self._request({"type": "get_subscriptions"})
        return [str(c) for c in r["channels"]]

    async def presence(self, channel: str) -> List[PresenceEntry]:
        """Entries present on a presence-enabled channel (``room:<room>`` for a room)."""
        r = await self._request({"type": "presence", "channel": channel})
        members: List[PresenceEntry] = r["members"]
        return members

    async def presence_stats(self, channel: str) -> PresenceStats:
        """Connection and user counts of a presence-enabled channel."""
        r = await self._request({"type": "presence_stats", "channel": channel})
        return PresenceStats(str(r["channel"]), int(r["num_clients"]), int(r["num_users"]))

    async def join_room(
        self,
        room: str,
        info: Optional[Dict[str, Any]] = None,
        on_event: "Optional[EventCallback]" = None,
    ) -> Room:
        """Joins ``room`` (and rejoins it after every reconnect until :meth:`leave_room`).

        Its events come by ``async for ev in room``, or to ``on_event``.
        """
        channel = f"room:{room}"
        sub = self._attach(channel, None, on_event, None, managed=False)
        handle = Room(room, info, sub)
        msg: Dict[str, Any] = {"type": "join_room", "room": room}
        if info is not None:
            msg["info"] = info
        self._rooms[room] = handle  # before the reply: its events update members
        try:
            await self._request(msg, hook=handle._joined)
        except BaseException:
            self._rooms.pop(room, None)
            await sub.unsubscribe(tell_hub=False)
            raise
        return handle

    async def leave_room(self, room: str) -> None:
        """Leaves ``room``; its iterator ends."""
        handle = self._rooms.pop(room, None)
        await self._request({"type": "leave_room", "room": room})
        if handle is not None:
            await handle.subscription.unsubscribe(tell_hub=False)

    async def rpc(self, method: str, data: Any = None, timeout: Optional[float] = None) -> Any:
        """Calls an application-defined method; returns its ``data``."""
        r = await self._request({"type": "rpc", "method": method, "data": data}, timeout=timeout)
        return r.get("data")

    async def start_job(
        self,
        algorithm: str,
        parameters: Dict[str, Any],
        on_event: "Optional[EventCallback]" = None,
    ) -> Job:
        """Starts a graph-algorithm job (PROTOCOL.md section 7) and streams its events.

        Its events come by ``async for ev in job.events()``, or to ``on_event``
        (then ``job.events()`` yields nothing; ``await job.result()`` still
        returns the terminal event).
        """
        jobs: List[Job] = []

        def deliver(ev: Event) -> Optional[Awaitable[None]]:
            assert on_event is not None
            if ev.event_type in JOB_TERMINAL:  # the last one: forget the channel
                jobs[0].terminal = ev
                self._spawn(jobs[0].subscription.unsubscribe())
            return on_event(ev)

        def claim(reply: Dict[str, Any]) -> None:
            # Runs in the reader before any later frame, so no job event is missed.
            channel = str(reply["channel"])
            sub = self._attach(channel, None, deliver if on_event else None, None, managed=False)
            jobs.append(Job(self, str(reply["job_id"]), channel, sub))

        await self._request(
            {"type": "algorithm_start", "algorithm": algorithm, "parameters": parameters},
            hook=claim,
        )
        return jobs[0]

    async def stop_job(self, job_id: str) -> None:
        """Stops a job by id."""
        await self._request({"type": "algorithm_stop", "job_id": job_id})
