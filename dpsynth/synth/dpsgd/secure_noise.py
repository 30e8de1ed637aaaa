"""Cryptographically secure randomness for DP-SGD's privacy draws: the Gaussian noise on each step's
clipped sum and the Poisson sampling of the batches (issue 22).

* :class:`ChaCha20Keystream`: the ChaCha20 keystream of the maintained ``cryptography`` package
  (OpenSSL), keyed with 32 bytes from ``os.urandom`` per stream, so a fresh key per fit and per use
  (noise, sampling). :class:`OSKeystream` (``os.urandom`` itself) is the fallback when
  ``cryptography`` is not installed: as secure, about ten times slower per byte (``docs/dpsgd.md``).
* :class:`SecureRandom`: from a keystream, uniforms on the grid k·2⁻⁵³ from 53-bit integers k
  (k = 0 redrawn, so never 0 and never 1), standard normals in float64 by Box–Muller, and
  :meth:`SecureRandom.gaussian_like`, the noise Opacus's ``secure_mode`` adds, with the same
  floating-point mitigation: the sum of 4 standard normals divided by 2 (2n draws with n = 2,
  Holohan and Braghin 2021, arXiv 2107.10138 §5.1), scaled in float64, cast to the parameter's dtype
  only at the end and moved to the parameter's device.
* :class:`SecurePoissonSampler` and :class:`SecurePoissonLoader`: Opacus's
  ``UniformWithReplacementSampler`` / ``DPDataLoader`` with the membership draw u < q taken from a
  :class:`SecureRandom`.

Why Box–Muller: a fixed two uniforms for two normals (no rejection, so a step consumes a fixed
amount of keystream whatever the values), vectorised in one pass of float64 ``log``/``sqrt``/
``cos``/``sin``; its known weakness (pairs on spirals) is an artefact of linear congruential
generators, not of a cipher's keystream. The uniforms' grid bounds the radius at √(2·53·ln 2) ≈
8.57 per draw (a tail mass of about 1e-17 is cut off; the sum of four draws reaches 17).

Privacy: this is privacy noise drawn outside :mod:`dpsynth.mechanisms` (DESIGN.md rule 3's one
documented exception, DP-SGD's continuous Gaussian on gradients). Nothing here reads data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

#: Bits of a uniform (float64's significand).
UNIFORM_BITS = 53
_MASK = (1 << UNIFORM_BITS) - 1
_SCALE = 2.0 ** -UNIFORM_BITS
#: Keystream bytes under one nonce before the next nonce is taken: 64 GiB, a quarter of what
#: ChaCha20's 32-bit block counter covers (2³² blocks of 64 bytes), so the counter never wraps.
SEGMENT_BYTES = 1 << 36
#: Standard normals summed per noise value, and the divisor that restores unit variance (Opacus's n = 2).
MITIGATION_DRAWS = 4
MITIGATION_DIVISOR = 2.0


class Keystream(Protocol):
    """A source of cryptographically secure random bytes."""

    name: str

    def read(self, n: int) -> bytes:
        """``n`` random bytes."""
        ...


def cryptography_version() -> str | None:
    """The installed ``cryptography`` version, or None when it does not import."""
    try:
        import cryptography
    except ImportError:
        return None
    return str(cryptography.__version__)


class ChaCha20Keystream:
    """The ChaCha20 keystream (``cryptography``, OpenSSL) under a fresh 256-bit key from ``os.urandom``.

    ``key`` is for tests only (a fixed key gives a reproducible stream); a fit never passes one.
    The stream is bound to the process that created it: read in a forked child it refuses, since
    parent and child would otherwise draw the same noise.
    """

    def __init__(self, key: bytes | None = None):
        version = cryptography_version()
        if version is None:
            raise ImportError("the ChaCha20 keystream needs the cryptography package (the dpsgd extra)")
        self._key = os.urandom(32) if key is None else bytes(key)
        if len(self._key) != 32:
            raise ValueError("a ChaCha20 key has 32 bytes")
        self.name = f"ChaCha20 keystream (cryptography {version}), keyed from os.urandom"
        self._pid = os.getpid()
        self._segment = -1
        self._used = SEGMENT_BYTES
        self._zeros = b""
        self._encryptor: Any = None

    def __repr__(self) -> str:  # never the key
        return f"ChaCha20Keystream(segment={self._segment})"

    def _next_segment(self) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

        self._segment += 1
        # OpenSSL's 16-byte ChaCha20 nonce: a 32-bit block counter (0), then 96 bits: the segment number.
        nonce = (0).to_bytes(4, "little") + self._segment.to_bytes(12, "little")
        self._encryptor = Cipher(algorithms.ChaCha20(self._key, nonce), mode=None).encryptor()
        self._used = 0

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes of the keystream (the encryption of zeros)."""
        if os.getpid() != self._pid:
            raise RuntimeError("a secure keystream was read in a forked process: it would repeat the parent's draws")
        parts = []
        while n > 0:
            if self._used >= SEGMENT_BYTES:
                self._next_segment()
            take = min(n, SEGMENT_BYTES - self._used)
            if len(self._zeros) < take:
                self._zeros = bytes(take)
            parts.append(self._encryptor.update(memoryview(self._zeros)[:take]))
            self._used += take
            n -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)


class OSKeystream:
    """The OS's CSPRNG (``os.urandom``) byte for byte: the fallback without ``cryptography``."""

    name = "os.urandom (the OS's CSPRNG)"

    def read(self, n: int) -> bytes:
        """``n`` bytes from ``os.urandom``."""
        return os.urandom(n)


def default_keystream() -> Keystream:
    """A fresh keystream for one use of one fit: ChaCha20 under a new key, or ``os.urandom``."""
    return ChaCha20Keystream() if cryptography_version() is not None else OSKeystream()


def default_source_name() -> str:
    """What :func:`default_keystream` draws from here (public: no key is made)."""
    version = cryptography_version()
    return (f"ChaCha20 keystream (cryptography {version}), keyed from os.urandom" if version is not None
            else OSKeystream.name)


class SecureRandom:
    """Uniforms, standard normals and DP-SGD's Gaussian noise from a cryptographically secure keystream.

    ``draws`` counts the noise tensors made by :meth:`gaussian_like` and ``bernoulli_draws`` the
    sampling draws (tests check that a fit's privacy draws all came from here).
    """

    secure = True

    def __init__(self, stream: Keystream | None = None):
        self.stream: Keystream = default_keystream() if stream is None else stream
        self.draws = 0
        self.bernoulli_draws = 0

    @property
    def source(self) -> str:
        """The keystream's name (for the record)."""
        return self.stream.name

    def __repr__(self) -> str:
        return f"SecureRandom({self.stream.name})"

    def bits53(self, n: int) -> torch.Tensor:
        """``n`` independent integers uniform on 1 .. 2⁵³ − 1 (int64, CPU): 53 bits of the keystream
        per value, a value 0 (probability 2⁻⁵³) redrawn."""
        import torch

        n = int(n)
        if n <= 0:
            return torch.zeros(0, dtype=torch.int64)
        k = torch.frombuffer(bytearray(self.stream.read(8 * n)), dtype=torch.int64) & _MASK
        zero = k == 0
        while bool(zero.any()):
            missing = int(zero.sum())
            k[zero] = torch.frombuffer(bytearray(self.stream.read(8 * missing)), dtype=torch.int64) & _MASK
            zero = k == 0
        return k

    def uniform(self, n: int, device: Any = "cpu") -> torch.Tensor:
        """``n`` uniforms k·2⁻⁵³ in float64 on ``device``: exactly on the 2⁻⁵³ grid, never 0 and never 1."""
        import torch

        return self.bits53(n).to(device).to(torch.float64) * _SCALE

    def standard_normal(self, n: int, device: Any = "cpu") -> torch.Tensor:
        """``n`` independent standard normals in float64 on ``device`` (Box–Muller on pairs of uniforms)."""
        import torch

        pairs = -(-int(n) // 2)
        u = self.uniform(2 * pairs, device)
        radius = torch.sqrt(-2.0 * torch.log(u[:pairs]))
        angle = (2.0 * math.pi) * u[pairs:]
        return torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)))[: int(n)]

    def gaussian_like(self, reference: torch.Tensor, std: float) -> torch.Tensor:
        """N(0, std²) noise with ``reference``'s shape, dtype and device, as Opacus's ``secure_mode`` makes
        it: (z₁ + z₂ + z₃ + z₄) / 2 for standard normals z in float64, times ``std`` in float64, cast to
        the reference's dtype at the end. ``std`` 0 gives zeros and draws nothing (as Opacus)."""
        import torch

        if std == 0:
            return torch.zeros(reference.shape, device=reference.device, dtype=reference.dtype)
        n = reference.numel()
        z = self.standard_normal(MITIGATION_DRAWS * n, reference.device).view(MITIGATION_DRAWS, n)
        noise = (z.sum(0) / MITIGATION_DIVISOR) * float(std)
        self.draws += 1
        return noise.to(reference.dtype).view(reference.shape)

    def bernoulli(self, n: int, p: float) -> torch.Tensor:
        """``n`` independent memberships u < p (bool, CPU), u a uniform of :meth:`uniform`."""
        self.bernoulli_draws += 1
        return self.uniform(n) < float(p)


class SecurePoissonSampler:
    """Opacus's ``UniformWithReplacementSampler`` with its membership draw from a :class:`SecureRandom`:
    each of ``num_samples`` items joins a batch independently with probability ``sample_rate``;
    iterating yields ``steps`` (default ⌊1/q⌋, as Opacus) batches of ascending indices (int64
    tensors, possibly empty)."""

    def __init__(self, *, num_samples: int, sample_rate: float, source: SecureRandom, steps: int | None = None):
        if num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        self.num_samples = int(num_samples)
        self.sample_rate = float(sample_rate)
        self.source = source
        self.steps = int(steps) if steps is not None else int(1 / self.sample_rate)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        for _ in range(self.steps):
            yield self.source.bernoulli(self.num_samples, self.sample_rate).nonzero(as_tuple=False).reshape(-1)


class SecurePoissonLoader:
    """Opacus's ``DPDataLoader`` over an in-memory matrix, sampled by a :class:`SecurePoissonSampler`.

    Iterating yields ``(batch,)`` tuples as Opacus's loader over a ``TensorDataset`` does: the
    sampled rows in table order, an empty batch (shape ``(0, d)``, the matrix's dtype and device)
    when no row is sampled. ``len`` is the sampler's ⌊1/q⌋.
    """

    def __init__(self, matrix: torch.Tensor, *, sample_rate: float, source: SecureRandom):
        self.matrix = matrix
        self.sample_rate = float(sample_rate)
        self.sampler = SecurePoissonSampler(num_samples=int(matrix.shape[0]), sample_rate=self.sample_rate,
                                            source=source)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        for chosen in self.sampler:
            yield (self.matrix[chosen.to(self.matrix.device)],)
