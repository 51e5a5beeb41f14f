"""Settings of a training run, torch-free (the CLI's help and defaults come from here).

One place for each default of ``lama-video finetune`` and :func:`lama_video.train.trainer.finetune`:
the knobs of a run (:class:`FinetuneConfig`, :class:`LossWeights`), the architectures that can be
trained from scratch (:data:`ARCHS`) and the run's own defaults (``DEFAULT_*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lama_video.errors import ConfigError
from lama_video.model.registry import BIG_LAMA_ARCH, GeneratorArch

# Generator architectures for training from scratch (``--arch``). lama-fourier is the paper's
# 27M LaMa-Fourier (configs/training/lama-fourier.yaml: 9 blocks); tiny is for tests and benches.
ARCHS: dict[str, GeneratorArch] = {
    "big-lama": BIG_LAMA_ARCH,
    "lama-fourier": replace(BIG_LAMA_ARCH, n_blocks=9),
    "tiny": replace(BIG_LAMA_ARCH, ngf=8, n_blocks=1),
}

# Defaults of a run that are not FinetuneConfig knobs (where the data and the model come from).
DEFAULT_ARCH = "big-lama"  # generator trained from scratch when no --model is given
DEFAULT_DEVICE = "auto"  # CUDA when available
DEFAULT_DILATE_PX = 4  # growth of --mask objects (as remove's masks.dilate_px)
DEFAULT_MAX_FRAMES = 400  # frames kept per --data source, evenly spaced

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms; defaults from LaMa's big-lama training config."""

    l1_known: float = 10.0  # L1 weight on pixels outside the hole
    l1_missing: float = 0.0  # L1 weight on pixels inside the hole (big-lama: none)
    adversarial: float = 10.0  # non-saturating generator loss
    gp_coef: float = 0.001  # R1 gradient penalty on the discriminator's real inputs
    feature_matching: float = 100.0  # MSE between discriminator features of fake and real
    hrf_perceptual: float = 30.0  # high-receptive-field perceptual loss (0 = off)


@dataclass(frozen=True)
class FinetuneConfig:
    """Knobs of a training run (defaults: LaMa's big-lama recipe where it has one)."""

    steps: int = 2000  # optimisation steps in total (a resumed run continues up to this)
    batch_size: int = 4  # crops per step
    crop_px: int = 256  # crop side (big-lama trained on 256 px crops); multiple of 8
    lr_g: float = 1e-3  # generator Adam learning rate (big-lama)
    lr_d: float = 1e-4  # discriminator Adam learning rate (big-lama)
    grad_clip: float = 1.0  # gradient-norm clipping of both networks (big-lama)
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 elsewhere
    mask_preset: str = "big-lama"  # hole generator preset, lengths scaled to crop_px
    val_frames: int = 4  # frames held back for validation (0 = none)
    val_every: int = 250  # steps between validations (and at the end)
    save_every: int = 250  # steps between checkpoints (and at the end, and on Ctrl-C)
    seed: int = 0  # seeds crops, holes, and the weights of new networks
    losses: LossWeights = field(default_factory=LossWeights)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad value."""
        checks = [
            ("steps", self.steps >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("crop_px", self.crop_px >= 16 and self.crop_px % 8 == 0, "a multiple of 8, >= 16"),
            ("lr_g", self.lr_g > 0, "> 0"),
            ("lr_d", self.lr_d > 0, "> 0"),
            ("grad_clip", self.grad_clip > 0, "> 0"),
            ("precision", self.precision in PRECISIONS, " | ".join(PRECISIONS)),
            ("val_frames", self.val_frames >= 0, ">= 0"),
            ("val_every", self.val_every >= 1, ">= 1"),
            ("save_every", self.save_every >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"finetune {name} = {getattr(self, name)!r}; expected {expected}")
        from lama_video.train.masks import get_preset  # numpy/cv2 only

        get_preset(self.mask_preset)
