"""Every scenario of clients/conformance/scenarios, run against a real hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import SCENARIOS, Runner, Skip, load

FILES = sorted(SCENARIOS.glob("*.json"))


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_scenario(path: Path, encoding: str, binary: str) -> None:
    """Each scenario in both encodings (a scenario that names one keeps it)."""
    scenario = load(path)
    for spec in scenario["clients"].values():
        spec.setdefault("encoding", encoding)
    try:
        runner = Runner(scenario, binary)
        await runner.run()
    except Skip as e:
        pytest.skip(str(e))
