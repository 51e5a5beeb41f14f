"""Exemplar-based inpainting (PatchMatch texture synthesis): the engine that needs no weights.

The hole is filled with patches copied from the known part of the same frame, so texture (grass,
brick, fabric, stripes) continues into it instead of being smoothed over as Telea does. It is the
completion scheme of Wexler, Shechtman and Irani (2007, "Space-time completion of video") on one
image, with the nearest-neighbour search of PatchMatch (Barnes et al. 2009):

1. Work on the hole's bounding box grown by a context margin, so the cost follows the hole.
2. Build an image pyramid until the hole is a few pixels across; fill it there with the smooth
   harmonic interpolation of its border (:func:`~lama_video.flow_completion.harmonic_fill`).
3. At each level, coarse to fine, alternate a few times: (a) PatchMatch: for every patch that
   overlaps the hole, find a similar patch lying wholly in the known region (propagation of good
   matches from neighbours, then random search with a shrinking radius); (b) voting: each hole
   pixel becomes the weighted mean of the colours the overlapping patches' matches put there,
   better matches weighing more. The matches, doubled, start the next finer level.
4. Keep only the texture of the result: its frequencies above a gaussian (``structure_sigma_px``)
   go on top of the low frequencies of the hole's harmonic fill (the smooth membrane spanned by its
   border), so a copied patch never brings its own brightness (a bright patch in a shadow) while the
   detail stays.

Patch distances are sums of squared differences measured on a PCA projection of the patches (the
leading components of the known patches of the level, computed with a few filter passes), so the
search runs on all patches at once in numpy. A fixed seed makes the output depend on the input only.

Holes far apart are filled on separate crops (crops that overlap share one where that is no more
work). Large holes cap the work per level: one pass, then none (the coarse matches are carried up
and voted with full-resolution pixels). Where the crop holds no whole known patch, OpenCV Telea
fills the hole instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from lama_video.config import InpaintConfig
from lama_video.engines.base import WORKER_THREADS, fill_each
from lama_video.flow_completion import harmonic_fill

_SEED = 20070601  # any fixed number: the same frame and hole always give the same fill
_COARSE_PATCH_PX = 5  # patch side on the coarser pyramid levels (the finest uses patch_px)
_STOP_RADIUS_PX = 2.5  # coarsest level: no hole pixel farther than this from a known one
_MIN_SOURCES = 24  # a coarser level needs at least this many whole known patches
_MAX_LEVELS = 8  # pyramid depth cap (a 256x downscale)
_MAX_STEP = 8  # longest propagation jump (px); shorter ones follow
_PCA_SAMPLES = 1500  # known patches sampled to fit the PCA projection of a level
_PCA_ENERGY = 0.97  # keep the leading components that hold this share of the patch variance
_PCA_MIN_DIMS, _PCA_MAX_DIMS = 4, 16
_VOTE_QUANTILE = 0.25  # vote weights exp(-d / 2 sigma^2), sigma^2 = this quantile of the distances
# Work caps, in patches overlapping the hole (targets) on one level: past the first, one pass and a
# sparse first vote; past the second, no search (the coarse matches are carried up and voted).
_BIG_TARGETS = 36_000
_SEARCH_MAX_TARGETS = 150_000
_VOTE_CHUNK = 300_000  # (offset, pixel) pairs gathered at once while voting (bounds memory)
_NOWHERE = -(1 << 20)  # match coordinate of "no target": clamps onto the crop edge, never valid


@dataclass
class _Level:
    """One pyramid level of the working crop."""

    img: NDArray[np.float32]  # (H, W, 3) colours; what the hole holds is never read
    hole: NDArray[np.bool_]  # (H, W) True = to fill
    patch: int  # odd patch side
    valid: NDArray[np.bool_]  # (H, W) centres of patches lying wholly inside the crop and known


class _Grid:
    """Index tables of one level, fixed while the matches change.

    The targets are the patches that overlap the hole (their centres lie within ``r`` of it).
    ``target_map`` covers the level padded by ``pad`` on each side, flattened; it holds each
    target's index at its centre and ``n`` ("none") elsewhere, so that looking up a neighbour or
    a covering patch needs no bounds test.
    """

    def __init__(self, level: _Level) -> None:
        h, w = level.hole.shape
        r = level.patch // 2
        pad = max(r, _MAX_STEP)
        wp = w + 2 * pad
        near = cv2.dilate(level.hole.view(np.uint8), np.ones((level.patch,) * 2, np.uint8))
        ty, tx = np.nonzero(near)
        n = ty.size
        target_map = np.full((h + 2 * pad, wp), n, np.intp)
        target_map[ty + pad, tx + pad] = np.arange(n)
        hy, hx = np.nonzero(level.hole)
        dy, dx = (a.ravel() for a in np.mgrid[-r : r + 1, -r : r + 1])
        self.level = level
        self.h, self.w, self.wp = h, w, wp
        self.ty, self.tx = ty, tx
        self.n = n
        self.t_flat = ty * w + tx
        self.t_pad = (ty + pad) * wp + tx + pad
        self.target_map = target_map.reshape(-1)
        self.hole_idx = hy * w + hx
        self.hole_pad = (hy + pad) * wp + hx + pad
        self.offset = dy * w + dx  # a patch's pixels around its centre, in the level
        self.pad_offset = dy * wp + dx  # the same in the padded map
        # The corners, edge midpoints and centre of the patch: a vote with 9 of the P*P offsets
        # (5x cheaper for 7x7) that still blends where neighbouring matches disagree.
        self.sparse = np.flatnonzero((dy % r == 0) & (dx % r == 0)) if r else np.arange(1)
        self.valid_flat = level.valid.reshape(-1)
        self.sources = np.flatnonzero(self.valid_flat)
        self.planes = [np.ascontiguousarray(level.img[..., c]).reshape(-1) for c in range(3)]

    def flat_if_valid(
        self, y: NDArray[np.intp], x: NDArray[np.intp]
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Flat index of ``(y, x)`` clamped into the level, and whether it is a valid source.

        Valid sources lie at least ``r`` inside the level, so a clamped (outside) position lands
        on the edge and is reported invalid.
        """
        yc = np.clip(y, 0, self.h - 1)
        xc = np.clip(x, 0, self.w - 1)
        flat = yc * self.w + xc
        return flat, np.take(self.valid_flat, flat)


@dataclass
class _Field:
    """Nearest-neighbour field: the match of each target of a :class:`_Grid`."""

    my: NDArray[np.intp]  # (N,) centre of the matched source patch
    mx: NDArray[np.intp]
    dist: NDArray[np.float32]  # (N,) squared patch distance to it


class ExemplarEngine:
    """PatchMatch texture synthesis applied to each frame of a batch (implements ``ImageEngine``).

    Args:
        patch_px: side of the square patches at full resolution (odd, >= 3).
        iterations: search-and-vote passes on each pyramid level (the coarsest gets twice as many);
            2 by default: on 13 DAVIS pairs 1, 2 and 3 passes give the same fill quality, 1 pass
            in 0.7x the time of 3.
        seed: seed of the random search; the output depends only on the input and this number.
        fallback_radius_px: Telea radius used where the known region holds no whole patch.
        structure_sigma_px: the fill's frequencies below a gaussian of this sigma come from the
            hole's harmonic fill, those above from the copied patches (0 = patches alone).
    """

    def __init__(
        self,
        *,
        patch_px: int = 7,
        iterations: int = 2,
        seed: int = _SEED,
        fallback_radius_px: int = InpaintConfig().classical_radius_px,
        structure_sigma_px: float = 4.0,
    ) -> None:
        if int(patch_px) < 3 or int(patch_px) % 2 == 0:
            raise ValueError(f"patch_px must be an odd number >= 3, got {patch_px!r}")
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations!r}")
        if int(fallback_radius_px) < 1:
            raise ValueError(f"fallback_radius_px must be >= 1, got {fallback_radius_px!r}")
        self.patch_px = int(patch_px)
        self.iterations = int(iterations)
        self.seed = int(seed)
        if not float(structure_sigma_px) >= 0:
            raise ValueError(f"structure_sigma_px must be >= 0, got {structure_sigma_px!r}")
        self.fallback_radius_px = int(fallback_radius_px)
        self.structure_sigma_px = float(structure_sigma_px)
        self.name = "exemplar"

    def __repr__(self) -> str:
        return (
            f"ExemplarEngine(patch_px={self.patch_px}, iterations={self.iterations}, "
            f"seed={self.seed}, structure_sigma_px={self.structure_sigma_px})"
        )

    def inpaint(self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """Fill the holes of each frame with patches of its known part.

        Args:
            frames: (N, H, W, 3) uint8 RGB.
            masks: (N, H, W) bool, True = hole.

        Returns:
            (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.

        Raises:
            ValueError: ``frames``/``masks`` do not follow that contract.
        """
        # The patch statistics are small BLAS calls (a 147x147 covariance and its eigenvectors per
        # level); OpenBLAS threads spin after each one and starve the decode and encode threads
        # (854x480 clip, 2 cores: the whole removal 13.9 s with them, 10.3 s single-threaded).
        # Frames are filled on up to WORKER_THREADS threads (NumPy and OpenCV release the GIL; each
        # crop has its own seeded generator, so the fill is the same either way).
        with threadpool_limits(limits=1, user_api="blas"):
            return fill_each(frames, masks, self.fill_frame, threads=WORKER_THREADS)

    __call__ = inpaint

    def fill_frame(self, frame: NDArray[np.uint8], hole: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """Fill one frame.

        Args:
            frame: (H, W, 3) uint8 RGB.
            hole: (H, W) bool, True = to fill.

        Returns:
            (H, W, 3) uint8 RGB, equal to ``frame`` outside ``hole``.
        """
        out = frame.copy()
        h, w = hole.shape
        margin_base = 3 * self.patch_px
        # Holes far apart are filled separately, each on its own crop (the cost follows the holes,
        # not the frame). Groups whose crops overlap share one where their bounding box is no
        # larger than the crops together (:func:`_merged_boxes`): the specks that propagation
        # leaves unseen round an object are many small groups, and a crop's fixed cost (patch
        # statistics, descriptors, a pyramid) paid once for them cut the exemplar's time on the
        # speed benchmark's clip by 30 % (96 crops in its 16 fills, 23 after). Every hole pixel
        # inside a crop is filled there (none is a source), but only its groups' own are kept.
        grown = cv2.dilate(
            hole.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (margin_base,) * 2)
        )
        n_groups, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        boxes = []
        for g in range(1, n_groups):
            gx, gy, gw, gh = (int(v) for v in stats[g, :4])
            margin = margin_base + max(gw, gh) // 2
            boxes.append(
                (
                    max(0, gy - margin),
                    min(h, gy + gh + margin),
                    max(0, gx - margin),
                    min(w, gx + gw + margin),
                )
            )
        for (y0, y1, x0, x1), groups in _merged_boxes(boxes):
            crop_hole = np.ascontiguousarray(hole[y0:y1, x0:x1])
            # Box i holds the group labelled i + 1 (label 0 is the background).
            mine = crop_hole & np.isin(labels[y0:y1, x0:x1], [g + 1 for g in groups])
            # A fixed seed for each crop: the fill depends on the pixels only, not on the batch.
            rng = np.random.default_rng(self.seed)
            filled = self._fill_crop(frame[y0:y1, x0:x1], crop_hole, rng)
            np.copyto(out[y0:y1, x0:x1], filled, where=mine[..., None])
        return out

    def _on_structure(
        self, crop: NDArray[np.uint8], hole: NDArray[np.bool_], filled: NDArray[np.uint8]
    ) -> NDArray[np.uint8]:
        """Keep the fill's detail, take its low frequencies from a smooth (harmonic) fill.

        Copied patches carry their own brightness: a bright patch copied into a shadow is the
        most visible error an exemplar fill makes, and on real footage costs more than the
        texture gains (9 DAVIS pairs at 854x480 in the temporal engine: hole PSNR 18.8 with the
        patches alone, 20.3 with Telea's low frequencies, 20.5 with the harmonic fill's, which is
        also about 10x faster than Telea on a large hole). The split is a gaussian of sigma
        ``structure_sigma_px``: structure from the smooth fill, texture from the patches.
        """
        smooth = harmonic_fill(crop.astype(np.float32), hole)
        tex = filled.astype(np.float32)
        sigma = self.structure_sigma_px
        out = cv2.GaussianBlur(smooth, (0, 0), sigma) + tex - cv2.GaussianBlur(tex, (0, 0), sigma)
        res = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return np.where(hole[..., None], res, crop)

    def _fill_crop(
        self, crop: NDArray[np.uint8], hole: NDArray[np.bool_], rng: np.random.Generator
    ) -> NDArray[np.uint8]:
        """Fill ``hole`` in one crop (patches on a smooth structure); Telea where the crop holds no
        whole known patch."""
        patch = self.patch_px
        valid = _valid_sources(hole, patch)
        while not valid.any() and patch > 3:  # small crops: try smaller patches first
            patch -= 2
            valid = _valid_sources(hole, patch)
        if not valid.any():
            filled = cv2.inpaint(
                np.ascontiguousarray(crop),
                hole.view(np.uint8) * np.uint8(255),
                self.fallback_radius_px,
                cv2.INPAINT_TELEA,
            )
            return cast(NDArray[np.uint8], filled)
        levels = _pyramid(_Level(crop.astype(np.float32), hole.copy(), patch, valid))
        grid = _Grid(levels[-1])
        est = harmonic_fill(grid.level.img, grid.level.hole)
        nnf = _random_field(grid, rng)
        est, nnf = _synthesise(grid, est, nnf, self._passes(grid, coarsest=True), rng)
        for level in reversed(levels[:-1]):
            coarse, grid = grid, _Grid(level)
            nnf = _upsample_field(coarse, nnf, grid, rng)
            est = _vote(grid, nnf, None, sparse=grid.n > _BIG_TARGETS)
            passes = self._passes(grid, coarsest=False)
            if passes:
                est, nnf = _synthesise(grid, est, nnf, passes, rng)
        out = cast(NDArray[np.uint8], np.clip(np.rint(est), 0, 255).astype(np.uint8))
        if self.structure_sigma_px > 0:
            out = self._on_structure(crop, hole, out)
        return out

    def _passes(self, grid: _Grid, *, coarsest: bool) -> int:
        """Search-and-vote passes on a level: fewer as its hole grows (the work caps).

        Past ``_SEARCH_MAX_TARGETS`` a finer level only votes with the coarse matches carried up:
        real full-resolution pixels, blended at the seams, without a search.
        """
        if grid.n > _SEARCH_MAX_TARGETS:
            return 1 if coarsest else 0  # the coarsest level's random matches need one pass
        if grid.n > _BIG_TARGETS:
            return 1
        return self.iterations * (2 if coarsest else 1)


def _merged_boxes(
    boxes: list[tuple[int, int, int, int]],
) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """Crops ``(y0, y1, x0, x1)`` that overlap merged into their bounding box, where that box
    is no larger than the two crops together (the work does not grow, and the context stays
    local: a long line of small holes is not filled on one crop of the whole frame), until no
    such pair is left.

    Returns each merged box with the indices of the boxes it holds.
    """
    out = [(b, [i]) for i, b in enumerate(boxes)]
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                (a0, a1, a2, a3), ga = out[i]
                (b0, b1, b2, b3), gb = out[j]
                u = (min(a0, b0), max(a1, b1), min(a2, b2), max(a3, b3))
                overlap = a0 < b1 and b0 < a1 and a2 < b3 and b2 < a3
                area = (a1 - a0) * (a3 - a2) + (b1 - b0) * (b3 - b2)
                if overlap and (u[1] - u[0]) * (u[3] - u[2]) <= area:
                    out[i] = (u, ga + gb)
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


# ------------------------------------------------------------------------------------ pyramid


def _valid_sources(hole: NDArray[np.bool_], patch: int) -> NDArray[np.bool_]:
    """Centres of the ``patch`` x ``patch`` patches lying wholly inside the crop and known."""
    known = (~hole).view(np.uint8)
    kernel = np.ones((patch, patch), np.uint8)
    # Outside the crop counts as unknown (border value 0), so edge patches are not sources.
    eroded = cv2.erode(known, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cast(NDArray[np.bool_], eroded.view(np.bool_))


def _downsample(
    img: NDArray[np.float32], hole: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Halve a level: 2x2 means of the known pixels; a coarse pixel is a hole if any child is."""
    h, w = hole.shape
    hp, wp = h + (h & 1), w + (w & 1)
    known = np.zeros((hp, wp), np.float32)
    known[:h, :w] = ~hole
    in_hole = np.zeros((hp, wp), np.float32)
    in_hole[:h, :w] = hole
    acc = np.zeros((hp, wp, 3), np.float32)
    acc[:h, :w] = img * known[:h, :w, None]

    def block_sum(a: NDArray[np.float32]) -> NDArray[np.float32]:
        return cast(
            NDArray[np.float32], a.reshape(hp // 2, 2, wp // 2, 2, *a.shape[2:]).sum(axis=(1, 3))
        )

    coarse = block_sum(acc) / np.maximum(block_sum(known), 1.0)[..., None]
    return coarse.astype(np.float32), block_sum(in_hole) > 0


def _pyramid(finest: _Level) -> list[_Level]:
    """Levels from ``finest`` down to one where the hole is a few pixels across (finest first)."""
    levels = [finest]
    while len(levels) < _MAX_LEVELS:
        cur = levels[-1]
        dist = cv2.distanceTransform(cur.hole.view(np.uint8), cv2.DIST_L2, 3)
        if float(dist.max()) <= _STOP_RADIUS_PX:
            break
        img, hole = _downsample(cur.img, cur.hole)
        if min(hole.shape) < 2 * _COARSE_PATCH_PX:
            break
        valid = _valid_sources(hole, _COARSE_PATCH_PX)
        if int(np.count_nonzero(valid)) < _MIN_SOURCES:
            break
        levels.append(_Level(img, hole, _COARSE_PATCH_PX, valid))
    return levels


# ------------------------------------------------------------------------------ the NNF search


def _random_field(grid: _Grid, rng: np.random.Generator) -> _Field:
    """Each target matched to a random valid source patch."""
    src = grid.sources[rng.integers(0, grid.sources.size, grid.n)]
    return _Field(src // grid.w, src % grid.w, np.full(grid.n, np.inf, np.float32))


def _upsample_field(
    coarse: _Grid, coarse_nnf: _Field, grid: _Grid, rng: np.random.Generator
) -> _Field:
    """The coarse matches, doubled, start the next finer level (random where none fits)."""
    pad = (coarse.wp - coarse.w) // 2
    parent = np.take(coarse.target_map, (grid.ty // 2 + pad) * coarse.wp + grid.tx // 2 + pad)
    my = np.append(coarse_nnf.my, _NOWHERE)[parent] * 2 + (grid.ty & 1)
    mx = np.append(coarse_nnf.mx, _NOWHERE)[parent] * 2 + (grid.tx & 1)
    flat, ok = grid.flat_if_valid(my, mx)
    src = np.where(ok, flat, grid.sources[rng.integers(0, grid.sources.size, grid.n)])
    return _Field(src // grid.w, src % grid.w, np.full(grid.n, np.inf, np.float32))


def _pca_kernels(level: _Level, rng: np.random.Generator) -> list[list[NDArray[np.float32]]]:
    """Filters projecting a patch onto the leading principal components of the known patches.

    Returns:
        ``kernels[j][c]``: (P, P) float32 correlation kernel of component ``j`` on channel ``c``.
    """
    p, r = level.patch, level.patch // 2
    sy, sx = np.nonzero(level.valid)
    if sy.size > _PCA_SAMPLES:
        keep = rng.choice(sy.size, _PCA_SAMPLES, replace=False)
        sy, sx = sy[keep], sx[keep]
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    # (n, P*P, 3) -> (n, P*P*3): the patch vectors, ordered (row, column, channel).
    vecs = level.img[sy[:, None] + dy.ravel(), sx[:, None] + dx.ravel()].reshape(sy.size, -1)
    vecs -= vecs.mean(axis=0)
    evals, evecs = np.linalg.eigh((vecs.T @ vecs).astype(np.float64))  # ascending
    evals, evecs = evals[::-1], evecs[:, ::-1]
    total = float(evals.sum())
    k = 1 if total <= 1e-9 else int(np.searchsorted(np.cumsum(evals) / total, _PCA_ENERGY)) + 1
    k = int(np.clip(k, _PCA_MIN_DIMS, _PCA_MAX_DIMS))
    basis = evecs[:, :k].reshape(p, p, 3, k).astype(np.float32)
    return [[np.ascontiguousarray(basis[:, :, c, j]) for c in range(3)] for j in range(k)]


def _descriptors(
    img: NDArray[np.float32],
    kernels: list[list[NDArray[np.float32]]],
    out: NDArray[np.float32] | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> NDArray[np.float32]:
    """PCA coordinates of the patch centred on each pixel (edges mirrored).

    Args:
        img: (H, W, 3) float32 colours.
        kernels: from :func:`_pca_kernels`.
        out: (H, W, k) float32 to update in place; a new array when None.
        box: ``(y0, y1, x0, x1)``: recompute only the centres in this box (the rest of ``out`` is
            kept), reading the patches around them.

    Returns:
        ``out``, (H, W, k) float32.
    """
    h, w = img.shape[:2]
    if out is None:
        out = np.empty((h, w, len(kernels)), np.float32)
    y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
    r = kernels[0][0].shape[0] // 2
    # The box grown by the patch radius: centres inside the box see exactly what the full image
    # shows them (mirrored edges only where the box meets the crop's own edge).
    gy0, gy1, gx0, gx1 = max(0, y0 - r), min(h, y1 + r), max(0, x0 - r), min(w, x1 + r)
    planes = [np.ascontiguousarray(img[gy0:gy1, gx0:gx1, c]) for c in range(3)]
    inner = (slice(y0 - gy0, y1 - gy0), slice(x0 - gx0, x1 - gx0))
    for j, per_channel in enumerate(kernels):
        acc = _correlate(planes[0], per_channel[0])
        for c in (1, 2):
            acc += _correlate(planes[c], per_channel[c])
        out[y0:y1, x0:x1, j] = acc[inner]
    return out


def _correlate(plane: NDArray[np.float32], kernel: NDArray[np.float32]) -> NDArray[np.float32]:
    """``sum kernel(d) * plane(p + d)`` at each pixel ``p`` (edges mirrored), (H, W) float32."""
    return cast(NDArray[np.float32], cv2.filter2D(plane, -1, kernel, borderType=cv2.BORDER_REFLECT))


def _sq_dist(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise squared distance of two (n, k) arrays (``a`` is overwritten)."""
    a -= b
    return cast(NDArray[np.float32], np.einsum("ij,ij->i", a, a))


def _search(
    grid: _Grid,
    nnf: _Field,
    desc: NDArray[np.float32],
    steps: tuple[int, ...],
    rng: np.random.Generator,
) -> None:
    """One PatchMatch pass over all targets at once, in place: propagation, then random search.

    Args:
        grid: the level's index tables.
        nnf: the matches to improve; their distances are re-measured first (the estimate moved).
        desc: (H*W, k) patch descriptors of the current estimate.
        steps: propagation jumps (px), longest first.
        rng: source of the random search offsets.
    """
    n, w = grid.n, grid.w
    target_desc = np.take(desc, grid.t_flat, axis=0)
    nnf.dist = _sq_dist(np.take(desc, nnf.my * w + nnf.mx, axis=0), target_desc)
    # Entry n is "no target" (see _Grid.target_map): its match lies nowhere, so it is never valid.
    my = np.append(nnf.my, _NOWHERE)
    mx = np.append(nnf.mx, _NOWHERE)
    dist = nnf.dist

    def attempt(cy: NDArray[np.intp], cx: NDArray[np.intp]) -> None:
        flat, ok = grid.flat_if_valid(cy, cx)
        idx = np.flatnonzero(ok)
        d = _sq_dist(np.take(desc, flat[idx], axis=0), np.take(target_desc, idx, axis=0))
        better = d < dist[idx]
        win = idx[better]
        my[win] = cy[win]
        mx[win] = cx[win]
        dist[win] = d[better]

    # Propagation: a neighbour's match, shifted by the same step, is a candidate. All targets move
    # at once (not in scan order), so long jumps first carry good matches across the hole quickly.
    for step in steps:
        for sy, sx in ((0, step), (step, 0), (0, -step), (-step, 0)):
            nb = np.take(grid.target_map, grid.t_pad - (sy * grid.wp + sx))
            attempt(my[nb] + sy, mx[nb] + sx)
    # Random search around the current match, radius halving from the level's size down to 1.
    radius = max(grid.h, grid.w)
    while radius >= 1:
        attempt(
            my[:n] + rng.integers(-radius, radius + 1, n),
            mx[:n] + rng.integers(-radius, radius + 1, n),
        )
        radius //= 2
    nnf.my, nnf.mx = my[:n], mx[:n]


def _vote(
    grid: _Grid, nnf: _Field, weights: NDArray[np.float32] | None, *, sparse: bool = False
) -> NDArray[np.float32]:
    """Each hole pixel: the weighted mean of the colours the overlapping patches' matches put there.

    The target centred at ``p - d`` holds hole pixel ``p`` at offset ``d`` of its patch; its match
    proposes the colour at ``match + d``.

    Args:
        grid: the level's index tables.
        nnf: the matches.
        weights: (N,) weight of each target's proposals; None = all equal.
        sparse: take the votes of 9 patch offsets only (``_Grid.sparse``), not all P*P.

    Returns:
        (H, W, 3) float32: the level's known colours, and the votes' result in the hole.
    """
    n, m = grid.n, grid.hole_idx.size
    # Entry n is "no target": weight 0, and a source whose neighbourhood is inside the level.
    wt = np.zeros(n + 1, np.float32)
    wt[:n] = 1.0 if weights is None else weights
    src = np.append(nnf.my * grid.w + nnf.mx, grid.sources[0])
    acc = np.zeros((3, m), np.float32)
    wsum = np.zeros(m, np.float32)
    which = grid.sparse if sparse else np.arange(grid.offset.size)
    step = max(1, _VOTE_CHUNK // max(1, m))
    for k0 in range(0, which.size, step):
        ks = which[k0 : k0 + step]
        cover = np.take(grid.target_map, grid.hole_pad[None, :] - grid.pad_offset[ks, None])
        wk = np.take(wt, cover)
        at = np.take(src, cover)
        at += grid.offset[ks, None]
        for c in range(3):
            acc[c] += np.einsum("km,km->m", wk, np.take(grid.planes[c], at))
        wsum += wk.sum(axis=0)
    out = grid.level.img.copy()
    # Every hole pixel is the centre of a target, and weights stay above 0: wsum > 0.
    out.reshape(-1, 3)[grid.hole_idx] = (acc / np.maximum(wsum, 1e-30)).T
    return out


def _synthesise(
    grid: _Grid, est: NDArray[np.float32], nnf: _Field, n_iter: int, rng: np.random.Generator
) -> tuple[NDArray[np.float32], _Field]:
    """``n_iter`` passes of PatchMatch search then voting on one level.

    Args:
        grid: the level's index tables.
        est: (H, W, 3) float32 current estimate (known colours outside the hole).
        nnf: the matches to start from.
        n_iter: passes.
        rng: source of the random search offsets.

    Returns:
        The new estimate and matches.
    """
    kernels = _pca_kernels(grid.level, rng)

    # Source patches never change: describe the whole level once, then only around the targets.
    desc = _descriptors(est, kernels)
    box = (int(grid.ty.min()), int(grid.ty.max()) + 1, int(grid.tx.min()), int(grid.tx.max()) + 1)
    longest = 1
    while longest * 2 <= min(_MAX_STEP, max(grid.h, grid.w) // 4):
        longest *= 2
    jumps = tuple(longest >> i for i in range(longest.bit_length()))  # e.g. (8, 4, 2, 1)
    for it in range(n_iter):
        if it > 0:
            _descriptors(est, kernels, desc, box)
        # Long jumps only on a level's first pass; later passes refine locally.
        _search(grid, nnf, desc.reshape(grid.h * grid.w, -1), jumps if it == 0 else (1,), rng)
        sigma2 = float(np.quantile(nnf.dist, _VOTE_QUANTILE)) + 1e-3
        weights = np.exp(-np.minimum(nnf.dist / (2.0 * sigma2), 50.0)).astype(np.float32)

        est = _vote(grid, nnf, weights)
    return est, nnf
