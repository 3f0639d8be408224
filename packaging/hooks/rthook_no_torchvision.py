"""Runtime hook of a bundle built without torchvision: say why ``import torchvision`` fails.

The Linux CPU bundle is built from a CPU torch wheel; where no CPU torchvision wheel can be
installed beside it, the CUDA torchvision cannot load and is left out. Only the torchvision
backbones (ResNet, MobileNetV2) need it; the default EfficientNet backbones do not.
"""

import importlib.abc
import sys


class _NoTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            raise ImportError(
                "This CPU bundle of AFPS Inspector carries no torchvision, so the torchvision "
                "backbones (ResNet, MobileNetV2) are not available: choose an EfficientNet "
                "backbone, or use the full bundle."
            )
        return None


sys.meta_path.insert(0, _NoTorchvision())
