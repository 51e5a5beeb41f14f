"""The resumable batch manifest (``OUTDIR/batch-manifest.json``) and job fingerprints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lama_video.batching.jobs import (
    Job,
    JobResult,
)
from lama_video.errors import ConfigError
from lama_video.masks import Box

log = logging.getLogger(__name__)

MANIFEST_NAME = "batch-manifest.json"
_MANIFEST_VERSION = 1


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
    overlay: Any = None
    if job.overlay is not None:
        overlay = "auto" if job.overlay == "auto" else _file_sig(Path(job.overlay), content_hash)
    parts = [mask, keyframes, settings] + ([overlay] if overlay is not None else [])
    if job.references:  # tagged, and only when given: the digests of other jobs stay as they were
        parts.append(["references", [[k, _file_sig(p, content_hash)] for k, p in job.references]])
    if job.scene_plates:
        parts.append(["scene_plates", [_file_sig(p, content_hash) for p in job.scene_plates]])
    if job.frames is not None:
        parts.append(["range", str(job.frames)])
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
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
