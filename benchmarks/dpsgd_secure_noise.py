#!/usr/bin/env python3
r"""The cost of DP-SGD's secure noise (issue 22): CPU milliseconds per DP step of DP-VAE on the bundled
Adult table (its default model, fused clipping), noise from the secure source (a ChaCha20 keystream
of ``cryptography``; ``os.urandom`` as a second row) against torch's generator (Opacus's own noise,
``secure_mode``'s sum of 4 draws) and against the same non-private step.

One process, one thread (OMP/MKL/OpenBLAS and torch). Within each repetition the systems alternate
(the order rotates), each times ``--steps`` steps after 3 warm-up steps; a figure is the median over
``--reps`` repetitions of each repetition's mean CPU ms per step (``time.process_time``).

* **step**: forward, backward and optimizer step on the same fixed batch of q·n rows (q = 0.1, the
  default; n = 32,561): plain Adam on the summed loss (non-private), or the DP step (fused clipping,
  then the noise N(0, (σC)²) on every parameter's clipped sum, σ = 1, C = 1, then Adam);
* **noise**: the noise draw alone, one tensor per parameter as the optimizer draws it;
* **sampling**: one Poisson batch from the fit's loader (Opacus's ``DPDataLoader`` with a torch
  generator, or :class:`~dpsynth.synth.dpsgd.secure_noise.SecurePoissonLoader`);
* **DP step with its sampling** = step + sampling, the cost of one iteration of a fit.

    OMP_NUM_THREADS=1 python benchmarks/dpsgd_secure_noise.py --reps 7 --steps 30 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _mean_ms(fn: Callable[[], object], steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    start = time.process_time()
    for _ in range(steps):
        fn()
    return 1000 * (time.process_time() - start) / steps


def _forever(loader: Iterable[object]) -> Iterator[object]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def build(args: argparse.Namespace) -> dict[str, dict[str, Callable[[], object]]]:
    """The timed callables of each system: its step, its noise draw and its sampling draw."""
    import torch

    torch.set_num_threads(1)
    from dpsynth.datasets import load_adult
    from dpsynth.schema.encode import encode
    from dpsynth.synth.dpsgd import common, secure_noise
    from dpsynth.synth.dpsgd.randomness import Randomness
    from dpsynth.synth.dpsgd.vae import DPVAE, build_vae, negative_elbo

    data, schema = load_adult()
    defaults = DPVAE(epsilon=1.0, delta=1e-6)
    q = float(defaults.default_sample_rate)
    transformer = common.TableTransformer(schema, max_levels=1000, synthesizer="benchmark")
    matrix = torch.from_numpy(transformer.transform(data, encode(data, schema)))
    gen = torch.Generator().manual_seed(0)
    batch = matrix[torch.randperm(len(matrix), generator=gen)[: round(q * len(matrix))]]
    dims = (tuple(defaults.compress_dims), int(defaults.embedding_dim), tuple(defaults.decompress_dims))

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_vae(transformer.output_dim, *dims)

    def loss_of(net: object) -> torch.Tensor:
        eps = common.latent_noise((batch.shape[0], dims[1]), gen, torch.device("cpu"))
        out, mu, logvar = net(batch, eps)  # type: ignore[operator]
        return negative_elbo(out, mu, logvar, batch, transformer, sigma=float(defaults.numeric_sigma),
                             loss_factor=float(defaults.loss_factor))

    plain = model()
    adam = torch.optim.Adam(plain.parameters(), lr=float(defaults.learning_rate))

    def plain_step() -> None:
        adam.zero_grad(set_to_none=True)
        loss_of(plain).sum().backward()
        adam.step()

    systems: dict[str, dict[str, Callable[[], object]]] = {"non-private": {"step": plain_step}}
    sources = {
        "DP, torch generator": Randomness(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                                          torch.Generator().manual_seed(3), False, "torch"),
        "DP, secure (ChaCha20)": Randomness(secure_noise.SecureRandom(secure_noise.ChaCha20Keystream()),
                                            secure_noise.SecureRandom(secure_noise.ChaCha20Keystream()), gen, True,
                                            "chacha20"),
        "DP, secure (os.urandom)": Randomness(secure_noise.SecureRandom(secure_noise.OSKeystream()),
                                              secure_noise.SecureRandom(secure_noise.OSKeystream()), gen, True,
                                              "urandom"),
    }
    for name, randomness in sources.items():
        private, optimizer, loader = common.private_parts(
            model(), matrix, learning_rate=float(defaults.learning_rate), betas=(0.9, 0.999), weight_decay=0.0,
            noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=q, randomness=randomness, clipping="fused")

        def dp_step(private: object = private, optimizer: object = optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
            common.dp_backward(private, optimizer, loss_of(private))
            optimizer.step()  # type: ignore[attr-defined]

        params = [p for p in private.parameters() if p.requires_grad]
        if isinstance(randomness.noise, torch.Generator):
            from opacus.optimizers.optimizer import _generate_noise

            def noise(params: list = params, g: torch.Generator = randomness.noise) -> None:
                for p in params:
                    _generate_noise(std=1.0, reference=p, generator=g, secure_mode=True)
        else:
            def noise(params: list = params, source: object = randomness.noise) -> None:
                for p in params:
                    source.gaussian_like(p, 1.0)  # type: ignore[attr-defined]

        batches = _forever(loader)

        def sample(batches: Iterator[object] = batches) -> object:
            return next(batches)

        systems[name] = {"step": dp_step, "noise": noise, "sampling": sample}
    n_params = sum(p.numel() for p in plain.parameters())
    print(f"DP-VAE defaults: {n_params:,} parameters in {len(list(plain.parameters()))} tensors; batch "
          f"{batch.shape[0]:,} of {len(matrix):,} rows (q = {q})")
    return systems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    systems = build(args)
    names = list(systems)
    per: dict[str, dict[str, list[float]]] = {n: {k: [] for k in systems[n]} for n in names}
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            for part, fn in systems[name].items():
                per[name][part].append(_mean_ms(fn, args.steps))
        print(f"rep {rep + 1}/{args.reps} done", flush=True)
    med = {n: {k: statistics.median(v) for k, v in parts.items()} for n, parts in per.items()}
    base = med["non-private"]["step"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\ncommit {commit}, {date.today().isoformat()}, medians of {args.reps} reps of {args.steps} steps, "
          "CPU ms per step, one thread\n")
    print("| system | step | ratio | noise draw | Poisson sampling | DP step with its sampling | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        m = med[name]
        if "noise" not in m:
            print(f"| {name} | {m['step']:.2f} | 1.00× | — | — | — | — |")
            continue
        total = m["step"] + m["sampling"]
        print(f"| {name} | {m['step']:.2f} | {m['step'] / base:.2f}× | {m['noise']:.2f} | {m['sampling']:.2f} | "
              f"{total:.2f} | {total / base:.2f}× |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"commit": commit, "date": date.today().isoformat(), "reps": per, "medians": med}, fh, indent=1)


if __name__ == "__main__":
    main()
