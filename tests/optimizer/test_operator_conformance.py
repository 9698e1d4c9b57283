"""ONNX's own operator test models (onnx.backend.test, about 1900) through every target's passes.

Each model runs as it is and with its tensor inputs fixed (``--fix-input``), which turns most of
its graph into constants: fold-constants, eliminate-noops, dedupe-nodes and the chain rules fire on
nearly every model. Every run either changes nothing, or gives a result that loads in ONNX Runtime
and gives the outputs ONNX Runtime gives for the original (bit for bit, or within float noise:
``same_outputs``; the test's expected outputs where ONNX Runtime does not run the original), or
is refused in one line (OnnxfitError); never a traceback. Where ONNX Runtime runs neither the
original nor the result (training ops), nothing can be compared ("unrun"). The harness is
tests/optimizer/conformance.py; reports/conformance.py counts the same runs per target for
docs/conformance.md. Targets whose runs cannot differ share one (``shared_runs``).
"""

from __future__ import annotations

from collections import Counter

import pytest

from onnxfit.app.optimize import optimize_model
from tests.optimizer.conformance import MODES, TARGETS_TRIED, cases, reference_outputs, run_case, shared_runs

RUNS = shared_runs()


@pytest.fixture(scope="module")
def tried():
    """Every test model with ONNX Runtime's outputs for the original (None where it does not run it)."""
    return [(case, reference_outputs(case)) for case in cases()]


def test_targets_share_runs_only_where_their_passes_coincide():
    assert sorted(t for r in RUNS for t in (r.target, *r.members)) == sorted(TARGETS_TRIED)
    kernel = next(r for r in RUNS if r.target == "cpu")
    assert kernel.members == ("cuda", "tensorrt", "openvino") and {"hard-swish", "native-functions"} <= kernel.asking
    assert all(not r.members for r in RUNS if r.target in ("coreml", "coreml-nn", "nnapi"))


@pytest.mark.parametrize("run", RUNS, ids=lambda r: "+".join((r.target, *r.members)))
def test_every_operator_test_model_through_every_target(run, tried):
    kinds: dict[str, Counter] = {t: Counter() for t in (run.target, *run.members)}
    problems = []
    for case, expected in tried:
        for mode in MODES:
            outcome = run_case(case, run.target, mode, expected)
            outcomes = [(run.target, outcome)]
            if run.asking & set(outcome.passes):  # a rule that asks the profile changed it: each target's own run
                outcomes += [(member, run_case(case, member, mode, expected)) for member in run.members]
            for target, result in outcomes:
                kinds[target][result.kind] += 1
                if result.kind == "problem":
                    problems.append(f"{case.name} ({target}, {mode}): {result.detail}")
    assert not problems, problems[:10]
    main = kinds[run.target]
    assert main["refused"] == 0, main  # every refusal class seen so far is fixed; see docs/conformance.md
    assert main["matching"] > 1800 and main["unrun"] < 200 and len(tried) > 1800, main


def test_a_shared_run_stands_for_every_target_of_its_group(tried):
    """Every 40th model, fixed, where no rule that asks the profile changed it: the targets of a
    shared run write the same bytes."""
    for case, _ in tried[::40]:
        for run in (r for r in RUNS if r.members):
            result = optimize_model(case.model, target=run.target, fixed_inputs=case.fixable)
            if run.asking & {r.name for r in result.reports if r.changed}:
                continue
            for member in run.members:
                other = optimize_model(case.model, target=member, fixed_inputs=case.fixable)
                assert other.model.SerializeToString() == result.model.SerializeToString(), (case.name, member)
