"""Shared test setup: Qt always runs without a screen."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest  # noqa: E402
import torch  # noqa: E402

TORCH_THREADS = torch.get_num_threads()  # torch's own default on this machine


@pytest.fixture(autouse=True)
def _torch_threads_as_they_were():
    """A test that builds a main window leaves torch on one thread (the UI process's setting);
    the tests after it get the default back, set in the main thread once the window's tasks
    have ended."""
    yield
    if torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)
