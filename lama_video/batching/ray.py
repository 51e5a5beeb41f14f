"""Batch jobs on a Ray cluster; long videos split into windows that run as separate tasks.

A short video is one Ray task running :func:`lama_video.batching.run_job`. A video longer than
``split_frames`` is cut into *parts*: consecutive groups of the temporal engine's own windows
(:func:`lama_video.temporal.plan_windows`, the engine's own window plan). Each
part task decodes its frame range, runs the engine over it and writes its frames as NumPy files to
a scratch folder; the driver joins the parts in order while the others still run, cross-fades the
frames two parts share exactly as the engine cross-fades two windows, and encodes once with the
source's timestamps, copying the audio once. The result equals the single-process one bit for bit
(checked by the tests), because:

- a part starts at a window start and ends at a window end of the one-process plan, so every window
  sees the same frames; the engine run over a part's frames makes exactly those windows;
- a part starts at a frame that is a multiple of ``temporal.keyframe_interval``, so the engine picks
  the same keyframes (it numbers frames from the start of its stream);
- the ``overlap_frames`` a part shares with the next are written raw from both sides (the last
  window of one part, the first of the next) and cross-faded by the driver with the engine's
  formula; this needs ``overlap_frames <= window_frames / 2`` (else a frame would belong to three
  windows), and longer overlaps are not split;
- every other step of a window depends only on that window's frames and masks.

Jobs whose masks are keyframes (tracked through the whole clip) are not split. Each part task
starts near its range: the video (and a mask video) seeks to the last keyframe at or before the
part's first frame and decodes from there, and a mask folder starts at that frame's file
(``VideoReader.frames(start=...)``, ``MaskTrack.masks(start=...)``). So a part decodes at most one
GOP before its range, plus one demux pass over the file's packets (no pictures decoded) to find
the keyframes; where the packets' timestamps cannot be trusted, the reader decodes from frame 0
and drops the frames before the range, as before (the frames are the same either way).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lama_video.batching.jobs import EngineFactory, Job, JobResult, result_ids
from lama_video.batching.worker import job_engine, remove_partials, run_job
from lama_video.config import TemporalConfig
from lama_video.errors import ConfigError, LamaVideoError, VideoOpenError
from lama_video.temporal import effective_overlap, plan_windows, window_for, window_tail

log = logging.getLogger(__name__)

_INSTALL_HINT = "Ray is not installed; install it with: pip install 'lama-video[ray]'"


def require_ray() -> Any:
    """Import Ray.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError as err:
        raise ConfigError(_INSTALL_HINT) from err
    return ray


# ------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Part:
    """A frame range of a long video processed by one task.

    Attributes:
        index: position among the video's parts.
        start: first frame (0-based, decode order).
        stop: one past the last frame.
        head: frames at the start shared with the previous part (cross-faded by the driver).
        tail: frames at the end shared with the next part.
    """

    index: int
    start: int
    stop: int
    head: int = 0
    tail: int = 0


def plan_parts(
    n_frames: int, temporal: TemporalConfig, frames_per_part: int, tail: int = 0
) -> list[Part]:
    """Cut a video into parts of about ``frames_per_part`` frames whose join is exact.

    With the temporal engine, parts are whole windows of :func:`plan_windows`, start on a multiple
    of ``keyframe_interval``, and share ``overlap_frames`` with their neighbours; an overlap of more
    than half a window gives one part. ``tail``: the engine's :func:`window_tail` for the frames'
    size. Without it (each frame alone) parts do not overlap.
    """
    if n_frames <= frames_per_part:
        return [Part(0, 0, n_frames)]
    if not temporal.enabled:
        starts = range(0, n_frames, frames_per_part)
        return [Part(i, s, min(s + frames_per_part, n_frames)) for i, s in enumerate(starts)]
    window = temporal.window_frames
    overlap = effective_overlap(window, temporal.overlap_frames)
    if 2 * overlap > window:
        return [Part(0, 0, n_frames)]
    step = window - overlap
    windows = plan_windows(n_frames, window, overlap, tail)
    # Windows per part: a multiple of m, so that every part starts on a keyframe-interval multiple.
    m = temporal.keyframe_interval // math.gcd(step, temporal.keyframe_interval)
    per = max(m, round(frames_per_part / step) // m * m)
    groups = [windows[k : k + per] for k in range(0, len(windows), per)]
    last = len(groups) - 1
    return [
        Part(p, g[0][0], g[-1][1], overlap if p > 0 else 0, overlap if p < last else 0)
        for p, g in enumerate(groups)
    ]


# ------------------------------------------------------------------------------------ part tasks


@dataclass(frozen=True)
class PartResult:
    """What a part task wrote: per frame ``(index, pts, duration)``, or the error."""

    index: int
    frames: tuple[tuple[int, int | None, int | None], ...] = ()
    time_base: Fraction = Fraction(1, 25)
    engine: str = ""
    seconds: float = 0.0
    error: str = ""


def crossfade(
    carry: NDArray[np.uint8], out: NDArray[np.uint8], hole: NDArray[np.bool_], j: int, n: int
) -> NDArray[np.uint8]:
    """The temporal engine's join of two windows on their ``n`` shared frames, frame ``j``.

    Args:
        carry: (H, W, 3) uint8 RGB, the earlier window's result for this frame.
        out: (H, W, 3) uint8 RGB, the later window's result.
        hole: (H, W) bool, True = hole (only hole pixels are mixed).
        j: position of the frame among the shared ones (0 = first).
        n: number of shared frames.

    Returns:
        (H, W, 3) uint8 RGB; the later window's weight ramps up linearly, ``(j + 1) / (n + 1)``.
    """
    if not hole.any():
        return out
    # NOTE: the same arithmetic as TemporalEngine.process (float32 mix, +0.5, truncation), so a
    # split video equals the one-process result bit for bit.
    a = (j + 1) / (n + 1)
    mix = (1.0 - a) * carry[hole].astype(np.float32) + a * out[hole]
    res = out.copy()
    res[hole] = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
    return res


def part_dir(scratch: Path, index: int) -> Path:
    """Where part ``index`` of a job puts its frames."""
    return scratch / f"part{index:05d}"


def run_part(
    job: Job, part: Part, scratch: Path, engine_factory: EngineFactory | None = None
) -> PartResult:
    """Process ``part`` of ``job`` and write its frames under ``part_dir(scratch, part.index)``.

    Files: ``f<frame>.npy`` the finished (composited) frame; ``h<frame>.npz`` (``rgb``, ``filled``,
    ``hole``, ``core``) for the head frames and ``t<frame>.npy`` (the fill) for the tail frames,
    which the driver cross-fades. The folder appears complete or not at all (a retried task
    replaces it).

    Raises:
        LamaVideoError: unreadable input or masks, or fewer frames than planned.
    """
    from lama_video.composite import composite
    from lama_video.pipeline import HoleStream, build_video_engine, open_mask_track
    from lama_video.video import open_video

    t0 = time.perf_counter()
    cfg = job.config
    final = part_dir(scratch, part.index)
    tmp = scratch / f".{final.name}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    meta: list[tuple[int, int | None, int | None]] = []
    try:
        with open_video(job.input, decode=cfg.decode) as reader:
            info = reader.info
            track = open_mask_track(
                job.mask, width=info.width, height=info.height, n_frames=None, cfg=cfg
            )
            masks = track.masks(start=part.start)
            engine = build_video_engine(cfg, job_engine(cfg, engine_factory))
            stream = HoleStream(
                reader.frames(start=part.start), masks, cfg.masks.dilate_px, stop=part.stop
            )
            for frame, hole, filled in engine.process(stream):
                i = frame.index
                core = stream.pop_core(i)
                if i < part.start + part.head:
                    np.savez(
                        tmp / f"h{i:08d}.npz", rgb=frame.rgb, filled=filled, hole=hole, core=core
                    )
                elif i >= part.stop - part.tail:
                    np.save(tmp / f"t{i:08d}.npy", filled)
                else:
                    rgb = composite(frame.rgb, filled, hole, core, cfg.masks.feather_px)
                    np.save(tmp / f"f{i:08d}.npy", rgb)
                meta.append((i, frame.pts, frame.duration))
            time_base = info.time_base
        if len(meta) != part.stop - part.start:
            raise VideoOpenError(
                f"{job.input}: frames {part.start}-{part.stop - 1} were planned but "
                f"{len(meta)} decoded; expected the counted frames (a corrupt file?): run it "
                "without splitting (a larger split_frames)"
            )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PartResult(
        index=part.index,
        frames=tuple(meta),
        time_base=Fraction(time_base),
        engine=engine.name,
        seconds=time.perf_counter() - t0,
    )


def _part_task(
    job: Job, part: Part, scratch: Path, engine_factory: EngineFactory | None
) -> PartResult:
    """Ray entry point: a user error becomes a result (it is not retried)."""
    try:
        return run_part(job, part, scratch, engine_factory)
    except LamaVideoError as err:
        return PartResult(index=part.index, error=str(err))


class Joiner:
    """Join a split job's parts, in order, into its output (streamed as parts arrive).

    Args:
        job: the job.
        parts: its plan (:func:`plan_parts`).
        scratch: the job's scratch folder (removed when the join ends).
    """

    def __init__(self, job: Job, parts: list[Part], scratch: Path) -> None:
        from lama_video.video import open_video

        self.job, self.parts, self.scratch = job, parts, scratch
        with open_video(job.input, decode=job.config.decode) as reader:
            self.info = reader.info
        self.frames = 0
        self.engine = ""
        self.busy_s = 0.0  # time spent joining and encoding (serial, in the driver)
        self._next = 0
        self._ready: dict[int, PartResult] = {}
        self._writer: Any = None

    def add(self, res: PartResult) -> bool:
        """Take a finished part; write every part now in order. True when all are written."""
        t0 = time.perf_counter()
        self._ready[res.index] = res
        self.engine = res.engine
        while self._next in self._ready:
            self._consume(self._ready.pop(self._next))
            self._next += 1
        done = self._next == len(self.parts)
        if done:
            self._writer.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.busy_s += time.perf_counter() - t0
        return done

    def _consume(self, res: PartResult) -> None:
        from lama_video.composite import composite
        from lama_video.video import Frame, VideoWriter

        cfg = self.job.config
        if self._writer is None:
            self._writer = VideoWriter(
                self.job.output,
                self.info,
                encode=cfg.encode,
                source=self.job.input,
                overwrite=True,
            )
        part = self.parts[res.index]
        here, prev = part_dir(self.scratch, part.index), part_dir(self.scratch, part.index - 1)
        for i, pts, duration in res.frames:
            if i >= part.stop - part.tail:
                continue  # written with the next part, cross-faded
            if i < part.start + part.head:
                with np.load(here / f"h{i:08d}.npz") as z:
                    rgb, filled, hole, core = z["rgb"], z["filled"], z["hole"], z["core"]
                carry = np.load(prev / f"t{i:08d}.npy")
                filled = crossfade(carry, filled, hole, i - part.start, part.head)
                rgb = composite(rgb, filled, hole, core, cfg.masks.feather_px)
            else:
                rgb = np.load(here / f"f{i:08d}.npy")
            self._writer.write(
                Frame(index=i, pts=pts, time_base=res.time_base, rgb=rgb, duration=duration)
            )
            self.frames += 1
        if part.index > 0:
            shutil.rmtree(prev, ignore_errors=True)  # its tail frames are written now

    def abort(self) -> None:
        """Drop the partial output and the scratch files."""
        if self._writer is not None:
            self._writer.abort()
        shutil.rmtree(self.scratch, ignore_errors=True)


# ------------------------------------------------------------------------------------- the driver


@dataclass
class _Split:
    job: Job
    parts: list[Part]
    joiner: Joiner
    t0: float  # when the job was planned (failures count from here)
    started: float | None = None  # when its first part was handed out
    task_s: float = 0.0


def split_job(job: Job, split_frames: int) -> list[Part] | None:
    """The parts of ``job`` if it is worth splitting and can be split exactly, else None.

    Raises:
        LamaVideoError: the input or its masks are unreadable, or their counts differ.
    """
    from lama_video.pipeline import open_mask_track
    from lama_video.video import count_frames, open_video

    if job.keyframes or job.error or job.overlay is not None or job.references or job.frames:
        # Tracking and the overlay's fit need the whole clip in one process, and a part
        # numbers its frames from its own start (keyframes, clean plates and a range by the
        # clip's).
        return None
    cfg = job.config
    with open_video(job.input, decode=cfg.decode) as reader:
        info = reader.info
    n = info.n_frames if info.is_image_sequence else count_frames(job.input)
    if n is None or n <= split_frames:
        return None
    t = cfg.temporal
    tail = 0
    if t.enabled:  # the windows the engine will use for frames of this size
        window, overlap = window_for(t, info.height, info.width)
        tail = window_tail(t, info.height, info.width)
        t = dataclasses.replace(t, window_frames=window, overlap_frames=overlap)
    if t.enabled and 2 * min(t.overlap_frames, t.window_frames - 1) > t.window_frames:
        log.info("%s: not split (temporal.overlap_frames > window_frames / 2)", job.name)
        return None
    parts = plan_parts(n, t, split_frames, tail)
    if len(parts) == 1:
        return None
    # Check the mask count now, as remove_object does before any work.
    open_mask_track(job.mask, width=info.width, height=info.height, n_frames=n, cfg=cfg)
    return parts


_IGNORED = "ignored"  # the part of a job that already failed


class _Worker:
    """A Ray actor that runs jobs and parts; it keeps its image engine (LaMa loads once) and its
    GPU for life."""

    def run_job(self, job: Job, engine_factory: EngineFactory | None) -> JobResult:
        return run_job(job, engine_factory)

    def run_part(
        self, job: Job, part: Part, scratch: Path, engine_factory: EngineFactory | None
    ) -> PartResult:
        return _part_task(job, part, scratch, engine_factory)


def _pool_size(ray: Any, gpus: float, cpus: float) -> int:
    """Workers that fit the cluster at once (its GPUs, or its CPUs without GPUs)."""
    res = ray.cluster_resources()
    fits = [res.get("CPU", 1.0) / cpus] if cpus > 0 else []
    if gpus > 0:
        fits.append(res.get("GPU", 0.0) / gpus)
    return max(1, int(min(fits) + 1e-9)) if fits else 1


def run_ray(
    todo: list[Job],
    finish: Callable[[Job, JobResult], None],
    *,
    address: str,
    gpus: float | None,
    cpus: float,
    retries: int,
    split_frames: int,
    scratch_dir: Path,
    engine_factory: EngineFactory | None,
) -> None:
    """Run ``todo`` on a pool of Ray workers; ``finish`` is called here as each job ends.

    The pool has one actor per ``gpus`` GPUs (or ``cpus`` CPUs) of the cluster. Actors rather than
    plain tasks, because a Ray task process reused for another task may be handed a different GPU
    after CUDA has started (so Ray gives GPU tasks a fresh process each time, reloading the model);
    an actor keeps its GPU and its loaded engine. Work is handed out in order (whole jobs, and the
    parts of a split job in frame order, so its join can stream). When an actor's process or node
    dies, Ray restarts it and reruns the call in flight, up to ``retries`` times; after that the job
    fails (and a fresh actor takes the place).

    Raises:
        ConfigError: Ray is missing or the cluster cannot be reached.
        KeyboardInterrupt: Ctrl-C; the workers are stopped and partial outputs removed.
    """
    from collections import deque

    ray = require_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "local" else address,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"cannot connect to Ray at {address!r} ({err}); expected 'auto' (a running "
                "cluster), 'local' or a cluster address like ray://host:10001"
            ) from err
        started = True
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    # An actor always restarts when its process or node dies; the call it was running is rerun
    # up to `retries` times, then fails (per call, like a task's max_retries).
    worker_cls = ray.remote(_Worker).options(
        num_gpus=gpus, num_cpus=cpus, max_restarts=-1, max_task_retries=retries
    )

    queue: deque[tuple[Job, Part | None, Path | None]] = deque()
    splits: dict[str, _Split] = {}
    pending: dict[Any, tuple[Job, Any, Any]] = {}  # ref -> (job, part | None | _IGNORED, actor)
    idle: list[Any] = []
    actors: list[Any] = []

    def fail(job: Job, error: str, t0: float) -> None:
        finish(
            job,
            JobResult(
                **result_ids(job),
                status="failed",
                seconds=time.perf_counter() - t0,
                error=error,
            ),
        )

    def drop(job: Job) -> None:
        """Forget the rest of a split job after one part failed (running parts finish alone)."""
        for item in [q for q in queue if q[0].name == job.name]:
            queue.remove(item)
        for ref, (other, part, actor) in list(pending.items()):
            if other.name == job.name and part is not None:
                pending[ref] = (other, _IGNORED, actor)  # its result is dropped when it comes
        splits.pop(job.name).joiner.abort()

    def dispatch() -> None:
        while idle and queue:
            actor = idle.pop()
            job, part, scratch = queue.popleft()
            if part is None:
                ref = actor.run_job.remote(job, engine_factory)
            else:
                ref = actor.run_part.remote(job, part, scratch, engine_factory)
            pending[ref] = (job, part, actor)
            split = splits.get(job.name)
            if split is not None and split.started is None:
                split.started = time.perf_counter()

    try:
        for job in todo:
            t0 = time.perf_counter()
            try:
                parts = split_job(job, split_frames)
            except LamaVideoError as err:
                fail(job, str(err), t0)
                continue
            if parts is None:
                queue.append((job, None, None))
                continue
            job.output.parent.mkdir(parents=True, exist_ok=True)
            remove_partials(job.output)
            scratch = scratch_dir / f"{job.name.replace('/', '__')}.{uuid.uuid4().hex[:8]}"
            try:
                joiner = Joiner(job, parts, scratch)
            except LamaVideoError as err:
                fail(job, str(err), t0)
                continue
            splits[job.name] = _Split(job, parts, joiner, t0)
            log.info("%s: %d frames in %d tasks", job.name, parts[-1].stop, len(parts))
            queue.extend((job, part, scratch) for part in parts)

        n_workers = min(_pool_size(ray, gpus, cpus), len(queue))
        actors = [worker_cls.remote() for _ in range(n_workers)]
        idle = list(actors)
        dispatch()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            job, part, actor = pending.pop(ref)
            error = ""
            try:
                res = ray.get(ref)
            except ray.exceptions.RayError as err:
                # The call died more often than it may be retried: the job fails; a fresh
                # actor takes the place of this one.
                with contextlib.suppress(Exception):
                    ray.kill(actor)
                actors.remove(actor)
                actor = worker_cls.remote()
                actors.append(actor)
                text = str(err).strip().splitlines()[0] if str(err).strip() else ""
                error = f"Ray worker died ({retries} retries used): {type(err).__name__}" + (
                    f": {text}" if text else ""
                )
                res = None
            idle.append(actor)
            dispatch()
            if part is _IGNORED:
                continue
            if part is None:  # a whole job
                if res is None:
                    fail(job, error, time.perf_counter())
                else:
                    finish(job, res)
                continue
            split = splits[job.name]
            if res is None or res.error:
                drop(job)
                fail(job, error if res is None else res.error, split.t0)
                continue
            split.task_s += res.seconds
            try:
                complete = split.joiner.add(res)
            except LamaVideoError as err:
                drop(job)
                fail(job, str(err), split.t0)
                continue
            if complete:
                splits.pop(job.name)
                finish(
                    job,
                    JobResult(
                        **result_ids(job),
                        status="done",
                        frames=split.joiner.frames,
                        seconds=time.perf_counter() - (split.started or split.t0),
                        engine=split.joiner.engine,
                        tasks=len(split.parts),
                    ),
                )
    except BaseException:
        for split in splits.values():
            split.joiner.abort()
        raise
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        with contextlib.suppress(OSError):
            scratch_dir.rmdir()  # only if empty
        if started:
            ray.shutdown()
