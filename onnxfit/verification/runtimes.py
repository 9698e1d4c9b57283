"""Runtimes behind one small interface: ``Runtime.run(inputs) -> {output name: array}``.

Names a user can pick with ``--runtime``:

- ``ort-cpu-noopt``: ONNX Runtime CPU with graph optimizations off. The reference: no fusion
  or layout rewrite stands between the graph and the numbers.
- ``ort-cpu``: ONNX Runtime CPU with its default (all) graph optimizations.
- ``onnx-reference``: ``onnx.reference.ReferenceEvaluator``, a plain numpy interpreter that
  shares no code with ONNX Runtime. Slow, so it is added automatically only for small models.
- ``openvino``: the OpenVINO EP, when this onnxruntime build has it.
- ``ort-<ep>``: any other EP of this build (``ort-cuda``, ``ort-coreml``, ...), on request.
- ``planned-<target>``: the session ``onnxfit.session()`` opens for that target (its EP options, and
  on CUDA the graph replay on fixed device buffers when the plan captures one); for every target
  whose EP this build has. ``verify --target`` adds it when the target's EP is here. verify does
  not plan sessions: it is handed the opener (``open_planned``, ``onnxfit.verify`` passes the
  application's), and without one a ``planned-`` runtime is an error.

``TorchRuntime(module)`` adapts a torch module (used by the exporters to compare against the
module they exported). Sessions are created lazily on the first ``run``.

ONNX Runtime logs only fatal errors here: a failed run raises, and verify turns the exception into
one line; ORT's multi-line colored log on stderr would only repeat it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnx
import onnxruntime as ort

from onnxfit.errors import MissingExtra, OnnxfitError
from onnxfit.model import load_model, model_data_size
from onnxfit.targets import TARGETS

__all__ = [
    "Runtime",
    "OrtRuntime",
    "PlannedRuntime",
    "ReferenceRuntime",
    "TooCostly",
    "TorchRuntime",
    "REFERENCE",
    "available_runtimes",
    "default_runtimes",
    "make_runtime",
    "runtime_name",
    "ModelSource",
    "SessionOpener",
    "REFERENCE_EVALUATOR_WRONG",
    "ReferenceGap",
    "concise_ort_error",
    "reference_evaluator_gaps",
]

log = logging.getLogger(__name__)

ModelSource = str | os.PathLike | onnx.ModelProto
# (model, target) -> the session the application plans for target, opened on model.
SessionOpener = Callable[[ModelSource, str], Any]

REFERENCE = "ort-cpu-noopt"

# onnx.reference interprets node by node in numpy: fine for tests and small models, minutes or
# hours for a 100 MB detector. Above these limits it is used only when asked for.
REFERENCE_EVALUATOR_MAX_BYTES = 20 * 2**20
REFERENCE_EVALUATOR_MAX_NODES = 300



@dataclass(frozen=True)
class ReferenceGap:
    """onnx.reference computes ``op`` wrong at opsets ``first``..``last`` (for nodes ``applies`` to)."""

    first: int
    last: int
    what: str
    applies: Callable[[onnx.NodeProto], bool] = lambda node: True


# onnx.reference computes these wrong (checked against the ONNX spec and ORT, onnx 1.23), so it is
# not added automatically to a model that uses them: squeezenet (Softmax, opset 9) and centerface
# (BatchNormalization, opset 9) failed parity on onnx.reference alone.
REFERENCE_EVALUATOR_WRONG: dict[str, ReferenceGap] = {
    "Softmax": ReferenceGap(1, 12, "normalizes over the last axis only, not the 2-D coercion at `axis`"),
    "LogSoftmax": ReferenceGap(1, 12, "normalizes over the last axis only, not the 2-D coercion at `axis`"),
    "Hardmax": ReferenceGap(1, 12, "takes the max over the last axis only, not the 2-D coercion at `axis`"),
    # The momentum attribute defaults to 0.9, so an unset one does not help (openWakeWord's
    # tf2onnx embedding model, opset 13); at opsets 7-8 it fails outright.
    "BatchNormalization": ReferenceGap(7, 13, "uses batch statistics, not the running mean and variance"),
}
# Runtimes whose EP an onnxfit extra installs: named with the extra when it is missing.
_EP_EXTRAS = {"openvino": "openvino", "planned-openvino": "openvino"}
_QUIET = 4  # ORT log severity: fatal only

_PROVIDER_NAMES = {"CPUExecutionProvider": "ort-cpu", "OpenVINOExecutionProvider": "openvino"}
# Azure forwards requests to a remote endpoint: it cannot run a model by itself.
_NOT_LOCAL = {"AzureExecutionProvider"}


@runtime_checkable
class Runtime(Protocol):
    name: str

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def runtime_name(provider: str) -> str:
    """``CUDAExecutionProvider`` -> ``ort-cuda``; CPU and OpenVINO have the names users know."""
    return _PROVIDER_NAMES.get(provider) or "ort-" + provider.removesuffix("ExecutionProvider").lower()


def available_runtimes() -> dict[str, str]:
    """Selectable runtime names -> what they are, for this onnxruntime build."""
    names = {
        REFERENCE: "ONNX Runtime CPU, graph optimizations disabled (reference)",
        "ort-cpu": "ONNX Runtime CPU, default graph optimizations",
        "onnx-reference": "onnx.reference.ReferenceEvaluator (numpy interpreter)",
    }
    for provider in ort.get_available_providers():
        if provider not in _NOT_LOCAL and runtime_name(provider) not in names:
            names[runtime_name(provider)] = f"ONNX Runtime {provider}"
    for target in planned_targets():
        names[f"planned-{target}"] = f"the session onnxfit.session() opens for target {target}"
    return names


def planned_targets() -> list[str]:
    """Targets whose EP this onnxruntime build has: ``planned-<target>`` runtimes exist for them."""
    providers = ort.get_available_providers()
    return [name for name, target in TARGETS.items() if target.ep in providers]


def default_runtimes(model: onnx.ModelProto) -> list[str]:
    """What verify runs without ``--runtime``: the reference, ORT CPU, and the cheap extras."""
    names = [REFERENCE, "ort-cpu"]
    if _small_standard_model(model):
        names.append("onnx-reference")
    if "openvino" in available_runtimes():
        names.append("openvino")
    return names


def _small_standard_model(model: onnx.ModelProto) -> bool:
    # Custom domains (com.microsoft fused ops) are unknown to the reference evaluator.
    standard = all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    return (
        standard
        and not reference_evaluator_gaps(model)
        and len(model.graph.node) <= REFERENCE_EVALUATOR_MAX_NODES
        and model_data_size(model) <= REFERENCE_EVALUATOR_MAX_BYTES
    )


def reference_evaluator_gaps(model: onnx.ModelProto) -> list[str]:
    """Ops of ``model`` that onnx.reference computes wrong at the model's opset (one line each)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    gaps = {}
    for node in model.graph.node:
        gap = REFERENCE_EVALUATOR_WRONG.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if gap and gap.first <= opset <= gap.last and gap.applies(node):
            gaps[node.op_type] = f"{node.op_type} (opset {opset}): onnx.reference {gap.what}"
    return [gaps[op] for op in sorted(gaps)]


def make_runtime(name: str, model: ModelSource, open_planned: SessionOpener | None = None) -> Runtime:
    """The runtime called ``name`` for ``model``; unknown names raise listing the available ones.
    ``open_planned`` opens the session of a ``planned-<target>`` runtime."""
    available = available_runtimes()
    if name not in available:
        if name in _EP_EXTRAS:
            raise MissingExtra(f"runtime '{name}' needs the {_EP_EXTRAS[name]} execution provider, which this install "
                               f"lacks: pip install 'onnxfit[{_EP_EXTRAS[name]}]'")
        ep = _known_ep(name)
        if ep is not None:
            raise OnnxfitError(f"runtime '{name}' needs ONNX Runtime's {ep}, which this onnxruntime build lacks "
                               f"(available: {', '.join(available)})")
        raise OnnxfitError(f"unknown runtime '{name}' (available: {', '.join(available)})")
    if name == REFERENCE:
        return OrtRuntime(model, name=name, optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if name == "onnx-reference":
        return ReferenceRuntime(model)
    if name.startswith("planned-"):
        if open_planned is None:
            raise OnnxfitError(f"runtime '{name}' is the session onnxfit.session() plans: run it through "
                               "onnxfit.verify or `onnxfit verify`")
        return PlannedRuntime(model, name.removeprefix("planned-"), open_planned)
    provider = next(p for p in ort.get_available_providers() if runtime_name(p) == name)
    return OrtRuntime(model, provider=provider, name=name)


def _known_ep(name: str) -> str | None:
    """The EP behind ``ort-<ep>`` or ``planned-<target>`` for the EPs onnxfit has targets for."""
    from onnxfit.targets import TARGETS

    for target_name, target in TARGETS.items():
        if name in (runtime_name(target.ep), f"planned-{target_name}"):
            return target.ep
    return None


class OrtRuntime:
    """One ONNX Runtime session on one EP (CPU kept as fallback so partial EPs still run)."""

    def __init__(
        self,
        model: ModelSource,
        provider: str = "CPUExecutionProvider",
        name: str | None = None,
        optimization_level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        provider_options: dict[str, Any] | None = None,
    ) -> None:
        self.name = name or runtime_name(provider)
        self.model = model
        self.provider = provider
        self.optimization_level = optimization_level
        self.provider_options = provider_options or {}
        self._session: ort.InferenceSession | None = None

    def for_model(self, model: ModelSource) -> OrtRuntime:
        """The same EP, options and name for another model: how parity measures this runtime's own
        deviation on the reference model (TF32 on CUDA)."""
        return OrtRuntime(model, self.provider, self.name, self.optimization_level, self.provider_options)

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            options = ort.SessionOptions()
            options.log_severity_level = _QUIET
            options.graph_optimization_level = self.optimization_level
            providers: list = [(self.provider, self.provider_options)]
            if self.provider != "CPUExecutionProvider":
                providers.append("CPUExecutionProvider")
            # A path lets ORT read external data itself; a proto is handed over serialized.
            source = self.model.SerializeToString() if isinstance(self.model, onnx.ModelProto) else str(self.model)
            try:
                self._session = ort.InferenceSession(source, options, providers=providers)
            except Exception as exc:  # noqa: BLE001 - ORT raises several types; one line says why
                raise RuntimeError(concise_ort_error(str(exc))) from None
        return self._session

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        wanted = {i.name for i in self.session.get_inputs()}
        run_options = ort.RunOptions()
        run_options.log_severity_level = _QUIET
        try:
            results = self.session.run(names, {k: v for k, v in inputs.items() if k in wanted}, run_options)
        except Exception as exc:  # noqa: BLE001 - ORT raises several types; keep the innermost reason only
            raise RuntimeError(concise_ort_error(str(exc))) from None
        return dict(zip(names, (as_array(r) for r in results)))


class PlannedRuntime:
    """The session ``onnxfit.session()`` would open for ``target``, on the model as it is (no prepare),
    opened by ``open_planned`` on the first run."""

    def __init__(self, model: ModelSource, target: str, open_planned: SessionOpener) -> None:
        self.name = f"planned-{target}"
        self.model = model
        self.target = target
        self.open_planned = open_planned
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = self.open_planned(self.model, self.target)
        return self._session

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        wanted = {i.name for i in self.session.get_inputs()}
        try:
            results = self.session.run(names, {k: v for k, v in inputs.items() if k in wanted})
        except OnnxfitError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises several types; keep the innermost reason only
            raise RuntimeError(concise_ort_error(str(exc))) from None
        return dict(zip(names, (as_array(r) for r in results)))


def as_array(value) -> np.ndarray:
    """One output as an array to compare: a sequence of maps (ZipMap's class scores per row)
    becomes one row of values per map in key order, a sequence of same-shape tensors is stacked."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = sorted(value[0])
        return np.array([[row[k] for k in keys] for row in value])
    if isinstance(value, list) and value and all(np.shape(v) == np.shape(value[0]) for v in value):
        return np.stack([np.asarray(v) for v in value])
    if isinstance(value, dict):
        return np.array([value[k] for k in sorted(value)])
    return np.asarray(value)


def concise_ort_error(text: str) -> str:
    """ORT nests a failure in every If/Loop around it; keep the failing node and its reason.

    ``...running If node. Name:'If_0' Status Message: ... running LSTM node. Name:'rnn/LSTM'
    Status Message: Input initial_h must have shape {1,4,128}. Actual:{1,1,128}`` ->
    ``LSTM node 'rnn/LSTM': Input initial_h must have shape {1,4,128}. Actual:{1,1,128}``.
    """
    text = " ".join(text.split())
    nested = list(_ORT_NESTED.finditer(text))
    if nested:
        last = nested[-1]
        return f"{last.group(1)} node '{last.group(2)}': {text[last.end():]}"
    return _ORT_PREFIX.sub("", text)


_ORT_NESTED = re.compile(r"running (\w+) node\. Name:'([^']*)' Status Message: ")
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


class TooCostly(RuntimeError):
    """A runtime whose estimated cost for a run is out of proportion: skipped, with this reason."""


class ReferenceRuntime:
    """``onnx.reference.ReferenceEvaluator``: independent of ONNX Runtime, numpy only."""

    name = "onnx-reference"

    def __init__(self, model: ModelSource) -> None:
        self.model = model
        self._evaluator = None
        self._proto: onnx.ModelProto | None = None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        from onnxfit.verification.reference_cost import memory_budget, reference_cost

        if self._proto is None:
            self._proto = self.model if isinstance(self.model, onnx.ModelProto) else load_model(Path(self.model))
        own = {i.name for i in self._proto.graph.input}
        budget = memory_budget()
        cost = reference_cost(self._proto, {k: v.shape for k, v in inputs.items() if k in own})
        if cost.peak > budget:
            raise TooCostly(
                f"onnx-reference not run: it would need ~{cost.peak / 2**30:.1f} GiB for this run"
                + (f" ({cost.what}: {cost.temporary / 2**30:.1f} GiB of im2col columns)" if cost.temporary else "")
                + f", above its budget of {budget / 2**30:.1f} GiB"
            )
        if self._evaluator is None:
            self._evaluator = ReferenceEvaluator(self._proto)
        names = list(self._evaluator.output_names)
        wanted = set(self._evaluator.input_names)
        results = self._evaluator.run(None, {k: v for k, v in inputs.items() if k in wanted})
        return dict(zip(names, (as_array(r) for r in results)))


class TorchRuntime:
    """A torch module called with the ONNX inputs in ``input_names`` order (no grad, eval mode)."""

    name = "torch"

    def __init__(self, module, input_names: Sequence[str], output_names: Sequence[str] | None = None) -> None:
        self.module = module
        self.input_names = list(input_names)
        self.output_names = list(output_names) if output_names else None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        self.module.eval()
        with torch.no_grad():
            result = self.module(*(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in self.input_names))
        tensors = list(result) if isinstance(result, (tuple, list)) else [result]
        names = self.output_names or [f"output_{i}" for i in range(len(tensors))]
        if len(names) != len(tensors):
            raise ValueError(f"torch module returned {len(tensors)} outputs, expected {len(names)} ({names})")
        return {n: t.detach().cpu().numpy() for n, t in zip(names, tensors)}
