"""Running one batch job in a worker (a local process or a Ray task): engine cache, SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from lama_video.batching.jobs import (
    EngineFactory,
    Job,
    JobResult,
    result_ids,
)
from lama_video.config import RunConfig
from lama_video.engines import ImageEngine
from lama_video.errors import LamaVideoError

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------- running a job

_ENGINES: dict[Any, ImageEngine] = {}  # per-process cache of default engines (LaMa loads once)
_IN_JOB = False  # a worker is inside a job (SIGTERM then aborts it cleanly)
_TERMINATING = False  # a worker got SIGTERM: it exits once the job has unwound


def job_engine(cfg: RunConfig, factory: EngineFactory | None) -> ImageEngine:
    """The image engine of a job: ``factory(cfg)``, or the default one cached per process."""
    if factory is not None:
        return factory(cfg)
    key = cfg.inpaint
    if key not in _ENGINES:
        from lama_video.pipeline import build_image_engine

        _ENGINES.clear()  # one model resident at a time
        _ENGINES[key] = build_image_engine(cfg)
    return _ENGINES[key]


def remove_partials(output: Path) -> None:
    """Delete temporary outputs a killed earlier attempt left beside ``output``."""
    import shutil

    if not output.parent.is_dir():
        return
    for p in output.parent.glob(f".{output.name}.partial-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


def run_job(job: Job, engine_factory: EngineFactory | None = None) -> JobResult:
    """Run one job with :func:`~lama_video.pipeline.remove_object` (errors become a result).

    The output is replaced if it exists: :func:`batch` has decided that before.
    """
    from lama_video.pipeline import remove_object

    global _IN_JOB
    t0 = time.perf_counter()
    base = result_ids(job)
    if job.error:
        return JobResult(**base, status="failed", error=job.error)
    _IN_JOB = True
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        remove_partials(job.output)
        engine = job_engine(job.config, engine_factory)
        res = remove_object(
            job.input,
            job.mask,
            job.output,
            config=job.config,
            keyframe_masks=dict(job.keyframes) if job.keyframes else None,
            overwrite=True,
            image_engine=engine,
            overlay=job.overlay,
            references=dict(job.references) if job.references else None,
            scene_plates=list(job.scene_plates) if job.scene_plates else None,
            frames=job.frames,
        )
    except LamaVideoError as err:
        return JobResult(**base, status="failed", seconds=time.perf_counter() - t0, error=str(err))
    except (Exception, MemoryError) as err:  # a bug or resource error: record it, go on
        log.warning("job %s failed unexpectedly", job.name, exc_info=True)
        return JobResult(
            **base,
            status="failed",
            seconds=time.perf_counter() - t0,
            error=f"{type(err).__name__}: {err}",
        )
    finally:
        _IN_JOB = False
        if _TERMINATING:
            os._exit(143)  # the writer has removed its temporary output; take no next job
    return JobResult(
        **base, status="done", frames=res.frames, seconds=res.seconds, engine=res.engine
    )


def _on_sigterm(signum: int, frame: Any) -> None:
    global _TERMINATING
    if _TERMINATING:
        return  # already unwinding: a second SIGTERM must not interrupt the clean-up
    _TERMINATING = True
    if _IN_JOB:
        raise KeyboardInterrupt  # unwinds remove_object: the writer removes its temporary output
    os._exit(128 + signum)


def _init_worker(devices: Any, threads: int) -> None:
    """Worker set-up: Ctrl-C goes to the parent only; one GPU (or a CPU share) per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices.get()
    elif threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
