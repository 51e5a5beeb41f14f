"""Shared test fixtures and the rule that a test logging at ERROR fails (PySceneDetect's habit)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _fail_on_error_logs(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="lama_video")
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail(f"test logged at ERROR: {errors[0].getMessage()}")


@pytest.fixture(autouse=True)
def _fp32_lama_on_every_cpu(monkeypatch: pytest.MonkeyPatch):
    """``precision: auto`` stays fp32 on CPU, even one with native bf16: the CPU tests compare
    with fp32 references (the auto choice itself is tested with the override set both ways)."""
    monkeypatch.setenv("LAMA_VIDEO_CPU_BF16", "0")


@pytest.fixture()
def busy_cpus():
    """Three threads of NumPy matrix products for as long as the test runs: encoder threads then
    finish in a different order from run to run, as on a machine running a batch."""
    stop = threading.Event()

    def burn() -> None:
        x = np.random.default_rng(0).random((256, 256))
        while not stop.is_set():
            x @ x

    workers = [threading.Thread(target=burn, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    yield
    stop.set()
    for w in workers:
        w.join()
