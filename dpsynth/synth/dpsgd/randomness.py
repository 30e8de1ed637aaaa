"""The randomness of a DP-SGD fit: where DP-SGD's noise and Poisson sampling come from
(:func:`make_randomness`: a cryptographically secure keystream by default, :mod:`.secure_noise`;
torch's generator only for seeded tests or ``secure_mode=False``, loudly), and the model
randomness of a step (latent codes, conditional vectors, fakes) drawn in fixed-size public blocks
from per-step seeds (:func:`blocked`, :func:`step_seeds`), so that adding a row to a batch adds one
per-sample term and changes no other.

The only float sampler here is :func:`latent_noise` (model randomness, not privacy noise); the
privacy noise itself is drawn from :attr:`Randomness.noise` by the DP optimizer
(:mod:`.secure_optim`, or Opacus's own with a torch generator).
"""

from __future__ import annotations

import contextlib
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpsynth.exceptions import InsecureNoiseWarning

if TYPE_CHECKING:
    import torch


class InsecureRNGWarning(InsecureNoiseWarning):
    """DP-SGD noise comes from torch's non-cryptographic generator (``secure_mode=False``)."""


def latent_noise(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal latent codes (the generator's input, the VAE's reparameterisation).

    Not privacy noise: it never protects data, and the DP guarantee does not depend on it. This
    is the one float sampler ``tests/privacy/test_no_float_noise.py`` allows in this package.
    """
    import torch

    return torch.randn(shape, generator=generator, device=device)


#: Rows per block of a DP step's model randomness (latent codes, conditional vectors, fakes): a
#: public constant, a multiple of 16 (torch's vectorised normal sampler works in chunks of 16).
RANDOM_BLOCK_ROWS = 256


def blocked(n: int, draw: Callable[[int], Any]) -> list[Any]:
    """``draw(RANDOM_BLOCK_ROWS)`` for ⌈n / RANDOM_BLOCK_ROWS⌉ blocks (at least one), in order.

    The randomness a DP step needs for its first k row slots is then the same whatever the
    private batch size n > k: every draw has a public, fixed size (a single draw of size n
    would not do: torch's normal sampler, for one, redraws the tail of a tensor whose size is
    not a multiple of 16, and a multinomial draw changes method with its size). The caller
    keeps the first n rows of the concatenated blocks.

    Privacy: none by itself; it is what makes the coupling of neighbouring batches (row slots
    1..n identical, one slot added) hold exactly, see ``docs/dpsgd.md``.
    """
    blocks = max(1, -(-int(n) // RANDOM_BLOCK_ROWS))
    return [draw(RANDOM_BLOCK_ROWS) for _ in range(blocks)]


def step_seeds(generator: torch.Generator, count: int) -> list[int]:
    """``count`` seeds for one DP step's model randomness, drawn from the fit's model generator.

    A step draws a fixed number of seeds, whatever its batch size, so the model generator's
    stream (and everything drawn from it later: the generator steps of DP-CTGAN, the next
    steps) never depends on a private batch size. Privacy: model randomness, not privacy noise.
    """
    import torch

    return [int(s) for s in torch.randint(0, 2**62, (count,), generator=generator, device=generator.device).tolist()]


def seeded_generator(seed: int, device: Any) -> torch.Generator:
    """A fresh torch generator on ``device`` seeded with ``seed`` (see :func:`step_seeds`).

    Privacy: model randomness, not privacy noise (never a DP-SGD noise generator).
    """
    import torch

    return torch.Generator(device=device).manual_seed(int(seed))


@dataclass
class Randomness:
    """The sources of one fit: Poisson sampling and DP noise (a :class:`~.secure_noise.SecureRandom`
    each, or torch generators: sampling on the CPU, noise on the device), and model randomness (a
    torch generator on the device; not privacy noise)."""

    sampling: Any
    noise: Any
    model: Any
    secure: bool
    source: str


def make_randomness(device: Any, *, insecure_seed: int | None, secure_mode: bool | None) -> Randomness:
    """The sources of a fit.

    * ``insecure_seed`` given (tests): torch generators seeded from it; ``secure`` is False.
    * ``secure_mode`` None (default) or True: a :class:`~.secure_noise.SecureRandom` for the noise and
      another for the sampling, each on a fresh keystream (ChaCha20 under a new key from
      ``os.urandom``; ``os.urandom`` itself without ``cryptography``); ``secure`` is True.
    * ``secure_mode`` False: torch's own generators seeded from the OS's CSPRNG (``secrets``), never
      from torch's fixed default seed; ``secure`` is False and a loud :class:`InsecureRNGWarning` says so.

    The model generator (initialisation, latent codes, dropout) is always torch's, seeded from the
    OS (or from the seed): model randomness, not privacy noise.
    """
    import torch

    if insecure_seed is not None:
        seed = int(insecure_seed)
        sampling = torch.Generator().manual_seed(seed)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
        model = torch.Generator(device=device).manual_seed(seed + 2)
        return Randomness(sampling, noise, model, False, f"seeded (insecure_seed={seed})")
    model = torch.Generator(device=device).manual_seed(secrets.randbits(63))
    if secure_mode is not False:
        from dpsynth.synth.dpsgd.secure_noise import SecureRandom

        noise_source, sampling_source = SecureRandom(), SecureRandom()
        return Randomness(sampling_source, noise_source, model, True, noise_source.source)
    warnings.warn(
        "secure_mode=False: DP-SGD noise and Poisson sampling are drawn from torch's non-cryptographic generator, "
        "seeded from the OS; the release records secure_noise: false",
        InsecureRNGWarning,
        stacklevel=4,
    )
    sampling = torch.Generator().manual_seed(secrets.randbits(63))
    noise = torch.Generator(device=device).manual_seed(secrets.randbits(63))
    return Randomness(sampling, noise, model, False, "torch generator seeded from os.urandom (secure_mode=False)")


@contextlib.contextmanager
def seeded_torch(generator: torch.Generator) -> Iterator[None]:
    """Seed torch's global generators (model initialisation, dropout, Gumbel) from ``generator``
    for the duration of a fit, and restore them afterwards."""
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    devices = [torch.cuda.current_device()] if generator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield

