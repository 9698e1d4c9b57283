"""Would the result load? The checks ``run_passes`` makes before anything is written.

Each check runs on the result without its weights (``weightless_copy``: the graph, not the
weights, decides) and refuses only what the original passed: exporters write models that fail
onnx's checker or strict inference and that ONNX Runtime runs all the same.

1. onnx's checker (``check_model``);
2. onnx's strict shape inference, which ONNX Runtime runs through every If branch at load
   (``check_inference``);
3. ONNX Runtime itself, on CPU with its optimizations off (``check_runtime_loads``): what onnx
   cannot tell, such as the function bodies ONNX Runtime expands at load (a fixed ``[1]`` value
   reaching a Range inside a model-local function: "Input to 'Range' op should be scalars") or
   a kernel it lacks for a type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import numpy as np
import onnx

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.shapes import setting_inputs_deciding_ifs, weightless_copy

__all__ = ["check_model", "check_inference", "check_runtime_loads"]

log = logging.getLogger(__name__)

_BUG = "This is an onnxfit bug: please report it with the model"


def check_model(light: onnx.ModelProto, when: str, original: onnx.ModelProto) -> None:
    """A pass that produced an invalid graph is a bug in onnxfit: fail loudly, never save it.

    When the original already fails the checker, a failing result is only logged. The failure
    is an ``OnnxfitError`` (one line, no traceback) that names the model's state.
    """
    try:
        onnx.checker.check_model(light)
    except onnx.checker.ValidationError as exc:
        try:
            onnx.checker.check_model(weightless_copy(original))
        except onnx.checker.ValidationError:
            log.warning("onnx checker rejects the model %s, as it rejected the original: %s", when, exc)
            return
        raise OnnxfitError(f"onnx checker rejects the result {when} ({first_line(exc)}); nothing was written. "
                           f"{_BUG}") from None


def check_inference(light: onnx.ModelProto, original: onnx.ModelProto, input_shapes: Mapping,
                    fixed_inputs: Mapping[str, np.ndarray]) -> None:
    """Fixed input shapes can make strict inference fail on their own: silero-vad's 8 kHz branch
    cannot take the 576-sample chunks of 16 kHz, so with ``--input-shape input=1x576`` it only
    loads once ``--fix-input sr=16000`` removes it."""

    def fails(m: onnx.ModelProto) -> str | None:
        try:
            onnx.shape_inference.infer_shapes(m, strict_mode=True)
        except (onnx.shape_inference.InferenceError, ValueError) as exc:
            return first_line(exc)
        return None

    reason = fails(light)
    if reason is None or fails(weightless_copy(original)) is not None:
        return
    reason = re.sub(r"\s+", " ", reason)[:300]
    if input_shapes:
        deciding = [n for n in setting_inputs_deciding_ifs(original) if n not in fixed_inputs]
        hint = ("a branch of the model cannot take the input shapes given"
                + (f"; fix the input that picks the branch: {', '.join(f'--fix-input {n}=VALUE' for n in deciding)}"
                   if deciding else ""))
        raise OnnxfitError(f"the result would not load in ONNX Runtime: shape inference fails ({reason}): {hint}; "
                           "nothing was written")
    raise OnnxfitError(f"the result would not load in ONNX Runtime: shape inference fails ({reason}); nothing was "
                       f"written. {_BUG}")


def check_runtime_loads(light: onnx.ModelProto, original: onnx.ModelProto,
                        fixed_inputs: Mapping[str, np.ndarray]) -> None:
    """ONNX Runtime opens the result (CPU, optimizations off) where it opens the original."""
    reason = runtime_refuses(light)
    if reason is None or runtime_refuses(weightless_copy(original)) is not None:
        return
    hint = (f"the values given with --fix-input ({', '.join(fixed_inputs)}) may have a shape the model's nodes "
            "refuse once it is constant" if fixed_inputs else _BUG)
    raise OnnxfitError(f"the result would not load in ONNX Runtime ({reason}); nothing was written. {hint}")


def runtime_refuses(model: onnx.ModelProto) -> str | None:
    """ONNX Runtime's reason for refusing to open ``model`` on CPU, None when it opens it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises one class per status code; any is a refusal
        return re.sub(r"\s+", " ", first_line(exc))[:300]
    return None
