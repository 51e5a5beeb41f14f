"""The HTTP side of the mask-painting page: static files and a small JSON API (standard library).

Binds to 127.0.0.1 only and answers only requests whose ``Host`` header names that address (or
``localhost``) with the server's port, so a web page on another site cannot reach it through DNS
rebinding; requests with a foreign ``Origin`` are refused as well.

API (``i`` is a 0-based frame number)::

    GET    /api/info              clip size, frame count, keyframes, track/result state, defaults
    GET    /api/job               the background job's progress, mask revision, proxy progress
    GET    /api/frame/i.jpg       proxy frame (JPEG)
    GET    /api/mask/i.png        painted mask of frame i (proxy-size RGBA PNG), 404 if none
    PUT    /api/mask/i            store the page's mask (PNG body); an empty mask deletes it
    DELETE /api/mask/i            delete the painted mask of frame i
    POST   /api/absent/i          an empty keyframe on frame i: the object is absent, tracks stop
    GET    /api/track/i.png       propagated mask of frame i (proxy-size RGBA PNG)
    GET    /api/result/i.jpg      frame i of the last removal (JPEG)
    GET    /api/review/i.jpg      the same, hole pixels tinted by where they came from (JPEG)
    GET    /api/result-mask/i.png the mask that removal used on frame i (proxy-size RGBA PNG)
    GET    /api/full/i.png        frame i at full size (of the last removal, else the input), PNG
    PUT    /api/plate/i           store a clean plate of frame i (full-size PNG/JPEG body)
    DELETE /api/plate/i           delete it
    POST   /api/track             start tracking (409 while a job runs)
    POST   /api/remove            start a removal (409 while a job runs)
    POST   /api/job/cancel        stop the running job
    POST   /api/save              {"output": path, "masks": path, "overwrite": bool}

Errors are ``{"error": "one line"}`` with the status of :class:`~lama_video.ui.session.HttpError`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from lama_video.ui.session import HttpError, Session

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 << 20  # a mask PNG of an 8K frame is a few MB
_STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_FRAME = re.compile(
    r"^/api/(frame|result|review|result-mask|mask|absent|track|full|plate)/(\d+)(\.jpg|\.png)?$"
)


def _static_bytes(name: str) -> bytes:
    return resources.files("lama_video.ui").joinpath("static").joinpath(name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"
    # Seconds a connection may stay silent (socket timeout): stalled uploads do not pile up.
    timeout = 30
    server_version = "lama-video-ui"

    # ---------------------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str, **extra: Any) -> None:
        self._json({"error": message, **extra}, status)

    def _body(self) -> bytes:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError as err:
            raise HttpError(400, "bad Content-Length") from err
        if n > MAX_BODY_BYTES:
            raise HttpError(413, f"request body of {n} bytes is too large")
        return self.rfile.read(n) if n > 0 else b""

    def _json_body(self) -> dict[str, Any]:
        body = self._body()
        try:
            data = json.loads(body or b"{}")
        except ValueError as err:
            raise HttpError(400, "the request body is not JSON") from err
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        return data

    def _trusted(self) -> bool:
        port = self.server.server_address[1]
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        if self.headers.get("Host", "") not in hosts:
            return False
        origin = self.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc in hosts

    def _dispatch(self, method: str) -> None:
        if not self._trusted():
            self._error(403, "requests are accepted from this machine's page only")
            return
        path = urlsplit(self.path).path
        try:
            self._route(method, path)
        except HttpError as err:
            self._error(err.status, err.message, **err.extra)
        except (BrokenPipeError, ConnectionResetError):  # the tab went away mid-answer
            pass
        except OSError as err:
            log.warning("%s %s failed: %s", method, path, err)
            self._error(500, f"{method} {path} failed: {err}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------------------- routes

    def _route(self, method: str, path: str) -> None:
        s: Session = self.server.session
        if method == "GET" and path in ("/", "/index.html"):
            self._send(200, _static_bytes("index.html"), _STATIC["index.html"])
            return
        if method == "GET" and path.startswith("/static/"):
            name = path[len("/static/") :]
            if name not in _STATIC:  # a fixed list: no path from the request reaches the disk
                raise HttpError(404, f"no such file: {path}")
            self._send(200, _static_bytes(name), _STATIC[name])
            return
        m = _FRAME.match(path)
        if m:
            self._frame_route(method, s, m.group(1), int(m.group(2)), m.group(3) or "")
            return
        if method == "GET" and path == "/api/info":
            self._json(s.state())
        elif method == "GET" and path == "/api/job":
            self._json(s.job_status())
        elif method == "POST" and path == "/api/track":
            self._json(s.start_track(), 202)
        elif method == "POST" and path == "/api/remove":
            self._json(s.start_remove(), 202)
        elif method == "POST" and path == "/api/detect":
            self._json(s.start_detect(), 202)
        elif method == "GET" and path == "/api/overlay.png":
            self._send(200, s.overlay_png(), "image/png")
        elif method in ("PUT", "POST") and path == "/api/overlay":
            kept = s.save_overlay(self._body())
            self._json({"kept": kept, "overlay": s.has_overlay(), **s.job_status()})
        elif method == "DELETE" and path == "/api/overlay":
            s.delete_overlay()
            self._json({"kept": False, "overlay": False, **s.job_status()})
        elif method == "POST" and path == "/api/job/cancel":
            self._json(s.cancel_job())
        elif method == "POST" and path == "/api/save":
            data = self._json_body()
            unknown = sorted(set(data) - {"output", "masks", "overwrite"})
            if unknown:
                raise HttpError(
                    400, f"unknown field {unknown[0]!r}; expected output, masks, overwrite"
                )
            overwrite = data.get("overwrite", False)
            self._json(s.save(data.get("output"), data.get("masks"), overwrite=overwrite))
        elif path.startswith("/api/"):
            raise HttpError(404 if method == "GET" else 405, f"no such API: {method} {path}")
        else:
            raise HttpError(404, f"no such page: {path}")

    def _frame_route(self, method: str, s: Session, kind: str, index: int, ext: str) -> None:
        if method == "GET" and kind == "frame" and ext == ".jpg":
            self._send(200, s.frame_jpeg(index), "image/jpeg", "private, max-age=3600")
        elif method == "GET" and kind == "result" and ext == ".jpg":
            self._send(200, s.result_jpeg(index), "image/jpeg")
        elif method == "GET" and kind == "review" and ext == ".jpg":
            self._send(200, s.review_jpeg(index), "image/jpeg")
        elif method == "GET" and kind == "mask" and ext == ".png":
            self._send(200, s.keyframe_png(index), "image/png")
        elif method == "GET" and kind == "result-mask" and ext == ".png":
            self._send(200, s.result_mask_png(index), "image/png")
        elif method == "GET" and kind == "track" and ext == ".png":
            self._send(200, s.track_png(index), "image/png")
        elif method in ("PUT", "POST") and kind == "mask" and not ext:
            kept = s.save_keyframe(index, self._body())
            self._keyframes_json(s, index, kept)
        elif method in ("PUT", "POST") and kind == "absent" and not ext:
            s.mark_absent(index)
            self._keyframes_json(s, index, True)
        elif method == "GET" and kind == "full" and ext == ".png":
            self._send(200, s.full_png(index), "image/png")
        elif method in ("PUT", "POST") and kind == "plate" and not ext:
            s.save_plate(index, self._body())
            self._json({"frame": index, "plates": s.plates(), **s.job_status()})
        elif method == "DELETE" and kind == "plate" and not ext:
            s.delete_plate(index)
            self._json({"frame": index, "plates": s.plates(), **s.job_status()})
        elif method == "DELETE" and kind in ("mask", "absent") and not ext:
            s.delete_keyframe(index)
            self._keyframes_json(s, index, False)
        else:
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {self.path} is not supported")

    def _keyframes_json(self, s: Session, index: int, kept: bool) -> None:
        self._json(
            {
                "frame": index,
                "kept": kept,
                "keyframes": s.keyframes(),
                "absent": s.absent_keyframes(),
                **s.job_status(),
            }
        )


class UiServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 serving one :class:`Session`.

    Args:
        session: the clip being edited.
        port: TCP port (0 = any free port; see :attr:`url`).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session: Session, port: int = 0) -> None:
        self.session = session
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (tests, scripts); stop with :meth:`stop`."""
        t = threading.Thread(target=self.serve_forever, name="lama-ui-http", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        """Stop serving, close the socket and the session (cancels a running job)."""
        self.shutdown()
        self.server_close()
        self.session.close()
