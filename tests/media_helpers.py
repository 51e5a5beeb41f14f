"""Test media built at test time from the fixtures: a clip with a subtitle stream."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

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
