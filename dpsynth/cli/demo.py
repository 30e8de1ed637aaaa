"""``dpsynth demo``: a full release of the bundled raw Adult table into a folder of its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dpsynth.cli.arguments import THREADS_HELP, integer, number

__all__ = ["add_demo", "run_demo"]


def add_demo(sub: Any) -> None:
    """Add ``dpsynth demo`` to the subcommands ``sub``."""
    demo = sub.add_parser("demo", help="a full release of the bundled raw Adult table (MST at epsilon=1, default "
                                       "policy) into ./dpsynth-demo/release/")
    demo.add_argument("--out", default="dpsynth-demo", help="output directory (default: ./dpsynth-demo)")
    demo.add_argument("--epsilon", type=number, default=1.0)
    demo.add_argument("--delta", type=number, default=1e-9)
    demo.add_argument("--synthesizer", choices=["mst", "aim", "dpctgan", "dpvae"], default="mst",
                      help="mst (seconds, the default), aim (minutes; better 3-way fidelity), or the DP-SGD "
                           "generators dpctgan / dpvae (need the dpsgd extra; about a minute of training on a CPU)")
    demo.add_argument("--policy", default="default",
                      help="a shipped policy (default, strict, permissive) or a policy file (the DP-SGD generators "
                           "draw secure noise: a ChaCha20 keystream keyed from os.urandom)")
    demo.add_argument("--threads", type=integer, default=None, help=THREADS_HELP)


def run_demo(args: argparse.Namespace) -> int:
    """The demo release's exit code (that of ``dpsynth release``)."""
    from dpsynth.demo import run_demo as demo

    return demo(Path(args.out), epsilon=args.epsilon, delta=args.delta, synthesizer=args.synthesizer,
                policy=args.policy, threads=args.threads).exit_code
