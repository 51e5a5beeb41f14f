"""Local worker processes (one GPU, or a share of the CPU cores, per worker)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable

from lama_video.batching.jobs import (
    EngineFactory,
    Job,
    JobResult,
    result_ids,
)
from lama_video.batching.worker import _init_worker, run_job

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------ local worker processes


def visible_gpus() -> list[str]:
    """GPU ids the worker processes may use (``CUDA_VISIBLE_DEVICES``, else all CUDA devices)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def _run_pool(
    todo: list[Job],
    workers: int,
    engine_factory: EngineFactory | None,
    finish: Callable[[Job, JobResult], None],
) -> None:
    """Run ``todo`` on ``workers`` spawned processes; ``finish`` is called as each job ends."""
    ctx = mp.get_context("spawn")
    gpus = visible_gpus()
    devices = None
    if gpus:
        devices = ctx.Queue()
        for i in range(workers):
            devices.put(gpus[i % len(gpus)])
        log.info("%d workers on GPUs %s", workers, ",".join(gpus))
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(devices, threads)
    )
    futures = {pool.submit(run_job, job, engine_factory): job for job in todo}
    try:
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                result = fut.result()
            except cf.process.BrokenProcessPool as err:
                result = JobResult(
                    **result_ids(job),
                    status="failed",
                    error=f"worker process died ({err}); rerun the batch to retry",
                )
            finish(job, result)
    except BaseException:
        for fut in futures:
            fut.cancel()
        # SIGTERM makes a running job unwind, delete its temporary output and exit (see
        # _on_sigterm); a worker that does not go within the grace period is killed.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        deadline = time.monotonic() + 10.0
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
