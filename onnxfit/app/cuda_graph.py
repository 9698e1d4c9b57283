"""CUDA graphs in ONNX Runtime: which models ORT captures, and the runner that replays them.

With ``enable_cuda_graph`` the CUDA EP records the kernel launches of one run and replays the
recording afterwards: one launch instead of hundreds, which is what fragmented models (state-space
and recurrent heads, detector post-processing) are bound by. ORT decides at session creation
(``InferenceSession::Initialize``):

1. no node holds a subgraph (If, Loop, Scan);
2. every node is on the CUDA EP or the CPU EP, and ORT inserted no MemcpyFromHost/MemcpyToHost.
   CPU nodes are allowed where they compute on host tensors end to end: shape math after Shape
   (whose CUDA kernel writes to host memory) feeding CUDA kernels only at inputs those kernels read
   from host memory (Reshape's shape, Slice's starts, ...). So an export whose shape math ORT
   places on the CPU is still captured, as long as no device copy appears.

What a replay assumes and ORT does not check:

3. the same input and output addresses every run: IOBinding with buffers allocated once;
4. the same shapes: the recording is of one set of launches, for one set of shapes.

`device_copies` predicts rule 2 from a placement (real or estimated); `BoundRunner` provides 3
and 4, on any device ("cpu" too, which is how its bookkeeping is tested without a GPU);
`StreamRunner` does the same for a streaming model whose states stay on the device between calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from onnxfit.errors import OnnxfitError, node_label
from onnxfit.targets.cuda import HOST_OUTPUT_OPS, host_memory_inputs
from onnxfit.targets.support import GraphFacts

__all__ = ["Buffer", "BoundRunner", "StreamRunner", "buffer_specs", "control_flow_nodes", "device_copies", "numpy_dtype",
           "pair_states"]

log = logging.getLogger(__name__)

# ORT runs the first run of a captured session normally and records the second; a runner warms
# up past both, so that every run a caller makes is a replay.
WARMUP_RUNS = 2


def control_flow_nodes(graph: GraphFacts) -> list[str]:
    """Labels of top-level nodes that hold a subgraph (rule 1)."""
    return [node_label(n) for n in graph.nodes if any(a.type in (a.GRAPH, a.GRAPHS) for a in n.attribute)]


def device_copies(graph: GraphFacts, on_cpu: set[int]) -> list[str]:
    """Edges where ORT inserts a device copy, given the indices of the nodes on the CPU (rule 2).

    A tensor lives where its producer ran, except the outputs of CUDA Shape/Size, which are host
    tensors. Graph inputs and initializers are placed by ORT where they are consumed: no copy node.
    """
    # The CUDA profile's tables: which kernels write host memory, which inputs they read from it.
    on_host: dict[str, bool] = {}
    for index, node in enumerate(graph.nodes):
        host = index in on_cpu or (node.op_type in HOST_OUTPUT_OPS and node.domain in ("", "ai.onnx"))
        on_host.update((name, host) for name in node.output if name)
    copies = []
    for index, node in enumerate(graph.nodes):
        cuda = index not in on_cpu
        host_inputs = host_memory_inputs(graph.node_facts(index)) if cuda else frozenset()
        for position, name in enumerate(node.input):
            if name not in on_host:
                continue
            # A CUDA kernel reads some inputs (Reshape's shape, ...) from host memory.
            wants_host = not cuda or position in host_inputs
            if on_host[name] != wants_host:
                producer = graph.nodes[graph.producer[name]]
                direction = "device -> host" if wants_host else "host -> device"
                copies.append(f"{node_label(producer)} -> {node_label(node)} ({direction})")
    return copies


@dataclass(frozen=True)
class Buffer:
    """One bound input or output: its fixed shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64, "tensor(uint32)": np.uint32, "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def numpy_dtype(ort_type: str) -> np.dtype:
    """``"tensor(float)"`` -> float32; a type a device buffer cannot hold raises."""
    if ort_type not in _ORT_TYPES:
        raise OnnxfitError(f"a {ort_type} value cannot be bound to a fixed device buffer")
    return np.dtype(_ORT_TYPES[ort_type])


def buffer_specs(values: Sequence, shapes: Mapping[str, Sequence[int]]) -> list[Buffer]:
    """Fixed buffers for a session's inputs or outputs (``get_inputs()``/``get_outputs()``).

    A value's declared dims are used where they are numbers; ``shapes`` gives the rest (it must
    agree with the declared ones). A dim left unknown raises: a replay needs one shape.
    """
    buffers = []
    for value in values:
        declared = list(value.shape or [])
        given = shapes.get(value.name)
        if given is not None:
            given = [int(d) for d in given]
            if declared and (len(declared) != len(given) or
                             any(isinstance(d, int) and d != g for d, g in zip(declared, given))):
                raise OnnxfitError(f"'{value.name}': shape {given} contradicts the model's {declared}")
            dims = given
        else:
            dims = declared
        if any(not isinstance(d, int) or d < 0 for d in dims):
            raise OnnxfitError(f"'{value.name}' has no fixed shape ({dims}): a CUDA graph replays one shape; "
                               f"prepare the model with input_shapes")
        buffers.append(Buffer(value.name, tuple(dims), numpy_dtype(value.type)))
    return buffers


class BoundRunner:
    """Runs a session through IOBinding on buffers allocated once on ``device``.

    Inputs are copied into their buffers (``update_inplace``); outputs are copied back with
    ``run`` or left on the device with ``run_on_device``. One runner per thread: the buffers are
    shared between runs.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        output_shapes: Mapping[str, Sequence[int]] | None = None,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        device: str = "cuda",
        device_id: int = 0,
        warmup: int = WARMUP_RUNS,
    ) -> None:
        self.session = session
        self.inputs = buffer_specs(session.get_inputs(), input_shapes or {})
        self.outputs = buffer_specs(session.get_outputs(), output_shapes or {})
        self.device = device
        self.input_values = {b.name: _allocate(b, device, device_id) for b in self.inputs}
        self.output_values = {b.name: _allocate(b, device, device_id) for b in self.outputs}
        self.binding = session.io_binding()
        for name, value in self.input_values.items():
            self.binding.bind_ortvalue_input(name, value)
        for name, value in self.output_values.items():
            self.binding.bind_ortvalue_output(name, value)
        for _ in range(warmup):
            self.run_on_device({b.name: np.zeros(b.shape, b.dtype) for b in self.inputs})

    def write(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Copy ``feeds`` into the input buffers; shapes and dtypes must be the bound ones."""
        _write(self.inputs, self.input_values, feeds)

    def run_on_device(self, feeds: Mapping[str, np.ndarray] | None = None) -> dict[str, ort.OrtValue]:
        """One run; outputs stay in the bound buffers (overwritten by the next run)."""
        if feeds is not None:
            self.write(feeds)
        self.session.run_with_iobinding(self.binding)
        return dict(self.output_values)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One run; outputs copied to host arrays."""
        return {name: value.numpy() for name, value in self.run_on_device(feeds).items()}


def _allocate(buffer: Buffer, device: str, device_id: int) -> ort.OrtValue:
    return ort.OrtValue.ortvalue_from_shape_and_type(list(buffer.shape), buffer.dtype.type, device, device_id)


def _write(buffers: list[Buffer], values: dict[str, ort.OrtValue], feeds: Mapping[str, np.ndarray],
           carried: str = "") -> None:
    """Copy ``feeds`` into the bound ``values``; every buffer needs a feed of its shape and dtype.
    Extra names are ignored like ORT's run (verify feeds every input of the reference)."""
    by_name = {b.name: b for b in buffers}
    missing = [name for name in by_name if name not in feeds]
    if missing:
        raise OnnxfitError(f"missing inputs: {', '.join(missing)}" + (f" (states are carried: {carried})" if carried else ""))
    for name, value in feeds.items():
        buffer = by_name.get(name)
        if buffer is None:
            continue
        array = np.asarray(value)
        if array.shape != buffer.shape or array.dtype != buffer.dtype:
            raise OnnxfitError(
                f"input '{name}': {array.dtype}{list(array.shape)} differs from the bound "
                f"{buffer.dtype}{list(buffer.shape)}; a CUDA graph replays one shape: open a session for that one"
            )
        values[name].update_inplace(np.ascontiguousarray(array))


# Names of state inputs, as exporters write them (state_in_0, h0, past_key, cache, ...).
_STATE_NAME = re.compile(r"(^|[_.\-/])(state|states|past|cache|hidden|memory|h0|c0)($|[_.\-/\d])", re.IGNORECASE)
# gpu_graph_id of the two directions of the state ping-pong (0 is ORT's own default graph).
_GRAPH_IDS = (1, 2)


def pair_states(inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> dict[str, str]:
    """output -> input for a streaming model: each input named like a state (``state_in_3``, ``h0``,
    ``cache``) takes the first unpaired output of its shape and dtype, in order. Raises when a state
    input finds none: pass the pairs by name."""
    pairs: dict[str, str] = {}
    free = list(outputs)
    for buffer in inputs:
        if not _STATE_NAME.search(buffer.name):
            continue
        match = next((o for o in free if o.shape == buffer.shape and o.dtype == buffer.dtype), None)
        if match is None:
            raise OnnxfitError(f"state input '{buffer.name}' {buffer.dtype}{list(buffer.shape)}: no output of that "
                               "shape and dtype to carry into it; pass carry={output: input} by name")
        pairs[match.name] = buffer.name
        free.remove(match)
    if not pairs:
        raise OnnxfitError("no input is named like a state (state, cache, past, hidden, h0, ...): pass "
                           "carry={output: input} by name")
    return pairs


class StreamRunner:
    """Runs a streaming model call after call with its states kept on the device.

    Each call's state outputs are the next call's state inputs. Copying them to the host and back
    costs more than a fragmented model's whole replay (FacePhys on an H100: 4.4 ms per frame with
    host states). The runner keeps two sets of state buffers and two IOBindings: binding k reads
    states from set k and writes them into set 1-k; calls alternate, so no state is ever copied.
    With a CUDA graph each binding is its own captured graph (``gpu_graph_id`` 1 and 2), since a
    graph replays fixed addresses. Other inputs are written per call, other outputs read back.
    One runner per stream (or per batch of streams), one thread.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        carry: Mapping[str, str] | str = "auto",
        output_shapes: Mapping[str, Sequence[int]] | None = None,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        device: str = "cuda",
        device_id: int = 0,
        warmup: int = WARMUP_RUNS,
    ) -> None:
        inputs = {b.name: b for b in buffer_specs(session.get_inputs(), input_shapes or {})}
        outputs = {b.name: b for b in buffer_specs(session.get_outputs(), output_shapes or {})}
        self.carry = pair_states(list(inputs.values()), list(outputs.values())) if carry == "auto" else dict(carry)
        for out, inp in self.carry.items():
            if out not in outputs or inp not in inputs:
                raise OnnxfitError(f"carry {out!r} -> {inp!r}: not an output and an input of the model")
            if (outputs[out].shape, outputs[out].dtype) != (inputs[inp].shape, inputs[inp].dtype):
                raise OnnxfitError(f"carry {out!r} -> {inp!r}: shapes or dtypes differ")
        self.session = session
        self.inputs = [b for name, b in inputs.items() if name not in self.carry.values()]
        self.outputs = [b for name, b in outputs.items() if name not in self.carry]
        self.input_values = {b.name: _allocate(b, device, device_id) for b in self.inputs}
        self.output_values = {b.name: _allocate(b, device, device_id) for b in self.outputs}
        self._states = [{inp: _allocate(inputs[inp], device, device_id) for inp in self.carry.values()}
                        for _ in range(2)]
        self._bindings, self._run_options = [], []
        for k in range(2):
            binding = session.io_binding()
            for name, value in self.input_values.items():
                binding.bind_ortvalue_input(name, value)
            for name, value in self.output_values.items():
                binding.bind_ortvalue_output(name, value)
            for out, inp in self.carry.items():
                binding.bind_ortvalue_input(inp, self._states[k][inp])
                binding.bind_ortvalue_output(out, self._states[1 - k][inp])
            options = ort.RunOptions()
            options.add_run_config_entry("gpu_graph_id", str(_GRAPH_IDS[k]))
            self._bindings.append(binding)
            self._run_options.append(options)
        self._turn = 0
        zeros = {b.name: np.zeros(b.shape, b.dtype) for b in self.inputs}
        for _ in range(warmup):  # both directions captured before the caller's first call
            self.run(zeros)
            self.run(zeros)
        self.reset()

    def reset(self, states: Mapping[str, np.ndarray] | None = None) -> None:
        """Start a new stream: the states become ``states`` (by input name), zeros for the others."""
        states = states or {}
        for inp, value in self._states[self._turn].items():
            given = states.get(inp)
            buffer = np.zeros(value.shape(), numpy_dtype(value.data_type())) if given is None else given
            value.update_inplace(np.ascontiguousarray(buffer))

    def states(self) -> dict[str, np.ndarray]:
        """The states the next call reads, copied to host arrays (by input name)."""
        return {inp: value.numpy() for inp, value in self._states[self._turn].items()}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call: ``feeds`` for the inputs that are not states; the outputs that are not states."""
        _write(self.inputs, self.input_values, feeds, carried=", ".join(self.carry.values()))
        self.session.run_with_iobinding(self._bindings[self._turn], self._run_options[self._turn])
        self._turn = 1 - self._turn
        return {name: value.numpy() for name, value in self.output_values.items()}
