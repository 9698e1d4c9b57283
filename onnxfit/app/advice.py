"""Advice: the flags that would cut a model's partitions on a target, with the predicted result.

Why: the passes can only fold what the model lets them know. Symbolic height/width keep Shape ops
computing at run time, and a setting input (a VAD's ``sr``) keeps the If nodes that branch on it;
the EP builders refuse both. A user cannot guess which flag helps, so onnxfit tries them: each
suggestion is predicted by running the optimize pipeline in memory with the flag and counting
partitions on the result, never by a rule of thumb. Suggestions that do not lower the count are
not shown.

Sizes for ``--input-shape`` come from the model where it says them (Ultralytics' ``imgsz``
metadata), else an image input's symbolic H/W take 640 and its batch 1; other symbolic dims
(sequence lengths, chunk sizes) have no size onnxfit could guess, so they are named, not predicted.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import asdict, dataclass

import onnx

from onnxfit.app.job import OptimizeJob
from onnxfit.app.rewrite import rewrite_model
from onnxfit.batch_axes import input_batch_axes
from onnxfit.errors import OnnxfitError
from onnxfit.shapes import proto_shape, setting_inputs_deciding_ifs, weightless_copy
from onnxfit.targets.partitions import count_partitions
from onnxfit.versions import OrtRelease

__all__ = ["Advice", "advise"]

log = logging.getLogger(__name__)

_IMAGE_SIZE = 640


@dataclass
class Advice:
    """One suggestion: the flags, why, and the partitions predicted before -> with it."""

    flags: str
    reason: str
    partitions_now: int | None = None
    partitions_with: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{self.reason}: `{self.flags}`"
        if self.partitions_with is not None:
            text += f" (estimated {self.partitions_now} -> {self.partitions_with} partitions)"
        return text


def advise(model: onnx.ModelProto, target: str, ort_version: OrtRelease | str | None = None,
           partitions_now: int | None = None) -> list[Advice]:
    """Flags that lower ``model``'s partitions on ``target`` after ``optimize``, each predicted.

    ``partitions_now``: the count after a plain ``optimize --target`` when the caller has it.
    """
    def partitions(**options) -> int | None:
        try:
            result = rewrite_model(model, OptimizeJob.create(None, target=target, **options))
            return count_partitions(result.model, target, ort_version).partitions
        except OnnxfitError as exc:
            log.info("advice: optimize %s failed: %s", options, exc)
            return None

    if partitions_now is None:
        partitions_now = partitions()
    if partitions_now is None or partitions_now == 1:  # 0: nothing on the EP yet, advice may help
        return []
    advice: list[Advice] = []
    shapes, unguessed = _guessed_shapes(model)
    if shapes:
        with_shapes = partitions(input_shapes=shapes)
        if with_shapes is not None and with_shapes < partitions_now:
            flags = " ".join(f"--input-shape {name}={'x'.join(map(str, dims))}" for name, dims in shapes.items())
            reading = _shape_ops_on_symbolic_dims(model)
            reason = (f"{reading} Shape op(s) read symbolic dims" if reading else "symbolic input dims") + \
                " (use your real sizes)"
            advice.append(Advice(flags, reason, partitions_now, with_shapes))
    for name, dims in unguessed.items():
        symbolic = [str(d) for d in dims if not isinstance(d, int)]
        if symbolic:
            flag = "x".join(str(d) if isinstance(d, int) else "N" if d == "?" else d.upper() for d in dims)
            advice.append(Advice(f"--input-shape {name}={flag}",
                                 f"input '{name}' has symbolic dims ({', '.join(symbolic)}) whose sizes onnxfit cannot "
                                 "guess; your sizes let fold-shapes and inline-if decide more"))
    for name, count in setting_inputs_deciding_ifs(model).items():
        advice.append(Advice(f"--fix-input {name}=VALUE",
                             f"input '{name}' decides {count} If node(s) (the {target} EP has none): fixing the value "
                             "you always feed inlines the branch it takes"))
    return advice


def _guessed_shapes(model: onnx.ModelProto) -> tuple[dict[str, tuple[int, ...]], dict[str, list]]:
    """Sizes for the symbolic dims of image inputs, and the other inputs with symbolic dims."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    axes = input_batch_axes({i.name: proto_shape(i) for i in inputs})
    size = _metadata_image_size(model)
    guessed: dict[str, tuple[int, ...]] = {}
    unguessed: dict[str, list] = {}
    for value_info in inputs:
        dims = proto_shape(value_info)
        if dims is None or all(isinstance(d, int) for d in dims):
            continue
        batch = axes.get(value_info.name)
        spatial = _spatial_axes(dims)
        if spatial is None:
            unguessed[value_info.name] = [1 if axis == batch else d if isinstance(d, int) else (d or "?")
                                          for axis, d in enumerate(dims)]
            continue
        fixed = []
        for axis, dim in enumerate(dims):
            if isinstance(dim, int):
                fixed.append(dim)
            elif axis in spatial:
                fixed.append(size[spatial.index(axis)])
            elif axis == batch or axis == 0:
                fixed.append(1)
            else:
                break
        if len(fixed) == len(dims):
            guessed[value_info.name] = tuple(fixed)
        else:
            unguessed[value_info.name] = [1 if axis == batch else d if isinstance(d, int) else (d or "?")
                                          for axis, d in enumerate(dims)]
    return guessed, unguessed


def _spatial_axes(dims: list) -> tuple[int, int] | None:
    """H and W of a rank-4 image input: NCHW (1 or 3 channels on axis 1) or NHWC (on axis 3)."""
    if len(dims) != 4:
        return None
    if dims[1] in (1, 3) or (not isinstance(dims[1], int) and dims[3] not in (1, 3)):
        return (2, 3)
    if dims[3] in (1, 3):
        return (1, 2)
    return None


def _metadata_image_size(model: onnx.ModelProto) -> tuple[int, int]:
    """Ultralytics exports record ``imgsz: [640, 640]``; otherwise 640 x 640."""
    for prop in model.metadata_props:
        if prop.key == "imgsz":
            try:
                value = ast.literal_eval(prop.value)
                if isinstance(value, int):
                    return value, value
                if len(value) == 2:
                    return int(value[0]), int(value[1])
            except (ValueError, SyntaxError, TypeError):
                pass
    return _IMAGE_SIZE, _IMAGE_SIZE


def _shape_ops_on_symbolic_dims(model: onnx.ModelProto) -> int:
    try:
        inferred = onnx.shape_inference.infer_shapes(weightless_copy(model), strict_mode=False)
    except Exception:  # noqa: BLE001 - advice only counts; a model onnx cannot infer just counts 0
        return 0
    known = {vi.name: proto_shape(vi) for vi in [*inferred.graph.value_info, *inferred.graph.input]}
    count = 0
    for node in inferred.graph.node:
        if node.op_type == "Shape" and node.input:
            dims = known.get(node.input[0])
            if dims is None or any(not isinstance(d, int) for d in dims):
                count += 1
    return count
