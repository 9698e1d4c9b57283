"""Which EP support profile and EP options stand for each target preset.

The profile gives the estimate (any machine); the provider options give the real placement when
the target's EP is present in the running onnxruntime.
"""

from __future__ import annotations

from onnxfit.targets.coreml import MLPROGRAM, NEURALNETWORK
from onnxfit.targets.nnapi import NNAPI
from onnxfit.targets.openvino import OPENVINO
from onnxfit.targets.support import Profile

__all__ = ["PROFILES", "PROVIDER_OPTIONS", "profile_for"]

PROFILES: dict[str, Profile] = {
    "coreml": MLPROGRAM,
    "coreml-nn": NEURALNETWORK,
    "nnapi": NNAPI,
    "openvino": OPENVINO,
}

# Options a real session passes to the target's EP, so the real figure is for the same configuration.
PROVIDER_OPTIONS: dict[str, dict[str, str]] = {
    "coreml": {"ModelFormat": "MLProgram"},
    "coreml-nn": {"ModelFormat": "NeuralNetwork"},
    "openvino": {"device_type": "CPU"},
}


def profile_for(target_name: str) -> Profile | None:
    return PROFILES.get(target_name)
