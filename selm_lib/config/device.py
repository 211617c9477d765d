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
