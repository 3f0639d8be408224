"""Where the heavy work runs: a CUDA GPU when there is one, the CPU otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def describe_device(device: torch.device | str, threads: int | None = None) -> str:
    """A short human name: 'CPU (2 threads)' or the GPU's name. ``threads``: the CPU threads
    the work will use, when not this process's torch setting (the app's jobs run elsewhere)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    n = threads if threads is not None else torch.get_num_threads()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"


@contextlib.contextmanager
def cpu_threads(n: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with at most ``n`` intra-op CPU threads (no effect on GPU work).

    The classifier's operations are tiny: with two threads on two busy cores, thread
    synchronisation made one training run 15x slower (89 s against 6 s, measured).
    """
    if torch.device(device).type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    if max(1, min(n, old)) == old:
        # Already so (the app keeps one thread): the count is left alone, since changing it
        # while another thread runs torch can deadlock OpenMP and MKL.
        yield
        return
    torch.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
