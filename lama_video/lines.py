"""Long straight thin parts of a tracked object (a paraglider's lines, a kite's, a cable, a pole).

The mask tracker (:mod:`lama_video.propagate`) carries the parts of an object that are thinner
than its colour re-fit's core as a *thin layer*, moved by the object's motion. That keeps a limb
or a strap, but not a fan of lines hanging from a body: as the body moves, each line turns about
the point where it meets the body, and it lengthens or shortens where it runs out of the frame.
Splatted frame after frame, a one-pixel line breaks up and stays at its old angle, and after a
few tens of frames it is gone from the mask (a paraglider's lines on the shared DAVIS clip
``paragliding-launch``, one keyframe: all of their pixels covered on frame 1, 62 % on frame 10,
11 % on frame 59; carried as lines here, 93 % and 44 %).

Here each long straight part of the thin layer is a *line*: an anchor (its point nearest the
body), an angle and a length, or "to the frame's edge" when the part ran out of the frame. Lines
anchored together (the lines hanging from one riser) form a bundle. On each tracked frame a bundle
moves with the object's motion at its anchors, and its lines are re-aimed by the image: a line
thin enough for this layer is darker (or lighter) than what lies either side of it, so the
morphological black-hat (top-hat) of the frame, averaged along the line's far half (near the
anchor a bundle's lines overlap), peaks at its angle. The bundle turns and fans out (or in) as
one, then each line turns a little on its own; only small changes per frame are searched, so a
line does not jump to a neighbour. A line whose contrast at the keyframe is not clearly above its
surroundings' is not taken (nothing to aim by); it stays in the thin layer, as do lines hidden in
one stroke of the keyframe's mask (they are not found when the fan opens later).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.flow import dilate, to_gray

#: A line must be at least this long (working px) and this share of the body's size (the object
#: without its thin parts).
_MIN_LENGTH_PX = 40
_MIN_LENGTH_SHARE = 0.15
#: Its mean black-hat (top-hat) response along it at the keyframe must be this many times the
#: median response around the object.
_MIN_CONTRAST = 1.6
#: Largest turn of a bundle searched per frame (degrees), largest change of its spread (a share
#: of it), each line's own turn after that, and the step of the search.
_MAX_TURN_DEG = 0.6
_MAX_FAN = 0.03
_OWN_TURN_DEG = 0.2
_TURN_STEP_DEG = 0.1
#: Lines whose anchors lie within this many working px of each other hang from one point.
_BUNDLE_PX = 8.0

#: Side of the morphological kernel of the line response (working px): wider than a line.
_RESPONSE_PX = 5
#: The first pixels from the anchor are not scored (they lie on the body's outline).
_SKIP_PX = 3
#: A far end within this many px of the frame's border ran out of the frame; so did a segment
#: along the rest of whose way to the border the thin layer lies for this share of it.
_EDGE_PX = 4
_ON_MASK = 0.8
#: Segments whose anchor and angle agree within these are one line.
_SAME_PX, _SAME_DEG = 3.0, 0.5

#: Lines are aimed by the response along their far part, from this share of their length on:
#: near the anchor the lines of a bundle overlap and the response there does not tell them apart
#: (paragliding-launch, one keyframe, 60 frames: 88.9 % from the anchor, 90.1 % from 0.3 or 0.5,
#: 89.2 % from 0.7).
_AIM_FROM = 0.5


@dataclass
class _Line:
    x: float  # anchor (working px)
    y: float
    angle: float  # radians, from the anchor outwards
    length: float  # working px from the anchor to the far end (unused when to_edge)
    to_edge: bool  # runs on to the frame's edge
    dark: bool  # darker than its surroundings (black-hat), else lighter (top-hat)
    bundle: int = 0  # lines anchored together at the keyframe share a number and move as one


class StraightParts:
    """The long straight thin parts of one tracked object, at the tracker's working size."""

    def __init__(self, lines: list[_Line], height: int, width: int) -> None:
        self._lines = lines
        self.height = height
        self.width = width

    def __len__(self) -> int:
        return len(self._lines)

    @classmethod
    def find(
        cls,
        rgb: NDArray[np.uint8],
        body: NDArray[np.bool_],
        thin: NDArray[np.bool_],
        scale: float = 1.0,
    ) -> StraightParts | None:
        """The lines among ``thin``, a keyframe's thin parts, at ``1 / scale`` the working size
        (the keyframe's mask at a finer size than the working one, where a line is still one
        unbroken stroke), in ``rgb`` and beside ``body`` (the rest of the mask), both at working
        size. None when there are none."""
        h, w = body.shape
        if not thin.any() or not body.any():
            return None
        ys, xs = np.nonzero(body)
        size = max(int(np.ptp(ys)), int(np.ptp(xs))) + 1  # the body's, without its lines
        min_len = max(_MIN_LENGTH_PX, _MIN_LENGTH_SHARE * size) / scale
        segs = cv2.HoughLinesP(
            thin.view(np.uint8) * 255,
            1,
            np.pi / 720,
            threshold=int(min_len * 0.6),
            minLineLength=int(min_len),
            maxLineGap=3,
        )
        if segs is None:
            return None
        thin_small = cv2.resize(thin.view(np.uint8), (w, h), interpolation=cv2.INTER_AREA) > 0
        near_thin = dilate(thin_small, 1).astype(np.float32)  # 1 within a px of the thin layer
        grey = to_gray(rgb)
        dark_r, light_r = _responses(grey)
        around = dilate(body | thin_small, max(8, size // 4)) & ~(body | thin_small)
        if not around.any():
            return None
        dist = np.asarray(cv2.distanceTransform((~body).view(np.uint8), cv2.DIST_L2, 5), np.float32)
        floor = _MIN_CONTRAST * max(
            float(np.median(np.concatenate([dark_r[around], light_r[around]]))), 1.0
        )
        lines: list[_Line] = []
        # Segment ends at pixel centres, from full size to working size.
        for x1, y1, x2, y2 in (segs.reshape(-1, 4).astype(np.float64) + 0.5) * scale - 0.5:
            line = _anchored(x1, y1, x2, y2, dist, h, w)
            if line is None or line.length < min_len * scale:
                continue  # (also a segment across the body: a limb, not a line hanging from it)
            for dark, resp in ((True, dark_r), (False, light_r)):
                line.dark = dark
                contrast = _score(resp, line, h, w)
                if contrast >= floor:
                    break
            else:
                continue
            if not line.to_edge:
                # A segment that stops short of the edge where the mask's line goes on (Hough
                # breaks a line into pieces): it runs to the edge if the keyframe's thin layer
                # lies along nearly all of the rest of the way.
                beyond = copy.copy(line)
                beyond.to_edge = True
                if _score(near_thin, beyond, h, w, start=line.length) >= _ON_MASK:
                    line.to_edge = True
            if not any(_same(line, other) for other in lines):
                lines.append(line)
        if not lines:
            return None
        for number, group in enumerate(_bundles(lines)):
            for line in group:
                line.bundle = number
        return cls(lines, h, w)

    def step(self, rgb: NDArray[np.uint8], motion: NDArray[np.float32]) -> StraightParts:
        """The lines in the next frame (working size; a new object, this one is unchanged).

        The lines anchored together at the keyframe (a bundle hanging from one point) move by
        ``motion`` (the object's flow from the previous frame, (h, w, 2)) averaged over their
        anchors, and turn together: the bundle is turned by up to ``_MAX_TURN_DEG`` and fanned
        out or in by up to ``_MAX_FAN`` about its mean angle, to where the frame's line response
        along the far part of its lines (``_AIM_FROM``) is highest on average (one line alone
        would lock on its brightest neighbour as the fan opens); then each line by up to
        ``_OWN_TURN_DEG`` on its own. A line whose anchor leaves the frame is dropped.
        """
        grey = to_gray(rgb)
        responses = dict(zip((True, False), _responses(grey), strict=True))
        h, w = self.height, self.width
        groups: dict[int, list[_Line]] = {}
        for line in self._lines:
            groups.setdefault(line.bundle, []).append(copy.copy(line))
        moved: list[_Line] = []
        kept: list[list[_Line]] = []
        for bundle in groups.values():
            # One shift for the bundle: the object's motion averaged over its anchors (each
            # anchor's own would pull the lines of one bundle apart over the frames).
            shift = np.mean(
                [
                    motion[int(np.clip(round(ln.y), 0, h - 1)), int(np.clip(round(ln.x), 0, w - 1))]
                    for ln in bundle
                ],
                axis=0,
            )
            inside = []
            for ln in bundle:
                ln.x, ln.y = ln.x + float(shift[0]), ln.y + float(shift[1])
                if 0 <= ln.x <= w - 1 and 0 <= ln.y <= h - 1:
                    inside.append(ln)
            if inside:
                kept.append(inside)
                moved.extend(inside)
        turns = np.deg2rad(np.arange(-_MAX_TURN_DEG, _MAX_TURN_DEG + 1e-9, _TURN_STEP_DEG))
        fans = np.linspace(1.0 - _MAX_FAN, 1.0 + _MAX_FAN, 5)
        own = np.deg2rad(np.arange(-_OWN_TURN_DEG, _OWN_TURN_DEG + 1e-9, _TURN_STEP_DEG))
        for bundle in kept:
            centre = float(
                np.arctan2(
                    np.mean([np.sin(ln.angle) for ln in bundle]),
                    np.mean([np.cos(ln.angle) for ln in bundle]),
                )
            )
            best, choice = -np.inf, (0.0, 1.0)
            for fan in fans:
                for turn in turns:
                    score = np.mean(
                        [
                            _score(
                                responses[ln.dark],
                                _aimed(ln, centre, fan, turn),
                                h,
                                w,
                                far=_AIM_FROM,
                            )
                            for ln in bundle
                        ]
                    )
                    if score > best + 1e-6:
                        best, choice = float(score), (float(turn), float(fan))
            for ln in bundle:
                ln.angle = _aimed(ln, centre, choice[1], choice[0]).angle
                scores = [
                    _score(responses[ln.dark], _aimed(ln, ln.angle, 1.0, t), h, w, far=_AIM_FROM)
                    for t in own
                ]
                ln.angle += float(own[int(np.argmax(scores))])
        return StraightParts(moved, h, w)

    def mask(self) -> NDArray[np.bool_]:
        """(h, w) bool: the lines drawn one pixel wide."""
        out = np.zeros((self.height, self.width), np.uint8)
        for line in self._lines:
            x2, y2 = _far_end(line, self.height, self.width)
            cv2.line(out, (round(line.x), round(line.y)), (round(x2), round(y2)), 1, 1)
        return out.view(bool)


def _responses(grey: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Black-hat (thin dark structures) and top-hat (thin light ones) of a grey frame."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_RESPONSE_PX, _RESPONSE_PX))
    dark = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, k).astype(np.float32)
    light = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, k).astype(np.float32)
    return dark, light


def _anchored(
    x1: float, y1: float, x2: float, y2: float, dist: NDArray[np.float32], h: int, w: int
) -> _Line | None:
    """The segment as a line from its point nearest the body (``dist``: distance to it)."""
    angle = float(np.arctan2(y2 - y1, x2 - x1))
    ts = np.arange(-2.0 * (h + w), 2.0 * (h + w), 1.0)
    px, py = x1 + ts * np.cos(angle), y1 + ts * np.sin(angle)
    ok = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    if not ok.any():
        return None
    ts, px, py = ts[ok], px[ok], py[ok]
    d = dist[np.rint(py).astype(int), np.rint(px).astype(int)]
    # Where the line meets the body, seen from the segment: of its points nearest the body, the
    # one nearest the segment's middle (a line that runs on through the body is not anchored on
    # the body's far side).
    near = np.flatnonzero(d <= float(d.min()) + 1.0)
    mid_t = float(np.dot([(x1 + x2) / 2 - x1, (y1 + y2) / 2 - y1], [np.cos(angle), np.sin(angle)]))
    i = int(near[np.argmin(np.abs(ts[near] - mid_t))])
    ax, ay = float(px[i]), float(py[i])
    mid = np.array([(x1 + x2) / 2 - ax, (y1 + y2) / 2 - ay])
    if float(np.dot(mid, [np.cos(angle), np.sin(angle)])) < 0:
        angle += np.pi
    length = max(float(np.hypot(x1 - ax, y1 - ay)), float(np.hypot(x2 - ax, y2 - ay)))
    ex, ey = ax + length * np.cos(angle), ay + length * np.sin(angle)
    to_edge = min(ex, ey, w - 1 - ex, h - 1 - ey) < _EDGE_PX
    return _Line(ax, ay, angle, length, bool(to_edge), True)


def _far_end(line: _Line, h: int, w: int) -> tuple[float, float]:
    """Where the line ends: its length from the anchor, or the frame's edge."""
    c, s = np.cos(line.angle), np.sin(line.angle)
    if not line.to_edge:
        return line.x + line.length * c, line.y + line.length * s
    # The distance to the border along the direction (the anchor lies inside the frame).
    reach = []
    if c > 1e-9:
        reach.append((w - 1 - line.x) / c)
    elif c < -1e-9:
        reach.append(-line.x / c)
    if s > 1e-9:
        reach.append((h - 1 - line.y) / s)
    elif s < -1e-9:
        reach.append(-line.y / s)
    t = max(0.0, min(reach)) if reach else 0.0
    return line.x + t * c, line.y + t * s


def _score(
    resp: NDArray[np.float32],
    line: _Line,
    h: int,
    w: int,
    start: float = _SKIP_PX,
    far: float = 0.0,
) -> float:
    """Mean response along the line, from ``start`` px past the anchor (or ``far`` of its
    length, if further) to its far end."""
    x2, y2 = _far_end(line, h, w)
    n = int(np.hypot(x2 - line.x, y2 - line.y))
    start = max(start, far * n)
    if n <= start + 2:
        return 0.0
    ts = np.arange(start, n, 1.0, dtype=np.float32)
    px = (line.x + ts * np.cos(line.angle)).astype(np.float32)
    py = (line.y + ts * np.sin(line.angle)).astype(np.float32)
    v = cv2.remap(resp, px[None], py[None], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return float(v.mean())


def _aimed(line: _Line, centre: float, fan: float, turn: float) -> _Line:
    """The line with its angle fanned by ``fan`` about ``centre`` and turned by ``turn``."""
    out = copy.copy(line)
    out.angle = centre + fan * _wrapped(line.angle - centre) + turn
    return out


def _wrapped(angle: float) -> float:
    """``angle`` in (-pi, pi]."""
    return float(np.pi - (np.pi - angle) % (2 * np.pi))


def _bundles(lines: list[_Line]) -> list[list[_Line]]:
    """Lines grouped by their anchors: within ``_BUNDLE_PX`` of another line's, transitively."""
    groups: list[list[_Line]] = []
    for line in lines:
        near = [
            g for g in groups if any(np.hypot(line.x - o.x, line.y - o.y) <= _BUNDLE_PX for o in g)
        ]
        merged = [line]
        for g in near:
            merged.extend(g)
            groups.remove(g)
        groups.append(merged)
    return groups


def _same(a: _Line, b: _Line) -> bool:
    d_angle = abs(_wrapped(a.angle - b.angle))
    return bool(np.hypot(a.x - b.x, a.y - b.y) <= _SAME_PX and np.rad2deg(d_angle) <= _SAME_DEG)
