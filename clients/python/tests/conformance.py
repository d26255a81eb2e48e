"""Runner of the shared conformance scenarios (clients/conformance/FORMAT.md) for this client."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from hub import API_KEY, SECRET, Hub, mint
from hubbub import (
    Backoff,
    Client,
    ClientClosed,
    ConnectionLost,
    Event,
    Gap,
    HubError,
    QueueFull,
    RequestTimeout,
)
from hubbub.types import Disconnected, Reconnecting

SCENARIOS = Path(__file__).resolve().parents[2] / "conformance" / "scenarios"


class Skip(Exception):
    """A service the scenario needs is not reachable."""


class Fail(AssertionError):
    """A step did not hold."""


def error_name(exc: BaseException) -> str:
    if isinstance(exc, QueueFull):
        return "queue_full"
    if isinstance(exc, RequestTimeout):
        return "timeout"
    if isinstance(exc, ClientClosed):
        return "closed"
    if isinstance(exc, HubError):
        return exc.code
    if isinstance(exc, ConnectionLost):
        return "connection_lost"
    return type(exc).__name__


class Rig:
    """One scenario client: the library's client and what it told the application."""

    def __init__(self, name: str, spec: Dict[str, Any], url: str) -> None:
        self.name = name
        self.obs: List[Dict[str, Any]] = []
        self.pending: List["asyncio.Task[Any]"] = []
        user = spec["user"]
        claims = dict(spec.get("claims", {}))
        ttl = float(spec.get("ttl_s", 3600))
        kwargs: Dict[str, Any] = {
            "encoding": spec.get("encoding", "json"),
            "refresh_before_expiry": bool(spec.get("proactive_refresh", True)),
        }
        if spec.get("token", "static") == "callback":
            def provider() -> str:
                self.obs.append({"kind": "token_fetched"})
                return mint(user, ttl, **claims)
            kwargs["token_provider"] = provider
        else:
            kwargs["token"] = mint(user, ttl, **claims)
        b = spec.get("backoff")
        if b:
            kwargs["backoff"] = Backoff(
                initial=b.get("initial_ms", 500) / 1000,
                max=b.get("max_ms", 30000) / 1000,
                attempts=b.get("attempts"),
            )
        if "send_queue" in spec:
            kwargs["queue_limit"] = int(spec["send_queue"])
        if "command_timeout_ms" in spec:
            kwargs["request_timeout"] = spec["command_timeout_ms"] / 1000
        self.client = Client(url, **kwargs)
        c = self.client
        for state in ("connecting", "connected", "closed"):
            c.on(state, self._state(state))
        c.on("disconnected", self._disconnected)
        c.on("reconnecting", self._reconnecting)
        c.on("event", self._event)
        c.on("recovered", lambda r: self._recovery(r.channel, True))
        c.on("gap", self._gap)

    def _state(self, state: str) -> Callable[[Any], None]:
        return lambda _payload: self.obs.append({"kind": "state", "state": state})

    def _disconnected(self, d: Disconnected) -> None:
        self.obs.append({"kind": "state", "state": "disconnected", "code": d.code, "reason": d.reason})

    def _reconnecting(self, r: Reconnecting) -> None:
        self.obs.append(
            {"kind": "state", "state": "reconnecting", "delay_ms": r.delay * 1000, "attempt": r.attempt}
        )

    def _event(self, ev: Event) -> None:
        self.obs.append({
            "kind": "event", "channel": ev.channel, "event_type": ev.event_type,
            "data": ev.data, "offset": ev.offset, "epoch": ev.epoch,
        })

    def _recovery(self, channel: str, recovered: bool) -> None:
        self.obs.append({"kind": "recovery", "channel": channel, "recovered": recovered})

    def _gap(self, g: Gap) -> None:
        if g.reason in ("not_recovered", "epoch_changed"):  # the resubscription's outcome
            self._recovery(g.channel, False)

    def of(self, kind: str, **match: Any) -> List[Tuple[int, Dict[str, Any]]]:
        return [
            (i, o) for i, o in enumerate(self.obs)
            if o["kind"] == kind and all(o.get(k) == v for k, v in match.items())
        ]


def subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and subset(v, got[k]) for k, v in want.items())
    return bool(want == got)


async def wait_for(check: Callable[[], Optional[str]], within_ms: float) -> None:
    """Polls ``check`` (None: holds; else why not) until the deadline."""
    deadline = time.monotonic() + within_ms / 1000
    while True:
        why = check()
        if why is None:
            return
        if time.monotonic() >= deadline:
            raise Fail(why)
        await asyncio.sleep(0.01)


class Runner:
    def __init__(self, scenario: Dict[str, Any], binary: str) -> None:
        self.scenario = scenario
        unique = uuid.uuid4().hex[:12]
        redis_url = os.environ.get("HUBBUB_TEST_REDIS", "redis://127.0.0.1:6379")
        hub_spec = scenario.get("hub", {})
        for need in hub_spec.get("requires", []):
            if need == "redis" and not reachable(redis_url):
                raise Skip(f"redis not reachable at {redis_url}")
            if need != "redis":
                raise Skip(f"unknown requirement {need}")
        settings = {"api.key": API_KEY, "auth.hs256_secret": SECRET, "auth.required": "true"}
        for k, v in hub_spec.get("settings", {}).items():
            settings[k] = str(v).replace("{unique}", unique).replace("{redis_url}", redis_url)
        self.hub = Hub(binary, settings, defaults=False)
        self.rigs: Dict[str, Rig] = {}
        self.marks: Dict[Tuple[str, ...], int] = {}

    async def run(self) -> None:
        await asyncio.to_thread(self.hub.start)
        try:
            for name, spec in self.scenario["clients"].items():
                self.rigs[name] = Rig(name, spec, self.hub.url)
            for i, step in enumerate(self.scenario["steps"]):
                try:
                    await self.step(step)
                except Fail as e:
                    raise Fail(f"step {i} {json.dumps(step)}: {e}") from None
        finally:
            for rig in self.rigs.values():
                await rig.client.close()
            await asyncio.to_thread(self.hub.kill)

    async def step(self, s: Dict[str, Any]) -> None:
        within = float(s.get("within_ms", 10000))
        rig = self.rigs.get(s.get("client", ""))
        if "do" in s:
            await self.action(s["do"], s, rig, within)
        elif "expect" in s:
            await self.expect(s["expect"], s, rig, within)
        else:
            raise Fail("a step needs `do` or `expect`")

    async def action(self, do: str, s: Dict[str, Any], rig: Optional[Rig], within: float) -> None:
        t = within / 1000
        if do in ("stop_hub", "restart_hub"):
            await asyncio.to_thread(self.hub.kill)
        if do in ("start_hub", "restart_hub"):
            await asyncio.to_thread(self.hub.restart)
        if do in ("stop_hub", "start_hub", "restart_hub"):
            return
        if do == "publish_http":
            lo, hi = s["seq"]
            for n in range(lo, hi + 1):
                await self.hub.publish(s["channel"], s.get("event_type", "seq"), self.seq_data(n, s))
            return
        if do == "broadcast_http":
            status, body = await self.hub.api("POST", "/api/broadcast", {
                "channels": s["channels"], "event_type": s.get("event_type", "seq"),
                "data": self.seq_data(int(s.get("seq", 1)), s),
            })
            if status != 200:
                raise Fail(f"broadcast answered {status} {body}")
            return
        assert rig is not None, f"`{do}` needs a client"
        c = rig.client
        if do == "connect":
            await asyncio.wait_for(c.connect(), t)
        elif do == "close":
            await asyncio.wait_for(c.close(), t)
        elif do == "subscribe":
            subs = [c.subscribe(ch, on_event=lambda _e: None) for ch in s["channels"]]
            for sub in subs:
                await asyncio.wait_for(_awaited(sub), t)
        elif do == "publish":
            coro = c.publish(s["channel"], s["event_type"], s["data"])
            if not s.get("await", True):
                rig.pending.append(asyncio.ensure_future(coro))
                await asyncio.sleep(0)  # issued in order, now
                return
            try:
                await asyncio.wait_for(coro, t)
            except Exception as e:
                if s.get("expect_error") != error_name(e):
                    raise Fail(f"publish failed with {error_name(e)}") from None
            else:
                if s.get("expect_error"):
                    raise Fail(f"publish succeeded, expected {s['expect_error']}")
        elif do == "join_room":
            await asyncio.wait_for(c.join_room(s["room"], s.get("info")), t)
        elif do == "leave_room":
            await asyncio.wait_for(c.leave_room(s["room"]), t)
        elif do == "presence":
            members = await asyncio.wait_for(c.presence(f"room:{s['room']}"), t)
            users = sorted(str(m["user_id"]) for m in members)
            if users != sorted(s["users"]):
                raise Fail(f"presence lists {users}")
        elif do == "disconnect_http":
            assert c.info is not None, "not connected"
            status, body = await self.hub.api(
                "POST", f"/api/connections/{c.info.connection_id}/disconnect",
                {"reason": s.get("reason", "conformance"), "reconnect": bool(s["reconnect"])},
            )
            if status != 200:
                raise Fail(f"disconnect answered {status} {body}")
        else:
            raise Fail(f"unknown action {do}")

    @staticmethod
    def seq_data(n: int, s: Dict[str, Any]) -> Dict[str, Any]:
        data: Dict[str, Any] = {"seq": n}
        if int(s.get("pad", 0)) > 0:
            data["pad"] = "x" * int(s["pad"])
        return data

    async def expect(self, kind: str, s: Dict[str, Any], rig: Optional[Rig], within: float) -> None:
        if kind == "history":
            status, body = await self.hub.api("GET", f"/api/channels/{s['channel']}/history?limit=100")
            seqs = [e["data"].get("seq") for e in body["events"]] if status == 200 else body
            lo, hi = s["seq"]
            if seqs != list(range(lo, hi + 1)):
                raise Fail(f"history holds {seqs}")
            return
        assert rig is not None, f"`{kind}` needs a client"
        if kind in ("state", "event", "recovery"):
            match: Dict[str, Any] = {}
            if kind == "state":
                match = {"state": s["state"]}
                if "code" in s:
                    match["code"] = s["code"]
                key: Tuple[str, ...] = (rig.name, "state")
            else:
                match = {"channel": s["channel"]}
                key = (rig.name, kind, s["channel"])
            if kind == "event":
                match["event_type"] = s["event_type"]
            after = self.marks.get(key, -1)

            def found() -> Optional[int]:
                for i, o in rig.of(kind, **match):
                    if i <= after:
                        continue
                    if kind == "state" and "max_delay_ms" in s and o.get("delay_ms", 0) > s["max_delay_ms"]:
                        continue
                    if kind == "event" and not subset(s.get("data", {}), o["data"]):
                        continue
                    if kind == "recovery" and o["recovered"] != s["recovered"]:
                        continue
                    return i
                return None

            await wait_for(lambda: None if found() is not None else f"no {kind} {match}; saw {rig.obs[-8:]}", within)
            idx = found()
            assert idx is not None
            self.marks[key] = idx
        elif kind == "no_state":
            match = {"state": s["state"]}
            if "code" in s:
                match["code"] = s["code"]
            if rig.of("state", **match):
                raise Fail(f"saw state {match}")
        elif kind == "count":
            k = s["kind"]

            def count() -> int:
                return len(rig.of("token_fetched")) if k == "token_fetched" else len(rig.of("state", state=k))

            await wait_for(lambda: None if count() >= s["at_least"] else f"{count()} {k}", within)
        elif kind == "sequence":
            channels = s["channel"] if isinstance(s["channel"], list) else [s["channel"]]
            for ch in channels:
                await wait_for(functools.partial(self.sequence, rig, ch, s["from"], s["to"]), within)
        elif kind == "backoff":
            expected = 1
            for _, o in rig.of("state"):
                if o["state"] == "connected":
                    expected = 1
                elif o["state"] == "reconnecting":
                    bound = min(s["max_ms"], s["initial_ms"] * 2 ** (o["attempt"] - 1))
                    if o["attempt"] != expected or not 0 <= o["delay_ms"] <= bound + 1e-6:
                        raise Fail(f"reconnecting {o} (expected attempt {expected}, bound {bound})")
                    expected += 1
        elif kind == "pending":
            await wait_for(lambda: None if all(p.done() for p in rig.pending) else "pending sends", within)
            results = []
            for p in rig.pending:
                exc = p.exception()
                results.append("ok" if exc is None else error_name(exc))
            rig.pending.clear()
            if results != s["results"]:
                raise Fail(f"pending settled as {results}")
        else:
            raise Fail(f"unknown expectation {kind}")

    @staticmethod
    def sequence(rig: Rig, channel: str, lo: int, hi: int) -> Optional[str]:
        evs = [o for _, o in rig.of("event", channel=channel)]
        seqs: List[int] = [int(e["data"]["seq"]) for e in evs if isinstance(e["data"], dict) and "seq" in e["data"]]
        missing = sorted(set(range(lo, hi + 1)) - set(seqs))
        if missing:
            return f"{channel}: missing seq {missing[:10]} (have {seqs[-10:]})"
        if len(seqs) != len(set(seqs)) or seqs != sorted(seqs):
            return f"{channel}: seq out of order or repeated: {seqs}"
        last: Dict[Any, int] = {}
        for e in evs:
            if e["offset"] is None:
                continue
            if e["offset"] <= last.get(e["epoch"], 0):
                return f"{channel}: offset {e['offset']} not increasing in epoch {e['epoch']}"
            last[e["epoch"]] = e["offset"]
        return None


async def _awaited(sub: Any) -> Any:
    return await sub


def reachable(url: str) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def load(path: Path) -> Dict[str, Any]:
    value: Dict[str, Any] = json.loads(path.read_text())
    return value
