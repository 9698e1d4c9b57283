"""A hand-written exp written as the native ``Exp`` with its leading error term (native-functions, rule 6).

Why: NPU-minded models compute ``exp`` as ``2^k * P(r)``: ``k`` the nearest integer to
``x / ln 2``, ``r = x - k ln 2`` and ``P`` a Taylor polynomial of degree n (FacePhys: n = 5, about
29 nodes). ``P(r) = e^r (1 - r^(n+1)/(n+1)! + ...)``, so the approximation is ``exp`` times a
relative error that repeats with every ``k``: up to 3.2e-6 for FacePhys, some 27 float32 ulps.
A state-space model that multiplies its state by such a value each frame integrates that error
(FacePhys: 1.2e-5 of a state's range over 300 frames with the plain ``Exp``). This writes the
approximation as

    t = x * log2(e)      d = t - Round(t)      Exp(x - c * d^m)

with ``m`` and ``c`` fitted to the approximation's own error (FacePhys: m = 6 and c = 1.60e-4, near
the truncation term's ln(2)^6 / 720 = 1.54e-4), 7 nodes for the 29. The caller keeps the plain ``Exp`` unless
this form, computed in the model's float type, is at least twice as close to the approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxfit.optimizer import nodes as node_names

__all__ = ["ExpCorrection", "build", "fit"]

_POWERS = range(2, 13)
_RANGES = (64.0, 32.0, 16.0, 8.0, 4.0)
_LOG2E = 1 / math.log(2)


@dataclass(frozen=True)
class ExpCorrection:
    power: int  # m
    scale: float  # c
    rounding: str  # how Round(t) is written: "Round", "Floor" (t + 0.5) or "Ceil" (t - 0.5)
    use_pow: bool  # d^m as one Pow, else as Muls by repeated squaring
    rel_error: float  # largest relative difference to the approximation, computed in its float type
    plain_error: float  # the same for the plain Exp
    bound: float  # on [-bound, bound]


def fit(samples: np.ndarray, y: np.ndarray, bound: float, rounding: str | None, use_pow: bool) -> ExpCorrection | None:
    """The correction that brings ``Exp`` at least twice as close to ``y`` on the widest of
    ``[-R, R]``, R <= ``bound`` (far from 0 the approximation's own float rounding of ``x - k ln 2``
    is what differs); None when the plain ``Exp`` is within 8 ulps already, when there is no such
    correction, or no way to round on the target."""
    if rounding is None:
        return None
    x64, y64 = samples.astype(np.float64), y.astype(np.float64)
    tiny = np.finfo(samples.dtype).tiny
    usable = np.isfinite(y64) & (y64 > tiny * 1e6) & (np.exp(x64) > tiny * 1e6)
    for width in [r for r in _RANGES if r <= bound]:
        inside = usable & (np.abs(x64) <= width)
        if inside.sum() < 64:
            continue
        plain_error = float(np.max(np.abs(np.exp(x64[inside]) / y64[inside] - 1)))
        if plain_error <= 8 * np.finfo(samples.dtype).eps:
            return None
        m, c = _fitted_term(x64[inside], y64[inside])
        error = _error(samples[inside], y64[inside], m, c, rounding)
        if error <= plain_error / 2:
            return ExpCorrection(m, c, rounding, use_pow, error, plain_error, width)
    return None


def _fitted_term(x: np.ndarray, y64: np.ndarray) -> tuple[int, float]:
    """``(m, c)`` of the ``-c * d^m`` that best spells ``log(y / exp(x))`` (least squares per m)."""
    log_ratio = np.log(y64) - x
    t = x * _LOG2E
    d = t - np.rint(t)
    best = None
    for m in _POWERS:
        basis = d ** m
        c = -float(basis @ log_ratio) / float(basis @ basis)
        residual = float(np.max(np.abs(log_ratio + c * basis)))
        if best is None or residual < best[2]:
            best = (m, c, residual)
    return best[0], best[1]


def _error(x: np.ndarray, y64: np.ndarray, m: int, c: float, rounding: str) -> float:
    """The largest relative difference of the written form, each step rounded to ``x``'s type."""
    dtype = x.dtype.type
    t = x * dtype(_LOG2E)
    if rounding == "Round":
        k = np.rint(t)
    else:
        k = np.floor(t + dtype(0.5)) if rounding == "Floor" else np.ceil(t - dtype(0.5))
    d = t - k
    power = d ** dtype(m)
    corrected = np.exp((x - power * dtype(c)).astype(np.float64))
    return float(np.max(np.abs(corrected / y64 - 1)))


def build(graph: gs.Graph, x: gs.Tensor, y: gs.Tensor, form: ExpCorrection, dtype: np.dtype) -> list[gs.Node]:
    """The nodes writing ``y`` from ``x``, appended to ``graph``."""
    base = y.name
    added: list[gs.Node] = []

    def const(name: str, value) -> gs.Constant:
        return gs.Constant(node_names.unique_name(graph, f"{base}_{name}"), np.asarray(value, dtype=dtype))

    def step(name: str, op: str, inputs: list, output: gs.Tensor | None = None) -> gs.Tensor:
        out = output or gs.Variable(node_names.unique_name(graph, f"{base}_{name}"), dtype=dtype)
        node = gs.Node(op, name=node_names.unique_name(graph, f"{base}_{name}"), inputs=inputs, outputs=[out])
        graph.nodes.append(node)
        added.append(node)
        return out

    t = step("t", "Mul", [x, const("log2e", _LOG2E)])
    if form.rounding == "Round":
        k = step("k", "Round", [t])
    else:
        shifted = step("t_half", "Add", [t, const("half", 0.5 if form.rounding == "Floor" else -0.5)])
        k = step("k", form.rounding, [shifted])
    d = step("d", "Sub", [t, k])
    power = step("d_pow", "Pow", [d, const("power", form.power)]) if form.use_pow else _power(step, d, form.power)
    error = step("error", "Mul", [power, const("scale", form.scale)])
    corrected = step("x_corrected", "Sub", [x, error])
    step("exp", "Exp", [corrected], output=y)
    return added


def _power(step, d: gs.Tensor, m: int) -> gs.Tensor:
    """``d^m`` by repeated squaring."""
    result, square, bit = None, d, 0
    while m:
        if m & 1:
            result = square if result is None else step(f"d_pow_{bit}", "Mul", [result, square])
        m >>= 1
        if m:
            square = step(f"d_sq_{bit}", "Mul", [square, square])
        bit += 1
    return result
