"""What a start-up costs, as whole processes: median wall time of 15 fresh interpreters each.

    .venv/bin/python reports/import_time.py         # writes reports/import_time.json

- ``python -c pass``: the interpreter alone, the floor every other figure stands on.
- ``import onnxfit``: the package (the public API is imported on first use). Goal: <= 0.1 s.
- bare typer ``--help``: a two-command typer app, what any typer CLI pays.
- ``onnxfit --help`` and ``onnxfit optimize --help``: goal <= 3x the bare typer app's (a verb
  imports what it needs when it runs, not to print its help).

Bytecode is compiled first (as ``pip install`` does), so no run pays for compiling.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15

BARE_TYPER = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def one(name: str = typer.Option("x", help="A name.")) -> None: ...
@app.command()
def two(count: int = typer.Option(1, help="A count.")) -> None: ...
app()
"""

PROCESSES = {
    "python_c_pass": ["-c", "pass"],
    "import_onnxfit": ["-c", "import onnxfit"],
    "bare_typer_help": ["-c", BARE_TYPER, "--help"],
    "onnxfit_help": ["-m", "onnxfit", "--help"],
    "onnxfit_optimize_help": ["-m", "onnxfit", "optimize", "--help"],
}
GOAL_HELP_OVER_BARE_TYPER = 3.0


def process_s(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "onnxfit")], check=True)
    for args in PROCESSES.values():
        process_s(args)  # warm the page cache
    times = {name: [process_s(args) for _ in range(RUNS)] for name, args in PROCESSES.items()}
    medians = {f"{name}_s": round(statistics.median(t), 4) for name, t in times.items()}
    bare = medians["bare_typer_help_s"]
    result = {
        **medians,
        "import_onnxfit_goal_s": 0.1,
        "onnxfit_help_over_bare_typer": round(medians["onnxfit_help_s"] / bare, 2),
        "onnxfit_optimize_help_over_bare_typer": round(medians["onnxfit_optimize_help_s"] / bare, 2),
        "goal_help_over_bare_typer": GOAL_HELP_OVER_BARE_TYPER,
        "runs": RUNS,
        "python": sys.version.split()[0],
    }
    Path(__file__).with_name("import_time.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
