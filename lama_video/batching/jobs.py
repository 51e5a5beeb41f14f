"""Batch jobs: what to clean (discovered in a folder or read from a job file) and the results."""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from lama_video.config import RunConfig
from lama_video.engines import ImageEngine
from lama_video.errors import ConfigError, MaskError
from lama_video.masks import Box, FrameRange, keyframes_from_folder
from lama_video.video import (
    IMAGE_EXTENSIONS,
    OUTPUT_FOR_READ_ONLY,
    READ_ONLY_EXTENSIONS,
    VIDEO_EXTENSIONS,
)

log = logging.getLogger(__name__)

# Top-level job-file key that allows outputs outside OUTDIR (absolute paths, ``../``).
OUTSIDE_KEY = "allow_outputs_outside_outdir"

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
        overlay: a static overlay to remove too (``"auto"`` or a mask image), as
            ``remove --overlay``; alone, or with a mask source.
        references: ``((frame, clean plate image), ...)``, as ``remove --reference``.
        scene_plates: pictures of the empty scene, as ``remove --clean-plate``.
        frames: only these frames are changed, as ``remove --range``.
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
    overlay: str | Path | None = None
    references: tuple[tuple[int, Path], ...] | None = None
    scene_plates: tuple[Path, ...] | None = None
    frames: FrameRange | None = None


class _ResultIds(TypedDict):
    """The fields of a :class:`JobResult` that name its job (``JobResult(**ids, status=...)``)."""

    name: str
    input: str
    output: str


def result_ids(job: Job) -> _ResultIds:
    """The fields of ``job``'s :class:`JobResult` that name it: ``JobResult(**ids, status=...)``."""
    return {"name": job.name, "input": str(job.input), "output": str(job.output)}


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


_RECORDINGS = VIDEO_EXTENSIONS | READ_ONLY_EXTENSIONS


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in _RECORDINGS and not p.name.startswith(".")


def _output_name(rel: Path, claimed: set[Path]) -> Path:
    """Where the cleaned ``rel`` goes, relative to the output folder: the same name, or for a
    format that is read but not written (MXF, MPEG-PS, WMV...) the same stem in .mov or .mp4;
    ``clip.mpg.mp4`` where ``clip.mp4`` is another recording's output (``claimed``, which
    takes this one's too)."""
    suffix = rel.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return rel
    new = OUTPUT_FOR_READ_ONLY.get(suffix, ".mp4")
    out = rel.with_suffix(new)
    if out in claimed:
        out = rel.with_name(rel.name + new)
    claimed.add(out)
    return out


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
        if p.is_file() and p.suffix.lower() in _RECORDINGS | IMAGE_EXTENSIONS
    )
    if not found:
        return (
            None,
            None,
            (
                f"no mask for {video.name}: expected {stem}_masks/, {stem}_mask.png, "
                f"{stem}_mask.mp4 or {stem}_keyframes/ beside it"
            ),
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
    # Outputs that keep their input's name first, so that a renamed one never takes theirs.
    claimed = {
        p.relative_to(src)
        for p in candidates
        if p.suffix.lower() in VIDEO_EXTENSIONS and not p.stem.endswith("_mask")
    }
    for p in candidates:
        if not _is_video(p) or p.stem.endswith("_mask"):
            continue
        if out_resolved in p.resolve().parents:
            continue
        if any(part.startswith(".") for part in p.relative_to(src).parts):
            continue
        rel = p.relative_to(src)
        mask, keyframes, error = _find_mask(p)
        references = None
        plates = p.parent / f"{p.stem}_plates"
        if plates.is_dir():  # clean plates, named by frame number (remove --reference DIR)
            try:
                references = tuple(keyframes_from_folder(plates, "clean plate").items())
            except MaskError as err:
                error = error or str(err)
        jobs.append(
            Job(
                name=rel.as_posix(),
                input=p,
                output=out_dir / _output_name(rel, claimed),
                mask=mask,
                keyframes=keyframes,
                config=cfg,
                error=error,
                references=references,
            )
        )
    if not jobs:
        raise ConfigError(
            f"batch source {str(src)!r} holds no video files "
            f"({', '.join(sorted(_RECORDINGS))})"
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


def _parse_keyframes(
    value: Any, base_dir: Path, where: str, key: str = "keyframes"
) -> tuple[tuple[int, Path], ...]:
    """``{frame: path}``, ``[FRAME:PATH, ...]`` or ``"FRAME:PATH;..."`` -> sorted pairs."""
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
                f"{where}: {key}: expected FRAME:PATH pairs with 0-based frame numbers, "
                f"got {value!r}"
            )
        out[int(frame)] = base_dir / str(path).strip()
    if not out:
        raise ConfigError(f"{where}: {key} is empty; expected FRAME:PATH pairs")
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
    known = {
        "input",
        "mask",
        "box",
        "keyframes",
        "overlay",
        "references",
        "clean_plates",
        "range",
        "output",
        "config",
        "options",
    }
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
    overlay: str | Path | None = None
    if entry.get("overlay"):
        text = str(entry["overlay"])
        overlay = "auto" if text == "auto" else base_dir / text
    if len(given) > 1 or (not given and overlay is None):
        raise ConfigError(
            f"{here} ({inp.name}): expected exactly one of mask, box or keyframes (or overlay "
            f"alone), got {', '.join(given) or 'none'}"
        )
    mask: Path | Box | None = None
    keyframes = None
    if not given:
        pass
    elif given[0] == "mask":
        mask = base_dir / str(entry["mask"])
    elif given[0] == "box":
        try:
            mask = Box.parse(str(entry["box"]))
        except MaskError as err:
            raise ConfigError(f"{here}: {err}") from err
    else:
        keyframes = _parse_keyframes(entry["keyframes"], base_dir, here)
    references = None
    if entry.get("references"):
        references = _parse_keyframes(entry["references"], base_dir, here, "references")
    scene_plates = None
    if entry.get("clean_plates"):
        value = entry["clean_plates"]
        items = value if isinstance(value, list) else str(value).split(";")
        scene_plates = tuple(base_dir / str(v).strip() for v in items if str(v).strip())
    frames = None
    if entry.get("range") not in (None, ""):
        try:
            frames = FrameRange.parse(str(entry["range"]))
        except MaskError as err:
            raise ConfigError(f"{here}: {err}") from err
    out = Path(str(entry["output"])) if entry.get("output") else _output_name(Path(inp.name), set())
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
    return Job(
        name=name,
        input=inp,
        output=output,
        mask=mask,
        keyframes=keyframes,
        config=cfg,
        overlay=overlay,
        references=references,
        scene_plates=scene_plates or None,
        frames=frames,
    )


def _csv_delimiter(header: str) -> str:
    """The CSV file's delimiter, told by its header row: ``,``, or ``;`` (Excel's where the
    comma is the decimal mark) or a tab, where the header names its columns with that instead."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


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
        text = p.read_text(encoding="utf-8-sig")  # Excel starts its UTF-8 files with a BOM
    except OSError as err:
        raise ConfigError(f"cannot read job file {str(p)!r} ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"job file {str(p)!r} is not UTF-8 text (byte {err.start}); save it as UTF-8"
        ) from err
    where = p.name
    outside_ok = False
    if p.suffix.lower() == ".csv":
        lines = text.splitlines()
        rows = list(csv.DictReader(lines, delimiter=_csv_delimiter(lines[0] if lines else "")))
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
