"""A real hub for the tests: the `hubbub serve` binary, started, killed and restarted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[3]
SECRET = "python-client-test-secret-32-bytes!!"
API_KEY = "python-client-test-key"


def hub_binary() -> str:
    """$HUBBUB_BIN, or the debug binary built from this repository."""
    env = os.environ.get("HUBBUB_BIN")
    if env:
        return env
    subprocess.run(
        ["cargo", "build", "-q", "-p", "hubbub", "--bin", "hubbub"], cwd=REPO, check=True
    )
    return str(REPO / "target" / "debug" / "hubbub")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub: str, ttl: float = 3600, **claims: Any) -> str:
    """An HS256 JWT for the test hub's secret."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = dict(claims, sub=sub, exp=int(time.time() + ttl))
    payload = b64(json.dumps(body).encode())
    sig = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


class Hub:
    """One `hubbub serve` process on a fixed port, so a restart keeps the URL."""

    def __init__(
        self,
        binary: str,
        settings: Optional[Dict[str, str]] = None,
        *,
        defaults: bool = True,
        config: Optional[str] = None,
    ) -> None:
        self.binary = binary
        self.config = config
        self.port = free_port()
        self.settings = {} if not defaults else {
            "auth.hs256_secret": SECRET,
            "auth.leeway_s": "0",
            "api.key": API_KEY,
            "limits.connections_per_user_per_minute": "100000",
            "namespaces.chat.publish": "true",
            "namespaces.chat.history_size": "1000",
        }
        self.settings.update(settings or {})
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}"]
        if self.config is not None:
            self.config_file = tempfile.NamedTemporaryFile("w", suffix=".toml")
            self.config_file.write(self.config)
            self.config_file.flush()
            args += ["--config", self.config_file.name]
        for k, v in self.settings.items():
            args += ["--set", f"{k}={v}"]
        self.log = tempfile.NamedTemporaryFile(prefix="hubbub-py-", suffix=".log")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            # the hub reads HUBBUB_* variables as configuration: pass none of ours
            env={k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")},
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            text = Path(self.log.name).read_text(errors="replace")
            if re.search(r"listening on 127\.0\.0\.1:\d+", text):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}: {text[-500:]}")
            time.sleep(0.02)
        raise RuntimeError("hub did not start in 20 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        deadline = time.time() + 10
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def api_sync(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.http + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {API_KEY}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    async def api(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        return await asyncio.to_thread(self.api_sync, method, path, body)

    async def publish(self, channel: str, event_type: str, data: Any) -> Dict[str, Any]:
        status, body = await self.api("POST", "/api/publish", {
            "channel": channel, "event_type": event_type, "data": data,
        })
        assert status == 200, body
        result: Dict[str, Any] = body
        return result

    async def connections(self, user_id: str) -> List[Dict[str, Any]]:
        status, body = await self.api("GET", f"/api/connections?user_id={user_id}")
        assert status == 200, body
        result: List[Dict[str, Any]] = body
        return result


async def until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Waits for ``predicate()`` with a deadline (no fixed sleeps in pass/fail tests)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
