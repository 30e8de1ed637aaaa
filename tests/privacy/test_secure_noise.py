"""DP-SGD's cryptographically secure noise and sampling (dpsynth/synth/dpsgd/secure_noise.py,
secure_optim.py; issue 22).

Statistical checks. The sampler's checks draw from a FIXED test key, so they are deterministic (the
same draws every run). Each threshold comes from the exact distribution of its statistic under a
correct sampler (normal, χ², binomial, the KS statistic's) or a conservative bound (Bernstein), at
level ALPHA = 5e-6: for a uniformly random key (what a fit uses) a correct sampler fails a check
with probability at most 5e-6. The optimizer checks run on fresh keys (the real path) at the same
level. Eleven statistical checks in all: a false failure of the file with probability at most
5.5e-5 (≤ 1e-4).

The rest is deterministic: uniforms never 0 nor 1, the ChaCha20 keystream's known answer, fresh
keys per fit, dtypes and devices, and the guard of the acceptance bullet: a fit marked secure fails
if any DP-SGD noise or sampling draw comes from a torch generator (the fit's own sources, or torch's
default one inside the optimizer step or the Poisson sampler), and Opacus's ``_generate_noise`` is
never called, for fused, ghost and hooks clipping and at a user unit; mutants that draw from torch
are caught by the same guard.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")
pytest.importorskip("cryptography")
stats = pytest.importorskip("scipy.stats")
integrate = pytest.importorskip("scipy.integrate")

from dpsynth import UNTRACKED, PrivacyUnit  # noqa: E402
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE, common, estimator, secure_noise, secure_optim  # noqa: E402
from dpsynth.synth.dpsgd.randomness import InsecureRNGWarning, make_randomness  # noqa: E402
from dpsynth.synth.dpsgd.secure_noise import (  # noqa: E402
    ChaCha20Keystream,
    SecurePoissonLoader,
    SecurePoissonSampler,
    SecureRandom,
)

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")

ALPHA = 5e-6  # false-failure probability of each statistical check (see the module docstring)
N = 1_000_000
TEST_KEY = bytes(range(32))


def _fixed(key: bytes = TEST_KEY) -> SecureRandom:
    return SecureRandom(ChaCha20Keystream(key=key))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """N values of the DP-SGD noise at std 1 (sum of 4 normals over 2), float64, from the test key."""
    return _fixed().gaussian_like(torch.zeros(N, dtype=torch.float64), 1.0).numpy()


# -- the distribution ------------------------------------------------------------------------------

def test_noise_mean(noise):
    """Σx/√N ~ N(0, 1) exactly under a correct sampler: two-sided at ALPHA."""
    assert abs(noise.sum()) / math.sqrt(N) <= stats.norm.isf(ALPHA / 2)


def test_noise_variance(noise):
    """Σx² ~ χ²_N exactly (known mean 0): two-sided at ALPHA (about ±0.6% of N here)."""
    s = float((noise * noise).sum())
    assert stats.chi2.ppf(ALPHA / 2, N) <= s <= stats.chi2.isf(ALPHA / 2, N)


def test_noise_kurtosis_truncated_fourth_moment(noise):
    """The fourth moment, truncated at |x| = 3 so that a bound holds.

    Y = min(x⁴, 81) ∈ [0, 81], and Bernstein's inequality P(|Ȳ − EY| ≥ t) ≤ 2 exp(−N t² / (2(v + b t / 3)))
    with v = Var Y and b = 81 gives a conservative threshold at ALPHA. EY and v by numerical integration under N(0, 1).
    (Catches a wrong shape the variance misses: scaled to variance 1, EY is 2.89 for the normal, 3.67 for
    a Laplace, 3.23 for Student's t with 5 degrees of freedom, 1.80 for a uniform; t ≈ 0.042 here.)"""
    def moment(k: int) -> float:  # E[min(z⁴, 81)^k], z ~ N(0, 1)
        inner = integrate.quad(lambda z: z ** (4 * k) * stats.norm.pdf(z), 0.0, 3.0)[0]
        return 2 * inner + 81.0 ** k * 2 * stats.norm.sf(3.0)

    mean, v, b = moment(1), moment(2) - moment(1) ** 2, 81.0
    log_term = math.log(2 / ALPHA)
    t = (2 * log_term * b / 3 + math.sqrt((2 * log_term * b / 3) ** 2 + 8 * N * log_term * v)) / (2 * N)
    y = np.minimum(noise ** 4, 81.0)
    assert abs(float(y.mean()) - mean) <= t
    assert t < 0.05  # the check has power (see above)


@pytest.mark.parametrize("cut", [3.0, 4.0])
def test_noise_tail_frequencies(noise, cut):
    """#{|x| > cut} ~ Binomial(N, 2Φ(−cut)) exactly: two-sided at ALPHA (one check per cut)."""
    p = 2 * stats.norm.sf(cut)
    count = int((np.abs(noise) > cut).sum())
    assert stats.binom.ppf(ALPHA / 2, N, p) <= count <= stats.binom.isf(ALPHA / 2, N, p)


def test_noise_ks_against_the_standard_normal(noise):
    """Kolmogorov–Smirnov against N(0, 1): the p-value is uniform under a correct sampler, refused below ALPHA."""
    assert stats.kstest(noise, "norm").pvalue >= ALPHA


def test_single_normals_ks():
    """The Box–Muller draws themselves (before the sum of four): KS against N(0, 1) at ALPHA."""
    z = _fixed(bytes(range(1, 33))).standard_normal(N).numpy()
    assert z.dtype == np.float64 and len(z) == N
    assert stats.kstest(z, "norm").pvalue >= ALPHA


def test_uniforms_ks_grid_and_range():
    """Uniforms: KS against U(0, 1) at ALPHA; exactly on the 2⁻⁵³ grid, never 0 nor 1 (deterministic)."""
    u = _fixed(bytes(range(2, 34))).uniform(N).numpy()
    assert u.dtype == np.float64 and u.min() > 0.0 and u.max() < 1.0
    k = u * 2.0 ** 53
    assert np.array_equal(k, np.floor(k))
    assert stats.kstest(u, "uniform").pvalue >= ALPHA


def test_poisson_membership_frequency():
    """#{u < q} ~ Binomial(N, q) exactly: two-sided at ALPHA."""
    q = 0.01
    count = int(_fixed(bytes(range(3, 35))).bernoulli(N, q).sum())
    assert stats.binom.ppf(ALPHA / 2, N, q) <= count <= stats.binom.isf(ALPHA / 2, N, q)


@pytest.mark.parametrize("clipping", common.CLIPPING)
def test_optimizer_step_adds_noise_of_std_sigma_times_clip(clipping):
    """One DP step of a linear layer fed zeros (zero per-sample gradients) through the fit's own parts
    with a FRESH secure source: the update is the noise alone, float32 like the parameter. Its sum of
    squares over (σC)² is χ²_d exactly under a correct sampler: two-sided at ALPHA (one check per mode)."""
    sigma, clip, dim = 1.7, 0.3, 200_000
    layer = torch.nn.Linear(dim, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    randomness = make_randomness(torch.device("cpu"), insecure_seed=None, secure_mode=None)
    matrix = torch.zeros((4, dim))
    private, optimizer, loader = common.private_parts(
        layer, matrix, learning_rate=1.0, betas=(0.9, 0.999), weight_decay=0.0, noise_multiplier=sigma,
        max_grad_norm=clip, sample_rate=0.5, randomness=randomness, clipping=clipping)
    assert isinstance(loader, SecurePoissonLoader)
    assert isinstance(optimizer, (secure_optim.SecureDPOptimizer, secure_optim.SecureDPOptimizerFastGradientClipping))
    optimizer.zero_grad(set_to_none=True)
    common.dp_backward(private, optimizer, private(matrix).squeeze(1))
    optimizer.pre_step()  # clip, accumulate, add noise (what step() does before Adam)
    grad = layer.weight.grad.detach()
    assert grad.dtype == torch.float32 and randomness.noise.draws == 1
    s = float((grad.double() ** 2).sum()) / (sigma * clip) ** 2
    assert stats.chi2.ppf(ALPHA / 2, dim) <= s <= stats.chi2.isf(ALPHA / 2, dim)


# -- the keystream and the uniforms (deterministic) ---------------------------------------------------

def test_chacha20_known_answer():
    """RFC 8439 A.1, test vector 1: all-zero key, nonce and counter (our first segment's nonce)."""
    expected = bytes.fromhex("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
                             "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")
    stream = ChaCha20Keystream(key=bytes(32))
    assert stream.read(10) + stream.read(54) == expected


def test_segments_take_a_fresh_nonce(monkeypatch):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    monkeypatch.setattr(secure_noise, "SEGMENT_BYTES", 128)
    stream = ChaCha20Keystream(key=TEST_KEY)
    got = stream.read(100) + stream.read(100) + stream.read(100)

    def segment(i: int) -> bytes:
        nonce = bytes(4) + i.to_bytes(12, "little")
        return Cipher(algorithms.ChaCha20(TEST_KEY, nonce), mode=None).encryptor().update(bytes(128))

    assert got == (segment(0) + segment(1) + segment(2))[:300]


def test_a_stream_refuses_a_forked_process(monkeypatch):
    stream = ChaCha20Keystream()
    stream.read(8)
    monkeypatch.setattr(secure_noise.os, "getpid", lambda: -1)
    with pytest.raises(RuntimeError, match="forked"):
        stream.read(8)


class _Scripted:
    """A keystream that returns given 64-bit words (little-endian), for exact checks."""

    name = "scripted"

    def __init__(self, words: list[int]):
        self.data = b"".join(w.to_bytes(8, "little") for w in words)
        self.reads: list[int] = []

    def read(self, n: int) -> bytes:
        self.reads.append(n)
        out, self.data = self.data[:n], self.data[n:]
        assert len(out) == n
        return out


def test_uniforms_never_zero_nor_one_and_zeros_are_redrawn():
    """53 low bits of each 64-bit word; a zero is redrawn (twice here), the largest word gives 1 − 2⁻⁵³."""
    stream = _Scripted([0, 2**64 - 1, 2**53, 1, 0, 5, 7])
    u = SecureRandom(stream).uniform(4)
    assert u.tolist() == [7 * 2.0**-53, 1 - 2.0**-53, 5 * 2.0**-53, 2.0**-53]
    assert stream.reads == [32, 16, 8]


def test_fits_draw_from_fresh_keys():
    """Two fits (two make_randomness calls) and their noise and sampling sources: four different streams."""
    a = make_randomness("cpu", insecure_seed=None, secure_mode=None)
    b = make_randomness("cpu", insecure_seed=None, secure_mode=True)
    firsts = {src.stream.read(32) for r in (a, b) for src in (r.noise, r.sampling)}
    assert len(firsts) == 4
    assert a.secure and b.secure and "ChaCha20" in a.source and "os.urandom" in a.source
    assert a.noise.stream._key.hex() not in repr(a.noise.stream) + repr(a.noise)  # the key is never shown


def test_torch_generators_only_when_asked():
    seeded = make_randomness("cpu", insecure_seed=3, secure_mode=None)
    assert not seeded.secure and isinstance(seeded.noise, torch.Generator)
    with pytest.warns(InsecureRNGWarning, match="secure_mode=False"):
        off = make_randomness("cpu", insecure_seed=None, secure_mode=False)
    assert not off.secure and isinstance(off.noise, torch.Generator) and isinstance(off.sampling, torch.Generator)


# -- dtypes, devices, loaders --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_noise_takes_the_parameters_dtype_and_shape(dtype):
    ref = torch.zeros((3, 5), dtype=dtype)
    out = _fixed().gaussian_like(ref, 2.0)
    assert out.dtype == dtype and out.shape == (3, 5) and out.device == ref.device


def test_noise_on_another_device_uses_no_cpu_only_call():
    """A reference on the 'meta' device stands in for CUDA: the noise is made on the reference's device
    (generic torch calls only), with its dtype and shape."""
    ref = torch.empty((4, 6), device="meta", dtype=torch.float32)
    out = _fixed().gaussian_like(ref, 1.0)
    assert out.device.type == "meta" and out.dtype == torch.float32 and out.shape == (4, 6)
    assert _fixed().standard_normal(7, "meta").dtype == torch.float64


def test_zero_std_draws_nothing():
    stream = _Scripted([])
    source = SecureRandom(stream)
    assert float(source.gaussian_like(torch.ones(5), 0.0).abs().sum()) == 0.0
    assert stream.reads == [] and source.draws == 0


def test_secure_loader_keeps_opacus_semantics():
    """(batch,) tuples of the sampled rows in table order; ⌊1/q⌋ batches; empty batches keep the row shape."""
    matrix = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    everyone = SecurePoissonLoader(matrix, sample_rate=1.0, source=_fixed())
    assert len(everyone) == 1 and [b for (b,) in everyone][0].equal(matrix)
    nobody = SecurePoissonLoader(matrix, sample_rate=1e-12, source=_fixed())
    assert len(nobody) == 10**12
    (batch,) = next(iter(nobody))
    assert batch.shape == (0, 4) and batch.dtype == torch.float32
    source = _fixed()
    sampler = SecurePoissonSampler(num_samples=10, sample_rate=0.5, source=source)
    expected = _fixed().bernoulli(10, 0.5).nonzero().reshape(-1)
    chosen = next(iter(sampler))
    assert chosen.equal(expected) and bool((chosen[1:] > chosen[:-1]).all())


# -- the acceptance guard: a secure fit draws nothing from torch's generators ----------------------------

_TORCH_SAMPLERS = [(torch, name) for name in ("normal", "randn", "rand", "randint", "randn_like", "rand_like",
                                              "randint_like", "bernoulli", "multinomial", "poisson", "randperm")] + \
    [(torch.Tensor, name) for name in ("normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_",
                                       "log_normal_", "geometric_")]


class PrivacyDrawGuard:
    """Installed on torch and Opacus for one test: any torch sampler called with one of the fit's privacy
    sources as its generator, or with ANY generator (torch's default included) inside a DP optimizer's step
    or a Poisson sampler's draw, raises; so does Opacus's ``_generate_noise``. Records the fit's randomness."""

    def __init__(self, monkeypatch):
        import opacus.optimizers.optimizer as opt
        import opacus.optimizers.optimizer_fast_gradient_clipping as fgc
        from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        self.depth = 0
        self.violations: list[str] = []
        self.fits: list = []
        self.modules: list = []
        for owner, name in _TORCH_SAMPLERS:
            monkeypatch.setattr(owner, name, self._checked(getattr(owner, name), f"{owner.__name__}.{name}"))
        for module in (opt, fgc):
            monkeypatch.setattr(module, "_generate_noise", self._refused("opacus _generate_noise"))
        for cls in (DPOptimizer, DPOptimizerFastGradientClipping):
            monkeypatch.setattr(cls, "step", self._scoped(cls.step))
        for cls in (SecurePoissonSampler, UniformWithReplacementSampler):
            monkeypatch.setattr(cls, "__iter__", self._scoped_iter(cls.__iter__))
        real = estimator.make_randomness

        def recorded(*args, **kwargs):
            randomness = real(*args, **kwargs)
            self.fits.append(randomness)
            return randomness

        monkeypatch.setattr(estimator, "make_randomness", recorded)

    def _fail(self, what: str) -> None:
        self.violations.append(what)
        raise AssertionError(f"privacy draw from torch: {what}")

    def _refused(self, what: str):
        def refused(*args, **kwargs):
            self._fail(what)
        return refused

    def _checked(self, real, what: str):
        guard = self

        def checked(*args, **kwargs):
            generator = kwargs.get("generator")
            privacy = [s for r in guard.fits for s in (r.noise, r.sampling)]
            if guard.depth > 0:
                guard._fail(f"{what}(generator={generator!r}) inside a DP step or a Poisson draw")
            if generator is not None and any(generator is s for s in privacy):
                guard._fail(f"{what} with the fit's privacy generator")
            return real(*args, **kwargs)
        return checked

    @contextlib.contextmanager
    def scope(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def _scoped(self, real):
        guard = self

        def step(self, *args, **kwargs):
            with guard.scope():
                return real(self, *args, **kwargs)
        return step

    def _scoped_iter(self, real):
        guard = self

        def iterate(self):
            inner = real(self)
            while True:
                with guard.scope():
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                yield item
        return iterate

    def observer(self, module) -> None:
        self.modules.append(module)


def _people(small_data: pd.DataFrame) -> pd.DataFrame:
    sizes = np.random.default_rng(3).integers(1, 4, size=400)
    return small_data.assign(pid=[f"p{k}" for k in np.repeat(np.arange(400), sizes)[:400]])


SMALL = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "device": "cpu"}
VAE = {**SMALL, "compress_dims": (16,), "decompress_dims": (16,)}
CTGAN = {**SMALL, "generator_dims": (16, 16), "discriminator_dims": (16,), "generator_batch_size": 16}


def _guarded_fit(monkeypatch, cls, params, data, schema) -> tuple[PrivacyDrawGuard, object]:
    guard = PrivacyDrawGuard(monkeypatch)
    synth = cls(epsilon=1.0, delta=1e-6, **params)
    with synth.observe_training(guard.observer):
        synth.fit(data, schema=schema, ledger=UNTRACKED)
    return guard, synth


@pytest.mark.parametrize("cls,params,unit", [
    (DPVAE, {**VAE, "clipping": "fused"}, "row"),
    (DPVAE, {**VAE, "clipping": "ghost"}, "row"),
    (DPVAE, {**VAE, "clipping": "hooks"}, "row"),
    (DPCTGAN, {**CTGAN, "clipping": "fused"}, "row"),
    (DPCTGAN, {**CTGAN, "clipping": "hooks"}, "row"),
    (DPVAE, VAE, "user"),
    (DPCTGAN, CTGAN, "user"),
])
def test_a_fit_marked_secure_draws_no_privacy_noise_from_torch(monkeypatch, small_schema, small_data, cls, params,
                                                                unit):
    data, schema = small_data, small_schema
    if unit == "user":
        data, schema = _people(small_data), small_schema.with_unit(PrivacyUnit.users("pid", max_rows=3))
    guard, synth = _guarded_fit(monkeypatch, cls, params, data, schema)
    assert guard.violations == []
    assert synth.secure_noise_ is True and synth.dpsgd_["secure_noise"] is True
    assert "ChaCha20" in synth.noise_source_ and "ChaCha20" in synth.dpsgd_["noise_source"]
    [randomness] = guard.fits
    [module] = guard.modules
    steps = synth.dpsgd_["steps_taken"]
    trained = [p for p in module.parameters() if p.requires_grad]
    assert steps == synth.dpsgd_["steps_planned"] > 0
    # every step drew one noise tensor per trained parameter, all from the secure source ...
    assert randomness.noise.draws == steps * len(trained)
    # ... and every Poisson batch from the secure sampling source (the loop may draw one batch it does not use)
    assert steps <= randomness.sampling.bernoulli_draws <= steps + 1
    assert randomness.noise is not randomness.sampling
    if unit == "user":
        assert synth.dpsgd_["sampled"] == "people" and synth.dpsgd_["clipping"] == "hooks"


def test_the_guard_catches_opacus_noise_from_a_torch_generator(monkeypatch, small_schema, small_data):
    """secure_mode=False: Opacus's optimizer draws from a torch generator; the guard refuses it."""
    with pytest.warns(InsecureRNGWarning), pytest.raises(AssertionError, match="privacy draw from torch"):
        _guarded_fit(monkeypatch, DPVAE, {**VAE, "secure_mode": False}, small_data, small_schema)


def test_the_guard_catches_a_step_that_draws_from_torchs_default_generator(monkeypatch, small_schema, small_data):
    """The mutant: the secure optimizer's noise drawn with torch.normal (torch's default generator)."""
    def torch_noise(optimizer, source, std):
        for p in optimizer.params:
            p.grad = (p.summed_grad + torch.normal(0.0, std, size=p.summed_grad.shape)).view_as(p)

    monkeypatch.setattr(secure_optim, "_add_secure_noise", torch_noise)
    with pytest.raises(AssertionError, match="inside a DP step"):
        _guarded_fit(monkeypatch, DPVAE, {**VAE, "clipping": "fused"}, small_data, small_schema)


def test_the_guard_catches_a_sampler_that_draws_from_torch(monkeypatch, small_schema, small_data):
    """The mutant: Poisson membership drawn with torch.rand (torch's default generator) at a user unit."""
    monkeypatch.setattr(SecureRandom, "bernoulli", lambda self, n, p: torch.rand(n) < p)
    data, schema = _people(small_data), small_schema.with_unit(PrivacyUnit.users("pid", max_rows=3))
    with pytest.raises(AssertionError, match="Poisson draw"):
        _guarded_fit(monkeypatch, DPVAE, VAE, data, schema)
