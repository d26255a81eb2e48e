"""What the application holds for a channel: a bounded, iterable stream of its events."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Generator,
    List,
    Optional,
    Sequence,
    Union,
)

from .types import Event, Gap, SubscribedChannel

if TYPE_CHECKING:  # pragma: no cover
    from .channels import Channels

#: A per-event callback, plain or async.
EventCallback = Callable[[Event], Optional[Awaitable[None]]]

Item = Union[Event, Gap]


class Subscription:
    """A channel's events in order, each offset once.

    ``async for event in sub`` yields events; ``sub.items()`` yields events and
    :class:`~hubbub.types.Gap` records in stream order; ``await sub`` waits for
    the hub's ``subscribed`` reply. The buffer is bounded (``buffer`` items):
    when the application does not drain it, further events are dropped and
    one ``Gap(reason="overflow")`` says which, rather than memory growing
    without end or events vanishing silently. With ``on_event`` events go to
    the callback instead of the buffer.
    """

    def __init__(
        self,
        client: "Channels",
        channel: str,
        event_types: Optional[Sequence[str]],
        buffer: int,
        on_event: Optional[EventCallback],
        managed: bool = True,
    ) -> None:
        self.channel = channel
        self.event_types = tuple(event_types) if event_types else None
        self.gaps: List[Gap] = []
        self._client = client
        self._buffer = max(1, buffer)
        self._on_event = on_event
        self._queue: Deque[Item] = deque()
        self._wakeup: Optional[asyncio.Future[None]] = None
        self._ended = False
        self._reply: asyncio.Future[SubscribedChannel] = (
            asyncio.get_running_loop().create_future()
        )
        # A managed subscription sends subscribe itself; rooms and jobs are
        # subscribed by the hub when joined or started.
        self.managed = managed

    # -- fed by the client --------------------------------------------------

    def _push(self, item: Item) -> None:
        if self._ended:
            return
        if isinstance(item, Gap):
            self.gaps.append(item)
        if isinstance(item, Event) and self._on_event is not None:
            self._client._call(self._on_event, item)
            return
        if isinstance(item, Event) and len(self._queue) >= self._buffer:
            last = self._queue[-1] if self._queue else None
            off = item.offset if item.offset is not None else 0
            if isinstance(last, Gap) and last.reason == "overflow":
                self._queue[-1] = dataclasses.replace(last, until=off)
            else:
                gap = Gap(self.channel, "overflow", off - 1, off, item.epoch, item.epoch)
                self.gaps.append(gap)
                self._queue.append(gap)
                self._client._emit("gap", gap)
            return
        self._queue.append(item)
        self._wake()

    def _replied(self, entry: SubscribedChannel) -> None:
        if not self._reply.done():
            self._reply.set_result(entry)

    def _failed(self, exc: BaseException) -> None:
        if not self._reply.done():
            self._reply.set_exception(exc)
            self._reply.exception()  # retrieved: nobody may await it
        self._end()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # -- for the application ------------------------------------------------

    def __await__(self) -> Generator[Any, None, SubscribedChannel]:
        return asyncio.shield(self._reply).__await__()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event:
        while True:
            item = await self._next_item()
            if isinstance(item, Event):
                return item

    async def items(self) -> AsyncIterator[Item]:
        """Events and gaps in stream order, until the subscription ends."""
        while True:
            try:
                yield await self._next_item()
            except StopAsyncIteration:
                return

    async def _next_item(self) -> Item:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        return self._queue.popleft()

    async def unsubscribe(self, tell_hub: bool = True) -> None:
        """Stops the subscription: the iterator ends after what is buffered.

        ``tell_hub=False`` only forgets it locally (the hub already dropped it,
        as after ``leave_room``).
        """
        self._end()
        await self._client._drop_subscription(self, tell_hub)

    async def __aenter__(self) -> "Subscription":
        await self
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unsubscribe()
