"""ONNX's own operator tests through every target's ``optimize``, counted.

    python reports/conformance.py            # writes reports/conformance.json and docs/conformance.md
    python reports/conformance.py --render   # docs/conformance.md again from the committed json

Every test model of ``onnx.backend.test.case.node`` (its first data set) goes through each
target's passes as it is and with its tensor inputs fixed (``--fix-input``), one run per target
(the CI test, tests/optimizer/test_operator_conformance.py, shares runs between targets whose
passes coincide). Each run is unchanged, rewritten and matching ONNX Runtime's outputs for the
original, refused in one line, or a problem (a traceback, a result ONNX Runtime refuses, other
outputs): see tests/optimizer/conformance.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from onnxfit.text import markdown_table  # noqa: E402
from tests.optimizer.conformance import (  # noqa: E402
    MODES, TARGETS_TRIED, cases, reference_outputs, refusal_class, run_case,
)

KINDS = ("unchanged", "matching", "unrun", "refused", "problem")


def measure() -> dict:
    tried = [(case, reference_outputs(case)) for case in cases()]
    targets: dict[str, dict] = {}
    for target in TARGETS_TRIED:
        started = time.perf_counter()
        counts: dict[str, Counter] = {mode: Counter() for mode in MODES}
        refusals: dict[str, list[str]] = defaultdict(list)
        problems, passes, against_test = [], Counter(), 0
        for case, expected in tried:
            for mode in MODES:
                outcome = run_case(case, target, mode, expected)
                counts[mode][outcome.kind] += 1
                passes.update(outcome.passes)
                against_test += outcome.kind == "matching" and outcome.detail.startswith("the test's")
                if outcome.kind == "refused":
                    refusals[refusal_class(outcome.detail)].append(f"{case.name} ({mode})")
                elif outcome.kind == "problem":
                    problems.append(f"{case.name} ({mode}): {outcome.detail}")
        targets[target] = {"counts": {mode: {k: c[k] for k in KINDS} for mode, c in counts.items()},
                           "matching_the_tests_outputs": against_test,
                           "refusals": dict(refusals), "problems": problems, "passes": dict(passes.most_common()),
                           "seconds": round(time.perf_counter() - started, 1)}
    return {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "models": len(tried),
            "not_run_by_ort": sum(expected is None for _, expected in tried), "targets": targets}


def render(doc: dict) -> str:
    rows = []
    for target, data in doc["targets"].items():
        for mode, c in data["counts"].items():
            rows.append([target, mode, *(c[k] for k in KINDS)])
    table = "\n".join(markdown_table(["target", "inputs", "unchanged", "rewritten, matching",
                                      "rewritten, ORT runs neither", "refused", "problems"], rows, align="llrrrrr"))
    classes: dict[str, set[str]] = defaultdict(set)
    for target, data in doc["targets"].items():
        for reason, names in data["refusals"].items():
            classes[reason].update(f"{target}: {n}" for n in names)
    refusals = "\n".join(markdown_table(["refusal (one line, exit 2)", "runs", "examples"],
                                        [[reason, len(names), ", ".join(sorted(names)[:3])]
                                         for reason, names in sorted(classes.items())], align="lrl")) \
        if classes else "None: no run was refused."
    fired = Counter()
    for data in doc["targets"].values():
        fired.update(data["passes"])
    top = ", ".join(f"`{name}` ({n})" for name, n in fired.most_common(12))
    against = max(data["matching_the_tests_outputs"] for data in doc["targets"].values())
    return f"""# Operator conformance

What every target's `optimize` does to ONNX's own operator tests (`onnx.backend.test.case.node`,
onnx {doc["onnx"]}: {doc["models"]} test models with inputs and expected outputs; ONNX Runtime
{doc["onnxruntime"]} does not run {doc["not_run_by_ort"]} of the originals: training ops, and ops or
types it has no CPU kernel for). Each model runs through each target's passes twice: as it is (`as-is`), and
with every tensor input fixed to the test's value (`fixed`, `--fix-input NAME=@value.npy`), which
turns most of these small graphs into constants so that the folding rules fire.

A run is **unchanged** (no pass changed the model: the original is kept), **rewritten, matching**
(the result loads in ONNX Runtime and gives the outputs ONNX Runtime gives for the original on
the test's inputs: bit for bit, or within float noise, fp16 within 1e-3; where ONNX Runtime does
not run the original but runs the result, the outputs the test expects: up to {against} runs per
target), **rewritten, ORT runs neither** (training ops, types ONNX Runtime has no kernel for: the
result is written because the original could not be run either; nothing checks its outputs),
**refused** (one line, exit 2, nothing written) or a **problem** (a traceback, a result ONNX
Runtime refuses where it runs the original, other outputs). The goal is zero problems.

{table}

Refusals by class (names and numbers taken out):

{refusals}

Passes that changed the most runs, all targets: {top}.

Made by `python reports/conformance.py` (results in `reports/conformance.json`). The CI test
`tests/optimizer/test_operator_conformance.py` runs the same cases and holds every target to zero
problems and zero refusals. To keep it to a few minutes, cpu's run stands for cuda, tensorrt and
openvino (the same passes), except for the models where a rule that asks the EP's support profile
(hard-swish, native-functions) changed cpu's result: those run for each target.
"""


def main() -> None:
    if "--render" in sys.argv:  # the page again from the committed results
        (ROOT / "docs" / "conformance.md").write_text(render(json.loads((ROOT / "reports" / "conformance.json").read_text())))
        return
    doc = measure()
    (ROOT / "reports" / "conformance.json").write_text(json.dumps(doc, indent=2) + "\n")
    (ROOT / "docs" / "conformance.md").write_text(render(doc))
    for target, data in doc["targets"].items():
        print(target, data["counts"], f"{data['seconds']} s", f"{len(data['problems'])} problems")


if __name__ == "__main__":
    main()
