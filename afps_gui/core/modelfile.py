"""Model files: one torch file holding a kind, a format version, settings and tensors.

Files are read with ``weights_only=True`` so that opening a model never runs pickled code, and
every way a file can be wrong (missing, unreadable, not a torch file at all, truncated, corrupt,
another kind, an invalid or newer format version) is a ModelFileError that says what to do.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import ModelFileError
from .jobs import atomic_write


def save_model(path: str | os.PathLike, kind: str, version: int, settings: dict, tensors: dict):
    payload = {"kind": kind, "format_version": version, "settings": settings, "tensors": tensors}
    # Through a Python file object: each chunk goes through file.write, which releases the GIL
    # while the kernel writes. Given a path, torch writes from C++ holding the GIL, and when
    # the kernel throttles a 370 MB write the UI thread froze for up to 200 ms (measured).
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


# The first bytes of the files torch.load reads: the zip format torch has written since 1.6,
# and the older pickle format (pickle protocol 2 or later, which starts with this byte).
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80"


def _unreadable(path: Path, what: str, exc: OSError) -> ModelFileError:
    """The message for a file that exists but cannot be read (permissions, a locked file, ...)."""
    if isinstance(exc, PermissionError):
        return ModelFileError(
            f"The {what} file {path} cannot be read: permission denied (your account may not "
            "read this file). Ask whoever owns it to give you read access, or copy it to a "
            "folder of your own. The file itself was not changed."
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ModelFileError(
        f"The {what} file {path} cannot be read: {reason}. Check that the disk or network "
        "share is available and that no other program locks the file, then try again."
    )


def _head(path: Path, what: str) -> bytes:
    """The first bytes of the file, or a ModelFileError saying why it cannot be read."""
    try:
        if not path.is_file():
            raise ModelFileError(f"The {what} file {path} does not exist.")
        if path.stat().st_size == 0:
            raise ModelFileError(
                f"The {what} file {path} is empty (0 bytes): train or fit it again."
            )
        with open(path, "rb") as fh:
            return fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise _unreadable(path, what, exc) from exc


def _read(path: Path, what: str, mmap: bool = False, clone: bool = True) -> Any:
    head = _head(path, what)
    if not head.startswith((_ZIP_MAGIC, _LEGACY_MAGIC)):
        raise ModelFileError(
            f"{path} is not a weights or model file: it is not a PyTorch file at all (neither "
            f"the zip format torch saves nor its older format), so it cannot be the {what}. It is "
            "another kind of file, or corrupt: choose the right file, or restore it from a backup."
        )
    try:
        # mmap + clone: the copy into memory happens outside the pickle machinery, so a worker
        # loading a 400 MB model no longer holds the GIL for tens of ms (measured 39 ms -> 1 ms
        # UI stall); the clone lets the file be replaced afterwards (Windows keeps mapped files).
        if mmap and head.startswith(_ZIP_MAGIC):
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return _cloned(data) if clone else data
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words every failure alike ("Weights only load failed"); only a refused
        # global (a class or function to import) means code or foreign objects.
        if "global" not in str(exc).lower():
            raise _corrupt(path, what, exc) from exc
        raise ModelFileError(
            f"The {what} file {path} holds code or objects that are not plain tensors, so it was "
            f"not opened (it may come from another program). Details: {str(exc)[:200]}"
        ) from exc
    except OSError as exc:  # PermissionError included: the file may be locked or unreadable
        raise _unreadable(path, what, exc) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as exc:
        raise _corrupt(path, what, exc) from exc


def _corrupt(path: Path, what: str, exc: Exception) -> ModelFileError:
    return ModelFileError(
        f"The {what} file {path} is corrupt or truncated ({type(exc).__name__}). "
        "Restore it from a backup, or fit/train it again."
    )


def _cloned(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {k: _cloned(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cloned(v) for v in obj]
    return obj


def load_model(path: str | os.PathLike, kind: str, max_version: int) -> tuple[dict, dict]:
    """Return (settings, tensors) of a model file of this kind, or raise ModelFileError."""
    data = _checked(Path(path), kind, max_version, clone=True)
    return data.get("settings", {}), data.get("tensors", {})


def load_model_settings(path: str | os.PathLike, kind: str, max_version: int) -> dict:
    """Only the settings of a model file: its tensors stay unread on disk (memory-mapped, never
    touched), so this takes milliseconds however big the file is."""
    return _checked(Path(path), kind, max_version, clone=False).get("settings", {})


def _checked(path: Path, kind: str, max_version: int, clone: bool) -> dict:
    data = _read(path, kind, mmap=True, clone=clone)  # our own files are always zip format
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ModelFileError(
            f"{path} is not a {kind} model file (it holds: {found}). Choose the right file."
        )
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(
            f"{path} has an invalid format version ({version!r}; AFPS Inspector writes a whole "
            "number), so it was not written by this app or was altered. Choose a model file "
            "saved by AFPS Inspector, or fit/train the model again."
        )
    if version > max_version:
        raise ModelFileError(
            f"{path} was written by a newer AFPS Inspector (format {version}; this version reads "
            f"up to {max_version}). Update the app, or fit/train the model again."
        )
    return data


def read_state_dict(path: str | os.PathLike, what: str) -> dict:
    data = _read(Path(path), what)
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelFileError(f"{path} does not hold a state dict of tensors ({what}).")
    return data
