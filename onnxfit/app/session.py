"""``onnxfit.session()``: from a model to a ready InferenceSession with the EP options that fit.

Applications call ``prepare()`` and then write the same session code by hand, often with the EP
options wrong. ``session()`` prepares through the cache, plans providers and options for this
machine and the prepared model, and opens the session:

- CoreML: ``ModelFormat`` MLProgram (NeuralNetwork for coreml-nn), ``MLComputeUnits`` ALL, and
  ``RequireStaticInputShapes`` 1 when every input shape is fixed (else 0: the EP also takes nodes
  with dynamic shapes).
- CUDA: ``enable_cuda_graph`` when ONNX Runtime will capture the model (cuda_graph.py: fixed
  shapes, no control flow, no device copies; placement real where the CUDA EP is installed, else
  estimated by the cuda profile); ``run`` then goes through a ``BoundRunner``. ORT has the last
  word: when it refuses capture, the session opens plain CUDA and the plan says why.
- TensorRT (asked for by name; ``auto`` takes CUDA where both are listed): TensorRT, then CUDA for
  what it leaves. OpenVINO: ``device_type`` CPU (the devices
  found are named; pass GPU or NPU to use one). CPU: ONNX Runtime's defaults, except one intra-op
  thread for a streaming model (fixed input shapes, no tensor over ``STREAMING_MAX_ELEMENTS``):
  its ops are too small to split, and a thread pool costs each of its many nodes a wake-up.

Every choice is kept with its reason in a ``SessionPlan`` (``session.plan``, ``session_plan()``,
``onnxfit session-plan MODEL --json``). Provider options the caller passes win over planned ones.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxruntime as ort

from onnxfit.app.cuda_graph import BoundRunner, StreamRunner, control_flow_nodes, device_copies
from onnxfit.app.prepare import prepare_entry
from onnxfit.errors import OnnxfitError, first_line, node_label
from onnxfit.graphs import iter_graphs
from onnxfit.model import load_model
from onnxfit.model_inputs import ModelInputs
from onnxfit.shapes import proto_shape, weightless_copy
from onnxfit.targets import auto_target, get_target
from onnxfit.targets.cuda import CUDA
from onnxfit.targets.partitions import prepare_graph, real_partitions
from onnxfit.versions import installed_ort_version

__all__ = ["PlannedSession", "SessionPlan", "open_planned", "open_session", "plan_session", "session", "session_plan"]

log = logging.getLogger(__name__)

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
ModelSource = str | os.PathLike | onnx.ModelProto


@dataclass
class SessionPlan:
    """Which providers, in which order, with which options, and why."""

    model: str  # what the session loads (the prepared model)
    target: str
    ep: str
    providers: list[str]
    provider_options: list[dict[str, str]]  # one dict per provider, same order
    cuda_graph: bool
    static_inputs: bool
    input_shapes: dict[str, list]  # symbolic dims as their names
    reasons: list[str] = field(default_factory=list)
    caller_options: dict[str, str] = field(default_factory=dict)
    ep_available: bool = True  # is the target's EP in the provider list planned for
    output_shapes: dict[str, list[int]] = field(default_factory=dict)  # fixed shapes, for a CUDA graph's buffers
    placement: dict | None = None  # the CUDA EP's placement: real or estimated, CPU nodes, device copies
    intra_op_threads: int | None = None  # None: ONNX Runtime's default (one thread per physical core)
    source: str | None = None  # the model before prepare
    prepared: dict | None = None  # cache key, hit, rewritten
    onnxruntime: str = ort.__version__

    def options(self, provider: str | None = None) -> dict[str, str]:
        """The options planned for ``provider`` (default: the target's EP)."""
        return self.provider_options[self.providers.index(provider or self.ep)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class PlannedSession(ort.InferenceSession):
    """An InferenceSession opened as ``plan`` says. With a CUDA graph, ``run`` goes through
    ``runner`` (fixed device buffers): plain ``run`` calls would replay stale inputs."""

    def __init__(self, plan: SessionPlan, session_options: ort.SessionOptions | None = None,
                 model: ModelSource | None = None) -> None:
        source = model if model is not None else plan.model
        if isinstance(source, onnx.ModelProto):
            source = source.SerializeToString()
        # No silent fallback to the CPU: a refused EP option is an error the plan must see.
        super().__init__(source, session_options, providers=list(zip(plan.providers, plan.provider_options)),
                         enable_fallback=0)
        self.plan = plan
        self.runner = None

    def stream(self, carry: Mapping[str, str] | str = "auto") -> StreamRunner:
        """A runner for a streaming model that keeps its states on the device from call to call
        (``carry``: output -> input name, or "auto": inputs named like states take the outputs of
        their shape, in order). On the CPU it runs the same way, with the states in host memory."""
        device = "cuda" if self.plan.ep in (CUDA_EP, "TensorrtExecutionProvider") else "cpu"
        device_id = int(self.plan.options().get("device_id", 0)) if device == "cuda" else 0
        return StreamRunner(self, carry, self.plan.output_shapes or None, device=device, device_id=device_id)

    def run(self, output_names, input_feed, run_options=None):
        if self.runner is None:
            return super().run(output_names, input_feed, run_options)
        outputs = self.runner.run(input_feed)
        return [outputs[name] for name in (output_names or [o.name for o in self.get_outputs()])]


# ------------------------------------------------------------------------------------ planning


def plan_session(
    model: ModelSource,
    target: str = "auto",
    available_providers: Sequence[str] | None = None,
    provider_options: Mapping[str, object] | None = None,
) -> SessionPlan:
    """Plan a session for ``model`` as it is (no prepare): providers, options, CUDA graph or not.

    ``available_providers`` simulates another machine's EP list (default: this onnxruntime's).
    ``provider_options`` for the target's EP win over the planned ones.
    """
    available = list(available_providers) if available_providers is not None else ort.get_available_providers()
    target = auto_target(list(available)) if target == "auto" else target
    preset = get_target(target)
    skeleton = model if isinstance(model, onnx.ModelProto) else load_model(Path(model), lazy_weights=True)
    shapes = _input_shapes(skeleton)
    static = all(isinstance(d, int) for dims in shapes.values() for d in dims)
    plan = SessionPlan(
        model=str(model) if not isinstance(model, onnx.ModelProto) else (model.graph.name or "<model>"),
        target=target, ep=preset.ep, providers=[], provider_options=[], cuda_graph=False,
        static_inputs=static, input_shapes=shapes, ep_available=preset.ep in available,
    )
    if not plan.ep_available:
        plan.reasons.append(f"{preset.ep} is not among the providers ({', '.join(available)}): planned for a "
                            f"machine that has it")
    options = _PLANNERS[target](plan, model, skeleton, available)
    caller = {str(k): str(v) for k, v in (provider_options or {}).items()}
    for key, value in caller.items():
        planned = f" (planned {options[key]})" if key in options and options[key] != value else ""
        plan.reasons.append(f"{key}={value}: given by the caller{planned}")
    options.update(caller)
    plan.caller_options = caller
    if "enable_cuda_graph" in caller:
        plan.cuda_graph = caller["enable_cuda_graph"].lower() in ("1", "true")
    chain = [preset.ep] + ([CUDA_EP] if target == "tensorrt" else [])
    plan.providers = chain + ([CPU_EP] if preset.ep != CPU_EP else [])
    plan.provider_options = [options if p == preset.ep else {} for p in plan.providers]
    return plan


def _input_shapes(model: onnx.ModelProto) -> dict[str, list]:
    initializers = {t.name for t in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name not in initializers:
            dims = proto_shape(value) or ()
            shapes[value.name] = [d if isinstance(d, int) else (d or "?") for d in dims]
    return shapes


def _plan_coreml(model_format: str):
    def plan(p: SessionPlan, model, skeleton, available) -> dict[str, str]:
        p.reasons.append(f"ModelFormat={model_format}: the format target {p.target} was prepared for")
        p.reasons.append("MLComputeUnits=ALL: CoreML picks the Neural Engine, GPU or CPU per layer "
                         "(CPUAndNeuralEngine or CPUOnly to restrict)")
        static = "1" if p.static_inputs else "0"
        p.reasons.append("RequireStaticInputShapes=1: every input shape is fixed" if p.static_inputs else
                         "RequireStaticInputShapes=0: some input has symbolic dims; fix them with input_shapes "
                         "so that CoreML compiles for one shape")
        return {"ModelFormat": model_format, "MLComputeUnits": "ALL", "RequireStaticInputShapes": static}

    return plan


def _plan_cuda(p: SessionPlan, model, skeleton, available) -> dict[str, str]:
    options = {"device_id": "0"}
    wrapped, convs = _nhwc_convs(skeleton)
    if wrapped and installed_ort_version() >= (1, 20):
        options["prefer_nhwc"] = "1"
        p.reasons.append(f"prefer_nhwc=1: {wrapped} of {convs} Convs sit between NHWC -> NCHW and NCHW -> NHWC "
                         "Transposes (a TensorFlow export's layout); run in NHWC, ONNX Runtime drops those Transposes")
    problems = _cuda_graph_problems(p, model)
    if problems:
        p.reasons.append("enable_cuda_graph off: " + "; ".join(problems))
        return options
    p.cuda_graph = True
    p.reasons.append("enable_cuda_graph=1: fixed shapes, no control flow, every node on CUDA or in host-only "
                     "shape math (no device copies); run() replays the graph on fixed device buffers")
    return {**options, "enable_cuda_graph": "1"}


_NHWC_TO_NCHW, _NCHW_TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh")


def _nhwc_convs(skeleton: onnx.ModelProto) -> tuple[int, int]:
    """(2-D Convs that read an NHWC -> NCHW Transpose and whose output, through at most one
    activation, only an NCHW -> NHWC Transpose reads; all Convs) of the main graph."""
    nodes = skeleton.graph.node
    producers = {out: n for n in nodes for out in n.output}
    readers: dict[str, list] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)

    def is_transpose(node, perm) -> bool:
        return node is not None and node.op_type == "Transpose" and node.domain in ("", "ai.onnx") and \
            [list(a.ints) for a in node.attribute if a.name == "perm"] == [perm]

    def only_reader(name: str):
        found = readers.get(name, [])
        return found[0] if len(found) == 1 else None

    convs = [n for n in nodes if n.op_type == "Conv" and n.domain in ("", "ai.onnx")]
    wrapped = 0
    for conv in convs:
        after = only_reader(conv.output[0])
        if after is not None and after.op_type in _ACTIVATIONS:
            after = only_reader(after.output[0])
        wrapped += is_transpose(producers.get(conv.input[0]), _NHWC_TO_NCHW) and is_transpose(after, _NCHW_TO_NHWC)
    return wrapped, len(convs)


def _cuda_graph_problems(p: SessionPlan, model: ModelSource) -> list[str]:
    """Why ORT would refuse or a replay would be wrong (cuda_graph.py's rules); [] when eligible."""
    problems = []
    symbolic = [name for name, dims in p.input_shapes.items() if not all(isinstance(d, int) for d in dims)]
    if symbolic:
        problems.append(f"input '{symbolic[0]}' has symbolic dims {p.input_shapes[symbolic[0]]}: a graph replays "
                        f"one shape (pass input_shapes)")
    graph = prepare_graph(model)
    flow = control_flow_nodes(graph)
    if flow:
        problems.append(f"{len(flow)} control-flow node(s), first {flow[0]}: ORT captures no If/Loop/Scan")
    if CUDA_EP in ort.get_available_providers():
        report = real_partitions(model, "cuda", CUDA_EP)
        if report.compile_error:
            problems.append(f"the CUDA EP fails on the model: {report.compile_error}")
        cpu_labels = {u.name for u in report.unsupported}
        on_cpu = {i for i, node in enumerate(graph.nodes) if node_label(node) in cpu_labels}
        source = "real"
    else:
        verdicts = CUDA.judge_graph(graph, installed_ort_version())
        on_cpu = {v.index for v in verdicts if not v.supported}
        source = "estimated"
    copies = device_copies(graph, on_cpu)
    if copies:
        problems.append(f"{len(copies)} device copies, first {copies[0]}: ORT captures no graph with Memcpy nodes")
    for name in graph.graph_outputs:
        dims = graph.shape(name)
        if dims is None or any(d is None for d in dims):
            problems.append(f"output '{name}' has no fixed shape after shape inference: no buffer can be bound")
        else:
            p.output_shapes[name] = list(dims)
    p.placement = {"source": source, "nodes": len(graph.nodes),
                   "on_cpu": sorted(node_label(graph.nodes[i]) for i in on_cpu),
                   "device_copies": copies, "control_flow": flow}
    return problems


def _plan_tensorrt(p: SessionPlan, model, skeleton, available) -> dict[str, str]:
    p.reasons.append("TensorRT first, CUDA for the nodes TensorRT leaves, then CPU; engines are TensorRT's own "
                     "(trt_* options to tune)")
    return {}


def _plan_openvino(p: SessionPlan, model, skeleton, available) -> dict[str, str]:
    devices = _openvino_devices() if p.ep_available else []
    found = f" (devices here: {', '.join(devices)})" if devices else ""
    p.reasons.append(f"device_type=CPU{found}: pass device_type GPU or NPU to use another device")
    return {"device_type": "CPU"}


def _openvino_devices() -> list[str]:
    from onnxruntime.capi import _pybind_state

    lister = getattr(_pybind_state, "get_available_openvino_device_ids", None)
    return list(lister()) if lister else []


STREAMING_MAX_ELEMENTS = 1 << 18


def _plan_default(p: SessionPlan, model, skeleton, available) -> dict[str, str]:
    largest = _largest_tensor(skeleton) if p.ep == CPU_EP and p.static_inputs else None
    if largest is not None and largest <= STREAMING_MAX_ELEMENTS:
        p.intra_op_threads = 1
        p.reasons.append(f"intra_op_num_threads=1: fixed shapes and no tensor over {largest} elements, a "
                         "streaming-sized model whose ops are too small to split across threads")
    else:
        p.reasons.append(f"{p.ep} with ONNX Runtime's defaults" + (" (thread counts included)" if p.ep == CPU_EP else ""))
    return {}


def _largest_tensor(skeleton: onnx.ModelProto) -> int | None:
    """Elements of the largest value the model (as ``plan_session`` loaded it) computes, from shape
    inference; None when a shape is not known."""
    try:
        inferred = onnx.shape_inference.infer_shapes(weightless_copy(skeleton))
    except (onnx.shape_inference.InferenceError, ValueError):
        return None
    graph = inferred.graph
    if any(n.op_type in ("If", "Loop", "Scan") for g in iter_graphs(graph) for n in g.node):
        return None
    largest = 0
    for value in [*graph.value_info, *graph.output]:
        dims = proto_shape(value)
        if dims is None or not all(isinstance(d, int) for d in dims):
            return None
        size = 1
        for d in dims:
            size *= d
        largest = max(largest, size)
    return largest


_PLANNERS = {
    "coreml": _plan_coreml("MLProgram"),
    "coreml-nn": _plan_coreml("NeuralNetwork"),
    "cuda": _plan_cuda,
    "tensorrt": _plan_tensorrt,
    "openvino": _plan_openvino,
    "nnapi": _plan_default,
    "cpu": _plan_default,
}


def session_plan(
    model: str | os.PathLike,
    target: str = "auto",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    fixed_inputs: Mapping[str, object] | Sequence[str] | None = None,
    dynamic_batch: bool = False,
    provider_options: Mapping[str, object] | None = None,
    available_providers: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    passes: list[str] | None = None,
    simplify: bool = False,
    batch_axes: Mapping[str, int | None] | Sequence[str] | None = None,
    keep_inputs: Sequence[str] | None = None,
    model_inputs: ModelInputs | None = None,
) -> SessionPlan:
    """Prepare ``model`` through the cache for ``target``, then plan its session (``plan_session``).
    ``model_inputs``: a ``ModelInputs`` in place of the four input keywords."""
    available = list(available_providers) if available_providers is not None else ort.get_available_providers()
    target = auto_target(list(available)) if target == "auto" else target
    described = ModelInputs.of(model_inputs, input_shapes=input_shapes, batch_axes=batch_axes,
                               fixed_inputs=fixed_inputs, keep_inputs=keep_inputs)
    entry = prepare_entry(model, target, dynamic_batch=dynamic_batch, cache_dir=cache_dir, passes=passes,
                          simplify=simplify, model_inputs=described)
    plan = plan_session(entry.path, target, available, provider_options)
    plan.source = str(model)
    plan.prepared = {"key": entry.key, "hit": entry.hit, "rewritten": entry.rewritten}
    return plan


# ------------------------------------------------------------------------------------- opening


def open_session(plan: SessionPlan, session_options: ort.SessionOptions | None = None,
                 model: ModelSource | None = None) -> PlannedSession:
    """Open the session ``plan`` describes (``model``: load this instead of ``plan.model``).

    A CUDA graph the plan chose and ORT refuses is dropped (the plan records ORT's reason); one
    the caller asked for is an error.
    """
    missing = [p for p in plan.providers if p not in ort.get_available_providers()]
    if missing:
        raise OnnxfitError(f"target '{plan.target}' needs {', '.join(missing)}, which this onnxruntime "
                           f"({ort.__version__}) lacks (available: {', '.join(ort.get_available_providers())})")
    try:
        opened = _open(plan, session_options, model)
    except Exception as exc:  # noqa: BLE001 - ORT raises several types; one line says why
        reason = first_line(exc)
        if not plan.cuda_graph or "enable_cuda_graph" in plan.caller_options:
            raise OnnxfitError(f"{plan.model}: ONNX Runtime cannot open the session: {reason}") from None
        plan.cuda_graph = False
        plan.options().pop("enable_cuda_graph")
        plan.reasons.append(f"enable_cuda_graph dropped: ONNX Runtime refused it ({reason})")
        opened = _open(plan, session_options, model)
    if plan.cuda_graph:
        opened.runner = BoundRunner(opened, plan.output_shapes, device="cuda",
                                    device_id=int(plan.options().get("device_id", 0)))
    return opened


def _open(plan: SessionPlan, session_options: ort.SessionOptions | None, model: ModelSource | None) -> PlannedSession:
    if plan.intra_op_threads is not None and (session_options is None or session_options.intra_op_num_threads == 0):
        session_options = session_options or ort.SessionOptions()
        session_options.intra_op_num_threads = plan.intra_op_threads  # the caller's own count wins
    opened = PlannedSession(plan, session_options, model)
    opened.disable_fallback()  # a failing run raises instead of switching this session to the CPU
    if plan.ep not in opened.get_providers():
        # Releases that ignore enable_fallback=0 fall back at creation and only print why.
        raise RuntimeError(f"{plan.ep} was dropped at creation (providers: {', '.join(opened.get_providers())})")
    return opened


def session(
    model: str | os.PathLike,
    target: str = "auto",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    fixed_inputs: Mapping[str, object] | Sequence[str] | None = None,
    dynamic_batch: bool = False,
    provider_options: Mapping[str, object] | None = None,
    session_options: ort.SessionOptions | None = None,
    cache_dir: str | os.PathLike | None = None,
    passes: list[str] | None = None,
    simplify: bool = False,
    batch_axes: Mapping[str, int | None] | Sequence[str] | None = None,
    keep_inputs: Sequence[str] | None = None,
    model_inputs: ModelInputs | None = None,
) -> PlannedSession:
    """A ready ``onnxruntime.InferenceSession`` for ``model`` on this machine: prepared through the
    cache for ``target``, opened with the providers and options its plan chose (``.plan`` says why).

    ``input_shapes``: ``{"images": (1, 3, 640, 640)}`` fixes shapes (CoreML compiles once, CUDA can
    capture a graph). ``provider_options``: options of the target's EP that win over the plan's.
    """
    plan = session_plan(model, target, input_shapes, fixed_inputs, dynamic_batch, provider_options,
                        cache_dir=cache_dir, passes=passes, simplify=simplify, batch_axes=batch_axes,
                        keep_inputs=keep_inputs, model_inputs=model_inputs)
    return open_session(plan, session_options)


def open_planned(model: ModelSource, target: str) -> PlannedSession:
    """The session ``session()`` would open for ``target`` on ``model`` as it is (no prepare): what
    verify's ``planned-<target>`` runtimes run."""
    return open_session(plan_session(model, target), model=model)
