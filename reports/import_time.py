"""What a start-up costs, as whole processes: median wall time of 15 fresh interpreters each.

    .venv/bin/python reports/import_time.py         # writes reports/import_time.json, STARTUP.md

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
    write_startup_page()
    print(json.dumps(result, indent=2))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def write_startup_page() -> None:
    """reports/STARTUP.md from import_time.json and cache_hit.json: whole-process times."""
    here = Path(__file__).parent
    start = json.loads((here / "import_time.json").read_text())
    lines = ["# What a start-up costs", "",
             "Whole processes, medians; written by `reports/import_time.py` and `reports/cache_hit.py` "
             "(which rewrite this page).", "",
             "| process | time | goal |", "|---|---|---|",
             f"| `python -c pass` | {_ms(start['python_c_pass_s'])} | |",
             f"| `python -c 'import onnxfit'` | {_ms(start['import_onnxfit_s'])} | <= {_ms(start['import_onnxfit_goal_s'])} |",
             f"| bare two-command typer app `--help` | {_ms(start['bare_typer_help_s'])} | |",
             f"| `onnxfit --help` | {_ms(start['onnxfit_help_s'])} ({start['onnxfit_help_over_bare_typer']}x bare typer) "
             f"| <= {start['goal_help_over_bare_typer']}x |",
             f"| `onnxfit optimize --help` | {_ms(start['onnxfit_optimize_help_s'])} "
             f"({start['onnxfit_optimize_help_over_bare_typer']}x bare typer) | <= {start['goal_help_over_bare_typer']}x |"]
    if (here / "cache_hit.json").exists():
        hit = json.loads((here / "cache_hit.json").read_text())
        if "hit_process_over_python" in hit:
            lines += [
                f"| `prepare()` cache hit, fresh process ({hit['model']}, {hit['model_mb']} MB) | "
                f"{_ms(hit['hit_process_s_median'])} ({hit['hit_process_over_python']}x `python -c pass`, "
                f"{hit['hit_process_over_miss_process']:.0%} of the miss) | <= {hit['goal_hit_process_over_python']}x, "
                f"<= {hit['goal_hit_process_over_miss_process']:.0%} |",
                f"| `prepare()` cache miss, fresh process | {_ms(hit['miss_process_s'])} | |", "",
                f"Inside the hit process the `prepare()` call takes {_ms(hit['hit_prepare_s_median'])}; it imports "
                f"{', '.join(hit['hit_heavy_imports']) or 'none'} of onnx, onnx-graphsurgeon, onnxruntime and numpy "
                f"(the miss: {', '.join(hit['miss_heavy_imports'])}). {hit['machine']}, Python {hit['python']}."]
    (here / "STARTUP.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
