"""ONNX's own operator test models (``onnx.backend.test``) through every target's ``optimize``.

Shared by tests/optimizer/test_operator_conformance.py and reports/conformance.py. Each test model
runs through the target's passes twice: as it is, and with every tensor input fixed to the test's
value (``--fix-input``), which turns most of the graph into constants so that the simplification
rules fire on nearly every model. Each run ends in one of:

- ``unchanged``: no pass changed the model (the original is returned as it was);
- ``matching``: rewritten, loads in ONNX Runtime and gives the outputs ONNX Runtime gives for the
  original on the test's inputs: bit for bit, or within float noise (``same_outputs``); where
  ONNX Runtime does not run the original, the outputs the test expects;
- ``unrun``: rewritten, and ONNX Runtime runs neither the original nor the result (training ops,
  types it has no kernel for): the load guard lets through what the original could not do either;
- ``refused``: one line (``OnnxfitError``), grouped by ``refusal_class``;
- ``problem``: a traceback, a result ONNX Runtime refuses, or other outputs: a defect.

Targets whose runs cannot differ share one run (``shared_runs``).
"""

from __future__ import annotations

import inspect
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort

from onnxfit.errors import OnnxfitError, first_line
from onnxfit.app.optimize import optimize_model
from onnxfit.targets.presets import MOBILE_TARGETS, TARGETS

__all__ = ["Case", "Outcome", "SharedRun", "TARGETS_TRIED", "cases", "run_case", "same_outputs", "shared_runs"]

# Every deployment target the README names; coreml-nn runs coreml's passes with another profile.
TARGETS_TRIED = ("cpu", "cuda", "tensorrt", "openvino", "coreml", "coreml-nn", "nnapi")
MODES = ("as-is", "fixed")


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    feeds: dict  # every graph input the test feeds: arrays, lists (sequences), None (empty optionals)
    expected: list  # the outputs the test expects (onnx's reference implementation)

    @property
    def fixable(self) -> dict[str, np.ndarray]:
        """The inputs ``--fix-input`` takes: those declared tensors (strings included)."""
        tensors = {vi.name for vi in self.model.graph.input if vi.type.HasField("tensor_type")}
        return {n: v for n, v in self.feeds.items() if n in tensors and isinstance(v, np.ndarray)}


@dataclass
class Outcome:
    kind: str  # unchanged | matching | unrun | refused | problem
    detail: str = ""
    passes: list[str] = field(default_factory=list)  # the passes that changed the model


def cases() -> Iterator[Case]:
    """Every operator test model with its first data set."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collected = collect_testcases()
    for case in collected:
        if case.model is None or not case.data_sets:
            continue
        inputs, outputs = case.data_sets[0]
        initializers = {t.name for t in case.model.graph.initializer}
        names = [vi.name for vi in case.model.graph.input if vi.name not in initializers]
        yield Case(case.name, case.model, dict(zip(names, inputs)), list(outputs))


@dataclass(frozen=True)
class SharedRun:
    """Targets with the same passes and the same mobile hold: ``target`` runs every case; each of
    ``members`` reruns only the cases where one of ``asking`` (the passes whose rewrites depend on
    the target's support profile) changed ``target``'s model. ``target`` has no profile (the CPU
    EP: it runs every op), so those rules rewrite at least where a profiled target's would."""

    target: str
    members: tuple[str, ...] = ()
    asking: frozenset[str] = frozenset()


# How a pass asks the target's support profile (optimizer/rewrite.py's MatchContext).
_ASKS_PROFILE = ("target_takes", "target_runs_as", "replacement_needed", "kept_when_target_takes", "ep_acceptor")


def asks_profile(pass_) -> bool:
    """Whether ``pass_``'s rewrites depend on the target's support profile: read from its module's
    source, so that a pass added later is judged the same way."""
    source = inspect.getsource(sys.modules[type(pass_).__module__])
    return any(word in source for word in _ASKS_PROFILE)


def shared_runs(targets=TARGETS_TRIED) -> list[SharedRun]:
    from onnxfit.optimizer.pipeline import get_passes
    from onnxfit.targets.profiles import profile_for

    groups: dict[tuple, list[str]] = {}
    for name in targets:
        groups.setdefault((TARGETS[name].passes, name in MOBILE_TARGETS), []).append(name)
    runs = []
    for (passes, _), names in groups.items():
        asking = frozenset(p.name for p in get_passes(passes) if asks_profile(p))
        unprofiled = [n for n in names if profile_for(n) is None]
        if not asking:
            runs.append(SharedRun(names[0], tuple(names[1:])))
        elif unprofiled:
            runs.append(SharedRun(unprofiled[0], tuple(n for n in names if n != unprofiled[0]), asking))
        else:
            runs += [SharedRun(n) for n in names]
    return runs


def reference_outputs(case: Case) -> list | None:
    """What ONNX Runtime gives for the original, None when it does not run it (training ops, ...)."""
    try:
        return _run(case.model, case.feeds)
    except Exception:  # noqa: BLE001 - any ORT failure: the original is not ORT's to run
        return None


def run_case(case: Case, target: str, mode: str, expected: list | None) -> Outcome:
    """One ``optimize`` of one test model for one target, as-is or with its tensor inputs fixed."""
    fixed = case.fixable if mode == "fixed" else None
    if mode == "fixed" and not fixed:
        return Outcome("unchanged", "no tensor input to fix")
    try:
        result = optimize_model(case.model, target=target, fixed_inputs=fixed)
    except OnnxfitError as exc:
        return Outcome("refused", first_line(exc))
    except Exception as exc:  # noqa: BLE001 - a traceback is what this harness looks for
        return Outcome("problem", f"{type(exc).__name__}: {first_line(exc)[:160]}")
    passes = [r.name for r in result.reports if r.changed and r.name != "fix-input"]
    if not result.changed:
        if result.model is not case.model:
            return Outcome("problem", "unchanged, but not the original model")
        return Outcome("unchanged")
    feeds = {n: v for n, v in case.feeds.items() if not fixed or n not in fixed}
    try:
        actual = _run(result.model, feeds)
    except Exception as exc:  # noqa: BLE001
        if expected is None:
            return Outcome("unrun", "ONNX Runtime runs neither the original nor the result", passes)
        return Outcome("problem", f"ONNX Runtime refuses the result ({first_line(exc)[:160]})", passes)
    against = "ONNX Runtime's outputs for the original"
    if expected is None:
        expected, against = case.expected, "the test's expected outputs"
    if len(actual) != len(expected) or not all(same_outputs(e, a) for e, a in zip(expected, actual)):
        return Outcome("problem", f"outputs differ from {against}", passes)
    return Outcome("matching", against, passes)


def same_outputs(expected, actual) -> bool:
    """Bit for bit, or within float noise (fp16 within 1e-3, its ulp) where ORT's own fusions or
    an inexact rule round differently; sequences element by element."""
    if isinstance(expected, list) or isinstance(actual, list):
        return (isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual)
                and all(same_outputs(e, a) for e, a in zip(expected, actual)))
    if expected is None or actual is None:
        return expected is None and actual is None
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return False
    if expected.dtype.kind not in "fc":
        return np.array_equal(expected, actual)
    if np.array_equal(expected, actual, equal_nan=True):
        return True
    loose = expected.dtype == np.float16
    return np.allclose(actual, expected, rtol=1e-3 if loose else 1e-5, atol=1e-3 if loose else 1e-6, equal_nan=True)


def refusal_class(detail: str) -> str:
    """A refusal line with its names and numbers taken out: refusals of one kind count together."""
    text = re.sub(r"'[^']*'", "'…'", detail)
    text = re.sub(r"\([^()]*\)", "(…)", text)
    return re.sub(r"\d+", "N", text)[:140]


def _run(model: onnx.ModelProto, feeds: dict) -> list:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
