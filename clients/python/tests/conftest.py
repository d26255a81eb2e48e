from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub import Hub, hub_binary  # noqa: E402


@pytest.fixture(scope="session")
def binary() -> str:
    return hub_binary()


@pytest.fixture
def hub(binary: str) -> Iterator[Hub]:
    h = Hub(binary)
    h.start()
    yield h
    h.kill()
