"""`import onnxfit` in a fresh interpreter: median wall time of 15 runs (goal: <= 0.1 s).

Run: .venv/bin/python reports/import_time.py   (writes reports/import_time.json)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

CODE = "import time; t = time.perf_counter(); import onnxfit; print(time.perf_counter() - t)"


def main() -> None:
    times = [float(subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout)
             for _ in range(15)]
    result = {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4), "runs": len(times),
              "goal_s": 0.1, "python": sys.version.split()[0]}
    Path(__file__).with_name("import_time.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
