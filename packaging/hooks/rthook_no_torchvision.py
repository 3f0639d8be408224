"""Runtime hook of a bundle built without torchvision: a stand-in that says why it is missing.

The Linux CPU bundle is built from a CPU torch wheel; where no CPU torchvision wheel can be
installed beside it, the CUDA torchvision cannot load and is left out. Only the torchvision
backbones (ResNet, MobileNetV2) need it; the default EfficientNet backbones do not.
``import torchvision`` still succeeds (the app preloads it at start-up), but any use of it,
``torchvision.models`` included, raises an ImportError that says what to do.
"""

import importlib.abc
import sys
import types

MESSAGE = (
    "This CPU bundle of AFPS Inspector carries no torchvision, so the torchvision backbones "
    "(ResNet, MobileNetV2) are not available: choose an EfficientNet backbone, or use the "
    "full bundle."
)


class _Missing(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(MESSAGE)


class _NoSubmodules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("torchvision."):
            raise ImportError(MESSAGE)
        return None


stub = _Missing("torchvision", MESSAGE)
stub.__path__ = []  # a package: "import torchvision.models" asks the finders, and fails clearly
sys.modules["torchvision"] = stub
sys.meta_path.insert(0, _NoSubmodules())
