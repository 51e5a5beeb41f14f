"""Download released weights into the cache: checksummed, resumable, atomic; standard library only.

The file is written to ``<name>.part`` beside its final name and renamed only once its size and
checksums match, so an interrupted or corrupt download never sits under the final name. A later
call resumes an interrupted ``.part`` with an HTTP ``Range`` request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lama_video._version import __version__
from lama_video.errors import WeightsError
from lama_video.model.registry import WeightsSpec, cache_dir, get_spec

log = logging.getLogger(__name__)

# Environment variable replacing the download location: ``<base>/<file name>`` (mirrors, tests).
BASE_URL_ENV = "LAMA_VIDEO_WEIGHTS_BASE_URL"

_CHUNK_BYTES = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# progress(n): n more bytes were written. on_start(total, already): total bytes (None if the
# server does not say) and bytes already present from an earlier, interrupted download.
ProgressFn = Callable[[int], None]
StartFn = Callable[[int | None, int], None]


@dataclass(frozen=True)
class Checksums:
    """Size and digests of a file (hex strings)."""

    size_bytes: int
    sha256: str
    md5: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of checking a weights file against its registry entry.

    Attributes:
        path: the file checked.
        actual: its size and digests (None for a folder).
        ok: True when every known expected value matches, False on a mismatch, None when there
            is nothing to compare with (no known checksum, or a folder).
        problems: one line per mismatch.
    """

    path: Path
    actual: Checksums | None
    ok: bool | None
    problems: list[str] = field(default_factory=list)


def weights_url(spec: WeightsSpec) -> str:
    """Download URL: ``$LAMA_VIDEO_WEIGHTS_BASE_URL/<file_name>`` if set, else ``spec.url``."""
    base = os.environ.get(BASE_URL_ENV, "").strip()
    if base:
        return f"{base.rstrip('/')}/{spec.file_name}"
    if spec.url is None:
        raise WeightsError(f"weights {spec.name!r} have no download location")
    return spec.url


def file_checksums(path: Path) -> Checksums:
    """Size, SHA-256 and MD5 of ``path``, read in 1 MiB chunks."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Checksums(size_bytes=size, sha256=sha.hexdigest(), md5=md5.hexdigest())


def compare(actual: Checksums, spec: WeightsSpec) -> tuple[bool | None, list[str]]:
    """(ok, problems) of ``actual`` against the expected size/digests of ``spec``."""
    problems = []
    checks = [
        ("size", spec.size_bytes, actual.size_bytes),
        ("sha256", spec.sha256, actual.sha256),
        ("md5", spec.md5, actual.md5),
    ]
    known = [(what, want, got) for what, want, got in checks if want is not None]
    for what, want, got in known:
        if str(want).lower() != str(got).lower():
            problems.append(f"{what} {got} != expected {want}")
    if not known:
        return None, []
    return not problems, problems


def verify_weights(path: str | os.PathLike[str], spec: WeightsSpec) -> VerifyReport:
    """Check the file at ``path`` against ``spec``'s size and checksums.

    Raises:
        WeightsError: ``path`` does not exist.
    """
    p = Path(path)
    if p.is_dir():
        return VerifyReport(path=p, actual=None, ok=None, problems=[])
    if not p.is_file():
        raise WeightsError(f"cannot verify {p}: no such file")
    actual = file_checksums(p)
    ok, problems = compare(actual, spec)
    return VerifyReport(path=p, actual=actual, ok=ok, problems=problems)


def download_weights(
    name: str,
    *,
    dest_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    on_start: StartFn | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Download the registry weights ``name`` into the cache (or ``dest_dir``) and verify them.

    An existing file that passes verification is kept (unless ``force``).

    Args:
        name: registry name (see :data:`~lama_video.model.registry.REGISTRY`).
        dest_dir: target folder; default :func:`~lama_video.model.registry.cache_dir`.
        url: download from here instead of the registry URL / ``$LAMA_VIDEO_WEIGHTS_BASE_URL``.
        force: download again even if a verified file is present.
        progress, on_start: progress callbacks (see :func:`download_file`).
        timeout_s: socket timeout of each network operation.

    Returns:
        Path of the verified file.

    Raises:
        WeightsError: network failure, HTTP error or checksum mismatch (one line, with what to do).
    """
    spec = get_spec(name)
    folder = Path(dest_dir) if dest_dir is not None else cache_dir()
    dest = folder / spec.file_name
    if dest.is_file() and not force:
        ok, problems = compare(file_checksums(dest), spec)
        if ok is not False:
            log.info("%s already present at %s", name, dest)
            return dest
        log.warning("%s at %s fails verification (%s); downloading again", name, dest, problems[0])
    return download_file(
        url or weights_url(spec),
        dest,
        spec=spec,
        progress=progress,
        on_start=on_start,
        timeout_s=timeout_s,
    )


def download_file(
    url: str,
    dest: Path,
    *,
    spec: WeightsSpec,
    progress: ProgressFn | None = None,
    on_start: StartFn | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part`` (resumed if present), verify, rename.

    Args:
        url: http(s) or file URL.
        dest: final path; its folder is created.
        spec: expected size and checksums (None values are not checked).
        progress: called with the number of bytes written after each chunk.
        on_start: called once with (total bytes or None, bytes already in ``.part``).
        timeout_s: socket timeout of each network operation.

    Raises:
        WeightsError: see :func:`download_weights`. On a checksum or size mismatch neither
            ``dest`` nor the ``.part`` file is left behind; on a network failure the ``.part`` is
            kept so that the next call resumes it.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    try:
        _fetch(
            url, part, have, spec=spec, progress=progress, on_start=on_start, timeout_s=timeout_s
        )
    except (urllib.error.URLError, OSError, ValueError) as err:  # URLError, timeouts: OSError
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
        raise _network_error(url, err, dest) from err
    actual = file_checksums(part)
    ok, problems = compare(actual, spec)
    if ok is False:
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"download of {url} is corrupt ({problems[0]}); it was deleted: try again, or "
            f"download it by hand, check it, and put it at {dest}"
        )
    if ok is None:
        log.warning("no known checksum for %s: not verified (sha256 %s)", url, actual.sha256)
    os.replace(part, dest)
    log.info("downloaded %s to %s (%d bytes)", url, dest, actual.size_bytes)
    return dest


def _fetch(
    url: str,
    part: Path,
    have: int,
    *,
    spec: WeightsSpec,
    progress: ProgressFn | None,
    on_start: StartFn | None,
    timeout_s: float,
) -> None:
    """Write the bytes of ``url`` into ``part``, continuing after its first ``have`` bytes."""
    headers = {"User-Agent": f"lama-video/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after `have`: the .part is complete (or wrong)
            err.close()
            if spec.size_bytes is None or spec.size_bytes == have:
                if on_start:
                    on_start(have, have)
                return
            part.unlink()
            _fetch(
                url, part, 0, spec=spec, progress=progress, on_start=on_start, timeout_s=timeout_s
            )
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if have and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                raise ValueError(f"server answered range {match and match.group(0)!r}")
            mode = "ab"
        else:  # a full body: the server ignored the Range header (or there was none)
            have, mode = 0, "wb"
        total = have + remaining if remaining is not None else spec.size_bytes
        if on_start:
            on_start(total, have)
        with part.open(mode) as out:
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                if progress:
                    progress(len(chunk))
        if remaining is not None and part.stat().st_size != have + remaining:
            raise ValueError(
                f"connection closed after {part.stat().st_size} of {have + remaining} bytes"
            )


def _network_error(url: str, err: BaseException, dest: Path) -> WeightsError:
    reason = getattr(err, "reason", None) or err
    if isinstance(err, urllib.error.HTTPError):
        reason = f"HTTP {err.code} {err.reason}"
    return WeightsError(
        f"cannot download {url} ({reason}); check the network, or download it by hand and pass "
        f"--model PATH or put it at {dest}"
    )
