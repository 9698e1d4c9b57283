"""reports/facephys_partitions.json: FacePhys's CoreML and NNAPI partitions, estimated per ONNX
Runtime release, as published and after `onnxfit.optimize(target=T, ort_version=release)`.

    python reports/facephys_partitions.py

No timing: onnxfit's EP profiles decide placement, so this runs anywhere in about a minute.
facephys_report.py renders it into FACEPHYS.md.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from facephys_common import ORIGINAL  # noqa: E402
from onnxfit.app.optimize import optimize_model  # noqa: E402
from onnxfit.targets.partitions import estimate_partitions  # noqa: E402

OUT = Path(__file__).resolve().parent / "facephys_partitions.json"
RELEASES = ((1, 20), (1, 24), (1, 26), (1, 28), (1, 30), (1, 32))
TARGETS = ("coreml", "nnapi")


def estimate(model: onnx.ModelProto, target: str, release: tuple[int, int]) -> dict:
    e = estimate_partitions(model, target, release)
    left = Counter(f"{u.op}: " + re.sub(r"'[^']*'", "X", u.reason) for u in e.unsupported)
    return {"partitions": e.partitions, "nodes_on_ep": e.nodes_on_ep, "nodes": e.total_nodes,
            "left": dict(left.most_common(6))}


def main() -> None:
    original = onnx.load(ORIGINAL)
    started = time.time()
    rows = []
    for target in TARGETS:
        for release in RELEASES:
            result = optimize_model(original, target=target, ort_version=release).model
            rows.append({"target": target, "ort": f"{release[0]}.{release[1]}",
                         "published": estimate(original, target, release),
                         "optimized": estimate(result, target, release)})
            print(f"{target} {release}: {rows[-1]['published']['partitions']} -> {rows[-1]['optimized']['partitions']}")
    OUT.write_text(json.dumps({"command": "python reports/facephys_partitions.py",
                               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "onnx": onnx.__version__, "seconds": round(time.time() - started, 1),
                               "rows": rows}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
