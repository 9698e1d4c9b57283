"""ONNX's own operator test models (onnx.backend.test, about 1900) through every target's passes.

Each model runs as it is and with its tensor inputs fixed (``--fix-input``), which turns most of
its graph into constants: fold-constants, eliminate-noops, dedupe-nodes and the chain rules fire on
nearly every model. Every run either changes nothing, or gives a result that loads in ONNX Runtime
and gives the outputs ONNX Runtime gives for the original (bit for bit, or within float noise:
``same_outputs``; the test's expected outputs where ONNX Runtime does not run the original), or
is refused in one line (OnnxfitError); never a traceback. Where ONNX Runtime runs neither the
original nor the result (training ops), nothing can be compared ("unrun"). The harness is
tests/optimizer/conformance.py; reports/conformance.py counts the same runs per target for
docs/conformance.md. Targets whose runs cannot differ share one (``target_groups``).
"""

from __future__ import annotations

from collections import Counter

import pytest

from onnxfit.optimizer.optimize import optimize_model
from tests.optimizer.conformance import MODES, TARGETS_TRIED, cases, reference_outputs, run_case, target_groups

GROUPS = target_groups()


@pytest.fixture(scope="module")
def tried():
    """Every test model with ONNX Runtime's outputs for the original (None where it does not run it)."""
    return [(case, reference_outputs(case)) for case in cases()]


def test_targets_share_runs_only_where_their_passes_coincide():
    assert sorted(t for g in GROUPS for t in g) == sorted(TARGETS_TRIED)
    assert ("cpu", "cuda", "tensorrt", "openvino") in GROUPS
    assert all(len(g) == 1 for g in GROUPS if set(g) & {"coreml", "coreml-nn", "nnapi"})


@pytest.mark.parametrize("group", GROUPS, ids="+".join)
def test_every_operator_test_model_through_every_target(group, tried):
    kinds, problems = Counter(), []
    for case, expected in tried:
        for mode in MODES:
            outcome = run_case(case, group[0], mode, expected)
            kinds[outcome.kind] += 1
            if outcome.kind == "problem":
                problems.append(f"{case.name} ({mode}): {outcome.detail}")
    assert not problems, problems[:10]
    assert kinds["refused"] == 0, kinds  # every refusal class seen so far is fixed; see docs/conformance.md
    assert kinds["matching"] > 1800 and kinds["unrun"] < 200 and len(tried) > 1800, kinds


def test_a_shared_run_stands_for_every_target_of_its_group(tried):
    """Every 40th model, fixed: the targets of a shared group write the same bytes."""
    for case, _ in tried[::40]:
        for group in (g for g in GROUPS if len(g) > 1):
            written = {optimize_model(case.model, target=t, fixed_inputs=case.fixable).model.SerializeToString()
                       for t in group}
            assert len(written) == 1, (case.name, group)
