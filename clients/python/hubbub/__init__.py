"""hubbub: an asyncio client for the hubbub real-time hub (wire protocol v1).

``async with Client(url, token=...) as c: async for ev in c.subscribe("metrics"): ...``
"""

from .api import Job, Room
from .backoff import Backoff
from .client import Client
from .errors import (
    ClientClosed,
    ConnectionLost,
    HubbubError,
    HubError,
    QueueFull,
    RequestTimeout,
    Unauthorized,
)
from .subscription import Subscription
from .types import *  # noqa: F401,F403
from .types import Event, Gap, Recovered

__all__ = [
    "Backoff",
    "Client",
    "ClientClosed",
    "ConnectionLost",
    "Event",
    "Gap",
    "HubError",
    "HubbubError",
    "Job",
    "QueueFull",
    "Recovered",
    "RequestTimeout",
    "Room",
    "Subscription",
    "Unauthorized",
]
