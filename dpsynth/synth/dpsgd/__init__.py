"""Deep generators trained with DP-SGD on Opacus: ``dpctgan`` (CTGAN family, DP-SGD on the
discriminator) and ``dpvae`` (TVAE family, DP-SGD on the whole model, decoder kept).

They need the ``dpsgd`` extra (PyTorch and Opacus); importing this package does not import
torch, so the registry lists them everywhere and a fit without torch says what to install.
"""

from dpsynth.synth.dpsgd.ctgan import DPCTGAN
from dpsynth.synth.dpsgd.vae import DPVAE

__all__ = ["DPCTGAN", "DPVAE"]
