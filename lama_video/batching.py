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

A CSV file has a header row with the columns ``input`` (required), ``mask``, ``box``,
``keyframes`` (``0:k0.png;90:k90.png``), ``output``, ``config`` and ``options``
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

import concurrent.futures as cf
import contextlib
import csv
import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lama_video.config import RunConfig
from lama_video.engines import ImageEngine
from lama_video.errors import ConfigError, EncodeError, LamaVideoError, MaskError
from lama_video.masks import Box, keyframes_from_folder
from lama_video.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

MANIFEST_NAME = "batch-manifest.json"
# Top-level job-file key that allows outputs outside OUTDIR (absolute paths, ``../``).
OUTSIDE_KEY = "allow_outputs_outside_outdir"
_MANIFEST_VERSION = 1

EngineFactory = Callable[[RunConfig], ImageEngine]
"""Builds the image engine of a job in the worker (must be picklable for processes and Ray)."""


# ---------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One recording to clean.

    Attributes:
        name: the output's path relative to the output folder (its key in the manifest).
        input: video file or folder of frames.
        output: where the result goes (a video file, or a folder for a PNG sequence).
        mask: per-frame masks (folder, mask video, one image) or a :class:`Box`.
        keyframes: ``((frame, mask image), ...)`` tracked through the clip instead of ``mask``.
        config: this job's settings.
        error: set when the job could not be described (e.g. no mask found); it then fails
            without running.
    """

    name: str
    input: Path
    output: Path
    mask: Path | Box | None = None
    keyframes: tuple[tuple[int, Path], ...] | None = None
    config: RunConfig = field(default_factory=RunConfig)
    error: str | None = None


@dataclass(frozen=True)
class JobResult:
    """What happened to one job (``status``: done, skipped, failed or not run)."""

    name: str
    input: str
    output: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    engine: str = ""
    error: str = ""
    tasks: int = 1  # Ray tasks the job was split into (windows of a long video)


@dataclass(frozen=True)
class BatchReport:
    """The outcome of :func:`batch`, one :class:`JobResult` per job in job order."""

    output_dir: Path
    results: tuple[JobResult, ...]
    seconds: float
    interrupted: bool = False

    def count(self, status: str) -> int:
        """Number of jobs with this status."""
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """True when no job failed and the run was not interrupted."""
        return not self.interrupted and self.count("failed") == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--report report.json``."""
        return {
            "output_dir": str(self.output_dir),
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "counts": {s: self.count(s) for s in ("done", "skipped", "failed", "not run")},
            "jobs": [dataclasses.asdict(r) for r in self.results],
        }

    def table(self) -> str:
        """A fixed-width summary table, one row per job, and a totals line."""
        head = ("job", "status", "frames", "seconds", "frames/s", "engine", "error")
        rows = [head]
        for r in self.results:
            fps = f"{r.frames / r.seconds:.1f}" if r.status == "done" and r.seconds > 0 else ""
            secs = f"{r.seconds:.1f}" if r.status == "done" else ""
            frames = str(r.frames) if r.status in ("done", "skipped") and r.frames else ""
            task = f" ({r.tasks} tasks)" if r.tasks > 1 else ""
            rows.append((r.name, r.status + task, frames, secs, fps, r.engine, r.error))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
            for row in rows
        ]
        lines.insert(1, "-" * min(120, max(len(s) for s in lines)))
        statuses = ("done", "skipped", "failed", "not run")
        totals = ", ".join(f"{self.count(s)} {s}" for s in statuses if self.count(s))
        state = " (interrupted)" if self.interrupted else ""
        lines.append(f"{len(self.results)} jobs: {totals or 'none'} in {self.seconds:.1f} s{state}")
        return "\n".join(line.rstrip() for line in lines)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the batch; ``report`` holds what was finished (the manifest has it too)."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__("batch interrupted")
        self.report = report


# ----------------------------------------------------------------------------------- discovery


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")


def _find_mask(video: Path) -> tuple[Path | None, tuple[tuple[int, Path], ...] | None, str | None]:
    """The mask beside ``video`` by the naming convention: (mask, keyframes, error)."""
    stem, folder = video.stem, video.parent
    found: list[Path] = []
    if (folder / f"{stem}_masks").is_dir():
        found.append(folder / f"{stem}_masks")
    if (folder / f"{stem}_keyframes").is_dir():
        found.append(folder / f"{stem}_keyframes")
    found += sorted(
        p
        for p in folder.glob(f"{stem}_mask.*")
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
    )
    if not found:
        return None, None, (
            f"no mask for {video.name}: expected {stem}_masks/, {stem}_mask.png, {stem}_mask.mp4 "
            f"or {stem}_keyframes/ beside it"
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        return None, None, f"several masks for {video.name} ({names}): expected exactly one"
    if found[0].name.endswith("_keyframes"):
        try:
            return None, tuple(keyframes_from_folder(found[0]).items()), None
        except MaskError as err:
            return None, None, str(err)
    return found[0], None, None


def discover_jobs(
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
    recursive: bool = False,
) -> list[Job]:
    """Jobs of a folder of recordings (see the module docstring for the naming convention).

    Raises:
        ConfigError: ``source`` is not a folder or holds no video.
    """
    src, out_dir = Path(source), Path(output_dir)
    cfg = config or RunConfig()
    if not src.is_dir():
        raise ConfigError(
            f"batch source {str(src)!r} is not a folder; expected a folder or a job file"
        )
    out_resolved = out_dir.resolve()
    candidates = sorted(src.rglob("*") if recursive else src.iterdir())
    jobs: list[Job] = []
    for p in candidates:
        if not _is_video(p) or p.stem.endswith("_mask"):
            continue
        if out_resolved in p.resolve().parents:
            continue
        if any(part.startswith(".") for part in p.relative_to(src).parts):
            continue
        rel = p.relative_to(src)
        mask, keyframes, error = _find_mask(p)
        jobs.append(
            Job(
                name=rel.as_posix(),
                input=p,
                output=out_dir / rel,
                mask=mask,
                keyframes=keyframes,
                config=cfg,
                error=error,
            )
        )
    if not jobs:
        raise ConfigError(
            f"batch source {str(src)!r} holds no video files "
            f"({', '.join(sorted(VIDEO_EXTENSIONS))})"
            + ("" if recursive else "; pass --recursive to search sub-folders")
        )
    return jobs


# ------------------------------------------------------------------------------------ job files


def _apply(cfg: RunConfig, preset: Any, options: Any, base_dir: Path, where: str) -> RunConfig:
    import yaml  # the job file format; config.py owns the RunConfig schema

    if preset:
        path = base_dir / str(preset)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise ConfigError(f"{where}: cannot read config preset {str(path)!r} ({err})") from err
        cfg = cfg.replace(data or {})
    if options:
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: options must be a mapping {{section: {{key: value}}}}")
        cfg = cfg.replace(options)
    return cfg


def _parse_options(text: str, where: str) -> dict[str, dict[str, Any]]:
    """``"encode.crf=20;inpaint.engine=telea"`` -> ``{"encode": {"crf": 20}, ...}``."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(
                f"{where}: option {item!r}: expected section.key=value, e.g. encode.crf=20"
            )
        out.setdefault(section, {})[name] = yaml.safe_load(value.strip())
    return out


def _parse_keyframes(value: Any, base_dir: Path, where: str) -> tuple[tuple[int, Path], ...]:
    pairs: list[tuple[Any, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = value if isinstance(value, list) else str(value).split(";")
        pairs = [str(s).strip().partition(":")[::2] for s in items if str(s).strip()]
    out: dict[int, Path] = {}
    for frame, path in pairs:
        if not str(frame).strip().isdigit() or not str(path).strip():
            raise ConfigError(
                f"{where}: keyframes: expected FRAME:PATH pairs with 0-based frame numbers, "
                f"got {value!r}"
            )
        out[int(frame)] = base_dir / str(path).strip()
    if not out:
        raise ConfigError(f"{where}: keyframes is empty; expected FRAME:PATH pairs")
    return tuple(sorted(out.items()))


def _job_from_entry(
    entry: dict[str, Any],
    index: int,
    base: RunConfig,
    base_dir: Path,
    out_dir: Path,
    where: str,
    *,
    outside_ok: bool = False,
) -> Job:
    here = f"{where} job {index + 1}"
    known = {"input", "mask", "box", "keyframes", "output", "config", "options"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(
            f"{here}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}"
        )
    if not entry.get("input"):
        raise ConfigError(f"{here}: no input; every job needs an input path")
    inp = base_dir / str(entry["input"])
    options = entry.get("options")
    if isinstance(options, str):
        options = _parse_options(options, here)
    cfg = _apply(base, entry.get("config"), options, base_dir, here)
    given = [k for k in ("mask", "box", "keyframes") if entry.get(k)]
    if len(given) != 1:
        raise ConfigError(
            f"{here} ({inp.name}): expected exactly one of mask, box or keyframes, got "
            f"{', '.join(given) or 'none'}"
        )
    mask: Path | Box | None = None
    keyframes = None
    if given[0] == "mask":
        mask = base_dir / str(entry["mask"])
    elif given[0] == "box":
        try:
            mask = Box.parse(str(entry["box"]))
        except MaskError as err:
            raise ConfigError(f"{here}: {err}") from err
    else:
        keyframes = _parse_keyframes(entry["keyframes"], base_dir, here)
    out = Path(str(entry["output"])) if entry.get("output") else Path(inp.name)
    output = out if out.is_absolute() else out_dir / out
    if not outside_ok and not output.resolve().is_relative_to(out_dir.resolve()):
        raise ConfigError(
            f"{here}: output {str(out)!r} lies outside the output folder {str(out_dir)!r}; "
            f"expected a path inside it, or set '{OUTSIDE_KEY}: true' at the top of the YAML "
            "job file to allow writing elsewhere"
        )
    try:
        name = output.relative_to(out_dir).as_posix()
    except ValueError:
        name = str(output)
    return Job(name=name, input=inp, output=output, mask=mask, keyframes=keyframes, config=cfg)


def read_job_file(
    path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
) -> list[Job]:
    """Jobs of a YAML or CSV job file (see the module docstring for the format).

    Raises:
        ConfigError: unreadable file, unknown key, a job without input or mask, a bad option.
    """
    import yaml

    p, out_dir = Path(path), Path(output_dir)
    base_dir = p.parent
    cfg = config or RunConfig()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read job file {str(p)!r} ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"job file {str(p)!r} is not UTF-8 text (byte {err.start}); save it as UTF-8"
        ) from err
    where = p.name
    outside_ok = False
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and None in rows[0]:
            raise ConfigError(f"{where}: a row has more cells than the header has columns")
        entries = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in rows]
        entries = [{k: v for k, v in e.items() if v} for e in entries]
    elif p.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"job file {str(p)!r} is not valid YAML: {err}") from err
        if isinstance(data, dict):
            top = {"jobs", "config", "options", OUTSIDE_KEY}
            unknown = sorted(set(map(str, data)) - top)
            if unknown:
                raise ConfigError(
                    f"{where}: unknown top-level key {unknown[0]!r}; valid keys: "
                    f"{', '.join(sorted(top))}"
                )
            outside_ok = data.get(OUTSIDE_KEY, False)
            if not isinstance(outside_ok, bool):
                raise ConfigError(f"{where}: {OUTSIDE_KEY} must be true or false")
            cfg = _apply(cfg, data.get("config"), data.get("options"), base_dir, where)
            entries = data.get("jobs") or []
        else:
            entries = data or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"{where}: expected a list of jobs (mappings with input, mask, ...)")
    else:
        raise ConfigError(
            f"job file {str(p)!r}: expected a .yaml, .yml or .csv file, or a folder of recordings"
        )
    jobs = [
        _job_from_entry(e, i, cfg, base_dir, out_dir, where, outside_ok=outside_ok)
        for i, e in enumerate(entries)
    ]
    if not jobs:
        raise ConfigError(f"job file {str(p)!r} lists no jobs")
    return jobs


def load_jobs(
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
    recursive: bool = False,
) -> list[Job]:
    """Jobs of a folder of recordings or a job file.

    Raises:
        ConfigError: bad source, or two jobs write the same output.
    """
    src = Path(source)
    if src.is_dir():
        jobs = discover_jobs(src, output_dir, config=config, recursive=recursive)
    elif src.is_file():
        jobs = read_job_file(src, output_dir, config=config)
    else:
        raise ConfigError(
            f"batch source {str(src)!r} does not exist; expected a folder of recordings or a "
            ".yaml/.csv job file"
        )
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.name in seen:
            raise ConfigError(
                f"two jobs write {job.name!r} ({seen[job.name].input} and {job.input}); expected "
                "distinct outputs: set output in the job file"
            )
        seen[job.name] = job
    return jobs


# ------------------------------------------------------------------------------------- manifest


def _file_sig(path: Path, content_hash: bool) -> list[Any]:
    """What identifies a file's content: [name, size, mtime_ns] or [name, size, sha256]."""
    try:
        st = path.stat()
    except OSError:
        return [path.name, None]
    if not content_hash:
        return [path.name, st.st_size, st.st_mtime_ns]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return [path.name, st.st_size, h.hexdigest()]


def _tree_sig(path: Path, content_hash: bool) -> list[Any]:
    if path.is_dir():
        return [_file_sig(p, content_hash) for p in sorted(path.iterdir()) if p.is_file()]
    return _file_sig(path, content_hash)


def fingerprint(job: Job, *, content_hash: bool = False) -> dict[str, Any]:
    """What a finished job depends on: its input, masks and settings (its name is the output).

    Args:
        job: the job.
        content_hash: identify files by SHA-256 instead of size and modification time (slower;
            survives copies that change modification times).
    """
    mask: Any = None
    if isinstance(job.mask, Box):
        mask = ["box", *dataclasses.astuple(job.mask)]
    elif job.mask is not None:
        mask = _tree_sig(job.mask, content_hash)
    keyframes = (
        [[k, _file_sig(p, content_hash)] for k, p in job.keyframes] if job.keyframes else None
    )
    settings = job.config.to_dict()
    digest = hashlib.sha256(
        json.dumps([mask, keyframes, settings], sort_keys=True).encode()
    ).hexdigest()
    return {"input": _tree_sig(job.input, content_hash), "digest": digest}


class Manifest:
    """``OUTDIR/batch-manifest.json``: one entry per finished or failed job, keyed by job name.

    Args:
        output_dir: the batch's output folder (created if missing).
    """

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / MANIFEST_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("version") != _MANIFEST_VERSION:
                    raise ValueError(f"version {data.get('version')!r}")
                self.entries = dict(data["jobs"])
                bad = [k for k, v in self.entries.items() if not isinstance(v, dict)]
                if bad:
                    raise ValueError(f"entry {bad[0]!r} is not a mapping")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
                raise ConfigError(
                    f"manifest {str(self.path)!r} is unreadable ({err}); expected a "
                    "lama-video batch manifest: move it away to start the batch afresh"
                ) from err

    def is_done(self, job: Job, fp: dict[str, Any]) -> bool:
        """True when ``job`` finished with this fingerprint and its output still exists."""
        e = self.entries.get(job.name)
        return (
            e is not None
            and e.get("status") == "done"
            and e.get("fingerprint") == fp
            and job.output.exists()
        )

    def made(self, job: Job) -> bool:
        """True when this batch wrote, or started writing, ``job``'s output (it may be replaced)."""
        e = self.entries.get(job.name)
        return e is not None and bool(e.get("written") or e.get("claimed"))

    def claim(self, jobs: list[Job]) -> None:
        """Note that these jobs are about to write their outputs (checked free or replaceable).

        A job interrupted between writing its output and reporting back leaves an output that no
        entry calls done; the claim lets the rerun replace it.
        """
        for job in jobs:
            self.entries.setdefault(job.name, {"status": "pending"})["claimed"] = True
        self.save()

    def record(self, job: Job, fp: dict[str, Any], result: JobResult) -> None:
        """Store a finished or failed job and rewrite the file atomically."""
        before = self.entries.get(job.name, {})
        self.entries[job.name] = {
            "status": result.status,
            "written": result.status == "done" or bool(before.get("written")),
            "claimed": bool(before.get("claimed")),
            "input": str(job.input.resolve()),
            "output": str(job.output.resolve()),
            "fingerprint": fp,
            "settings": job.config.to_dict(),
            "frames": result.frames,
            "seconds": round(result.seconds, 3),
            "engine": result.engine,
            "error": result.error,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.save()

    def save(self) -> None:
        """Write to a temporary file beside the manifest, then ``os.replace`` it."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = {"version": _MANIFEST_VERSION, "jobs": self.entries}
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


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
    base = {"name": job.name, "input": str(job.input), "output": str(job.output)}
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
        )
    except LamaVideoError as err:
        return JobResult(
            **base, status="failed", seconds=time.perf_counter() - t0, error=str(err)
        )
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
                    name=job.name,
                    input=str(job.input),
                    output=str(job.output),
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
        from lama_video import batch_ray

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
        base = {"name": job.name, "input": str(job.input), "output": str(job.output)}
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
            results.get(j.name)
            or JobResult(name=j.name, input=str(j.input), output=str(j.output), status="not run")
            for j in jobs
        )
        return BatchReport(out_dir, ordered, time.perf_counter() - t0, interrupted)

    try:
        if todo:
            manifest.claim(todo)
        if not todo:
            log.info("nothing to do: every job is finished or failed before it started")
        elif ray_address is not None:
            from lama_video import batch_ray

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
    )
    try:
        check_paths(job.input, job.output, overwrite=True, sources=sources)
    except EncodeError as err:
        return str(err)
    return ""
