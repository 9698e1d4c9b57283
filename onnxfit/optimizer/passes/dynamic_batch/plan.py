"""What the walk does where a model leaves a choice, learnt from where an earlier walk stopped.

Two choices cannot be read from one node:

- rule 3 or 3b: a Reshape/Flatten that merges a leading batch into another axis lifts it to a
  new leading axis (rule 3: ops after it that name axes get them moved up) or keeps it as rows
  (rule 3b: frame i owns rows ``[i*f, (i+1)*f)``, and per-row ops such as a 1x1 Conv over
  per-pixel rows leave them apart until a Reshape splits them back). The lift is tried first
  (it is what every merge got before rows existed); a merge whose lifted batch reaches an op that
  cannot take it (a Conv: its batch axis is its own) becomes rows;
- a per-call input: an input whose dims are all 1 (``dt: [1]``, seconds per frame, one value per
  call) has its batch on axis 0 only by the leading-axis guess of ``onnxfit.batch_axes``. When the
  walk stops at a node that the input reaches, and the model itself squeezes the input to a
  scalar (``Squeeze(dt) * rates[32]``: a value with no axis at all, broadcast into every frame),
  the input is taken as one value shared by all frames, as ``--batch-axis dt=none`` says, and a
  note says so. Used as it is (a ``[1]`` bias broadcast along another axis), it stays batched and
  the error says that ``--batch-axis NAME=none`` would take it as shared. An input the user gave
  a batch axis is never second-guessed.

Each decision is a retry of the whole walk on the graph as it was: the walk edits as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.errors import OnnxfitError
from onnxfit.optimizer.passes.dynamic_batch.walk import Walk, absent

__all__ = ["Plan", "Stopped", "shared_candidates", "squeezed_to_scalars"]

_ROW_MERGES = ("Reshape", "Flatten")


class Stopped(Exception):
    """The walk refused ``node``; ``error`` says why."""

    def __init__(self, walk: Walk, node: gs.Node, error: OnnxfitError):
        super().__init__(str(error))
        self.walk, self.node, self.error = walk, node, error


@dataclass
class Plan:
    """The choices made so far: merges kept as rows (by first output name), inputs shared by all frames.

    ``candidates``: per-call inputs (name -> dims); ``scalars``: those the model squeezes to a scalar.
    """

    row_merges: set[str] = field(default_factory=set)
    shared: dict[str, str] = field(default_factory=dict)  # input name -> why it is not per frame
    candidates: dict[str, list] = field(default_factory=dict)
    scalars: set[str] = field(default_factory=set)
    hints: list[str] = field(default_factory=list)  # candidates the last stop depends on, left batched

    def learn(self, stop: Stopped) -> bool:
        """A new choice from where the walk stopped; False when there is none left to make."""
        walk, node = stop.walk, stop.node
        lifted_by = set().union(*(walk.lifted_by.get(t.name, ()) for t in node.inputs
                                  if not absent(t) and t.name in walk.lifted))
        producers = {o.name: n for n in walk.graph.nodes for o in n.outputs}
        merges = {m for m in lifted_by if m in producers and producers[m].op in _ROW_MERGES} - self.row_merges
        if merges:
            self.row_merges |= merges
            return True
        reached = sorted(_reaching_inputs(walk, node) & set(self.candidates) - set(self.shared))
        fresh = [name for name in reached if name in self.scalars]
        why = str(stop.error).removesuffix("; the batch cannot be made dynamic")
        for name in fresh:
            self.shared[name] = f"the model squeezes it to a scalar, and per frame {why}"
        self.hints = [] if fresh else reached
        return bool(fresh)

    def notes(self) -> list[str]:
        return [f"input '{name}' {self.candidates[name]} is taken as one value shared by all frames, as with "
                f"--batch-axis {name}=none: {why}" for name, why in self.shared.items()]

    def explain(self, error: OnnxfitError) -> OnnxfitError:
        """The final error, saying which inputs were taken as shared on the way and which could be."""
        message = str(error)
        if self.hints:
            names = ", ".join(f"'{name}' {self.candidates[name]}" for name in self.hints)
            flags = " ".join(f"--batch-axis {name}=none" for name in self.hints)
            message += (f"; input {names} reaches it with a batch axis only guessed from its shape: if it holds "
                        f"one value for all frames, pass {flags}")
        if self.shared:
            names = ", ".join(f"'{name}' {self.candidates[name]}" for name in self.shared)
            message += (f" (input {names} taken as one value shared by all frames, as with "
                        f"--batch-axis {next(iter(self.shared))}=none)")
        return OnnxfitError(message)


def shared_candidates(seeds: list[tuple[gs.Variable, int]], overrides: dict) -> dict[str, list]:
    """Inputs whose batch axis is only the leading-axis guess of a shape of ones (``dt: [1]``),
    next to inputs with a real batch axis: name -> dims."""
    ones = {x.name: [int(d) for d in x.shape] for x, _ in seeds
            if x.name not in overrides and all(isinstance(d, (int, np.integer)) and d == 1 for d in x.shape)}
    return ones if len(ones) < len(seeds) else {}


def squeezed_to_scalars(graph: gs.Graph, names, shapes: dict[str, tuple]) -> set[str]:
    """The inputs among ``names`` that the model squeezes to a scalar (Squeeze, Reshape to ``[]``,
    through Identity/Cast): a value the model itself gives no axis."""
    found = set()
    for name in names:
        stack, seen = [t for t in graph.inputs if t.name == name], set()
        while stack:
            t = stack.pop()
            if t.name in seen:
                continue
            seen.add(t.name)
            for consumer in t.outputs:
                outs = [o for o in consumer.outputs if not absent(o)]
                if consumer.op in ("Identity", "Cast"):
                    stack.extend(outs)
                elif consumer.op in ("Squeeze", "Reshape") and consumer.inputs[0] is t and outs \
                        and shapes.get(outs[0].name) == ():
                    found.add(name)
    return found


def _reaching_inputs(walk: Walk, node: gs.Node) -> set[str]:
    """Names of the graph inputs that ``node``'s batched inputs are computed from."""
    inputs = {t.name for t in walk.graph.inputs}
    seen: set[str] = set()
    stack = [t for t in node.inputs if walk.b(t) is not None]
    found = set()
    while stack:
        t = stack.pop()
        if absent(t) or t.name in seen:
            continue
        seen.add(t.name)
        if t.name in inputs:
            found.add(t.name)
        for producer in t.inputs:
            stack.extend(producer.inputs)
    return found
