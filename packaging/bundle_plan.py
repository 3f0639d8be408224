"""What the AFPS Inspector bundle holds on each platform: the spec's decisions, as plain functions.

``afps_inspector.spec`` asks this module which icon to use, which CUDA libraries to collect,
which binaries a ``--cpu-only`` bundle leaves out and which system libraries the inspection PC's
desktop provides. Keeping the decisions here, free of PyInstaller, lets
``tests/test_bundle_plan.py`` run them for Linux, Windows and macOS on any machine.

Binaries are PyInstaller TOC entries ``(dest, src, typecode)``; ``dest`` is the path inside the
bundle's ``_internal`` folder, with ``/`` or ``\\`` as the platform writes it.
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

PLATFORMS = ("linux", "windows", "macos")

# Shared-library file name endings per platform (a Linux name may carry a version: libfoo.so.9).
BINARY_SUFFIXES = {
    "linux": (".so",),
    "windows": (".dll", ".pyd"),
    "macos": (".dylib", ".so"),
}

ICON_FILES = {"windows": "app.ico", "macos": "app.icns"}


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _check(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}: one of {', '.join(PLATFORMS)}")
    return platform


def is_binary(name: str, platform: str) -> bool:
    """A shared library or extension module of that platform, by its file name."""
    name = name.lower()
    if _check(platform) == "linux":
        return name.endswith(".so") or ".so." in name
    return name.endswith(BINARY_SUFFIXES[platform])


def icon_for(platform: str, icons_dir: Path) -> Optional[Path]:
    """The executable's icon: .ico on Windows, .icns on macOS; Linux executables carry none
    (a desktop entry names the icon there). None when the file is missing: PyInstaller then
    uses its own icon rather than failing the build."""
    name = ICON_FILES.get(_check(platform))
    if name is None:
        return None
    path = Path(icons_dir) / name
    return path if path.is_file() else None


def _base(dest: str) -> str:
    return posixpath.basename(dest.replace("\\", "/"))


def _norm(dest: str) -> str:
    return dest.replace("\\", "/")


# --- the CUDA libraries of a torch CUDA build -------------------------------------------------

# Libraries of the nvidia/*/lib folders that nothing in torch links to or loads (static archives,
# headers and device bitcode are skipped as non-binaries): multi-GPU cuSOLVER, the "alt" NVRTC,
# the drop-in BLAS and FFTW front ends, CUDA checkpointing and CUPTI's PC sampling.
NEVER_LOADED = (
    "libcusolverMg.",
    "libnvrtc.alt.",
    "libnvrtc-builtins.alt.",
    "libnvblas.",
    "libcufftw.",
    "libcheckpoint.",
    "libpcsamplingutil.",
)


def nvidia_libraries(
    site_packages: Iterable[Path], platform: str, cpu_only: bool
) -> list[tuple[str, str]]:
    """(source, destination folder) of every CUDA library of the nvidia.* wheels to collect.

    Only Linux needs this: torch's Linux libraries find cuDNN, cuBLAS, ... through an RPATH
    ($ORIGIN/../../nvidia/...) and load some with dlopen, which binary analysis cannot see, so
    each nvidia/*/lib folder is collected whole, at its site-packages path. Windows wheels carry
    their CUDA DLLs in torch/lib (the torch hook collects them); macOS has no CUDA. A CPU-only
    bundle collects none.
    """
    if _check(platform) != "linux" or cpu_only:
        return []
    found = []
    for sp in site_packages:
        nvidia = Path(sp) / "nvidia"
        if not nvidia.is_dir():
            continue
        for libdir in sorted(nvidia.glob("*/lib")):
            dest = libdir.relative_to(Path(sp)).as_posix()
            for lib in sorted(libdir.iterdir()):
                if is_binary(lib.name, "linux") and not lib.name.startswith(NEVER_LOADED):
                    found.append((str(lib), dest))
    return found


# --- what a CPU-only bundle leaves out --------------------------------------------------------

# Every CUDA library by name stem, as Linux (libX.so.N) and Windows (X64_N.dll, X.dll) spell
# them, plus torch's own CUDA parts. A CPU bundle is built from a CPU torch wheel, so these are
# normally absent; the list makes sure that nothing of CUDA slips in from another package.
CUDA_STEMS = (
    "cudart", "cudnn", "cublas", "cublaslt", "nccl", "cusparse", "cusparselt", "cufft",
    "curand", "cusolver", "nvrtc", "nvjitlink", "cupti", "nvperf", "cufile", "nvshmem",
    "nvtoolsext", "nvtx3interop", "nvjpeg", "cudadevrt", "caffe2_nvrtc", "nvblas",
    "torch_cuda", "c10_cuda", "torch_nvshmem",
)  # fmt: skip
_CUDA_LIB = re.compile(r"^(lib)?(" + "|".join(CUDA_STEMS) + r")([._\-0-9]|64_|$)", re.IGNORECASE)
# Whole folders of GPU-only packages: the nvidia.* wheels and Triton (torch.compile's GPU code
# generator, which ships its own CUDA tool chain).
CUDA_FOLDERS = ("nvidia/", "triton/", "triton.libs/")


def is_cuda_binary(dest: str) -> bool:
    """A CUDA library by its name, or anything in a GPU-only package's folder. Only binaries
    are judged by name: torch/cuda/nccl.py is torch's Python source, not NCCL."""
    path = _norm(dest)
    if path.startswith(CUDA_FOLDERS):
        return True
    name = _base(path)
    return bool(_CUDA_LIB.match(name)) and any(is_binary(name, p) for p in BINARY_SUFFIXES)


# --- libraries a desktop has --------------------------------------------------------------------

# Linux: libraries that every desktop with X11 or Wayland already has, and that must match the
# desktop rather than the build host: fontconfig reads the system's font configuration (an older
# bundled copy fails on a newer config), libX11 and the core libxcb with its protocol extensions
# talk to the running X server, D-Bus and GLib to the session. Shipping the build host's copies
# puts them first on the library path and shadows the desktop's own. Also left out: libraries
# that only these pull in (expat, brotli, Xau/Xdmcp, bsd/md, pcre2-8, systemd, gcrypt,
# gpg-error, cap, lz4), which would otherwise shadow what the desktop's copies were built with.
# Kept: the xcb-util helpers (icccm, image, keysyms, render-util, util, cursor) and xkbcommon,
# which Qt's xcb plug-in needs and which minimal desktops lack (Qt's own install notes list
# them); they are small and talk to the system libxcb through its stable ABI.
DESKTOP_LIBS_LINUX = re.compile(
    r"^lib("
    r"fontconfig|freetype|expat|brotli(common|dec|enc)"
    r"|X11|X11-xcb|Xau|Xdmcp|Xext|Xrender|Xi|Xfixes|Xrandr|Xcursor|Xinerama|bsd|md"
    r"|xcb|xcb-(render|shm|xfixes|sync|shape|randr|xkb|xinerama|xinput|glx|present|dri2|dri3"
    r"|composite|damage|dpms|res|screensaver|xf86dri|xtest|xv|xvmc|record)"
    r"|dbus-1|glib-2\.0|gthread-2\.0|gobject-2\.0|gio-2\.0|gmodule-2\.0|pcre2-8"
    r"|systemd|gcrypt|gpg-error|cap|lz4"
    r")\.so(\.|$)"
)


def desktop_provided(dest: str, platform: str) -> bool:
    """A system library the inspection PC's desktop provides (Linux only: PyInstaller already
    leaves out the system DLLs of Windows and the system frameworks of macOS)."""
    if _check(platform) != "linux":
        return False
    path = _norm(dest)
    # Only the host's system libraries land at the top of _internal; a package's own copy
    # (say PIL's bundled libfreetype in pillow.libs/) is built for that package and stays.
    return "/" not in path and bool(DESKTOP_LIBS_LINUX.match(path))


# Linux libraries a bundled library may take from the system: glibc, OpenGL/EGL and the DRM,
# core libxcb and Wayland (the graphics driver's own; PyInstaller leaves these out), the NVIDIA
# driver, and the desktop's libraries above.
SYSTEM_LIBS_LINUX = re.compile(
    r"^(ld-linux[-\w.]*\.so\.\d+"
    r"|lib(c|m|dl|pthread|rt|util|resolv|crypt|nsl|anl|thread_db|BrokenLocale)\.so(\.|$)"
    r"|libE?(Open)?GLX?(ESv1_CM|ESv2)?(dispatch)?\.so(\.|$)|libdrm\.so(\.|$)"
    r"|libxcb(-dri\d)?\.so(\.|$)|libwayland-(client|cursor|egl|server)\.so(\.|$)"
    r"|libcuda\.so(\.|$)|libnvidia-.*\.so(\.|$))"
)
# System libraries that only optional plug-ins need: they load where the PC has them, and the
# app works without them (Qt's Wayland and GTK3 theme plug-ins, cuFile's GPUDirect RDMA,
# NVSHMEM's multi-node transports).
OPTIONAL_LIBS_LINUX = re.compile(
    r"^lib(wayland-|gtk-3|gdk-3|ibverbs|mlx5|rdmacm|mpi\.|oshmem|pmix|fabric|ucp|ucs)"
)


def system_library_role(name: str) -> Optional[str]:
    """Why a Linux bundle may take a library from the system ('system', 'desktop',
    'optional'), or None: then the bundle must carry it."""
    if SYSTEM_LIBS_LINUX.match(name):
        return "system"
    if DESKTOP_LIBS_LINUX.match(name):
        return "desktop"
    if OPTIONAL_LIBS_LINUX.match(name):
        return "optional"
    return None


def torch_cuda_version() -> Optional[str]:
    """torch's version where this interpreter's torch is a CUDA build ("2.14.1+cu130"), else
    None (a CPU build, or no torch). Read from the package metadata: importing torch takes
    seconds and fails where CUDA libraries are missing."""
    from importlib import metadata

    try:
        dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return None
    needs_nvidia = any(r.startswith("nvidia-") for r in dist.requires or [])
    return dist.version if "+cu" in dist.version or needs_nvidia else None


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class BundlePlan:
    """Decisions for one build: platform, CPU-only or not, torchvision included or not."""

    platform: str
    cpu_only: bool = False
    # False where the environment's torchvision is a CUDA build that cannot load beside a CPU
    # torch (Linux, when no CPU torchvision wheel can be installed): the bundle then leaves
    # torchvision out and its backbones (ResNet, MobileNetV2) say they are unavailable.
    with_torchvision: bool = True
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.platform)

    def excluded_modules(self) -> list[str]:
        """Modules never bundled (beyond the spec's common list)."""
        out = []
        if self.cpu_only:  # cuda-python's bindings: torch imports them only if present
            out += ["cuda", "nvidia"]
        if not self.with_torchvision:
            out.append("torchvision")
        return out

    def runtime_hooks(self, hooks_dir: Path) -> list[str]:
        hooks = []
        if self.cpu_only:
            hooks.append(str(Path(hooks_dir) / "rthook_cpu_only.py"))
        if not self.with_torchvision:
            hooks.append(str(Path(hooks_dir) / "rthook_no_torchvision.py"))
        return hooks

    def reason_to_drop(self, dest: str, src: str = "", typecode: str = "BINARY") -> Optional[str]:
        """Why a binary stays out of the bundle, or None to keep it."""
        if typecode == "SYMLINK":  # e.g. _internal/libcusolver.so.12 -> nvidia/cu13/lib/...
            dest = posixpath.normpath(posixpath.join(posixpath.dirname(_norm(dest)), _norm(src)))
        if self.cpu_only and is_cuda_binary(dest):
            return "CUDA (CPU-only bundle)"
        if not self.with_torchvision and _norm(dest).startswith(("torchvision/", "torchvision.")):
            return "torchvision (a CUDA build, left out of the CPU bundle)"
        if desktop_provided(dest, self.platform):
            return "the desktop provides it"
        return None

    def filter(self, entries: list[tuple]) -> list[tuple]:
        """The TOC entries to keep; what was left out is recorded in ``self.dropped``."""
        kept = []
        for entry in entries:
            dest, src, typecode = entry[0], entry[1] or "", entry[2]
            why = self.reason_to_drop(dest, src, typecode)
            if why is None:
                kept.append(entry)
            else:
                self.dropped.setdefault(why, []).append(_norm(dest))
        return kept

    def summary(self) -> str:
        if not self.dropped:
            return "left out nothing"
        return "; ".join(f"{len(v)} x {why}" for why, v in sorted(self.dropped.items()))
