"""split-to-slice: every Split with sizes known before run time -> one Slice per output.

GFPGAN's SFT layers split the condition features along channels (``torch.split`` /
``torch.chunk``). The CoreML and NNAPI EPs have historically rejected Split forms (split sizes given
as an input rather than constants, and Split as a whole on older CoreML builds), so each Split cut
the graph into extra partitions: 155 ms -> 89 ms on GFPGAN once rewritten. Slice with constant
starts/ends is taken by every EP. Rules:
1. any axis (negative too), any number of outputs; each output keeps its tensor (name and
   Variable), so consumers, graph outputs and subgraph references are unchanged;
2. sizes from the ``split`` attribute (opset < 13), the ``split`` input (opset >= 13, or opset 1)
   when it is constant (initializer, Constant node, or constant after folding);
3. no sizes: equal split over the outputs, which needs the axis length to be known;
4. ``num_outputs`` (opset >= 18): ceil(length / n) per chunk, the last one smaller, as the ONNX
   spec and ONNX Runtime do; this also needs the axis length;
5. left alone and reported in ``skipped``: sizes computed at run time, an unknown axis length where
   one is needed, and splits ONNX Runtime would reject at run time (sizes that do not add up to
   the axis length, an uneven equal split, a num_outputs split whose last chunk is negative):
   rewriting those would turn a run-time error into an output.
6. left alone (a note in the report): a Split the target EP takes itself at ``--ort-version``,
   as its support profile says (CoreML takes the attribute form of opset < 13 from ONNX Runtime
   1.27, PR #28270; NNAPI takes equal splits of opset >= 13). The same rule gives the partition
   estimate. Unknown version: every Split is rewritten (the oldest release).
Exact: every Slice copies the same elements the Split would. Splits inside If/Loop/Scan bodies
are rewritten too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes
from onnxfit.optimizer.constants import constant_value
from onnxfit.optimizer.pipeline import register_pass
from onnxfit.optimizer.rewrite import MatchContext, RewriteRule, Skip, is_omitted

__all__ = ["SplitToSlicePass", "SplitPlan", "Skip", "decode_split"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitPlan:
    """A decoded Split: the axis (normalized when the rank is known) and one size per output."""

    axis: int
    sizes: tuple[int, ...]


@register_pass
class SplitToSlicePass(RewriteRule):
    name = "split-to-slice"
    version = 2
    op = "Split"
    kept_when_target_takes = "Split"

    def match(self, node: gs.Node, ctx: MatchContext) -> SplitPlan | Skip:
        return decode_split(node, ctx.opset)

    def rewrite(self, graph: gs.Graph, node: gs.Node, plan: SplitPlan, ctx: MatchContext) -> None:
        _rewrite(graph, node, plan, ctx.opset)

    def label(self, node: gs.Node) -> str:
        return f"Split '{node.name}'"


def decode_split(node: gs.Node, opset: int) -> SplitPlan | Skip:
    """Decode every Split form into a SplitPlan, or say why it cannot be rewritten exactly.

    Forms: ``split`` attribute (opsets 1-12), ``split`` input (opset 1 and >= 13), neither
    (equal split over the outputs), ``num_outputs`` attribute (opset >= 18, last chunk smaller).
    """
    data = node.inputs[0]
    rank = len(data.shape) if data.shape is not None else None
    axis = int(node.attrs.get("axis", 0))
    if rank is not None:
        if not -rank <= axis < rank:
            return Skip(f"axis {axis} is out of range for rank {rank}")
        axis %= rank
    length = _axis_length(data, axis)
    n = len(node.outputs)

    split_input = node.inputs[1] if len(node.inputs) > 1 and not is_omitted(node.inputs[1]) else None
    if split_input is not None:
        value = constant_value(split_input, opset)
        if value is None:
            return Skip(f"split sizes '{split_input.name}' are computed at run time")
        sizes = tuple(int(s) for s in np.asarray(value).reshape(-1))
    elif "split" in node.attrs:
        sizes = tuple(int(s) for s in node.attrs["split"])
    elif "num_outputs" in node.attrs:
        num_outputs = int(node.attrs["num_outputs"])
        if num_outputs != n:
            return Skip(f"num_outputs {num_outputs} differs from its {n} outputs")
        if length is None:
            return Skip(f"num_outputs split needs the length of axis {axis}, which is not known")
        chunk = -(-length // n)  # ceil in integers: exact for any length
        if chunk * (n - 1) > length:
            # ONNX Runtime refuses this at run time ("would produce a negative final split").
            return Skip(f"num_outputs {n} on length {length} gives a negative last chunk")
        sizes = (chunk,) * (n - 1) + (length - chunk * (n - 1),)
    else:
        if length is None:
            # Equal chunks of an unknown length need run-time arithmetic (Shape/Div) for every
            # start and end, which is exactly the non-constant form the EPs reject.
            return Skip(f"equal split needs the length of axis {axis}, which is not known")
        if length % n:
            return Skip(f"length {length} of axis {axis} does not split evenly into {n} outputs")
        sizes = (length // n,) * n

    if len(sizes) != n:
        return Skip(f"{len(sizes)} split sizes for {n} outputs")
    if any(s < 0 for s in sizes):
        return Skip(f"negative split size in {list(sizes)}")
    if length is not None and sum(sizes) != length:
        return Skip(f"split sizes {list(sizes)} do not add up to length {length} of axis {axis}")
    return SplitPlan(axis=axis, sizes=sizes)


def _axis_length(data: gs.Tensor, axis: int) -> int | None:
    if data.shape is None or not -len(data.shape) <= axis < len(data.shape):
        return None
    dim = data.shape[axis]
    return int(dim) if isinstance(dim, (int, np.integer)) and dim >= 0 else None


def _rewrite(graph: gs.Graph, node: gs.Node, plan: SplitPlan, opset: int) -> None:
    """Replace ``node`` by one Slice per named output."""
    data = node.inputs[0]
    outputs = list(node.outputs)
    base = node.name or "split"
    # Detach the Split first so each output Variable can take its Slice as its only producer.
    node.inputs.clear()
    node.outputs.clear()
    graph.nodes.remove(node)
    start = 0
    for i, (output, size) in enumerate(zip(outputs, plan.sizes)):
        # An output with an empty name is not produced at all; the offsets still count its size.
        if output.name:
            nodes.slice_(graph, data, [start], [start + size], [plan.axis], opset, f"{base}_slice{i}", output=output)
        start += size
