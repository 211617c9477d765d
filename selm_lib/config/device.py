"""The compute device named by ``common.device``."""

from __future__ import annotations

import torch

from selm_lib.config.params import ParamsError


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml 'common.device' is cuda but no GPU is visible; use auto")
    return torch.device(device)


def use_bf16(device: torch.device, bf16: bool | None = None) -> bool:
    """Whether to run under bf16 autocast: ``None`` (the default everywhere) means on CUDA only;
    ``True`` forces it, also on the CPU (the tests use that to check bf16 numerics anywhere)."""
    return device.type == "cuda" if bf16 is None else bool(bf16)


def autocast(device: torch.device, bf16: bool | None = None):
    """bf16 autocast on ``device`` when :func:`use_bf16` says so, else a no-op context. Weights
    stay float32 (master weights); log-softmax and losses are computed in float32 by the models."""
    enabled = use_bf16(device, bf16)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
