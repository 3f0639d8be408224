"""The bundle's platform decisions (packaging/bundle_plan.py and the spec that uses them), run
for Linux, Windows and macOS on this machine without building anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))

import bundle_plan  # noqa: E402
from bundle_plan import BundlePlan, icon_for, is_binary, nvidia_libraries  # noqa: E402

# What PyInstaller's analysis finds, per platform (TOC entries: dest, src, typecode).
LINUX_CUDA = [
    "nvidia/cu13/lib/libcublas.so.13", "nvidia/cu13/lib/libcublasLt.so.13",
    "nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9",
    "nvidia/nccl/lib/libnccl.so.2", "nvidia/cu13/lib/libcusparse.so.12",
    "nvidia/cusparselt/lib/libcusparseLt.so.0", "nvidia/cu13/lib/libcufft.so.12",
    "nvidia/cu13/lib/libcurand.so.10", "nvidia/cu13/lib/libcusolver.so.12",
    "nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cu13/lib/libnvrtc-builtins.so.13.0",
    "nvidia/cu13/lib/libnvJitLink.so.13", "nvidia/cu13/lib/libcupti.so.13",
    "nvidia/cu13/lib/libnvperf_host.so", "nvidia/cu13/lib/libcudart.so.13",
    "nvidia/cu13/lib/libcufile.so.0", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
    "torch/lib/libtorch_cuda.so", "torch/lib/libtorch_cuda_linalg.so", "torch/lib/libc10_cuda.so",
    "torch/lib/libcaffe2_nvrtc.so", "triton/_C/libtriton.so", "libcudnn.so.9", "libnccl.so.2",
]  # fmt: skip
LINUX_DESKTOP = [
    "libfontconfig.so.1", "libfreetype.so.6", "libX11.so.6", "libX11-xcb.so.1", "libXau.so.6",
    "libxcb.so.1", "libxcb-shm.so.0", "libxcb-randr.so.0", "libxcb-xkb.so.1",
    "libdbus-1.so.3", "libglib-2.0.so.0", "libgthread-2.0.so.0", "libexpat.so.1",
    "libbrotlidec.so.1", "libsystemd.so.0", "libpcre2-8.so.0",
]  # fmt: skip
LINUX_KEEP = [
    "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libgomp.so.1",
    "libQt6Gui.so.6", "PySide6/Qt/plugins/platforms/libqxcb.so", "libxcb-cursor.so.0",
    "libxcb-icccm.so.4", "libxcb-image.so.0", "libxcb-keysyms.so.1", "libxcb-render-util.so.0",
    "libxcb-util.so.1", "libxkbcommon.so.0", "libxkbcommon-x11.so.0", "libstdc++.so.6",
    "pillow.libs/libfreetype-2a9f7c1e.so.6.20.1", "scipy.libs/libgfortran-040039e1.so.5.0.0",
    "PIL/_imaging.cpython-311-x86_64-linux-gnu.so", "libz.so.1", "libcurl.so.4",
    "torch/cuda/nccl.py", "torch/_inductor/codegen/cutlass/lib_extensions/cuda/cudart.py",
]  # fmt: skip
WINDOWS_CUDA = [
    "torch\\lib\\cudnn64_9.dll", "torch\\lib\\cudnn_engines_precompiled64_9.dll",
    "torch\\lib\\cublas64_12.dll", "torch\\lib\\cublasLt64_12.dll", "torch\\lib\\cufft64_11.dll",
    "torch\\lib\\curand64_10.dll", "torch\\lib\\cusolver64_11.dll",
    "torch\\lib\\cusparse64_12.dll", "torch\\lib\\nvrtc64_120_0.dll",
    "torch\\lib\\nvrtc-builtins64_128.dll", "torch\\lib\\nvJitLink_120_0.dll",
    "torch\\lib\\cupti64_2025.1.0.dll", "torch\\lib\\cudart64_12.dll",
    "torch\\lib\\torch_cuda.dll", "torch\\lib\\c10_cuda.dll", "torch\\lib\\caffe2_nvrtc.dll",
    "torch\\lib\\nvToolsExt64_1.dll",
]  # fmt: skip
WINDOWS_KEEP = [
    "torch\\lib\\torch_cpu.dll", "torch\\lib\\c10.dll", "torch\\lib\\libiomp5md.dll",
    "torch\\lib\\uv.dll", "torch\\_C.cp311-win_amd64.pyd", "PySide6\\Qt6Gui.dll",
    "PySide6\\plugins\\platforms\\qwindows.dll", "freetype.dll", "python311.dll",
]  # fmt: skip
MACOS_KEEP = [
    "torch/lib/libtorch_cpu.dylib", "torch/lib/libc10.dylib", "torch/lib/libomp.dylib",
    "torch/_C.cpython-311-darwin.so", "PySide6/Qt/lib/QtGui.framework/Versions/A/QtGui",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib", "libfreetype.6.dylib", "libX11.6.dylib",
]  # fmt: skip


def toc(names: list[str]) -> list[tuple[str, str, str]]:
    return [(n, f"/site-packages/{n}", "BINARY") for n in names]


def kept(plan: BundlePlan, names: list[str]) -> set[str]:
    return {entry[0] for entry in plan.filter(toc(names))}


@pytest.mark.parametrize("platform", bundle_plan.PLATFORMS)
def test_a_gpu_bundle_keeps_cuda_and_drops_only_desktop_libraries(platform):
    names = LINUX_CUDA + LINUX_DESKTOP + LINUX_KEEP + WINDOWS_CUDA + WINDOWS_KEEP + MACOS_KEEP
    plan = BundlePlan(platform)
    out = kept(plan, names)
    desktop = set(LINUX_DESKTOP) if platform == "linux" else set()
    assert out == set(names) - desktop
    assert plan.excluded_modules() == [] and plan.runtime_hooks(Path("h")) == []


def test_linux_cpu_bundle_drops_every_cuda_library_and_the_desktops_own():
    plan = BundlePlan("linux", cpu_only=True)
    assert kept(plan, LINUX_CUDA + LINUX_DESKTOP + LINUX_KEEP) == set(LINUX_KEEP)
    assert len(plan.dropped["CUDA (CPU-only bundle)"]) == len(LINUX_CUDA)
    assert len(plan.dropped["the desktop provides it"]) == len(LINUX_DESKTOP)
    assert plan.excluded_modules() == ["cuda", "nvidia"]  # cuda-python's bindings
    assert plan.runtime_hooks(PACKAGING / "hooks") == [str(PACKAGING / "hooks/rthook_cpu_only.py")]


def test_windows_cpu_bundle_drops_the_cuda_dlls_only():
    plan = BundlePlan("windows", cpu_only=True)
    assert kept(plan, WINDOWS_CUDA + WINDOWS_KEEP) == set(WINDOWS_KEEP)
    assert "the desktop provides it" not in plan.dropped


def test_macos_cpu_bundle_has_no_cuda_and_keeps_its_libraries():
    plan = BundlePlan("macos", cpu_only=True)
    assert kept(plan, MACOS_KEEP) == set(MACOS_KEEP)
    assert plan.summary() == "left out nothing"


def test_a_symlink_is_judged_by_its_target():
    plan = BundlePlan("linux", cpu_only=True)
    link = ("libcusolver.so.12", "nvidia/cu13/lib/libcusolver.so.12", "SYMLINK")
    other = ("libfoo.so.1", "mypkg.libs/libfoo.so.1", "SYMLINK")
    assert plan.filter([link, other]) == [other]


def test_without_torchvision_its_files_stay_out_and_a_hook_explains(tmp_path):
    plan = BundlePlan("linux", cpu_only=True, with_torchvision=False)
    names = ["torchvision/_C_stable.so", "torchvision.libs/libnvjpeg.36e11081.so.13"]
    assert kept(plan, names + LINUX_KEEP) == set(LINUX_KEEP)
    assert plan.excluded_modules() == ["cuda", "nvidia", "torchvision"]
    hooks = plan.runtime_hooks(PACKAGING / "hooks")
    assert all(Path(h).is_file() for h in hooks) and len(hooks) == 2


@pytest.mark.parametrize(
    "platform, names, binary",
    [
        ("linux", ["libc10.so", "libcudnn.so.9", "x.cpython-311-x86_64-linux-gnu.so"], True),
        ("linux", ["libcudadevrt.a", "libnccl_device.bc", "file.sonnet"], False),
        ("windows", ["c10.dll", "_C.cp311-win_amd64.pyd", "QT6GUI.DLL"], True),
        ("windows", ["libc10.so", "c10.lib"], False),
        ("macos", ["libc10.dylib", "_C.cpython-311-darwin.so"], True),
        ("macos", ["c10.dll", "libc10.so.1"], False),
    ],
)
def test_binaries_are_recognised_per_platform(platform, names, binary):
    assert all(is_binary(n, platform) is binary for n in names)


def test_icon_per_platform():
    icons = ROOT / "resources" / "icons"
    assert icon_for("windows", icons) == icons / "app.ico"
    assert icon_for("macos", icons) == icons / "app.icns"
    assert icon_for("linux", icons) is None
    assert icon_for("windows", icons / "nowhere") is None  # PyInstaller's own icon, no failure
    with pytest.raises(ValueError, match="unknown platform"):
        icon_for("beos", icons)


def test_icons_are_real_icon_files():
    from PIL import Image

    with Image.open(ROOT / "resources/icons/app.ico") as ico:
        assert ico.format == "ICO" and (256, 256) in ico.info["sizes"]
    with Image.open(ROOT / "resources/icons/app.icns") as icns:
        assert icns.format == "ICNS" and icns.size[0] >= 512


@pytest.fixture
def fake_site(tmp_path) -> Path:
    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    for name in ("libcublas.so.13", "libcusolverMg.so.12", "libcudadevrt.a", "libnvblas.so.13"):
        (lib / name).touch()
    (tmp_path / "nvidia" / "nccl" / "lib").mkdir(parents=True)
    (tmp_path / "nvidia" / "nccl" / "lib" / "libnccl.so.2").touch()
    (tmp_path / "nvidia" / "nccl" / "lib" / "libnccl_device.bc").touch()
    return tmp_path


def test_nvidia_libraries_are_collected_on_linux_gpu_builds_only(fake_site):
    found = nvidia_libraries([fake_site], "linux", cpu_only=False)
    assert sorted((Path(src).name, dest) for src, dest in found) == [
        ("libcublas.so.13", "nvidia/cu13/lib"),
        ("libnccl.so.2", "nvidia/nccl/lib"),
    ]
    assert nvidia_libraries([fake_site], "linux", cpu_only=True) == []
    assert nvidia_libraries([fake_site], "windows", cpu_only=False) == []
    assert nvidia_libraries([fake_site], "macos", cpu_only=False) == []


@pytest.mark.parametrize(
    "name, role",
    [
        ("libc.so.6", "system"), ("ld-linux-x86-64.so.2", "system"), ("libGL.so.1", "system"),
        ("libEGL.so.1", "system"), ("libxcb.so.1", "system"), ("libcuda.so.1", "system"),
        ("libfontconfig.so.1", "desktop"), ("libdbus-1.so.3", "desktop"),
        ("libxcb-randr.so.0", "desktop"), ("libgtk-3.so.0", "optional"),
        ("libibverbs.so.1", "optional"), ("libxcb-cursor.so.0", None), ("libQt6Gui.so.6", None),
        ("libstdc++.so.6", None), ("libgomp.so.1", None),
    ],
)  # fmt: skip
def test_which_libraries_the_system_provides(name, role):
    assert bundle_plan.system_library_role(name) == role


# --- the spec itself, with PyInstaller's build steps replaced by recorders ----------------------


class _Recorder:
    def __init__(self, binaries):
        self.calls = {}
        self.binaries = binaries

    def analysis(self, scripts, **kw):
        self.calls["Analysis"] = kw
        found = toc(self.binaries) + [(Path(s).name, s, "BINARY") for s, _ in kw["binaries"]]
        return type("A", (), {"binaries": found, "datas": [], "scripts": [], "pure": []})()

    def exe(self, *args, **kw):
        self.calls.setdefault("EXE", []).append(kw)

    def collect(self, *args, **kw):
        self.calls["COLLECT"] = args


def run_spec(monkeypatch, platform: str, options: list[str], binaries: list[str]) -> _Recorder:
    hooks = pytest.importorskip("PyInstaller.utils.hooks")
    monkeypatch.setattr(hooks, "collect_submodules", lambda name: [name])
    monkeypatch.setattr(bundle_plan, "current_platform", lambda: platform)
    monkeypatch.setattr(sys, "argv", ["afps_inspector.spec", *options])
    rec = _Recorder(binaries)
    spec = PACKAGING / "afps_inspector.spec"
    namespace = {
        "SPECPATH": str(PACKAGING),
        "Analysis": rec.analysis,
        "PYZ": lambda pure: None,
        "EXE": rec.exe,
        "COLLECT": rec.collect,
        "__file__": str(spec),
    }
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)
    rec.calls["plan"] = namespace["plan"]
    return rec


def _collected(rec: _Recorder) -> set[str]:
    return {entry[0] for entry in rec.calls["COLLECT"][2]}


@pytest.mark.parametrize("platform", bundle_plan.PLATFORMS)
def test_spec_gpu_build_per_platform(monkeypatch, platform):
    names = LINUX_DESKTOP + LINUX_KEEP + WINDOWS_KEEP + MACOS_KEEP
    rec = run_spec(monkeypatch, platform, [], names)
    exes = rec.calls["EXE"]
    assert [e["name"] for e in exes] == ["afps-gui", "afps"]
    icon = {"windows": "app.ico", "macos": "app.icns"}.get(platform)
    assert all((Path(e["icon"]).name if "icon" in e else None) == icon for e in exes)
    nvidia = [b for b in rec.calls["Analysis"]["binaries"] if "/nvidia/" in b[0]]
    if platform != "linux":
        assert nvidia == []
    collected = _collected(rec)
    assert ("libfontconfig.so.1" in collected) is (platform != "linux")
    assert set(LINUX_KEEP) <= collected
    assert "triton" in rec.calls["Analysis"]["excludes"]
    assert rec.calls["Analysis"]["runtime_hooks"] == []


@pytest.mark.parametrize("platform", bundle_plan.PLATFORMS)
def test_spec_cpu_build_per_platform(monkeypatch, platform):
    monkeypatch.setattr(bundle_plan, "torch_cuda_version", lambda: None)  # a CPU torch
    names = LINUX_CUDA + WINDOWS_CUDA + LINUX_KEEP + WINDOWS_KEEP
    rec = run_spec(monkeypatch, platform, ["--cpu-only"], names)
    collected = _collected(rec)
    assert collected == set(LINUX_KEEP + WINDOWS_KEEP)  # every CUDA library stays out
    assert rec.calls["Analysis"]["binaries"] == []  # no nvidia/*/lib collected
    hooks = [Path(h).name for h in rec.calls["Analysis"]["runtime_hooks"]]
    assert hooks == ["rthook_cpu_only.py"]


def test_spec_refuses_a_cpu_bundle_from_a_cuda_torch(monkeypatch):
    monkeypatch.setattr(bundle_plan, "torch_cuda_version", lambda: "2.14.1+cu130")
    with pytest.raises(SystemExit, match="needs a CPU build of torch"):
        run_spec(monkeypatch, "linux", ["--cpu-only"], [])


def test_spec_without_torchvision(monkeypatch):
    monkeypatch.setattr(bundle_plan, "torch_cuda_version", lambda: None)
    rec = run_spec(monkeypatch, "linux", ["--cpu-only", "--no-torchvision"], LINUX_KEEP)
    assert "torchvision" in rec.calls["Analysis"]["excludes"]
    hooks = [Path(h).name for h in rec.calls["Analysis"]["runtime_hooks"]]
    assert hooks == ["rthook_cpu_only.py", "rthook_no_torchvision.py"]
