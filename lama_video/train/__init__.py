"""Training and fine-tuning of the inpainting generator with LaMa's recipe.

Submodules: :mod:`~lama_video.train.masks` (hole generators, numpy + OpenCV only),
:mod:`~lama_video.train.losses`, :mod:`~lama_video.train.discriminator`,
:mod:`~lama_video.train.data` and :mod:`~lama_video.train.trainer` (torch). Nothing is imported
here, so ``import lama_video.train.masks`` does not pull in torch.
"""
