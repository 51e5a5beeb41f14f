"""The one output check: what a command may write, and what ``--overwrite`` may replace.

Every command (``remove``, ``mask``, ``image``, ``batch``) and the browser UI call
:func:`check_output` before any work starts. The rules:

- The output is never an input: not the same path (in any spelling: symlink, hard link, ``..``),
  not inside an input folder (frames, masks) and not a folder that holds an input.
- An existing output needs ``overwrite``; even then only what this tool wrote is replaced: a file
  of the kind being written (a video or an image), or a folder of frames that carries this tool's
  marker file (:data:`MARKER`, written into every folder the tool publishes) and holds nothing but
  PNG/JPEG frames (and the ``keyframes/`` folder of a masks folder). Anything else is refused.

Leaf module: no media library, no torch.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from lama_video.errors import EncodeError

__all__ = [
    "MARKER",
    "OutputKind",
    "check_output",
    "is_tool_folder",
    "mark_folder",
    "partial_prefix",
    "remove_stale_partials",
]

# Hidden file that marks a folder written by lama-video (frames or masks).
MARKER = ".lama-video-output"

OutputKind = Literal["file", "folder"]

_FRAME_FILE = re.compile(r"(?i).*\d.*\.(png|jpe?g)")
_SUBFOLDERS = ("keyframes",)
_TOOL_FILES = ("overlay.png", "opacity.png")  # ``mask --detect-overlays``


def mark_folder(folder: str | os.PathLike[str]) -> None:
    """Write :data:`MARKER` into ``folder`` (a folder this tool is about to publish)."""
    (Path(folder) / MARKER).write_text("written by lama-video; `--overwrite` may replace it\n")


def is_tool_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is one this tool wrote: its marker plus only numbered frames.

    Symlinks anywhere (the folder itself, an entry, a sub-folder) make it a foreign folder.
    """
    root = Path(folder)
    try:
        if root.is_symlink() or not root.is_dir():
            return False
        marker = root / MARKER
        if marker.is_symlink() or not marker.is_file():
            return False
        return _only_frames(root, depth=0)
    except OSError:
        return False


def _only_frames(folder: Path, depth: int) -> bool:
    for entry in os.scandir(folder):
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISREG(mode) and (
            _FRAME_FILE.fullmatch(entry.name)
            or (depth == 0 and (entry.name == MARKER or entry.name in _TOOL_FILES))
        ):
            continue
        if (
            stat.S_ISDIR(mode)
            and depth == 0
            and entry.name in _SUBFOLDERS
            and _only_frames(Path(entry.path), depth + 1)
        ):
            continue
        return False
    return True


def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(child: Path, parent: Path) -> bool:
    """``child`` lies strictly inside the folder ``parent`` (after resolving both)."""
    try:
        c, p = child.resolve(), parent.resolve()
    except OSError:
        return False
    return c != p and c.is_relative_to(p)


def check_output(
    output: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    kind: OutputKind,
    overwrite: bool,
    what: str = "output",
) -> None:
    """Refuse an output path that is an input or that may not be replaced (before any work).

    Args:
        output: the path the command will write.
        inputs: every path the command reads (video, frame folder, mask sources, keyframe
            files); None entries are ignored.
        kind: ``"file"`` (a video or image file) or ``"folder"`` (a folder of frames or masks).
        overwrite: the user asked to replace an existing output.
        what: how the message names the path ("output", "preview", ...).

    Raises:
        EncodeError: one line saying what was given, what is allowed and what to do.
    """
    out = Path(output)
    shown = str(out)
    for src in (Path(p) for p in inputs if p is not None):
        if not (src.exists() or src.is_symlink()):
            continue
        if _same(out, src):
            raise EncodeError(
                f"{what} {shown!r} is the input {str(src)!r}; expected a different path "
                "(inputs are never modified)"
            )
        if src.is_dir() and _inside(out, src):
            raise EncodeError(
                f"{what} {shown!r} lies inside the input folder {str(src)!r}; expected a path "
                "outside it (it would mix with the input's files)"
            )
        if (out.is_dir() or out.is_symlink()) and _inside(src, out):
            raise EncodeError(
                f"{what} {shown!r} holds the input {str(src)!r}; expected a path that does not "
                "contain any input"
            )
    if not (out.exists() or out.is_symlink()):
        return
    if kind == "folder":
        if out.is_dir() and not out.is_symlink():
            if not any(out.iterdir()):
                return  # an empty folder loses nothing
            if not overwrite:
                raise EncodeError(
                    f"{what} {shown!r} already exists; pass --overwrite to replace it or choose "
                    "another path"
                )
            if is_tool_folder(out):
                return
            raise EncodeError(
                f"{what} {shown!r} is a folder that lama-video did not write (no {MARKER} "
                "marker, or it holds other files); --overwrite only replaces the tool's own "
                "frame folders: choose a new or empty folder"
            )
        raise EncodeError(
            f"{what} {shown!r} exists and is not a folder; expected a folder for the frames: "
            "choose another path"
        )
    if out.is_dir() and not out.is_symlink():
        raise EncodeError(f"{what} {shown!r} is a folder; expected a file name")
    if not overwrite:
        raise EncodeError(
            f"{what} {shown!r} already exists; pass --overwrite to replace it or choose another "
            "path"
        )
    try:
        mode = out.lstat().st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise EncodeError(f"{what} {shown!r} is not a regular file; choose another path")


# ------------------------------------------------------------------------- temporary outputs

_PARTIAL = re.compile(r"\.partial-(\d+)\.([0-9a-f]{8})-")


def _host_tag() -> str:
    """8 hex digits naming this machine (partials on a shared disk may belong to another)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def partial_prefix(output: str | os.PathLike[str]) -> str:
    """Name prefix of this process's temporary outputs for ``output`` (beside it, hidden).

    ``.NAME.partial-PID.HOST-`` + a random suffix (``mkstemp``/``mkdtemp``): the owner's pid and
    machine let a later run find partials whose owner was killed (:func:`remove_stale_partials`).
    """
    return f".{Path(output).name}.partial-{os.getpid()}.{_host_tag()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_partials(output: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary outputs for ``output`` left by killed runs on this machine.

    Only files and folders named by :func:`partial_prefix` whose owner process is gone are
    removed; a partial of a live run (or of another machine) is left alone.

    Returns:
        The paths removed.
    """
    out = Path(output)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    host = _host_tag()
    for p in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
        m = _PARTIAL.match(p.name[len(out.name) + 1 :])
        if m is None or m.group(2) != host or _pid_alive(int(m.group(1))):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        removed.append(p)
    return removed
