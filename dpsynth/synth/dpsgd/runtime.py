"""PyTorch at run time for the DP-SGD generators: the import check (torch and Opacus are the
``dpsgd`` extra) and the device a fit runs on."""

from __future__ import annotations

from typing import Any

from dpsynth.exceptions import ParameterError


def require_torch() -> Any:
    """The ``torch`` module, or a :class:`~dpsynth.exceptions.ParameterError` saying what to install."""
    try:
        import opacus  # noqa: F401
        import torch
    except ImportError:  # pragma: no cover - depends on the install
        raise ParameterError(
            "the DP-SGD synthesizers need PyTorch and Opacus: pip install 'dpsynth[dpsgd]' "
            "(on a CPU-only machine: pip install torch==2.13.0 first)"
        ) from None
    return torch


def resolve_device(device: str) -> Any:
    """The ``torch.device`` for ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    if device not in ("auto", "cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ParameterError(f"device ({device!r}) must be 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device ({device!r}) must be available: this PyTorch sees no CUDA device")
    return torch.device(device)

