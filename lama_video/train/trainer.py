"""Fine-tuning (or training from scratch) of the LaMa generator with LaMa's recipe.

One step, as in LaMa's ``DefaultInpaintingTrainingModule`` (generator, then discriminator):

1. a batch of random crops with generated holes (:class:`~lama_video.train.data.CropSampler`);
2. generator: ``pred = G(cat(image * (1 - hole), hole))``; loss = known-pixel L1 + adversarial +
   feature matching + HRF perceptual (:mod:`~lama_video.train.losses`); Adam (lr 1e-3),
   gradient norm clipped to 1;
3. discriminator: non-saturating loss with the mask-aware fake target + R1 on reals; Adam (lr 1e-4),
   gradient norm clipped to 1.

On CUDA the forward passes run under bf16 autocast (the FFTs stay fp32, see ``model/ffc.py``);
elsewhere in fp32. Validation fills fixed holes in held-back frames and measures PSNR and SSIM
inside the holes, beside the same numbers for the starting model. Checkpoints use the big-lama
layout (:mod:`~lama_video.train.checkpoint`), so ``--model OUT`` loads the result anywhere, and
``models/last.ckpt`` resumes an interrupted run at the same step with the same random draws.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lama_video.errors import ConfigError, WeightsError
from lama_video.model.generator import FFCResNetGenerator, GeneratorArch
from lama_video.train import checkpoint as ckpt
from lama_video.train.config import (
    ARCHS,
    DEFAULT_ARCH,
    DEFAULT_DEVICE,
    DEFAULT_DILATE_PX,
    DEFAULT_MAX_FRAMES,
    FinetuneConfig,
)
from lama_video.train.data import Batch, CropSampler, FrameSet, hole_psnr, hole_ssim, split_holdout
from lama_video.train.discriminator import NLayerDiscriminator
from lama_video.train.losses import (
    HRFPerceptualLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    load_hrf_encoder,
    masked_l1_loss,
)
from lama_video.train.masks import MaskGenerator, get_preset, scale_mix

log = logging.getLogger(__name__)

# Discriminator (ndf, n_layers) per architecture: big-lama's pix2pixHD NLayerDiscriminator, and a
# narrower one beside the tiny generator.
_DISCRIMINATORS: dict[str, tuple[int, int]] = {"tiny": (16, 3)}
_DEFAULT_DISCRIMINATOR = (64, 4)


@dataclass
class TrainResult:
    """Outcome of :func:`finetune`.

    Attributes:
        out_dir: the run folder (``--model`` takes it).
        step: steps done in total.
        start_metrics: hole ``psnr``/``ssim`` of the starting model on the validation set.
        history: one dict per validation: ``step``, ``psnr``, ``ssim``.
        best_step: step whose generator is in ``models/best.ckpt``.
        seconds: wall time of this call's training loop.
        steps_per_s: training speed of this call.
    """

    out_dir: Path
    step: int
    start_metrics: dict[str, float] | None
    history: list[dict[str, float]]
    best_step: int
    seconds: float
    steps_per_s: float


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r} is not valid; expected auto|cpu|cuda|cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but CUDA is unavailable; use --device cpu")
    return dev


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Finetuner:
    """The training loop over in-memory frames (:func:`finetune` is the path from files).

    Args:
        generator: the generator to train (moved to ``device``, put in train mode).
        arch: its architecture (written to ``config.yaml``).
        train_frames: frames to draw crops from.
        val_frames: held-back frames (may be empty).
        out_dir: run folder for checkpoints and ``metrics.jsonl``.
        cfg: run settings.
        device: where to train.
        discriminator: None = a new big-lama PatchGAN (narrower for the tiny generator).
        hrf_encoder: frozen encoder for the HRF perceptual loss; required when its weight > 0.
        notes: extra scalars written to ``config.yaml`` (e.g. where the start weights came from).
    """

    def __init__(
        self,
        generator: FFCResNetGenerator,
        arch: GeneratorArch,
        train_frames: FrameSet,
        val_frames: FrameSet,
        out_dir: str | Path,
        cfg: FinetuneConfig,
        *,
        device: torch.device,
        discriminator: nn.Module | None = None,
        hrf_encoder: nn.Module | None = None,
        notes: dict[str, object] | None = None,
    ) -> None:
        cfg.validate()
        if cfg.crop_px % generator.size_multiple:
            raise ConfigError(
                f"crop {cfg.crop_px} px is not a multiple of {generator.size_multiple}, which this "
                "generator needs; pick e.g. 256"
            )
        self.cfg, self.arch, self.device = cfg, arch, device
        self.out_dir = Path(out_dir)
        self.notes = dict(notes or {})
        self.amp_dtype = _amp_dtype(cfg.precision, device)
        self.G = generator.to(device).train().requires_grad_(True)
        if discriminator is None:
            torch.manual_seed(cfg.seed + 1)
            ndf, n_layers = _DISCRIMINATORS.get(self._arch_name(), _DEFAULT_DISCRIMINATOR)
            discriminator = NLayerDiscriminator(3, ndf=ndf, n_layers=n_layers)
        self.D = discriminator.to(device).train()
        self.hrf: HRFPerceptualLoss | None = None
        if cfg.losses.hrf_perceptual > 0:
            if hrf_encoder is None:
                raise ConfigError("the HRF perceptual loss has weight > 0 but no encoder was given")
            self.hrf = HRFPerceptualLoss(hrf_encoder, weight=cfg.losses.hrf_perceptual).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d)
        self.rng = np.random.default_rng(cfg.seed)
        mix = scale_mix(get_preset(cfg.mask_preset), cfg.crop_px)
        self.sampler = CropSampler(
            train_frames, crop_px=cfg.crop_px, masks=MaskGenerator(mix, rng=self.rng), rng=self.rng
        )
        self.val_batch: Batch | None = None
        if len(val_frames):
            # Validation crops and holes are fixed by the seed and never touch the training draws.
            val_rng = np.random.default_rng([cfg.seed, 1])
            val_sampler = CropSampler(
                val_frames, crop_px=cfg.crop_px, masks=MaskGenerator(mix, rng=val_rng), rng=val_rng
            )
            parts = [val_sampler.crop(i) for i in range(len(val_frames))]
            ignore = None
            if val_frames.objects is not None:
                ignore = torch.stack([p[2] for p in parts])  # type: ignore[misc]
            self.val_batch = Batch(
                torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]), ignore
            )
        self.step = 0
        self.start_metrics: dict[str, float] | None = None
        self.history: list[dict[str, float]] = []
        self.best: tuple[float, int] | None = None  # (psnr, step) of models/best.ckpt

    def _arch_name(self) -> str:
        return next((k for k, v in ARCHS.items() if v == self.arch), "custom")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------------------------------

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One generator step and one discriminator step on ``batch``; returns the losses."""
        w = self.cfg.losses
        b = batch.to(self.device)
        img, hole, ign = b.images, b.holes, b.ignore
        x = torch.cat([img * (1 - hole), hole], dim=1)

        self.D.requires_grad_(False)
        with self._autocast():
            pred = self.G(x)
            fake_logits, fake_feats = self.D(pred)
            with torch.no_grad():
                _, real_feats = self.D(img)
            hrf = self.hrf(pred, img, ignore=ign) if self.hrf is not None else None
        pred32 = pred.float()
        l1 = masked_l1_loss(
            pred32, img, hole, weight_known=w.l1_known, weight_missing=w.l1_missing, ignore=ign
        )
        adv = generator_adversarial_loss(fake_logits, weight=w.adversarial)
        fm = feature_matching_loss(fake_feats, real_feats, ignore=ign) * w.feature_matching
        g_loss = l1 + adv + fm + (hrf.float() if hrf is not None else 0.0)
        self.opt_g.zero_grad(set_to_none=True)
        if not torch.isfinite(g_loss):
            self.D.requires_grad_(True)
            raise FloatingPointError(f"generator loss is {float(g_loss)} at step {self.step + 1}")
        g_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), self.cfg.grad_clip)
        self.opt_g.step()
        self.D.requires_grad_(True)

        real = img.detach().requires_grad_(True)
        with self._autocast():
            real_logits, _ = self.D(real)
            fake_logits_d, _ = self.D(pred.detach())
        d_loss, d_metrics = discriminator_adversarial_loss(
            real_logits, fake_logits_d, hole, real_images=real, gp_coef=w.gp_coef, ignore=ign
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.D.parameters(), self.cfg.grad_clip)
        self.opt_d.step()
        self.step += 1
        return {
            "g": float(g_loss.detach()),
            "l1": float(l1.detach()),
            "adv": float(adv.detach()),
            "fm": float(fm.detach()),
            "hrf": float(hrf.detach()) if hrf is not None else 0.0,
            "d": float(d_loss.detach()),
            "r1": d_metrics["r1"],
        }

    @torch.no_grad()
    def evaluate(self) -> dict[str, float] | None:
        """Hole PSNR (dB) and SSIM of the current generator (eval mode) on the validation set."""
        if self.val_batch is None:
            return None
        b = self.val_batch.to(self.device)
        was_training = self.G.training
        self.G.eval()
        preds = []
        with self._autocast():
            for i in range(0, b.images.shape[0], self.cfg.batch_size):
                img, hole = (
                    b.images[i : i + self.cfg.batch_size],
                    b.holes[i : i + self.cfg.batch_size],
                )
                preds.append(self.G(torch.cat([img * (1 - hole), hole], dim=1)).float())
        self.G.train(was_training)
        pred = torch.cat(preds).clamp(0, 1)
        region = b.holes if b.ignore is None else b.holes * (1 - b.ignore)
        out = b.holes * pred + (1 - b.holes) * b.images
        return {"psnr": hole_psnr(out, b.images, region), "ssim": hole_ssim(out, b.images, region)}

    # ------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs to continue exactly where this run is."""
        return {
            "step": self.step,
            "arch": asdict(self.arch),
            "discriminator_arch": {
                "ndf": self.D.model0[0].out_channels,  # type: ignore[index,union-attr]
                "n_layers": getattr(self.D, "n_layers", 4),
            },
            "generator": ckpt._cpu_state(self.G),
            "discriminator": ckpt._cpu_state(self.D),
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "rng": self.rng.bit_generator.state,
            "config": {k: v for k, v in asdict(self.cfg).items() if k != "losses"},
            "losses": asdict(self.cfg.losses),
            "start_metrics": self.start_metrics,
            "history": self.history,
            "best": list(self.best) if self.best is not None else None,
            "notes": self.notes,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state` (networks, optimizers, step, random draws, metrics)."""
        self.G.load_state_dict(state["generator"], strict=True)
        self.D.load_state_dict(state["discriminator"], strict=True)
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.rng.bit_generator.state = state["rng"]
        self.step = int(state["step"])
        self.start_metrics = state.get("start_metrics")
        self.history = list(state.get("history") or [])
        best = state.get("best")
        self.best = (float(best[0]), int(best[1])) if best else None

    def _release(self, psnr: float) -> None:
        self.best = (psnr, self.step)
        notes = {**self.notes, "step": self.step}
        if not math.isnan(psnr):
            notes["val_hole_psnr_db"] = round(psnr, 3)
        ckpt.save_release(self.out_dir, self.G, self.arch, notes)

    def save(self) -> None:
        """Write ``models/last.ckpt`` (and, without validation, the latest ``best.ckpt``)."""
        if self.val_batch is None:
            self._release(math.nan)  # no validation: the latest generator is the result
        ckpt.save_last(self.out_dir, self.state())

    def _record(self, metrics: dict[str, float]) -> None:
        row = {"step": self.step, **metrics}
        self.history.append(row)
        line = dict(row)
        if self.start_metrics:
            line.update({f"start_{k}": v for k, v in self.start_metrics.items()})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with (self.out_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        log.info(
            "step %d: hole PSNR %.2f dB, SSIM %.4f (start %s)",
            self.step,
            metrics["psnr"],
            metrics["ssim"],
            self.start_metrics,
        )
        if self.best is None or metrics["psnr"] >= self.best[0]:
            self._release(metrics["psnr"])  # models/best.ckpt: best hole PSNR so far

    def run(
        self,
        progress: Callable[[int, dict[str, float]], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """Train up to ``cfg.steps`` steps (from :attr:`step`).

        Args:
            progress: called after every step with (step, losses).
            stop: polled after every step; True stops the run like Ctrl-C, but between steps, so
                the saved state resumes exactly (the CLI sets it from a SIGINT handler).

        Raises:
            KeyboardInterrupt: Ctrl-C or ``stop()``; ``models/last.ckpt`` was saved first, at the
                last finished step.
        """
        if self.start_metrics is None and self.step == 0:
            self.start_metrics = self.evaluate()
        t0, first = time.perf_counter(), self.step
        try:
            while self.step < self.cfg.steps:
                losses = self.train_step(self.sampler.batch(self.cfg.batch_size))
                if progress is not None:
                    progress(self.step, losses)
                done = self.step == self.cfg.steps
                if self.val_batch is not None and (self.step % self.cfg.val_every == 0 or done):
                    self._record(self.evaluate())  # type: ignore[arg-type]
                if self.step % self.cfg.save_every == 0 or done:
                    self.save()
                if stop is not None and stop() and not done:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.save()
            log.warning(
                "interrupted at step %d; models/last.ckpt saved (resume with --resume)", self.step
            )
            raise
        seconds = time.perf_counter() - t0
        return TrainResult(
            out_dir=self.out_dir,
            step=self.step,
            start_metrics=self.start_metrics,
            history=self.history,
            best_step=self.best[1] if self.best else self.step,
            seconds=seconds,
            steps_per_s=(self.step - first) / seconds if seconds > 0 else 0.0,
        )


def finetune(
    *,
    data: Sequence[str | Path],
    out_dir: str | Path,
    cfg: FinetuneConfig | None = None,
    model: str | Path | None = None,
    arch: str = DEFAULT_ARCH,
    mask: str | Path | None = None,
    dilate_px: int = DEFAULT_DILATE_PX,
    max_frames: int = DEFAULT_MAX_FRAMES,
    device: str = DEFAULT_DEVICE,
    resume: bool = False,
    discriminator: str | Path | None = None,
    hrf_weights: str | Path | None = None,
    trust_checkpoint: bool = False,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    load_progress: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune LaMa weights (``model``) or train a new generator (``arch``) on frames.

    Args:
        data: folders of images and/or videos.
        out_dir: run folder; gets ``config.yaml``, ``models/best.ckpt``, ``models/last.ckpt``,
            ``metrics.jsonl``.
        cfg: run settings (default :class:`FinetuneConfig`).
        model: weights to start from (registry name or path, see ``load_model``); None = new
            generator of architecture ``arch``.
        arch: a key of :data:`ARCHS`, used when ``model`` is None.
        mask: object masks of the single ``data`` clip (its own background becomes the data).
        dilate_px: growth of those object masks.
        max_frames: frames kept per data source.
        device: auto | cpu | cuda | cuda:N.
        resume: continue ``out_dir/models/last.ckpt`` (same data and settings expected).
        discriminator: discriminator weights to start from (LaMa training checkpoint or ours).
        hrf_weights: ``encoder_epoch_20.pth`` of the HRF loss (default: the cache folder).
        trust_checkpoint: allow ``model`` to run code (full unpickling, TorchScript; trusted
            files only).
        progress: called after each step with (step, losses).
        load_progress: called with 1 per decoded training frame.
        stop: polled after each step; True saves and raises KeyboardInterrupt (see
            :meth:`Finetuner.run`).

    Raises:
        ConfigError: bad settings, an existing run without ``resume``, or a model that cannot be
            trained (TorchScript).
        WeightsError: unreadable weights, missing HRF encoder weights.
        VideoOpenError, MaskError: unreadable data or masks.
    """
    from lama_video.train.data import load_frames

    cfg = cfg or FinetuneConfig()
    cfg.validate()
    dev = resolve_device(device)
    out = Path(out_dir)
    state = None
    if (out / ckpt.LAST_NAME).exists():
        if not resume:
            raise ConfigError(
                f"{str(out)!r} already holds a training run (models/last.ckpt); pass --resume to "
                "continue it, or choose another output folder"
            )
        state = ckpt.load_last(out)
    elif resume:
        raise ConfigError(f"--resume given but {str(out / ckpt.LAST_NAME)!r} does not exist")

    encoder = load_hrf_encoder(hrf_weights) if cfg.losses.hrf_perceptual > 0 else None
    notes: dict[str, object] = {}
    if state is not None:
        gen_arch = GeneratorArch(**state["arch"])
        generator = FFCResNetGenerator.from_arch(gen_arch)
        d_arch = state["discriminator_arch"]
        disc: nn.Module | None = NLayerDiscriminator(
            3, ndf=d_arch["ndf"], n_layers=d_arch["n_layers"]
        )
        notes = dict(state.get("notes") or {})
    elif model is not None:
        from lama_video.model.weights import load_model

        loaded = load_model(model, trust_checkpoint=trust_checkpoint)
        if loaded.kind != "generator" or loaded.arch is None:
            raise ConfigError(
                f"{str(model)!r} is a {loaded.kind} model, which cannot be fine-tuned; use the "
                "official big-lama folder/checkpoint (config.yaml + models/best.ckpt) instead"
            )
        generator, gen_arch = loaded.module, loaded.arch  # type: ignore[assignment]
        notes["start_model"] = str(loaded.path)
        disc = None
    else:
        if arch not in ARCHS:
            raise ConfigError(f"--arch {arch!r} is unknown; expected one of {', '.join(ARCHS)}")
        gen_arch = ARCHS[arch]
        torch.manual_seed(cfg.seed)
        generator = FFCResNetGenerator.from_arch(gen_arch)
        notes["start_model"] = f"new {arch}"
        disc = None
    if discriminator is not None and state is None:
        ndf, n_layers = _DISCRIMINATORS.get(
            next((k for k, v in ARCHS.items() if v == gen_arch), ""), _DEFAULT_DISCRIMINATOR
        )
        disc = NLayerDiscriminator(3, ndf=ndf, n_layers=n_layers)
        d_state = ckpt.load_discriminator_state(discriminator)
        try:
            disc.load_state_dict(d_state, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise WeightsError(
                f"discriminator weights {str(discriminator)!r} do not match the PatchGAN "
                f"(ndf {ndf}, {n_layers} layers): {first}"
            ) from err

    frames = load_frames(
        data, mask=mask, dilate_px=dilate_px, max_frames=max_frames, progress=load_progress
    )
    train_idx, val_idx = split_holdout(len(frames), cfg.val_frames)
    trainer = Finetuner(
        generator,
        gen_arch,
        frames.subset(train_idx),
        frames.subset(val_idx),
        out,
        cfg,
        device=dev,
        discriminator=disc,
        hrf_encoder=encoder,
        notes=notes,
    )
    if state is not None:
        trainer.load_state(state)
        log.info("resuming %s at step %d of %d", out, trainer.step, cfg.steps)
    return trainer.run(progress, stop)
