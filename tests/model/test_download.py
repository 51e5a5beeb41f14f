"""Weights download against a local HTTP server: checksums, resume, atomic rename, errors."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.errors import WeightsError
from lama_video.model import weights as weights_mod
from lama_video.model.download import (
    download_file,
    download_weights,
    file_checksums,
    verify_weights,
)
from lama_video.model.weights import WeightsSpec

PAYLOAD = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@dataclass
class Server:
    """A local file server; ``mode``: "range" (honours Range), "full" (ignores it), "cut"
    (announces the whole file but closes the connection half-way)."""

    base_url: str
    mode: str = "range"
    ranges: list[str | None] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rsplit("/", 1)[-1] not in ("big-lama.zip", "big-lama.pt"):
                self.send_error(404)
                return
            header = self.headers.get("Range")
            state.ranges.append(header)
            start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
            if state.mode == "range" and header:
                if start >= len(PAYLOAD):
                    self.send_error(416)
                    return
                body = PAYLOAD[start:]
                self.send_response(206)
                end = len(PAYLOAD) - 1
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(PAYLOAD)}")
            else:
                body = PAYLOAD
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.mode == "cut":
                body = body[: len(body) // 2]
                state.mode = "range"  # the next attempt works
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def payload_spec(**changes: object) -> WeightsSpec:
    spec = replace(
        weights_mod.REGISTRY["big-lama"],
        sha256=PAYLOAD_SHA256,
        md5=PAYLOAD_MD5,
        size_bytes=len(PAYLOAD),
    )
    return replace(spec, **changes)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAMA_VIDEO_HOME", str(folder))
    return folder


def test_full_download_verified_and_renamed(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "w" / "big-lama.zip"
    seen: list[int] = []
    starts: list[tuple[int | None, int]] = []
    out = download_file(
        f"{server.base_url}/big-lama.zip",
        dest,
        spec=payload_spec(),
        progress=seen.append,
        on_start=lambda total, have: starts.append((total, have)),
    )
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("big-lama.zip.part").exists()
    assert sum(seen) == len(PAYLOAD) and starts == [(len(PAYLOAD), 0)]
    assert server.ranges == [None]


def test_registry_download_via_base_url_env(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(weights_mod.REGISTRY, "big-lama", payload_spec())
    monkeypatch.setenv("LAMA_VIDEO_WEIGHTS_BASE_URL", server.base_url)
    path = download_weights("big-lama")
    assert path == cache / "big-lama.zip" and path.read_bytes() == PAYLOAD
    assert weights_mod.find_weights("big-lama") == path
    # Present and valid: a second call does not download again.
    assert download_weights("big-lama") == path
    assert len(server.ranges) == 1


def test_checksum_mismatch_leaves_nothing(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real registry entry expects the released 381 MB file, not this payload.
    monkeypatch.setenv("LAMA_VIDEO_WEIGHTS_BASE_URL", server.base_url)
    with pytest.raises(WeightsError, match=r"corrupt .*deleted"):
        download_weights("big-lama")
    assert not (cache / "big-lama.zip").exists()
    assert not (cache / "big-lama.zip.part").exists()
    # Same with only a digest known (no size): sha256 decides.
    with pytest.raises(WeightsError, match="sha256"):
        download_file(
            f"{server.base_url}/big-lama.zip",
            cache / "x.zip",
            spec=payload_spec(size_bytes=None, md5=None, sha256="0" * 64),
        )
    assert list(cache.iterdir()) == []


def test_resume_partial_download_with_range(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "big-lama.zip"
    half = len(PAYLOAD) // 2
    dest.with_name("big-lama.zip.part").write_bytes(PAYLOAD[:half])
    starts: list[tuple[int | None, int]] = []
    download_file(
        f"{server.base_url}/big-lama.zip",
        dest,
        spec=payload_spec(),
        on_start=lambda total, have: starts.append((total, have)),
    )
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [f"bytes={half}-"]
    assert starts == [(len(PAYLOAD), half)]


def test_server_ignoring_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    server.mode = "full"
    dest = tmp_path / "big-lama.zip"
    dest.with_name("big-lama.zip.part").write_bytes(b"stale bytes of another file")
    download_file(f"{server.base_url}/big-lama.zip", dest, spec=payload_spec())
    assert dest.read_bytes() == PAYLOAD


def test_cut_connection_keeps_part_then_resumes(server: Server, tmp_path: Path) -> None:
    server.mode = "cut"
    dest = tmp_path / "big-lama.zip"
    part = dest.with_name("big-lama.zip.part")
    with pytest.raises(WeightsError, match="cannot download"):
        download_file(f"{server.base_url}/big-lama.zip", dest, spec=payload_spec(), timeout_s=5)
    assert not dest.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    download_file(f"{server.base_url}/big-lama.zip", dest, spec=payload_spec(), timeout_s=5)
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert server.ranges[-1] == f"bytes={len(PAYLOAD) // 2}-"


def test_unreachable_server_fails_fast_with_advice(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/big-lama.zip"
    t0 = time.monotonic()
    with pytest.raises(WeightsError) as info:
        download_file(url, tmp_path / "big-lama.zip", spec=payload_spec(), timeout_s=5)
    assert time.monotonic() - t0 < 5
    message = str(info.value)
    assert "\n" not in message and url in message and "--model PATH" in message
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="HTTP 404"):
        download_file(f"{server.base_url}/missing.zip", tmp_path / "m.zip", spec=payload_spec())


def test_verify_weights(tmp_path: Path) -> None:
    path = tmp_path / "big-lama.zip"
    path.write_bytes(PAYLOAD)
    assert file_checksums(path).sha256 == PAYLOAD_SHA256
    assert verify_weights(path, payload_spec()).ok is True
    bad = verify_weights(path, payload_spec(md5="0" * 32))
    assert bad.ok is False and bad.problems[0].startswith("md5")
    unknown = verify_weights(path, payload_spec(sha256=None, md5=None, size_bytes=None))
    assert unknown.ok is None


def test_cli_download_list_verify(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(weights_mod.REGISTRY, "big-lama", payload_spec())
    runner = CliRunner()
    result = runner.invoke(
        app, ["-q", "weights", "download", "big-lama", "--url", f"{server.base_url}/big-lama.zip"]
    )
    assert result.exit_code == 0, result.output
    assert str(cache / "big-lama.zip") in result.output

    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 0
    assert "present" in result.output and str(cache / "big-lama.zip") in result.output

    result = runner.invoke(app, ["weights", "verify"])
    assert result.exit_code == 0 and " ok" in result.output

    (cache / "big-lama.zip").write_bytes(PAYLOAD[:-1] + b"x")
    result = runner.invoke(app, ["weights", "verify", "big-lama"])
    assert result.exit_code == 1 and "MISMATCH" in result.output


def test_cli_download_offline_is_one_line_exit_1(cache: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        app, ["-q", "weights", "download", "--url", f"http://127.0.0.1:{port}/big-lama.zip"]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot download")
