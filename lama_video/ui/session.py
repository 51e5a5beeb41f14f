"""The state behind the mask-painting page: one input video, one work folder, one job at a time.

Everything the page does goes through a :class:`Session`; the HTTP layer (:mod:`.server`) only
maps requests to these methods. Work is never held only in memory: each keyframe mask is written
to the work folder as soon as the page sends it, so a closed tab, a second tab or a restarted
server finds the same state.

Work folder layout (``<input stem>.lama-ui/`` beside the input unless ``work_dir`` is given)::

    proxy/        000000.jpg ...  the clip as JPEGs, longest side <= proxy_max_side_px; meta.json
    keyframes/    000012.png ...  painted masks, full video size, 0/255 grey (white = remove)
    track/        000000.png ...  one propagated mask per frame; keyframes/ (the masks it came
                                  from) and meta.json (their digest)
    result/       the last removal: result.<ext>, masks/ (the per-frame masks it used, with
                  keyframes/), preview/ (its frames as JPEGs) and meta.json

Frame access: the clip is decoded once, in a background thread started with the session, into a
downscaled JPEG proxy on disk (``proxy/``); a frame request waits until the extraction has reached
that frame. Memory stays bounded (one decoded frame at a time) whatever the clip's length, a
restarted server reuses a complete proxy, and scrubbing is a file read. The cost is disk space
(about 30-80 KB per frame at the default 960 px) and a short wait before the last frames of a long
clip can be shown.

Jobs (tracking, removal) run one at a time in a background thread; the page polls
:meth:`Session.job_status`. A second job while one runs raises :class:`HttpError` 409.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.config import UI_PROXY_MAX_SIDE_PX, RunConfig
from lama_video.errors import EncodeError, LamaVideoError
from lama_video.fsutil import current_umask, publish, write_atomic
from lama_video.masks import frame_number, header_size, read_mask_image
from lama_video.outputs import check_output, mark_folder
from lama_video.video import count_frames, frame_at, open_video

log = logging.getLogger(__name__)

JPEG_QUALITY = 88
PROXY_MAX_SIDE_PX = UI_PROXY_MAX_SIDE_PX  # longest side of the frames shown in the page
KEYFRAME_RGB = (255, 48, 96)  # overlay colour of painted masks on the page
TRACK_RGB = (0, 200, 255)  # overlay colour of propagated masks
OVERLAY_RGB = (255, 200, 0)  # colour of the static-overlay mask (logo, watermark) on the page
_PROXY_VERSION = 1  # bump when the proxy format changes so old proxies are rebuilt


class HttpError(Exception):
    """A request the session refuses; ``status`` is the HTTP status the server answers with.

    Attributes:
        status: 400 bad request, 403 outside the allowed folders, 404 missing, 409 conflict
            (a job is running, a file exists), 503 not ready yet.
        message: one line for the page: what was asked, why not, what to do.
        extra: more JSON fields for the page (e.g. the paths that exist).
    """

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class _Cancelled(Exception):
    """Raised inside a job's progress callback when the job was cancelled."""


@dataclass
class JobStatus:
    """What the background job is doing (the JSON of ``GET /api/job``).

    ``state`` is ``idle`` (never ran), ``running``, ``done``, ``error`` or ``cancelled``;
    ``done``/``total`` count frames of the current ``phase`` (``track``, ``remove``, ``preview``).
    """

    kind: str = ""
    state: str = "idle"
    phase: str = ""
    done: int = 0
    total: int | None = None
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    job_id: int = 0


def _no_symlink_below(path: Path, root: Path) -> bool:
    """True when no component of ``path`` below ``root`` (nor ``path`` itself) is a symlink."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    cur = root
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            return False
    return True


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file reached without following a final symlink."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            return fh.read()
    finally:
        if fd >= 0:
            os.close(fd)


def _encode_png(img: NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _read_grey(path: Path) -> NDArray[np.uint8] | None:
    try:
        raw = _read_regular(path)
    except OSError:
        return None
    if not raw:
        return None
    return cast(
        "NDArray[np.uint8] | None", cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
    )


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished folder in for ``target`` (the old one is removed afterwards).

    The old folder is moved into a fresh private folder (random name) before it is removed, so
    nothing planted under a predictable name is followed; ``rmtree`` never follows symlinks.
    """
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        if target.exists() or target.is_symlink():
            os.replace(target, old / "old")
        os.replace(new, target)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_symlink():  # only files the session wrote; a planted link is skipped
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copyfile(src, dst, follow_symlinks=False)


class Session:
    """One input clip being edited in the page.

    Args:
        input_path: the video file (or folder of frames) to edit; never modified.
        config: run settings used by Track (``propagation``) and Remove (everything else).
        work_dir: where masks, proxy frames and results live (default: ``<stem>.lama-ui``
            beside the input).
        proxy_max_side_px: longest side of the JPEG proxy frames shown in the page.
        extra_roots: more folders the page may save into (besides the input's and the work
            folder).

    Raises:
        VideoOpenError: the input is not a readable video with at least one frame.
        EncodeError: the work folder cannot be created.
    """

    def __init__(
        self,
        input_path: str | os.PathLike[str],
        *,
        config: RunConfig | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        proxy_max_side_px: int = PROXY_MAX_SIDE_PX,
        extra_roots: tuple[str | os.PathLike[str], ...] = (),
    ) -> None:
        self.input = Path(input_path).expanduser().resolve()
        self.config = config or RunConfig()
        with open_video(self.input, decode=self.config.decode) as reader:
            self.info = reader.info
        self.n_frames = count_frames(self.input)
        if self.n_frames < 1:  # pragma: no cover - count_frames raises on empty input already
            raise EncodeError(f"input '{self.input}' has no frames; expected a video")
        stem = self.input.stem if self.input.is_file() else self.input.name
        self.work = Path(work_dir or self.input.parent / f"{stem}.lama-ui").expanduser()
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            self.work = self.work.resolve()
            for sub in ("proxy", "keyframes", "plates"):
                (self.work / sub).mkdir(exist_ok=True)
            for sub in ("proxy", "keyframes", "plates", "track", "result"):
                if (self.work / sub).is_symlink():
                    raise EncodeError(
                        f"the work folder's {sub}/ is a symlink; expected a plain folder: "
                        f"remove '{self.work / sub}' or pass --work DIR"
                    )
        except OSError as err:
            raise EncodeError(
                f"cannot create the work folder '{self.work}' ({err.strerror}); expected a "
                "writable folder; pass --work DIR"
            ) from err
        extra = [Path(r).expanduser().resolve() for r in extra_roots]
        self.roots = tuple(dict.fromkeys([self.input.parent, self.work, *extra]))
        scale = min(1.0, proxy_max_side_px / max(self.info.width, self.info.height))
        self.proxy_size = (
            max(1, round(self.info.width * scale)),
            max(1, round(self.info.height * scale)),
        )
        self.proxy_max_side_px = proxy_max_side_px
        suffix = self.input.suffix.lower() if self.input.is_file() else ""
        known = (".mp4", ".mkv", ".mov", ".webm")
        self.result_name = "result" + (suffix if suffix in known else ".mp4")

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._proxy_ready = 0
        self._proxy_done = False
        self._proxy_error = ""
        self._proxy_thread: threading.Thread | None = None
        self._rev = 0
        self._kf_digest = self._digest_keyframes(self.work / "keyframes")
        # keyframe file -> ((size, mtime), whether it is empty): see absent_keyframes
        self._empty_masks: dict[Path, tuple[tuple[int, int], bool]] = {}
        self._job = JobStatus()
        self._job_thread: threading.Thread | None = None
        self._cancel = threading.Event()

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start extracting the proxy frames (or reuse a complete proxy from an earlier run)."""
        meta = self._proxy_meta()
        old = self.work / "proxy" / "meta.json"
        try:
            if json.loads(old.read_text()) == {**meta, "complete": True}:
                with self._cond:
                    self._proxy_ready = meta["frames"]
                    self.n_frames = meta["frames"]
                    self._proxy_done = True
                log.info("reusing the proxy frames in %s", old.parent)
                return
        except (OSError, ValueError):
            pass
        self._proxy_thread = threading.Thread(
            target=self._extract_proxy, name="lama-ui-proxy", daemon=True
        )
        self._proxy_thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel a running job, stop the proxy extraction and wait for both threads."""
        self._stop.set()
        self._cancel.set()
        for t in (self._proxy_thread, self._job_thread):
            if t is not None and t.is_alive():
                t.join(timeout_s)

    def _proxy_meta(self) -> dict[str, Any]:
        st = self.input.stat()
        return {
            "version": _PROXY_VERSION,
            "source": str(self.input),
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "size": list(self.proxy_size),
            "frames": self.n_frames,
        }

    def _extract_proxy(self) -> None:
        folder = self.work / "proxy"
        meta = self._proxy_meta()
        with contextlib.suppress(FileNotFoundError):
            (folder / "meta.json").unlink()
        try:
            with open_video(self.input, decode=self.config.decode) as reader:
                for frame in reader.frames():
                    if self._stop.is_set():
                        return
                    write_atomic(
                        folder / f"{frame.index:06d}.jpg", self._jpeg(frame.rgb), private=True
                    )
                    with self._cond:
                        self._proxy_ready = frame.index + 1
                        self._cond.notify_all()
            with self._cond:
                self.n_frames = meta["frames"] = self._proxy_ready
            meta_json = json.dumps({**meta, "complete": True}).encode()
            write_atomic(folder / "meta.json", meta_json, private=True)
        except LamaVideoError as err:
            log.warning("proxy extraction stopped: %s", err)
            self._proxy_error = str(err)
        finally:
            with self._cond:
                self._proxy_done = True
                self._cond.notify_all()

    def _jpeg(self, rgb: NDArray[np.uint8]) -> bytes:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if (bgr.shape[1], bgr.shape[0]) != self.proxy_size:
            bgr = cv2.resize(bgr, self.proxy_size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:  # pragma: no cover
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    # ---------------------------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        """Everything the page needs on load (the JSON of ``GET /api/info``)."""
        fps = float(self.info.frame_rate) if self.info.frame_rate else 25.0
        with self._lock:
            track = self._folder_meta(self.work / "track")
            result = self._folder_meta(self.work / "result")
            return {
                "name": self.input.name,
                "input": str(self.input),
                "work": str(self.work),
                "width": self.info.width,
                "height": self.info.height,
                "proxy_width": self.proxy_size[0],
                "proxy_height": self.proxy_size[1],
                "n_frames": self.n_frames,
                "fps": fps,
                "engine": self.config.inpaint.engine,
                "keyframes": self.keyframes(),
                "absent": self.absent_keyframes(),
                "overlay": self.has_overlay(),
                "plates": self.plates(),
                "track": {
                    "available": track is not None,
                    "fresh": track is not None and track.get("digest") == self._kf_digest,
                    # Frames where a new keyframe would help most, least sure first.
                    "suggested": track.get("suggested", []) if track else [],
                },
                "result": {
                    "available": result is not None,
                    "fresh": result is not None and result.get("digest") == self._kf_digest,
                    "frames": result.get("frames", 0) if result else 0,
                    "stamp": result.get("stamp", 0) if result else 0,
                    "engine": result.get("engine", "") if result else "",
                },
                "defaults": self.default_save_paths(),
                "roots": [str(r) for r in self.roots],
                **self._progress_fields(),
            }

    def _progress_fields(self) -> dict[str, Any]:
        return {
            "rev": self._rev,
            "proxy_ready": self._proxy_ready,
            "proxy_done": self._proxy_done,
            "proxy_error": self._proxy_error,
            "job": asdict(self._job),
        }

    def job_status(self) -> dict[str, Any]:
        """The job's progress plus the mask revision and proxy progress (``GET /api/job``)."""
        with self._lock:
            return self._progress_fields()

    @staticmethod
    def _folder_meta(folder: Path) -> dict[str, Any] | None:
        try:
            return json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def default_save_paths(self) -> dict[str, str]:
        """Where Save writes unless the user types other paths: beside the input."""
        stem = self.input.stem if self.input.is_file() else self.input.name
        suffix = Path(self.result_name).suffix
        return {
            "output": str(self.input.parent / f"{stem}_removed{suffix}"),
            "masks": str(self.input.parent / f"{stem}_masks"),
        }

    # --------------------------------------------------------------------------------- frames

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.n_frames:
            raise HttpError(404, f"frame {index} does not exist; expected 0..{self.n_frames - 1}")

    def frame_jpeg(self, index: int, *, wait_s: float = 30.0) -> bytes:
        """Proxy frame ``index`` as JPEG bytes, waiting for the extraction to reach it.

        Raises:
            HttpError: 404 out of range; 503 not extracted within ``wait_s``.
        """
        self._check_index(index)
        with self._cond:
            self._cond.wait_for(lambda: self._proxy_ready > index or self._proxy_done, wait_s)
            ready = self._proxy_ready > index
        if not ready:
            if self._proxy_done:
                raise HttpError(404, f"frame {index} could not be decoded ({self._proxy_error})")
            raise HttpError(503, f"frame {index} is not extracted yet; try again in a moment")
        return self._work_bytes(self.work / "proxy" / f"{index:06d}.jpg", f"frame {index}")

    def result_jpeg(self, index: int) -> bytes:
        """Frame ``index`` of the last removal's result as JPEG (proxy size).

        Raises:
            HttpError: 404 when there is no result (or no such frame).
        """
        return self._result_frame("preview", index, "result")

    def review_jpeg(self, index: int) -> bytes:
        """Frame ``index`` of the last removal tinted by where its hole pixels came from (JPEG).

        Green: copied from other frames; magenta: invented; orange: unsure (see
        :mod:`lama_video.qc`).

        Raises:
            HttpError: 404 when there is no result (or no such frame).
        """
        return self._result_frame("review", index, "review")

    def _result_frame(self, folder: str, index: int, what: str) -> bytes:
        self._check_index(index)
        path = self.work / "result" / folder / f"{index:06d}.jpg"
        try:
            return self._work_bytes(path, f"{what} frame {index}")
        except HttpError as err:
            raise HttpError(404, f"no {what} frame {index}; run Remove first") from err

    def _work_bytes(self, path: Path, what: str) -> bytes:
        """A file of the work folder, never through a symlink (a planted one is not served)."""
        if not _no_symlink_below(path, self.work):
            raise HttpError(403, f"{what} is a symlink in the work folder; refusing to serve it")
        try:
            return _read_regular(path)
        except OSError as err:
            raise HttpError(404, f"{what} is not available ({err.strerror or err})") from err

    # ---------------------------------------------------------------------------------- masks

    def keyframes(self) -> list[int]:
        """Frame numbers that have a painted mask, ascending."""
        folder = self.work / "keyframes"
        out = []
        for p in folder.glob("*.png"):
            n = frame_number(p)
            if n is not None and 0 <= n < self.n_frames and not p.name.startswith("."):
                out.append(n)
        return sorted(out)

    def _keyframe_path(self, index: int) -> Path:
        return self.work / "keyframes" / f"{index:06d}.png"

    @staticmethod
    def _digest_keyframes(folder: Path) -> str:
        h = hashlib.sha1()
        for p in sorted(folder.glob("[0-9]*.png")):
            if p.is_symlink():
                continue
            h.update(p.name.encode())
            with contextlib.suppress(OSError):
                h.update(_read_regular(p))
        return h.hexdigest()

    def _overlay_png(self, mask: NDArray[np.uint8], rgb: tuple[int, int, int]) -> bytes:
        """(H, W) uint8 mask -> proxy-size RGBA PNG: ``rgb`` where the mask is set, else clear."""
        if (mask.shape[1], mask.shape[0]) != self.proxy_size:
            mask = cast(
                NDArray[np.uint8], cv2.resize(mask, self.proxy_size, interpolation=cv2.INTER_AREA)
            )
        on = mask > 127
        bgra = np.zeros((*on.shape, 4), np.uint8)
        bgra[on] = (rgb[2], rgb[1], rgb[0], 255)
        return _encode_png(bgra)

    def keyframe_png(self, index: int) -> bytes:
        """The painted mask of frame ``index`` as a proxy-size RGBA PNG (for the page's canvas).

        Raises:
            HttpError: 404 when the frame has no painted mask.
        """
        return self._mask_file_png(
            index, self._keyframe_path(index), KEYFRAME_RGB, f"frame {index} has no painted mask"
        )

    def result_mask_png(self, index: int) -> bytes:
        """The mask the last removal used on frame ``index`` (proxy-size RGBA PNG).

        Raises:
            HttpError: 404 when there is no result.
        """
        path = self.work / "result" / "masks" / f"{index:06d}.png"
        return self._mask_file_png(
            index, path, KEYFRAME_RGB, f"no result mask for frame {index}; run Remove first"
        )

    def track_png(self, index: int) -> bytes:
        """The propagated mask of frame ``index`` as a proxy-size RGBA PNG.

        Raises:
            HttpError: 404 when tracking has not run.
        """
        return self._mask_file_png(
            index,
            self.work / "track" / f"{index:06d}.png",
            TRACK_RGB,
            f"no tracked mask for frame {index}; press Track first",
        )

    def _mask_file_png(
        self, index: int, path: Path, rgb: tuple[int, int, int], missing: str
    ) -> bytes:
        """The mask stored at ``path`` for frame ``index`` as an RGBA overlay PNG; 404 if absent."""
        self._check_index(index)
        mask = _read_grey(path) if _no_symlink_below(path, self.work) else None
        if mask is None:
            raise HttpError(404, missing)
        return self._overlay_png(mask, rgb)

    def _page_mask(self, png: bytes) -> NDArray[np.uint8]:
        """A mask the page sent (PNG, any size of the video's aspect) at the video's size, 0/255.

        Raises:
            HttpError: 400 for an unreadable image, a different aspect ratio or a size out of
                proportion to the video's (checked from the PNG header, before decoding).
        """
        W, H = self.info.width, self.info.height
        size = header_size(png) if png else None
        if png and (size is None or not png.startswith(b"\x89PNG")):
            raise HttpError(400, "the mask is not a PNG; expected the page's canvas as PNG")
        if size is not None and size[0] * size[1] > max(4 * W * H, 4096 * 4096):
            raise HttpError(
                400,
                f"the mask is {size[0]}x{size[1]}, far larger than the {W}x{H} video; "
                "expected the page's canvas (at most the video's size)",
            )
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) if png else None
        if img is None or img.dtype != np.uint8:
            raise HttpError(400, "the mask is not a readable 8-bit PNG; expected the page's canvas")
        if img.ndim == 3:
            img = img[..., 3] if img.shape[2] == 4 else img[..., :3].max(axis=2)
        h, w = img.shape
        if abs(w * H - h * W) > max(w, W):
            raise HttpError(
                400, f"the mask is {w}x{h} but the video is {W}x{H}; expected the same aspect ratio"
            )
        if (w, h) != (W, H):
            img = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)
        mask = np.where(img >= 128, 255, 0).astype(np.uint8)
        return mask

    def save_keyframe(self, index: int, png: bytes) -> bool:
        """Store the page's mask of frame ``index`` (an empty mask deletes the keyframe).

        Args:
            index: frame number.
            png: an image the video's aspect ratio: RGBA (alpha >= 128 = remove) or grey/RGB
                (brightest channel >= 128 = remove), any size (resized to the video's).

        Returns:
            True when the keyframe is stored, False when the mask was empty and it was deleted.

        Raises:
            HttpError: 400 for an unreadable image, a different aspect ratio or a size out of
                proportion to the video's (checked from the PNG header, before decoding).
        """
        self._check_index(index)
        mask = self._page_mask(png)
        path = self._keyframe_path(index)
        with self._lock:
            if mask.any():
                write_atomic(path, _encode_png(mask), private=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._changed()
        return bool(mask.any())

    def mark_absent(self, index: int) -> None:
        """Store an empty keyframe on frame ``index`` (replacing its paint): the object is not in
        this frame, and the tracks stop there (``--keyframe-mask N:blank.png``)."""
        self._check_index(index)
        empty = np.zeros((self.info.height, self.info.width), np.uint8)
        with self._lock:
            write_atomic(self._keyframe_path(index), _encode_png(empty), private=True)
            self._changed()

    def absent_keyframes(self) -> list[int]:
        """Keyframes that say the object is absent (an empty mask), ascending. Each file is
        decoded once per change (its size and modification time), not on every request."""
        out = []
        for index in self.keyframes():
            path = self._keyframe_path(index)
            with contextlib.suppress(OSError):
                st = path.lstat()
                stamp = (st.st_size, st.st_mtime_ns)
                known = self._empty_masks.get(path)
                if known is None or known[0] != stamp:
                    data = _read_regular(path)  # refuses a planted link
                    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                    known = (stamp, img is not None and not (img > 127).any())
                    self._empty_masks[path] = known
                if known[1]:
                    out.append(index)
        return out

    def _painted(self) -> bool:
        """Whether some keyframe marks the object (not only where it is absent)."""
        return bool(set(self.keyframes()) - set(self.absent_keyframes()))

    def delete_keyframe(self, index: int) -> None:
        """Forget the painted mask of frame ``index`` (no error if there is none)."""
        self._check_index(index)
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self._keyframe_path(index).unlink()
            self._changed()

    # ---------------------------------------------------------------------------- clean plates

    def plates(self) -> list[int]:
        """Frame numbers that have a clean plate (``remove --reference``), ascending."""
        out = []
        for p in (self.work / "plates").glob("*.png"):
            n = frame_number(p)
            if n is None or p.name.startswith(".") or p.is_symlink():
                continue
            if 0 <= n < self.n_frames:
                out.append(n)
        return sorted(out)

    def _plate_path(self, index: int) -> Path:
        return self.work / "plates" / f"{index:06d}.png"

    def _full_frame(self, index: int) -> NDArray[np.uint8]:
        """Frame ``index`` at full size: of the last removal when there is one, else the input."""
        result = self.work / "result" / self.result_name
        source = result if result.is_file() and not result.is_symlink() else self.input
        with open_video(source, decode=self.config.decode) as reader:
            frame = frame_at(reader, index)
        if frame is None:
            raise HttpError(404, f"frame {index} could not be decoded from '{source.name}'")
        return frame.rgb

    def full_png(self, index: int) -> bytes:
        """Frame ``index`` at full size as PNG, to paint a clean plate on: the last removal's
        frame when there is one (only what looks wrong needs painting), else the input's."""
        self._check_index(index)
        bgr = cv2.cvtColor(self._full_frame(index), cv2.COLOR_RGB2BGR)
        return _encode_png(cast(NDArray[np.uint8], bgr))

    def save_plate(self, index: int, data: bytes) -> None:
        """Store a clean plate for frame ``index``: that frame at full size with the object
        painted out (PNG or JPEG).

        Raises:
            HttpError: 400 for an unreadable image, another size than the video's, or an image
                that is not that frame outside what was painted; 409 when the page runs without
                the temporal engine (plates have no effect there).
        """
        from lama_video.temporal import check_plate  # late import: the engine's module

        self._check_index(index)
        if not self.config.temporal.enabled:
            raise HttpError(
                409,
                "clean plates need the temporal engine, and this page runs without it; restart "
                "`lama-video ui` without --no-temporal (or temporal.enabled: false) to use them",
            )
        W, H = self.info.width, self.info.height
        size = header_size(data) if data else None
        unreadable = HttpError(
            400,
            f"the clean plate is not a readable {W}x{H} PNG or JPEG; expected frame {index} "
            "at full size with the object painted out",
        )
        if size is None:  # the size is read from the header first: nothing huge is decoded
            raise unreadable
        if size != (W, H):
            raise HttpError(
                400,
                f"the clean plate is {size[0]}x{size[1]} but the video is {W}x{H}; expected "
                f"frame {index} at full size (Download frame gives it) with the object painted out",
            )
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None or img.shape[:2] != (H, W):
            raise unreadable
        img = cast(NDArray[np.uint8], img)
        plate = cast(NDArray[np.uint8], cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        with open_video(self.input, decode=self.config.decode) as reader:
            frame = frame_at(reader, index)
        if frame is not None:
            try:
                check_plate(plate, frame.rgb, None, index)
            except LamaVideoError as err:
                raise HttpError(400, str(err)) from err
        with self._lock:
            write_atomic(self._plate_path(index), _encode_png(img), private=True)
            self._rev += 1

    def delete_plate(self, index: int) -> None:
        """Forget the clean plate of frame ``index`` (no error if there is none)."""
        self._check_index(index)
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self._plate_path(index).unlink()
            self._rev += 1

    @property
    def overlay_path(self) -> Path:
        """The static overlay's mask (``Detect overlays`` or painted), used by every removal."""
        return self.work / "overlay.png"

    def has_overlay(self) -> bool:
        p = self.overlay_path
        return p.is_file() and not p.is_symlink()

    def overlay_png(self) -> bytes:
        """The static overlay's mask as a proxy-size RGBA PNG.

        Raises:
            HttpError: 404 when there is none.
        """
        mask = _read_grey(self.overlay_path) if self.has_overlay() else None
        if mask is None:
            raise HttpError(404, "no overlay mask yet; press Detect overlays or paint one")
        return self._overlay_png(mask, OVERLAY_RGB)

    def save_overlay(self, png: bytes) -> bool:
        """Store the page's overlay mask (an empty mask deletes it); True when one is kept."""
        mask = self._page_mask(png) if png else np.zeros((1, 1), np.uint8)
        with self._lock:
            if mask.any():
                write_atomic(self.overlay_path, _encode_png(mask), private=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.overlay_path.unlink()
            self._changed()
        return bool(mask.any())

    def delete_overlay(self) -> None:
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.overlay_path.unlink()
            self._changed()

    def start_detect(self) -> dict[str, Any]:
        """Start looking for static overlays (background job); what is found becomes the
        overlay mask, which the page shows and lets the user edit.

        Raises:
            HttpError: 409 while another job runs.
        """
        return self._start("detect", self._run_detect)

    def _run_detect(self) -> None:
        from lama_video.pipeline import find_overlays  # late import: OpenCV, PyAV

        self._phase("detect", self.n_frames, "looking for static overlays")
        found, _ = find_overlays(self.input, self.config, progress=self._tick)
        if not found.found:
            raise HttpError(
                404,
                f"no static overlay found ({found.frames} frames sampled); paint it with "
                "'edit overlay' if there is one (an overlay over a still scene cannot be told "
                "from the scene)",
            )
        with self._lock:
            write_atomic(
                self.overlay_path, _encode_png(found.mask.astype(np.uint8) * 255), private=True
            )
            self._changed()
            boxes = "; ".join(
                f"{r.width}x{r.height} at {r.x},{r.y} (opacity about {100 * r.opacity:.0f}%)"
                for r in found.regions
            )
            self._job.message = f"found {len(found.regions)} overlay(s): {boxes}"

    def _changed(self) -> None:
        self._rev += 1
        self._kf_digest = self._digest_keyframes(self.work / "keyframes")

    # ----------------------------------------------------------------------------------- jobs

    def start_track(self) -> dict[str, Any]:
        """Start propagating the keyframe masks through the clip (background job).

        Raises:
            HttpError: 400 with no keyframe; 409 while another job runs.
        """
        return self._start("track", self._run_track)

    def start_remove(self) -> dict[str, Any]:
        """Start a removal (tracking first when the masks changed since the last Track).

        Raises:
            HttpError: 400 with no keyframe; 409 while another job runs.
        """
        return self._start("remove", self._run_remove)

    def cancel_job(self) -> dict[str, Any]:
        """Ask the running job to stop (it stops after the current frame)."""
        self._cancel.set()
        return self.job_status()

    def wait_job(self, timeout_s: float | None = None) -> JobStatus:
        """Block until the current job ends (for tests and scripts); returns its final status."""
        t = self._job_thread
        if t is not None:
            t.join(timeout_s)
        with self._lock:
            return JobStatus(**asdict(self._job))

    def _start(self, kind: str, fn: Callable[[], None]) -> dict[str, Any]:
        with self._lock:
            if self._job.state == "running":
                what = "a removal" if self._job.kind == "remove" else "tracking"
                raise HttpError(
                    409,
                    f"{what} is already running ({self._job.phase}, frame {self._job.done} of "
                    f"{self._job.total or '?'}); only one job runs at a time: wait for it to "
                    "finish or cancel it",
                    job=asdict(self._job),
                )
            needs_paint = kind == "track" or (kind == "remove" and not self.has_overlay())
            if needs_paint and not self._painted():
                raise HttpError(
                    400,
                    "no mask painted yet; paint the object on at least one frame first (a frame "
                    "marked absent says where the object is not)",
                )
            self._cancel.clear()
            self._job = JobStatus(
                kind=kind,
                state="running",
                phase="starting",
                started=time.time(),
                job_id=self._job.job_id + 1,
            )
            self._job_thread = threading.Thread(
                target=self._job_main, args=(fn,), name=f"lama-ui-{kind}", daemon=True
            )
            self._job_thread.start()
            return asdict(self._job)

    def _job_main(self, fn: Callable[[], None]) -> None:
        state, message = "done", ""
        try:
            fn()
        except _Cancelled:
            state, message = "cancelled", "cancelled; nothing was replaced"
        except HttpError as err:
            state, message = "error", err.message
        except LamaVideoError as err:
            state, message = "error", str(err)
        except Exception as err:  # a bug: keep the server alive and tell the page
            log.warning("job failed", exc_info=True)
            state, message = "error", f"{type(err).__name__}: {err}"
        with self._lock:
            self._job.state, self._job.finished = state, time.time()
            if message:
                self._job.message = message

    def _phase(self, phase: str, total: int | None, message: str) -> None:
        with self._lock:
            self._job.phase, self._job.total, self._job.done = phase, total, 0
            self._job.message = message

    def _tick(self, n: int = 1) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        with self._lock:
            self._job.done += n
            if self._job.total is not None:  # a progress estimate never runs past its end
                self._job.done = min(self._job.done, self._job.total)

    def _run_track(self) -> None:
        from lama_video.propagate import (  # late: flow
            propagate_masks,
            tracking_steps,
            tracking_summary,
        )

        new = Path(tempfile.mkdtemp(prefix=".track.new-", dir=self.work))
        (new / "keyframes").mkdir()
        with self._lock:  # snapshot: painting may go on while tracking runs
            for p in (self.work / "keyframes").glob("[0-9]*.png"):
                if not p.is_symlink():  # a planted link would read a file outside
                    (new / "keyframes" / p.name).write_bytes(_read_regular(p))
        digest = self._digest_keyframes(new / "keyframes")
        kf: dict[int, NDArray[np.bool_]] = {}
        for p in (new / "keyframes").glob("*.png"):
            n = frame_number(p)
            if n is not None and 0 <= n < self.n_frames:
                kf[n] = read_mask_image(p) > 127
        if not kf:
            raise HttpError(400, "no mask painted yet; paint the object on a frame first")
        # The tracker reports each frame once per pass: forward over the clip, then backward from
        # each keyframe to the one before it (or the start).
        self._phase("track", tracking_steps(self.n_frames, kf), f"tracking {len(kf)} keyframe(s)")
        written = 0
        try:
            with open_video(self.input, decode=self.config.decode) as reader:
                masks = propagate_masks(reader, kf, self.config, progress=self._tick)
            self._phase("masks", len(masks), "writing the tracked masks")
            for i, mask in enumerate(masks):
                (new / f"{i:06d}.png").write_bytes(_encode_png(mask.astype(np.uint8) * 255))
                written += 1
                self._tick()
            summary = tracking_summary(masks, kf)
            suggested = summary["suggested_keyframes"]
            meta = {
                "digest": digest,
                "frames": written,
                "confidence": summary["confidence"],
                "suggested": suggested,
            }
            (new / "meta.json").write_text(json.dumps(meta))
            with self._lock:
                _replace_dir(new, self.work / "track")
                self._job.message = f"tracked {len(kf)} keyframe(s) through {written} frames"
                if suggested:
                    self._job.message += (
                        f"; least sure at frame {suggested[0]}: add a keyframe near it"
                    )
        finally:
            shutil.rmtree(new, ignore_errors=True)

    def _run_remove(self) -> None:
        with self._lock:
            painted = self._painted()
            track = self._folder_meta(self.work / "track")
            fresh = track is not None and track.get("digest") == self._kf_digest
            # Snapshots: editing may go on while removing.
            snap = Path(tempfile.mkdtemp(prefix=".inputs-", dir=self.work))
            overlay = None
            if self.has_overlay():
                overlay = snap / "overlay.png"
                overlay.write_bytes(_read_regular(self.overlay_path))
            plates: dict[int, Path] = {}
            for index in self.plates():
                plates[index] = snap / f"plate{index:06d}.png"
                plates[index].write_bytes(_read_regular(self._plate_path(index)))
        try:
            self._remove(painted, fresh, overlay, plates)
        finally:
            shutil.rmtree(snap, ignore_errors=True)

    def _remove(
        self, painted: bool, fresh: bool, overlay: Path | None, plates: dict[int, Path]
    ) -> None:
        from lama_video.pipeline import remove_object  # late import: torch

        if painted and not fresh:
            self._run_track()
        track = self._folder_meta(self.work / "track") if painted else {"digest": self._kf_digest}
        assert track is not None
        new = Path(tempfile.mkdtemp(prefix=".result.new-", dir=self.work))
        (new / "masks" / "keyframes").mkdir(parents=True)
        (new / "preview").mkdir()
        (new / "review").mkdir()
        try:
            src = self.work / "track"
            if painted:
                for p in src.glob("*.png"):
                    _link_or_copy(p, new / "masks" / p.name)
                for p in (src / "keyframes").glob("*.png"):
                    _link_or_copy(p, new / "masks" / "keyframes" / p.name)
            self._phase("remove", self.n_frames, f"removing ({self.config.inpaint.engine})")
            out = new / self.result_name

            def on_start(total: int | None) -> None:
                with self._lock:
                    self._job.total = total

            review = new / f"review{out.suffix}"
            result = remove_object(
                self.input,
                new / "masks" if painted else None,
                out,
                config=self.config,
                overwrite=True,
                progress=self._tick,
                on_start=on_start,
                qc=review,
                overlay=overlay,
                references=plates or None,
            )
            if not painted and overlay is not None:  # the masks shown beside the result
                region = read_mask_image(overlay) > 127
                png = _encode_png(region.astype(np.uint8) * 255)
                for i in range(result.frames):
                    (new / "masks" / f"{i:06d}.png").write_bytes(png)
            self._phase("preview", 2 * result.frames, "preparing the side-by-side preview")
            for video, folder in ((out, "preview"), (review, "review")):
                with open_video(video) as reader:
                    for frame in reader.frames():
                        jpg = self._jpeg(frame.rgb)
                        (new / folder / f"{frame.index:06d}.jpg").write_bytes(jpg)
                        self._tick()
            review.unlink()  # only its proxy frames are shown
            meta = {
                "digest": track["digest"],
                "frames": result.frames,
                "engine": result.engine,
                "seconds": round(result.seconds, 3),
                "stamp": time.time_ns(),
            }
            (new / "meta.json").write_text(json.dumps(meta))
            with self._lock:
                _replace_dir(new, self.work / "result")
                self._job.message = (
                    f"removed in {result.seconds:.1f} s ({result.frames} frames, {result.engine})"
                )
        finally:
            shutil.rmtree(new, ignore_errors=True)

    # ----------------------------------------------------------------------------------- save

    def check_path(self, text: object, what: str) -> Path:
        """Check a path the page sent: a string inside an allowed folder, reached without symlinks.

        Relative paths are taken relative to the input's folder; ``..`` is resolved lexically and
        the result must lie in an allowed folder, with no component below that folder being a
        symlink (a link planted there could point anywhere). The work folder's own sub-folders
        are refused.

        Returns:
            The absolute, normalised path (no symlink below its allowed folder).

        Raises:
            HttpError: 400 not a string, empty or with a NUL; 403 outside the allowed folders,
                through a symlink, or inside the work folder's internals.
        """
        if text is not None and not isinstance(text, str):
            raise HttpError(400, f"{what} path must be a string, got {type(text).__name__}")
        text = (text or "").strip()
        if not text:
            raise HttpError(400, f"no {what} path given; type where to save it")
        if "\x00" in text:
            raise HttpError(400, f"{what} path contains a NUL character")
        p = Path(text).expanduser()
        if not p.is_absolute():
            p = self.input.parent / p
        p = Path(os.path.normpath(p))
        root = next((r for r in self.roots if p.is_relative_to(r)), None)
        if root is None:
            allowed = " or ".join(f"'{r}'" for r in self.roots)
            raise HttpError(
                403,
                f"{what} path '{p}' is outside the allowed folders; expected a path in {allowed}",
            )
        if not _no_symlink_below(p, root):
            raise HttpError(
                403, f"{what} path '{p}' goes through a symlink; expected a plain path in '{root}'"
            )
        internal = [self.work / s for s in ("proxy", "keyframes", "plates", "track", "result")]
        if (
            p == self.work
            or any(p.is_relative_to(i) for i in internal)
            or p.name.startswith((".track", ".result", ".inputs"))
        ):
            raise HttpError(403, f"{what} path '{p}' is the work folder's own; choose another")
        if p == self.input:
            raise HttpError(403, f"{what} path '{p}' is the input; the input is never modified")
        return p

    def save(self, output: object, masks: object, *, overwrite: object) -> dict[str, Any]:
        """Copy the last result video and its per-frame masks to the user's paths.

        Every path is checked by :meth:`check_path` and by the output rules every command uses
        (:func:`lama_video.outputs.check_output`: never the input, ``overwrite`` replaces only a
        file or a folder this tool wrote). Files are first written under random names created
        exclusively in the target's folder, then renamed into place.

        Args:
            output: where the output video goes (None or "" = do not save it).
            masks: a folder for the per-frame masks (``000000.png`` ...) and the painted ones
                (``keyframes/``), the layout ``lama-video remove --mask`` reads (None = skip).
            overwrite: ``true`` replaces existing outputs; without it an existing path is
                refused. Must be a JSON boolean.

        Returns:
            ``{"written": [paths]}``.

        Raises:
            HttpError: 400 nothing to save or a field of the wrong type; 403 outside the allowed
                folders, through a symlink, or not replaceable; 409 a path exists and
                ``overwrite`` is False (``exists`` lists them) or a removal is running.
        """
        if not isinstance(overwrite, bool):
            raise HttpError(400, f"overwrite must be true or false, got {json.dumps(overwrite)}")
        targets: dict[str, Path] = {}
        if output:
            targets["output"] = self.check_path(output, "output video")
        if masks:
            targets["masks"] = self.check_path(masks, "masks folder")
        if not targets:
            raise HttpError(400, "nothing to save; give an output video path or a masks folder")
        with self._lock:
            if self._job.state == "running" and self._job.kind == "remove":
                raise HttpError(409, "a removal is running; save when it has finished")
            result = self.work / "result"
            if self._folder_meta(result) is None:
                raise HttpError(400, "there is no result yet; press Remove first")
            video = result / self.result_name
            if "output" in targets and targets["output"].suffix.lower() != video.suffix:
                raise HttpError(
                    400,
                    f"output '{targets['output']}' must end with {video.suffix} (the result's "
                    "container); change the name",
                )
            out, folder = targets.get("output"), targets.get("masks")
            if out is not None and out.is_dir():
                raise HttpError(400, f"output '{out}' is a folder; expected a file name")
            if folder is not None and folder.exists() and not folder.is_dir():
                raise HttpError(400, f"masks path '{folder}' is a file; expected a folder")
            exists = [
                str(p) for p in targets.values() if p.is_file() or (p.is_dir() and any(p.iterdir()))
            ]
            if exists and not overwrite:
                raise HttpError(
                    409,
                    "already exists: " + ", ".join(exists) + "; confirm to overwrite or change "
                    "the path",
                    exists=exists,
                )
            try:
                if out is not None:
                    check_output(out, inputs=(self.input,), kind="file", overwrite=True)
                if folder is not None:
                    check_output(folder, inputs=(self.input,), kind="folder", overwrite=True)
            except EncodeError as err:
                raise HttpError(403, str(err)) from err
            written: list[str] = []
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{out.name}.", suffix=".lama-ui-tmp", dir=out.parent
                )
                try:
                    with os.fdopen(fd, "wb") as dst, video.open("rb") as src:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    publish(tmp, out)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                written.append(str(out))
            if folder is not None:
                folder.parent.mkdir(parents=True, exist_ok=True)
                new = Path(
                    tempfile.mkdtemp(
                        prefix=f".{folder.name}.", suffix=".lama-ui-tmp", dir=folder.parent
                    )
                )
                try:
                    (new / "keyframes").mkdir()
                    for sub in ("", "keyframes"):
                        for p in sorted((result / "masks" / sub).glob("*.png")):
                            if not p.is_symlink():
                                (new / sub / p.name).write_bytes(_read_regular(p))
                    mark_folder(new)
                    os.chmod(new, 0o777 & ~current_umask())
                    _replace_dir(new, folder)
                finally:
                    shutil.rmtree(new, ignore_errors=True)
                written.append(str(folder))
        log.info("saved %s", ", ".join(written))
        return {"written": written}
