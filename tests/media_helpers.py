"""Test media built at test time from the fixtures: subtitles, a 10-bit clip, anamorphic pixels,
interlaced fields, EXIF-oriented photos."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

MEDIA = Path(__file__).parent / "fixtures" / "media"

# An ASS header: FFmpeg's text subtitle encoders (SRT, mov_text) parse one before they open.
_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\n"
    b"Style: Default,Arial,16\n\n[Events]\nFormat: Layer, Start, End, Style, Text\n"
)
_CUES = ((0.1, b"first line"), (0.6, b"second line"), (1.2, b"third line"))  # s, text


def with_subtitles(dst: Path, codec: str) -> Path:
    """``aac.mp4``'s video and audio packets remuxed into ``dst`` with a subtitle stream of
    ``codec`` (tagged English) holding three cues of 0.4 s within the clip's 1.5 s."""
    with av.open(str(MEDIA / "aac.mp4")) as inp, av.open(str(dst), "w") as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        sub = out.add_stream(codec)
        sub.codec_context.subtitle_header = _ASS_HEADER
        sub.time_base = Fraction(1, 1000)
        sub.metadata["language"] = "eng"
        cues = list(_CUES)
        for pkt in inp.demux():
            if pkt.dts is None:
                continue
            while cues and cues[0][0] <= pkt.dts * pkt.time_base:
                at, text = cues.pop(0)
                # mov_text samples start with the text's length (16-bit big-endian).
                data = len(text).to_bytes(2, "big") + text if codec == "mov_text" else text
                cue = av.Packet(data)
                cue.stream, cue.time_base = sub, Fraction(1, 1000)
                cue.pts = cue.dts = round(at * 1000)
                cue.duration = 400
                out.mux(cue)
            pkt.stream = mapping[pkt.stream.index]
            out.mux(pkt)
    return dst


def subtitle_packets(path: Path) -> list[tuple[Fraction, bytes]]:
    """(pts in seconds, payload) of the first subtitle stream's packets, in file order."""
    with av.open(str(path)) as c:
        if not c.streams.subtitles:
            return []
        s = c.streams.subtitles[0]
        return [(p.pts * p.time_base, bytes(p)) for p in c.demux(s) if p.pts is not None]


def ten_bit_clip(dst: Path, n: int = 6, width: int = 1024, height: int = 64) -> Path:
    """A 10-bit HEVC clip (``yuv420p10le``, BT.2020 / HLG tags) of a horizontal grey ramp over
    877 of the 10-bit levels (64-940), with a bright square moving across it: what an 8-bit
    pipeline turns into steps of 4 levels."""
    ramp = np.rint(np.linspace(64, 940, width)).astype(np.uint16)
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p10le"
        s.codec_context.color_primaries = 9  # BT.2020
        s.codec_context.color_trc = 18  # HLG
        s.codec_context.colorspace = 9
        s.options = {"x265-params": "log-level=error", "crf": "4"}
        chroma = np.full((height // 2, width // 2), 512, np.uint16).astype("<u2").tobytes()

        def frame(t: int) -> av.VideoFrame:
            y = np.tile(ramp, (height, 1))
            y[16:48, 100 + 40 * t : 132 + 40 * t] = 900
            f = av.VideoFrame(width, height, "yuv420p10le")
            f.planes[0].update(y.astype("<u2").tobytes())
            f.planes[1].update(chroma)
            f.planes[2].update(chroma)
            return f

        encode_frames(out, s, (frame(t) for t in range(n)))
    return dst


def anamorphic_clip(dst: Path, sar: Fraction = Fraction(16, 15), n: int = 5) -> Path:
    """A 720x576 H.264 clip whose pixels are shown ``sar`` wide (PAL 4:3: 16/15)."""
    rng = np.random.default_rng(3)
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 720, 576, "yuv420p"
        s.codec_context.sample_aspect_ratio = sar
        s.options = {"preset": "ultrafast"}
        pictures = (rng.integers(0, 256, (576, 720, 3), dtype=np.uint8) for _ in range(n))
        encode_frames(out, s, (av.VideoFrame.from_ndarray(p, format="rgb24") for p in pictures))
    return dst


def interlaced_clip(dst: Path, order: str = "tff", n: int = 6) -> Path:
    """A 320x240 H.264 clip coded as interlaced fields, ``order`` (tff / bff) shown first (as
    broadcast, DV and HDV cameras write): a bar that moves between the two fields."""
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast", "x264-params": f"interlaced=1:{order}=1"}
        pictures = []
        for t in range(n):
            p = np.full((240, 320, 3), 40, np.uint8)
            p[0::2, 20 + 12 * t : 60 + 12 * t] = 230  # one field's bar ...
            p[1::2, 26 + 12 * t : 66 + 12 * t] = 230  # ... and the other's, half a frame later
            pictures.append(av.VideoFrame.from_ndarray(p, format="rgb24"))
        encode_frames(out, s, pictures)
    return dst


#: HDR10 metadata as x265 takes it: a P3 mastering display at 1000 cd/m2, light levels 1000 / 400
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
MAX_CLL = "1000,400"


def hdr10_clip(dst: Path, n: int = 4) -> Path:
    """A 10-bit HEVC clip tagged PQ / BT.2020 with HDR10's static metadata (mastering display and
    light levels), as HDR10 cameras and phones write it."""
    with av.open(str(dst), "w") as out:
        s = out.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p10le"
        s.codec_context.color_primaries, s.codec_context.color_trc = 9, 16  # BT.2020, PQ
        s.codec_context.colorspace = 9
        s.options = {
            "x265-params": f"log-level=error:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}"
        }
        grey = np.full((240, 320, 3), 100, np.uint8)
        encode_frames(out, s, (av.VideoFrame.from_ndarray(grey, format="rgb24") for _ in range(n)))
    return dst


def resizing_clip(dst: Path) -> Path:
    """A raw H.264 stream that changes size midway (10 frames at 320x240, then 10 at 256x144),
    as a screen or stream capture that rescaled writes it."""
    data = b""
    for w, h in ((320, 240), (256, 144)):
        part = dst.with_suffix(f".{w}.h264")
        with av.open(str(part), "w", format="h264") as out:
            s = out.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"preset": "ultrafast"}
            grey = np.full((h, w, 3), 90, np.uint8)
            encode_frames(
                out, s, (av.VideoFrame.from_ndarray(grey, format="rgb24") for _ in range(10))
            )
        data += part.read_bytes()
        part.unlink()
    dst.write_bytes(data)
    return dst


def exif_jpeg(dst: Path, bgr: np.ndarray, orientation: int) -> Path:
    """``bgr`` as a JPEG whose EXIF orientation tag says how to turn it for display (6: 90
    degrees clockwise, 8: counter-clockwise, 3: half a turn), as phones store portrait photos."""
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    tiff = (
        b"MM\x00\x2a"
        + struct.pack(">I", 8)
        + struct.pack(">H", 1)
        + struct.pack(">HHII", 0x0112, 3, 1, orientation << 16)
        + struct.pack(">I", 0)
    )
    app1 = b"\xff\xe1" + struct.pack(">H", 8 + len(tiff)) + b"Exif\x00\x00" + tiff
    data = jpg.tobytes()
    dst.write_bytes(data[:2] + app1 + data[2:])
    return dst


def encode_frames(out: Any, stream: Any, frames: Iterable[av.VideoFrame]) -> None:
    """Encode ``frames`` at 25 frames/s into ``stream`` of ``out``, and flush it."""
    for t, f in enumerate(frames):
        f.pts, f.time_base = t, Fraction(1, 25)
        for pkt in stream.encode(f):
            out.mux(pkt)
    for pkt in stream.encode():
        out.mux(pkt)
