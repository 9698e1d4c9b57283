"""lean benchmark: how small onnxfit leaves a graph, next to onnxsim and onnxslim.

    .venv/bin/python reports/lean.py                        # every zoo ONNX model + FacePhys (~6 min, 2 cores)
    .venv/bin/python reports/lean.py --onnxfit-rev HEAD     # onnxfit as committed, not the working tree
    .venv/bin/python reports/lean.py --models silero_vad,facephys
    .venv/bin/python reports/lean.py --quick                # a handful of small models
    .venv/bin/python reports/lean.py --render-only          # rewrite LEAN.md from lean.json

Why: onnxfit's passes are chosen to make a model run whole on an execution provider, not to make
it small, yet a leaner graph is cheaper to load, partition and run. This script keeps onnxfit
honest against the two simplifiers users already reach for. It measures, per model:

- node counts (the graph and every If/Loop/Scan body, recursively; with and without Constant
  nodes) of the original and of each tool's output: ``onnxsim.simplify(model,
  include_subgraph=True)``, ``onnxslim.slim(model)``, and onnxfit's default passes for the cpu,
  cuda, coreml and nnapi targets (``optimize_model``: in memory, no ``--simplify``, no partition
  estimate);
- the node count ONNX Runtime itself reaches (``ORT_ENABLE_ALL``, CPU EP, the session's
  ``optimized_model_filepath``) from the original and from onnxfit-cpu's output;
- wall time of the tool call alone (``time.perf_counter`` around it; the model is already loaded
  and copied, nothing is saved; after one untimed warm-up call per tool; median of ``--repeats``);
- parity: every output against the original's on ONNX Runtime CPU (graph optimizations off), one
  input per model; a result ONNX Runtime cannot load or run counts as failed.

Each model runs in a child process (``--child``), so a tool that crashes the interpreter costs only
that tool's cell: the parent restarts the child without it. The whole run is sequential (the
machine it was written for has 2 shared cores). Full runs write reports/LEAN.md and
reports/lean.json; runs with ``--models`` or ``--quick`` write to reports/_work/ so the committed
results stay whole.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

REPORTS = Path(__file__).resolve().parent
ROOT = REPORTS.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("LEAN_ONNXFIT_DIR"):  # --onnxfit-rev: the children import onnxfit from that snapshot
    sys.path.insert(0, os.environ["LEAN_ONNXFIT_DIR"])

FACEPHYS = ROOT / "tests" / "zoo" / "facephys" / "model.onnx"
FULL_JSON, FULL_MD = REPORTS / "lean.json", REPORTS / "LEAN.md"
PARTIAL_JSON, PARTIAL_MD = REPORTS / "_work" / "lean.json", REPORTS / "_work" / "LEAN.md"
QUICK = ["squeezenet_ir3", "mtcnn_pnet_keras", "silero_vad", "gtcrn_simple", "facephys"]
FIT_TARGETS = ["cpu", "cuda", "coreml", "nnapi"]
TOOLS = ["onnxsim", "onnxslim", *(f"onnxfit-{t}" for t in FIT_TARGETS)]
CHILD_TIMEOUT_S = 1800
PARITY_FLAG = 1e-3  # max |diff| above which the summary lists a result


# ---------------------------------------------------------------------------------------------
# Models


@dataclass
class Case:
    """One model: where it is, the shapes that fix its symbolic dims, the inputs a caller feeds."""

    name: str
    path: Path
    input_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)
    feeds: Callable[[int], dict[str, np.ndarray]] | None = None


def _facephys_feeds(batch: int) -> dict[str, np.ndarray]:
    """One frame, dt = 1/30 s; the states (zeros, a valid start) are filled in by make_feeds."""
    rng = np.random.default_rng(0)
    return {"input": (rng.standard_normal((1, 1, 36, 36, 3)) * 0.5).astype(np.float32),
            "dt": np.array([1 / 30], np.float32)}


def all_cases() -> list[Case]:
    """Every ONNX model of the zoo (fetched into its cache when missing), then FacePhys."""
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import MODELS

    zoo = [m for m in MODELS if m.kind == "onnx"]
    paths = fetch(zoo)
    cases = [Case(m.name, paths[m.name], dict(m.input_shape), m.feeds) for m in zoo]
    return cases + [Case("facephys", FACEPHYS, feeds=_facephys_feeds)]


def select_cases(names: list[str] | None) -> list[Case]:
    cases = all_cases()
    if not names:
        return cases
    by_name = {c.name: c for c in cases}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]


# ---------------------------------------------------------------------------------------------
# Counting


def iter_graphs(graph: onnx.GraphProto):
    """The graph and every subgraph held in a node attribute, depth first (own code: the
    measuring stick does not come from the tool it measures)."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                yield from iter_graphs(sub)


def node_counts(model: onnx.ModelProto) -> dict:
    nodes = [n for g in iter_graphs(model.graph) for n in g.node]
    constants = sum(n.op_type == "Constant" for n in nodes)
    return {"nodes": len(nodes), "nodes_no_constant": len(nodes) - constants,
            "subgraphs": sum(1 for _ in iter_graphs(model.graph)) - 1}


def ort_level99_nodes(model: onnx.ModelProto) -> int:
    """Nodes of the model ONNX Runtime optimizes for itself (ORT_ENABLE_ALL, CPU EP)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "ort99.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return node_counts(onnx.load(so.optimized_model_filepath))["nodes"]


# ---------------------------------------------------------------------------------------------
# Inputs and parity


def real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs a caller feeds: not the initializers old exporters list among the inputs."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def input_shape(value: onnx.ValueInfoProto, case: Case) -> tuple[int, ...]:
    if value.name in case.input_shape:
        return tuple(case.input_shape[value.name])
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims)


def random_input(value: onnx.ValueInfoProto, shape: tuple[int, ...], rng) -> np.ndarray:
    """float: N(0, 0.25); int: zeros (valid as an index, a length of 0 or a flag); bool: False."""
    dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 0.5).astype(dtype)
    return np.zeros(shape, dtype)


def make_feeds(case: Case, model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The zoo entry's own feeds where it has them; every other input random (see random_input)."""
    feeds = dict(case.feeds(1)) if case.feeds else {}
    rng = np.random.default_rng(0)
    for value in real_inputs(model):
        if value.name not in feeds:
            feeds[value.name] = random_input(value, input_shape(value, case), rng)
    return feeds


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name, on ONNX Runtime CPU with graph optimizations off (the graph as written)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise RuntimeError(f"input(s) {missing} have no feed")
    outputs = session.run(None, {n: feeds[n] for n in names})
    return {o.name: v for o, v in zip(session.get_outputs(), outputs)}


def max_diffs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> dict:
    """Largest |a - b| and |a - b| / max(|b|, 1e-6) over all outputs (b: the original's).

    Outputs are matched by name, by position where a tool renamed them."""
    if set(actual) != set(expected):
        if len(actual) != len(expected):
            raise RuntimeError(f"{len(actual)} outputs, the original has {len(expected)}")
        actual = dict(zip(expected, actual.values()))
    worst_abs = worst_rel = 0.0
    for name, b in expected.items():
        a, b = _numeric(actual[name]), _numeric(b)
        if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":  # text: equal or not
            if a.shape != b.shape or not np.array_equal(a.astype(str), b.astype(str)):
                worst_abs = worst_rel = float("inf")
            continue
        if a.shape != b.shape:
            raise RuntimeError(f"output {name}: shape {a.shape}, the original's is {b.shape}")
        if b.size == 0:
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)
        worst_abs = max(worst_abs, float(diff.max()))
        worst_rel = max(worst_rel, float((diff / np.maximum(np.abs(b), 1e-6)).max()))
    return {"max_abs_diff": worst_abs, "max_rel_diff": worst_rel}


def _numeric(value) -> np.ndarray:
    """An output as an array: a sequence of maps (skl2onnx's ZipMap) as its values in key order."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return np.array([[row[k] for k in sorted(row)] for row in value])
    return np.asarray(value)


# ---------------------------------------------------------------------------------------------
# Tools (the only timed code is the call inside each of these)


def run_onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    result, ok = onnxsim.simplify(model, include_subgraph=True)
    if not ok:
        raise RuntimeError("onnxsim.simplify reported its check failed")
    return result


def run_onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


def run_onnxfit(target: str) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    def run(model: onnx.ModelProto) -> onnx.ModelProto:
        from onnxfit import optimize_model

        return optimize_model(model, target=target).model

    return run


def tool_function(tool: str) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    if tool == "onnxsim":
        return run_onnxsim
    if tool == "onnxslim":
        return run_onnxslim
    return run_onnxfit(tool.removeprefix("onnxfit-"))


def tiny_model() -> onnx.ModelProto:
    """A 4-node model for each tool's untimed warm-up call (imports, registries, first sessions)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
    nodes = [helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", TensorProto.FLOAT, [1], [1.0])),
             helper.make_node("Mul", ["c", "c"], ["c2"]),
             helper.make_node("Add", ["x", "c2"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    graph = helper.make_graph(nodes, "warmup", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def warm_up(tool: str) -> None:
    try:
        tool_function(tool)(tiny_model())
    except Exception:  # noqa: BLE001 - the timed call reports any failure
        pass


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return " ".join(text.split())[:300]


def timed_call(fn: Callable[[onnx.ModelProto], onnx.ModelProto], model: onnx.ModelProto):
    """fn on a fresh copy of ``model`` (copied before the clock starts): (result, seconds)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    start = time.perf_counter()
    out = fn(copy)
    return out, time.perf_counter() - start


def measure_tool(tool: str, model: onnx.ModelProto, feeds: dict, expected: dict | None, repeats: int) -> dict:
    """Run one tool on copies of ``model``: median time of ``repeats`` calls (after an untimed
    warm-up), node counts of the first result, ORT-99 count (onnxfit-cpu), parity."""
    fn = tool_function(tool)
    warm_up(tool)
    times = []
    try:
        out, seconds = timed_call(fn, model)
        times.append(seconds)
        for _ in range(repeats - 1):
            times.append(timed_call(fn, model)[1])
    except Exception as exc:  # noqa: BLE001 - any failure is a result
        return {"ok": False, "stage": "tool", "error": one_line(exc)}
    row: dict = {"ok": True, "time_s": float(np.median(times)), "times_s": times, **node_counts(out)}
    try:
        actual = run_ort(out, feeds)
    except Exception as exc:  # noqa: BLE001
        return {**row, "ok": False, "stage": "onnxruntime", "error": one_line(exc)}
    if expected is not None:
        try:
            row.update(max_diffs(expected, actual))
        except Exception as exc:  # noqa: BLE001
            return {**row, "ok": False, "stage": "parity", "error": one_line(exc)}
    if tool == "onnxfit-cpu":
        row["ort99_nodes"] = attempt(lambda: ort_level99_nodes(out))
    return row


def attempt(fn):
    """fn()'s value, or {"error": ...}: one failing measurement does not end the model."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return {"error": one_line(exc)}


# ---------------------------------------------------------------------------------------------
# The child: one model, the tools it is given; writes its JSON after every tool


def child_main(name: str, tools: list[str], out: Path, repeats: int) -> None:
    case = select_cases([name])[0]
    model = onnx.load(case.path)
    import onnxfit

    result: dict = {"model": name, "path": str(case.path), "size_mb": round(case.path.stat().st_size / 1e6, 2),
                    "onnxfit_from": str(Path(onnxfit.__file__).parent), "original": node_counts(model), "tools": {}}
    result["original"]["ort99_nodes"] = attempt(lambda: ort_level99_nodes(model))
    feeds = make_feeds(case, model)
    result["feeds"] = {k: [list(v.shape), str(v.dtype)] for k, v in feeds.items()}
    try:
        expected = run_ort(model, feeds)
    except Exception as exc:  # noqa: BLE001 - no parity then, the counts still stand
        result["original"]["ort_error"] = one_line(exc)
        expected = None
    write_json(out, result)
    for tool in tools:
        result["tools"][tool] = measure_tool(tool, model, feeds, expected, repeats)
        write_json(out, result)


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The parent: one child per model, restarted without a tool that killed it


def measure_model(name: str, repeats: int, env: dict, log: Callable[[str], None]) -> dict:
    todo = list(TOOLS)
    result: dict = {"model": name, "tools": {}}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        while todo:
            cmd = [sys.executable, __file__, "--child", name, "--tools", ",".join(todo), "--child-out", str(out),
                   "--repeats", str(repeats)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=ROOT,
                                      env=env)
                rc, tail = proc.returncode, (proc.stderr or "").strip().splitlines()[-1:]
            except subprocess.TimeoutExpired:
                rc, tail = "timeout", [f"no result in {CHILD_TIMEOUT_S} s"]
            if out.exists():
                got = json.loads(out.read_text())
                result = {**got, "tools": {**result["tools"], **got["tools"]}}
                out.unlink()
            done = [t for t in todo if t in result["tools"]]
            todo = [t for t in todo if t not in done]
            if rc == 0 or not todo:
                break
            culprit = todo.pop(0)
            reason = f"process died (rc {rc})" + (f": {tail[0]}" if tail else "")
            if "original" not in result:  # died before any tool: loading the model itself fails
                result["error"] = reason
                break
            result["tools"][culprit] = {"ok": False, "stage": "process", "error": reason[:300]}
            log(f"  {name}: {culprit} {reason[:120]}")
    return result


# ---------------------------------------------------------------------------------------------
# Summary


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def tool_ok(row: dict, tool: str) -> dict | None:
    cell = row.get("tools", {}).get(tool)
    return cell if cell and cell.get("ok") else None


def summarize(rows: list[dict]) -> dict:
    """Per target: onnxfit/onnxslim and onnxfit/onnxsim node and time ratios over the models
    where all three succeeded, their geomeans, and the models where onnxfit is bigger."""
    summary: dict = {"models": [row["model"] for row in rows]}
    for target in FIT_TARGETS:
        fit_tool = f"onnxfit-{target}"
        per_model, bigger = {}, []
        for row in rows:
            fit, slim, sim = (tool_ok(row, t) for t in (fit_tool, "onnxslim", "onnxsim"))
            if not (fit and slim and sim):
                continue
            per_model[row["model"]] = {
                "fit_over_slim": fit["nodes"] / max(slim["nodes"], 1),
                "fit_over_sim": fit["nodes"] / max(sim["nodes"], 1),
                "fit_over_slim_no_constant": fit["nodes_no_constant"] / max(slim["nodes_no_constant"], 1),
                "time_fit_over_slim": fit["time_s"] / max(slim["time_s"], 1e-9),
                "time_fit_over_sim": fit["time_s"] / max(sim["time_s"], 1e-9),
            }
            if fit["nodes"] > slim["nodes"]:
                bigger.append({"model": row["model"], "onnxfit": fit["nodes"], "onnxslim": slim["nodes"]})
        keys = ["fit_over_slim", "fit_over_sim", "fit_over_slim_no_constant", "time_fit_over_slim", "time_fit_over_sim"]
        summary[target] = {"models": len(per_model), "per_model": per_model, "bigger_than_onnxslim": bigger,
                           **{f"geomean_{k}": geomean([m[k] for m in per_model.values()]) for k in keys}}
    summary["failures"] = [{"model": row["model"], "tool": tool, "stage": cell.get("stage"), "error": cell.get("error")}
                           for row in rows for tool, cell in row.get("tools", {}).items() if not cell.get("ok")]
    summary["failures"] += [{"model": row["model"], "tool": "(model)", "stage": "load", "error": row["error"]}
                            for row in rows if "error" in row]
    summary["parity_flags"] = [{"model": row["model"], "tool": tool, "max_abs_diff": cell["max_abs_diff"]}
                               for row in rows for tool, cell in row.get("tools", {}).items()
                               if cell.get("ok") and cell.get("max_abs_diff", 0.0) > PARITY_FLAG]
    return summary


# ---------------------------------------------------------------------------------------------
# Environment and Markdown


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def snapshot_onnxfit(rev: str, dest: Path) -> None:
    """onnxfit/ as committed at ``rev`` (``git archive``), unpacked under ``dest``: a run whose
    numbers belong to one commit while others edit the working tree."""
    archive = subprocess.run(["git", "archive", rev, "onnxfit"], capture_output=True, cwd=ROOT)
    if archive.returncode:
        raise SystemExit(f"git archive {rev} onnxfit: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def environment(rev: str | None) -> dict:
    from importlib import metadata

    versions = {}
    for package in ("onnx", "onnxruntime", "onnxsim", "onnxslim", "numpy", "onnx_graphsurgeon"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"onnxfit_commit": git("rev-parse", "--short", rev or "HEAD"), "onnxfit_rev": rev,
            "onnxfit_uncommitted": not rev and bool(git("status", "--porcelain", "--", "onnxfit")),
            "versions": versions, "python": platform.python_version(), "cores": os.cpu_count(), "cpu": cpu,
            "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def fmt_nodes(cell: dict | None, key: str = "nodes") -> str:
    if not cell:
        return "-"
    if not cell.get("ok"):
        return "fail"
    value = cell.get(key)
    return str(value) if isinstance(value, int) else "err"


def fmt_num(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def fmt_ort99(value) -> str:
    return str(value) if isinstance(value, int) else "err"


def markdown_table(header: list[str], rows: list[list], align: str) -> list[str]:
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return ["| " + " | ".join(header) + " |", rule,
            *("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows)]


def counts_table(rows: list[dict]) -> list[str]:
    header = ["model", "original", "onnxsim", "onnxslim", "fit cpu", "fit cuda", "fit coreml", "fit nnapi",
              "ORT99 orig", "ORT99 fit-cpu", "fit-cpu max rel", "t onnxsim", "t onnxslim", "t fit-cpu"]
    body = []
    for row in rows:
        tools = row.get("tools", {})
        orig = row.get("original", {})
        cpu = tools.get("onnxfit-cpu") or {}
        body.append([row["model"], orig.get("nodes", "fail"),
                     *(fmt_nodes(tools.get(t)) for t in TOOLS),
                     fmt_ort99(orig.get("ort99_nodes")), fmt_ort99(cpu.get("ort99_nodes")) if cpu.get("ok") else "-",
                     fmt_num(cpu.get("max_rel_diff"), ".1e"),
                     *(fmt_num((tools.get(t) or {}).get("time_s"), ".2f") for t in ("onnxsim", "onnxslim", "onnxfit-cpu"))])
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def no_constant_table(rows: list[dict]) -> list[str]:
    header = ["model", "original", *TOOLS]
    body = [[row["model"], row.get("original", {}).get("nodes_no_constant", "fail"),
             *(fmt_nodes(row.get("tools", {}).get(t), "nodes_no_constant") for t in TOOLS)] for row in rows]
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def times_table(rows: list[dict]) -> list[str]:
    header = ["model", *(f"{t} s" for t in TOOLS), *(f"{t} max abs" for t in ("onnxsim", "onnxslim", "onnxfit-cpu"))]
    body = [[row["model"], *(fmt_num((row.get("tools", {}).get(t) or {}).get("time_s"), ".2f") for t in TOOLS),
             *(fmt_num((row.get("tools", {}).get(t) or {}).get("max_abs_diff"), ".1e")
               for t in ("onnxsim", "onnxslim", "onnxfit-cpu"))] for row in rows]
    return markdown_table(header, body, "l" + "r" * (len(header) - 1))


def summary_lines(summary: dict) -> list[str]:
    header = ["target", "models", "nodes fit/slim", "nodes fit/sim", "no-Constant fit/slim", "time fit/slim",
              "time fit/sim", "fit > slim on"]
    body = [[t, s["models"], fmt_num(s["geomean_fit_over_slim"], ".3f"), fmt_num(s["geomean_fit_over_sim"], ".3f"),
             fmt_num(s["geomean_fit_over_slim_no_constant"], ".3f"), fmt_num(s["geomean_time_fit_over_slim"], ".2f"),
             fmt_num(s["geomean_time_fit_over_sim"], ".2f"),
             ", ".join(f"{b['model']} ({b['onnxfit']} vs {b['onnxslim']})" for b in s["bigger_than_onnxslim"]) or "none"]
            for t, s in ((t, summary[t]) for t in FIT_TARGETS)]
    lines = ["Geomeans over the models where onnxfit (that target), onnxsim and onnxslim all succeeded; "
             "below 1 means onnxfit's graph is smaller (or its call faster).", "",
             *markdown_table(header, body, "lrrrrrrl"), ""]
    compared = {m for t in FIT_TARGETS for m in summary[t]["per_model"]}
    models = [m for m in summary["models"] if m in compared]
    per_header = ["model", *(f"{t} {k}" for t in FIT_TARGETS for k in ("fit/slim", "fit/sim", "t fit/slim"))]
    per_body = []
    for model in models:
        cells = []
        for t in FIT_TARGETS:
            m = summary[t]["per_model"].get(model)
            cells += [fmt_num(m and m["fit_over_slim"], ".2f"), fmt_num(m and m["fit_over_sim"], ".2f"),
                      fmt_num(m and m["time_fit_over_slim"], ".2f")]
        per_body.append([model, *cells])
    lines += ["Per model:", "", *markdown_table(per_header, per_body, "l" + "r" * (len(per_header) - 1)), ""]
    return lines


def failure_lines(summary: dict) -> list[str]:
    lines = ["## Failures", ""]
    if not summary["failures"]:
        return lines + ["None.", ""]
    body = [[f["model"], f["tool"], f["stage"], f["error"]] for f in summary["failures"]]
    lines += markdown_table(["model", "tool", "stage", "reason"], body, "llll") + [""]
    if summary["parity_flags"]:
        lines += [f"Results that ran but differ from the original by more than {PARITY_FLAG:g} (max |diff|): "
                  + ", ".join(f"{p['model']} {p['tool']} ({p['max_abs_diff']:.1e})" for p in summary["parity_flags"]),
                  ""]
    return lines


def render(data: dict) -> str:
    env, rows, summary = data["environment"], data["models"], data["summary"]
    v = env["versions"]
    dirty = (" + uncommitted changes under onnxfit/" if env["onnxfit_uncommitted"]
             else " (as committed: `git archive`, the working tree not read)" if env.get("onnxfit_rev") else "")
    lines = [
        "# lean: graph size of onnxfit's output next to onnxsim and onnxslim", "",
        "Written by `reports/lean.py`; do not edit by hand. Reproduce with (onnxsim and onnxslim: `pip install -e '.[bench]'`)", "",
        f"    {data['command']}", "",
        f"Last run: {data['date']} ({data['duration_min']:.1f} min). onnxfit {env['onnxfit_commit']}{dirty}; "
        f"onnx {v['onnx']}, onnxruntime {v['onnxruntime']}, onnxsim {v['onnxsim']}, onnxslim {v['onnxslim']}; "
        f"Python {env['python']}. Machine: {env['cpu']}, {env['cores']} cores (shared).", "",
        "What is measured, per model (every ONNX model of the zoo, `tests/zoo/manifest.py`, and FacePhys), on the "
        "raw model with no shape overrides:", "",
        "- **nodes**: every node of the graph and of every If/Loop/Scan body, recursively, Constant nodes included "
        "(a second table leaves them out). Tools: `onnxsim.simplify(model, include_subgraph=True)`, "
        "`onnxslim.slim(model)`, and `onnxfit.optimize_model(model, target=T)` for T = cpu, cuda, coreml, nnapi "
        "(the target's default passes, no `--simplify`, no partition estimate).",
        "- **ORT99**: the node count of the model ONNX Runtime writes after its own optimizations "
        "(`ORT_ENABLE_ALL`, CPU EP, `optimized_model_filepath`), from the original and from onnxfit-cpu's output.",
        "- **time**: wall time of the tool call alone (`time.perf_counter` around it), in memory for all three "
        "tools: the model is loaded and copied before, nothing is saved, and each tool has made one untimed "
        "warm-up call on a 4-node model in the same process (imports and first sessions are not timed); "
        f"the median of {data.get('repeats', 1)} calls, each on a fresh copy. onnxfit's time includes its own onnx "
        "checker and shape-inference check of the result. A shared machine: compare "
        "ratios loosely.",
        "- **parity**: all outputs of each result against the original's on ONNX Runtime CPU (graph "
        "optimizations off), one input: floats N(0, 0.25), ints zeros, bools False, symbolic dims 1 or the zoo "
        "entry's `input_shape`, the zoo entry's own feeds where it has them (FacePhys: zero states, dt = 1/30). "
        "max rel = max |a - b| / max(|b|, 1e-6): outputs near 0 inflate it, max |diff| is in the times table. "
        "A result ONNX Runtime cannot load or run is a failure.", "",
        "## Node counts", "", *counts_table(rows), "",
        "`fail`: the tool failed or its result did not load/run (reasons under Failures); `err`: ONNX Runtime "
        "could not optimize that model.", "",
        "## Node counts without Constant nodes", "", *no_constant_table(rows), "",
        "## Times (s) and max |diff| per tool", "", *times_table(rows), "",
        "## Summary", "", *summary_lines(summary),
        *failure_lines(summary),
    ]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# Main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated model names (writes to reports/_work/)")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} (writes to reports/_work/)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per tool and model (median)")
    parser.add_argument("--onnxfit-rev", help="measure onnxfit/ as committed at this git revision (e.g. HEAD), "
                        "not the working tree")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tools", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args.child, args.tools.split(","), args.child_out, args.repeats)
        return
    names = args.models.split(",") if args.models else QUICK if args.quick else None
    json_path, md_path = (PARTIAL_JSON, PARTIAL_MD) if names else (FULL_JSON, FULL_MD)
    if args.render_only:
        md_path.write_text(render(json.loads(json_path.read_text())))
        print(f"wrote {md_path}")
        return
    json_path.parent.mkdir(parents=True, exist_ok=True)
    typed_rev = args.onnxfit_rev
    if args.onnxfit_rev:  # one commit for the snapshot and the header, even if HEAD moves meanwhile
        args.onnxfit_rev = git("rev-parse", "--short", args.onnxfit_rev) or args.onnxfit_rev
    cases = select_cases(names)
    command = ".venv/bin/python reports/lean.py" + (f" --models {','.join(names)}" if names else "")
    command += f" --repeats {args.repeats}" if args.repeats != 3 else ""
    command += f" --onnxfit-rev {typed_rev}" if typed_rev else ""
    data = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "environment": environment(args.onnxfit_rev), "tools": TOOLS, "repeats": args.repeats, "models": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as snapshot:
        env = dict(os.environ)
        if args.onnxfit_rev:
            snapshot_onnxfit(args.onnxfit_rev, Path(snapshot))
            env["LEAN_ONNXFIT_DIR"] = snapshot
        for i, case in enumerate(cases, 1):
            t0 = time.perf_counter()
            row = measure_model(case.name, args.repeats, env, lambda s: print(s, flush=True))
            data["models"].append(row)
            print(f"[{i}/{len(cases)}] {case.name}: {progress_line(row)} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    data["duration_min"] = (time.perf_counter() - start) / 60
    data["summary"] = summarize(data["models"])
    write_json(json_path, data)
    md_path.write_text(render(data))
    print(f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)} in {data['duration_min']:.1f} min")


def progress_line(row: dict) -> str:
    if "error" in row:
        return f"failed: {row['error']}"
    tools = row.get("tools", {})
    return f"{row.get('original', {}).get('nodes')} -> " + ", ".join(f"{t} {fmt_nodes(tools.get(t))}" for t in TOOLS)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - a child's traceback goes to its stderr, whose last line the parent keeps
        traceback.print_exc()
        sys.exit(1)
