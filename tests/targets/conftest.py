"""Collect the real-OpenVINO fidelity tests only where the OpenVINO EP exists.

They are not skipped elsewhere: the main venv's onnxruntime has no OpenVINO EP, so the module is
not collected there at all, and `make test-openvino` runs it in `.venv-openvino` (an
onnxruntime-openvino build), selecting it with the `openvino_ep` marker.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

OPENVINO_EP_PRESENT = "OpenVINOExecutionProvider" in ort.get_available_providers()
REAL_OPENVINO_MODULES = ("test_openvino_fidelity.py", "test_openvino_failures.py", "test_openvino_fix_input.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "openvino_ep: needs the real OpenVINO EP (run in .venv-openvino)")


def pytest_ignore_collect(collection_path: Path, config):
    if collection_path.name in REAL_OPENVINO_MODULES and not OPENVINO_EP_PRESENT:
        return True
    return None
