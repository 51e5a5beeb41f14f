"""Atomic publication of outputs written under a temporary name.

``tempfile.mkstemp``/``mkdtemp`` create files with mode 0600 and folders with 0700 (private by
design). An output renamed into place must instead get the permissions any other new file of the
user gets (0666/0777 less the umask), or users and the tools that read the output would be locked
out of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    # Read without changing it where the OS says it (os.umask() set+reset would briefly leave a
    # umask of 0 for the other threads of this process).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Give ``tmp`` the default permissions of a new file/folder and rename it to ``final``."""
    tmp = Path(tmp)
    base = 0o777 if tmp.is_dir() else 0o666
    os.chmod(tmp, base & ~current_umask())
    os.replace(tmp, final)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` through a new file with a random name beside it (``O_EXCL``,
    so a symlink planted under a predictable name is never followed), then rename it over
    ``path`` (a symlink at ``path`` is replaced, never followed).

    Args:
        path: the file to write.
        data: its new content.
        private: keep ``mkstemp``'s owner-only mode (a tool's internal files) instead of the
            user's default permissions (:func:`publish`).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if private:
            os.replace(tmp, target)
        else:
            publish(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
