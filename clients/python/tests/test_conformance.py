"""Every scenario of clients/conformance/scenarios, run against a real hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import SCENARIOS, Runner, Skip, load

FILES = sorted(SCENARIOS.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_scenario(path: Path, binary: str) -> None:
    try:
        runner = Runner(load(path), binary)
        await runner.run()
    except Skip as e:
        pytest.skip(str(e))
