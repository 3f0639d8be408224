"""Where the heavy work runs: a CUDA GPU when there is one, the CPU otherwise."""

from __future__ import annotations

import torch

from .errors import AfpsError


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is a clear error."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise AfpsError("No CUDA GPU is available on this machine: choose 'cpu' or 'auto'.")
    try:
        return torch.device(choice)
    except RuntimeError as exc:
        raise AfpsError(f"Unknown device '{choice}': use auto, cpu or cuda[:N].") from exc


def describe_device(device: torch.device | str) -> str:
    """A short human name: 'CPU (2 threads)' or the GPU's name."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"
