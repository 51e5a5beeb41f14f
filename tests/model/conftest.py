"""Shared fixtures of the model tests: the LaMa parity fixture and the tiny architecture."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Folder of the parity fixture (tiny_generator.pt, config.yaml, expected_*.npy...)."""
    return Path(__file__).resolve().parent.parent / "fixtures" / "lama-parity"


@pytest.fixture(scope="session")
def tiny_kwargs() -> dict[str, float]:
    """Constructor keywords of the parity fixture's tiny generator (big-lama, narrower)."""
    return {"ngf": 16, "n_downsampling": 3, "n_blocks": 2, "ratio_g": 0.75}
