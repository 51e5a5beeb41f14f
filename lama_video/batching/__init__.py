"""Batch processing: many recordings in one resumable run, on worker processes or a Ray cluster.

Every job runs :func:`lama_video.pipeline.remove_object`, the code path of ``lama-video remove``.

**A folder of recordings** (``lama-video batch SOURCE -o OUTDIR``). Every video file directly in
SOURCE (with ``recursive``, also in its sub-folders) is one job. Its mask lies beside it, found by
name; for ``clip.mp4``:

- ``clip_masks/``: a folder of per-frame masks (one per frame, numbered);
- ``clip_mask.mp4`` (any video suffix): a mask video, one mask frame per frame;
- ``clip_mask.png`` (any image suffix): one mask for every frame;
- ``clip_keyframes/``: masks for some frames only, named by frame number (``00040.png`` is frame
  40), tracked through the clip with optical flow.

Beside any of these, ``clip_plates/`` holds clean plates named by frame number (``00040.png``:
frame 40 with the object painted out), used as ``remove --reference``.

Videos named ``*_mask.*`` are masks, not jobs; OUTDIR is never searched. A video with no mask, or
with more than one, is a failed job whose error names what was looked for; the other jobs still run.
The output is ``OUTDIR/clip.mp4`` (sub-folders kept with ``recursive``).

**A job file** (``.yaml``/``.yml`` or ``.csv``; relative paths are relative to the file, outputs
relative to OUTDIR; an output outside OUTDIR, absolute or with ``..``, is refused unless the YAML
file says ``allow_outputs_outside_outdir: true`` at its top)::

    config: fast.yaml            # optional preset for every job
    options: {encode: {crf: 20}} # optional {section: {key: value}} for every job
    jobs:
      - input: raw/a.mp4
        mask: raw/a_masks/       # a mask folder, mask video or one mask image
        output: a_clean.mp4      # optional; default: the input's file name
      - input: raw/b.mp4
        box: 10,20,64,48         # a fixed box X,Y,W,H
      - input: raw/c.mp4
        keyframes: {0: raw/c_k0.png, 90: raw/c_k90.png}
        config: slow.yaml        # this job's own preset ...
        options: {temporal: {window_frames: 90}}  # ... and overrides
      - input: raw/d.mp4
        overlay: auto            # a static logo/watermark: found (auto) or a mask image;
                                 # alone, or beside mask/box/keyframes
      - input: raw/e.mp4
        mask: raw/e_masks/
        references: {40: raw/e_plate40.png}   # clean plates, as remove --reference
        clean_plates: [raw/e_set.png]         # pictures of the empty set, as --clean-plate

A CSV file has a header row with the columns ``input`` (required), ``mask``, ``box``,
``keyframes`` (``0:k0.png;90:k90.png``), ``overlay``, ``references`` (``40:plate.png``),
``clean_plates`` (``set.png;set2.png``), ``output``, ``config`` and ``options``
(``encode.crf=20;inpaint.engine=telea``). Settings: the batch's config (defaults < ``--config`` <
flags) < the file's ``config`` < the file's ``options`` < the job's ``config`` < the job's
``options``.

**Resuming.** ``OUTDIR/batch-manifest.json`` records every finished or failed job: the input's
size and modification time (or its SHA-256 with ``content_hash``), the masks' likewise, the full
settings and the output. It is rewritten atomically (temporary file + ``os.replace``) after each
job. A rerun skips the jobs recorded as done whose fingerprint is unchanged and whose output exists,
redoes changed ones, and retries failed ones. An interrupted run (Ctrl-C) loses only the jobs that
were running; no output is ever half-written.

Example::

    import lama_video
    report = lama_video.batch("recordings/", "clean/", config=RunConfig.from_yaml("fast.yaml"),
                              workers=2)
    print(report.table())
    report = lama_video.batch("jobs.yaml", "/shared/clean", ray_address="auto", ray_gpus=1)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lama_video.batching.jobs import (
    OUTSIDE_KEY,
    BatchInterrupted,
    BatchReport,
    EngineFactory,
    Job,
    JobResult,
    discover_jobs,
    load_jobs,
    read_job_file,
    result_ids,
)
from lama_video.batching.local import _run_pool, visible_gpus
from lama_video.batching.manifest import MANIFEST_NAME, Manifest, fingerprint
from lama_video.batching.worker import remove_partials, run_job
from lama_video.config import RunConfig
from lama_video.errors import ConfigError, EncodeError
from lama_video.masks import Box

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------- the API


def batch(
    source: str | os.PathLike[str] | Iterable[Job],
    output_dir: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    ray_gpus: float | None = None,
    ray_cpus: float = 1.0,
    ray_retries: int = 3,
    split_frames: int = 600,
    scratch_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    overwrite: bool = False,
    content_hash: bool = False,
    engine_factory: EngineFactory | None = None,
    on_start: Callable[[list[Job]], None] | None = None,
    on_job: Callable[[JobResult], None] | None = None,
) -> BatchReport:
    """Clean every recording of a folder or job file into ``output_dir``, resumably.

    Args:
        source: a folder of recordings, a ``.yaml``/``.csv`` job file, or :class:`Job` objects.
        output_dir: where outputs and ``batch-manifest.json`` go (created if missing).
        config: settings of every job (a job file may change them per job).
        workers: parallel worker processes on this machine (one GPU each, round robin, when
            there are GPUs); 1 runs the jobs in this process.
        ray_address: run on Ray instead: ``"auto"`` (a running cluster), ``"local"`` (start one
            here) or a cluster address; an already initialised Ray is used as it is. Inputs,
            masks and ``output_dir`` must be on a filesystem every node sees at the same path.
        ray_gpus: GPUs per Ray task (fractions share a GPU); None = 1 if the cluster has GPUs.
        ray_cpus: CPUs per Ray task.
        ray_retries: times a Ray task is rerun when its worker process or node dies.
        split_frames: on Ray, videos longer than this are split into windows of about this many
            frames, processed as separate tasks and joined seamlessly.
        scratch_dir: where window tasks put their frames (default
            ``output_dir/.lama-video-scratch``; on Ray, a folder every node sees).
        recursive: also search the source folder's sub-folders.
        overwrite: replace outputs that exist but were not written by this batch.
        content_hash: identify inputs by SHA-256 instead of size and modification time.
        engine_factory: builds each job's image engine in the worker (default: from the config).
        on_start: called once with the jobs before any runs.
        on_job: called with each job's result as it ends (skipped ones first).

    Returns:
        The report; ``report.ok`` is False when a job failed.

    Raises:
        ConfigError: bad source, job file, manifest or settings.
        BatchInterrupted: Ctrl-C (a KeyboardInterrupt); finished jobs are in the manifest and in
            its ``report``; rerunning the same call continues.
    """
    t0 = time.perf_counter()
    out_dir = Path(output_dir)
    if workers < 1:
        raise ConfigError(f"workers: got {workers}, expected 1 or more")
    if workers > 1 and ray_address is not None:
        raise ConfigError(
            f"workers={workers} with Ray: expected one of them; on Ray the cluster's GPUs/CPUs and "
            "ray_gpus/ray_cpus set the parallelism"
        )
    if isinstance(source, (str, os.PathLike)):
        jobs = load_jobs(source, out_dir, config=config, recursive=recursive)
    else:
        jobs = list(source)
    if ray_address is not None:
        from lama_video.batching import ray as batch_ray

        batch_ray.require_ray()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir)
    if on_start:
        on_start(jobs)

    results: dict[str, JobResult] = {}
    fps: dict[str, dict[str, Any]] = {}

    def finish(job: Job, result: JobResult, *, record: bool = True) -> None:
        results[job.name] = result
        if record:
            manifest.record(job, fps[job.name], result)
        log.debug("%s: %s %s", job.name, result.status, result.error)
        if on_job:
            on_job(result)

    todo: list[Job] = []
    for job in jobs:
        fps[job.name] = fp = fingerprint(job, content_hash=content_hash)
        base = result_ids(job)
        if manifest.is_done(job, fp):
            frames = manifest.entries[job.name].get("frames", 0)
            finish(job, JobResult(**base, status="skipped", frames=frames), record=False)
        elif job.error:
            finish(job, JobResult(**base, status="failed", error=job.error))
        elif job.output.exists() and not (overwrite or manifest.made(job)):
            finish(
                job,
                JobResult(
                    **base,
                    status="failed",
                    error=f"output {str(job.output)!r} already exists and was not written by this "
                    "batch; pass --overwrite to replace it or choose another output folder",
                ),
            )
        elif error := _output_problem(job):
            finish(job, JobResult(**base, status="failed", error=error))
        else:
            todo.append(job)

    def report(interrupted: bool) -> BatchReport:
        ordered = tuple(
            results.get(j.name) or JobResult(**result_ids(j), status="not run") for j in jobs
        )
        return BatchReport(out_dir, ordered, time.perf_counter() - t0, interrupted)

    try:
        if todo:
            manifest.claim(todo)
        if not todo:
            log.info("nothing to do: every job is finished or failed before it started")
        elif ray_address is not None:
            from lama_video.batching import ray as batch_ray

            batch_ray.run_ray(
                todo,
                finish,
                address=ray_address,
                gpus=ray_gpus,
                cpus=ray_cpus,
                retries=ray_retries,
                split_frames=split_frames,
                scratch_dir=Path(scratch_dir) if scratch_dir else out_dir / ".lama-video-scratch",
                engine_factory=engine_factory,
            )
        elif workers == 1 or len(todo) == 1:
            for job in todo:
                finish(job, run_job(job, engine_factory))
        else:
            _run_pool(todo, min(workers, len(todo)), engine_factory, finish)
    except KeyboardInterrupt as err:
        # A worker stopped at an unlucky instant (or a killed Ray actor) may leave a temporary
        # output; those of unfinished jobs are ours to remove.
        for job in todo:
            if job.name not in results:
                remove_partials(job.output)
        raise BatchInterrupted(report(interrupted=True)) from err
    return report(interrupted=False)


def _output_problem(job: Job) -> str:
    """Why ``job`` may not write its output (an input, or not this tool's to replace), or ""."""
    from lama_video.pipeline import check_paths

    sources = (
        None if isinstance(job.mask, Box) else job.mask,
        *(p for _, p in job.keyframes or ()),
        None if job.overlay in (None, "auto") else job.overlay,
        *(p for _, p in job.references or ()),
        *(job.scene_plates or ()),
    )
    try:
        check_paths(job.input, job.output, overwrite=True, sources=sources)
    except EncodeError as err:
        return str(err)
    return ""


__all__ = [
    "MANIFEST_NAME",
    "OUTSIDE_KEY",
    "BatchInterrupted",
    "BatchReport",
    "EngineFactory",
    "Job",
    "JobResult",
    "Manifest",
    "batch",
    "discover_jobs",
    "fingerprint",
    "load_jobs",
    "read_job_file",
    "run_job",
    "visible_gpus",
]
