"""Quadrant-reduced Taylor sine and cosine, written with few nodes (native-functions, rule 5).

Why: NPU-minded models compute ``sin``/``cos`` without the ONNX ops: ``q = Floor(x * 2/pi + 0.5)``,
``r = x - q * pi/2``, a Taylor polynomial of ``sin`` or ``cos`` on ``r`` chosen by ``q``'s parity
and signed by ``q``'s quadrant, the parity and the quadrant each computed with Floors (FacePhys: 31
nodes per function, a sine and a cosine of each value). The native op differs from such a
polynomial by its truncation error (3.2e-4 for degree 5), so it would change the model; this
writes the *same* approximation in 25 nodes for a sine and a cosine of one value together:

    q = Floor(x * 2/pi + 0.5)        r = x - q * pi/2          r2 = r * r
    m = Mod(Cast(q, int32), 4)       sq = Gather([0, 1, 0, -1], m)    cq = Gather([1, 0, -1, 0], m)
    S = r * (1 + r2 * (a1 + r2 * (a2 + ...)))      C = 1 + r2 * (b1 + r2 * (b2 + ...))
    sin x = S * cq + C * sq          cos x = C * cq - S * sq

with ``a_k``, ``b_k`` the Taylor coefficients of K terms. Where the target EP lacks ``Mod``, ``sq`` and
``cq`` come from ``q``'s parity and ``(-1)^floor(q/2)`` in float arithmetic (12 nodes, not 4), which
keeps a NaN a NaN where an integer index would leave the table. A region is replaced only when this form,
run by ONNX Runtime on the same samples, agrees with it within float noise (the caller's test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes as node_names
from onnxfit.optimizer.constants import OrtRefused, run_on_cpu

__all__ = ["TrigForm", "build", "candidates"]

_TERMS = (1, 2, 3, 4)  # polynomial terms after the leading 1: sin to degree 3, 5, 7, 9


@dataclass(frozen=True)
class TrigForm:
    function: str  # "Sin" or "Cos"
    terms: int
    mod: bool  # the quadrant by Mod (else by Floor arithmetic)


def _program(terms: int, dtype: np.dtype, mod: bool) -> list[tuple[str, str, list, dict]]:
    """The shared steps, as (output, op, inputs, attrs); an input is a name or a constant array."""
    c = lambda v: np.asarray(v, dtype=dtype)  # noqa: E731
    steps = [("t", "Mul", ["x", c(2 / math.pi)], {}), ("t1", "Add", ["t", c(0.5)], {}), ("q", "Floor", ["t1"], {}),
             ("qpi", "Mul", ["q", c(math.pi / 2)], {}), ("r", "Sub", ["x", "qpi"], {}), ("r2", "Mul", ["r", "r"], {})]
    if mod:
        steps += [("qi", "Cast", ["q"], {"to": onnx.TensorProto.INT32}), ("m", "Mod", ["qi", np.int32(4)], {}),
                  ("sq", "Gather", [c([0, 1, 0, -1]), "m"], {}), ("cq", "Gather", [c([1, 0, -1, 0]), "m"], {})]
    else:  # in floats, so that a NaN stays a NaN (no index out of range): p = q mod 2, s = (-1)^floor(q/2)
        steps += [
            ("q2", "Mul", ["q", c(0.5)], {}), ("half", "Floor", ["q2"], {}), ("h2", "Mul", ["half", c(2)], {}),
            ("p", "Sub", ["q", "h2"], {}),
            ("hh", "Mul", ["half", c(0.5)], {}), ("g", "Floor", ["hh"], {}), ("g2", "Mul", ["g", c(2)], {}),
            ("hp", "Sub", ["half", "g2"], {}), ("s2", "Mul", ["hp", c(-2)], {}), ("s", "Add", ["s2", c(1)], {}),
            ("sq", "Mul", ["p", "s"], {}), ("cq", "Sub", ["s", "sq"], {}),
        ]
    for name, first in (("S", 3), ("C", 2)):  # Taylor coefficients (-1)^k / (2k + first - 2)!
        coeff = [(-1) ** k / math.factorial(2 * k + first - 2) for k in range(1, terms + 1)]
        steps.append((f"{name}p{terms}", "Mul", ["r2", c(coeff[-1])], {}))
        for k in range(terms - 1, 0, -1):
            steps += [(f"{name}a{k}", "Add", [f"{name}p{k + 1}", c(coeff[k - 1])], {}),
                      (f"{name}p{k}", "Mul", ["r2", f"{name}a{k}"], {})]
        steps.append((f"{name}1" if name == "S" else "C", "Add", [f"{name}p1", c(1)], {}))
    steps.append(("S", "Mul", ["r", "S1"], {}))
    return steps


_COMBINE = {
    "Sin": [("a", "Mul", ["S", "cq"], {}), ("b", "Mul", ["C", "sq"], {}), ("y", "Add", ["a", "b"], {})],
    "Cos": [("a", "Mul", ["C", "cq"], {}), ("b", "Mul", ["S", "sq"], {}), ("y", "Sub", ["a", "b"], {})],
}
_VALUES: dict[tuple, np.ndarray | None] = {}


def candidates(samples: np.ndarray, opset: int, mod: bool) -> dict[TrigForm, np.ndarray]:
    """Every form's values on ``samples`` (x), by ONNX Runtime's CPU EP; computed once per grid.
    ``Mod`` needs opset 10."""
    mod = mod and opset >= 10
    found = {}
    for terms in _TERMS:
        for function in _COMBINE:
            form = TrigForm(function, terms, mod)
            key = (form, samples.dtype.str, samples.size, opset)
            if key not in _VALUES:
                _VALUES[key] = _evaluate(form, samples, opset)
            if _VALUES[key] is not None:
                found[form] = _VALUES[key]
    return found


def _evaluate(form: TrigForm, samples: np.ndarray, opset: int) -> np.ndarray | None:
    protos, initializers = [], []
    for out, op, inputs, attrs in _program(form.terms, samples.dtype, form.mod) + _COMBINE[form.function]:
        names = []
        for value in inputs:
            if isinstance(value, str):
                names.append(value)
            else:
                names.append(f"c{len(initializers)}")
                initializers.append(onnx.numpy_helper.from_array(np.asarray(value), names[-1]))
        protos.append(onnx.helper.make_node(op, names, [out], **attrs))
    try:
        return np.asarray(run_on_cpu(protos, opset, initializers, {"x": samples}, ["y"])[0])
    except OrtRefused:
        return None


def build(graph: gs.Graph, x: gs.Tensor, y: gs.Tensor, form: TrigForm, dtype: np.dtype, shared: dict) -> list[gs.Node]:
    """Write ``form`` of ``x`` into ``y``; the steps before the combination are built once per ``x``
    (``shared``), so a sine and a cosine of one value share them. Returns the nodes added."""
    added: list[gs.Node] = []
    key = (id(x), form.terms, form.mod)
    if key in shared and (shared[key]["x"] is not x or not all(shared[key][v].inputs for v in ("S", "C", "sq", "cq"))):
        del shared[key]  # built for a tensor since removed, or its nodes were
    if key not in shared:
        shared[key] = _emit(graph, _program(form.terms, dtype, form.mod), {"x": x}, y.name, added)
    values = dict(shared[key])
    values["y"] = y
    _emit(graph, _COMBINE[form.function], values, y.name, added)
    return added


def _emit(graph: gs.Graph, steps, values: dict, base: str, added: list[gs.Node]) -> dict:
    for out, op, inputs, attrs in steps:
        tensors = [values[v] if isinstance(v, str) else
                   gs.Constant(node_names.unique_name(graph, f"{base}_{out}_c"), np.asarray(v)) for v in inputs]
        target = values.get(out) if out == "y" else None
        node = node_names.add_node(graph, op, f"{base}_{out}", tensors, attrs,
                                   outputs=[target] if target is not None else None)
        values[out] = node.outputs[0]
        added.append(node)
    return values
