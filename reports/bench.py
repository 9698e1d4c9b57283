"""onnxfit benchmarks: writes reports/BENCHMARKS.md and reports/benchmarks.json.

    .venv/bin/python reports/bench.py                      # everything (~10 min on 2 cores)
    .venv/bin/python reports/bench.py --quick              # small repeats, no large-model sections
    .venv/bin/python reports/bench.py --sections cache,batch
    .venv/bin/python reports/bench.py --render-only        # rewrite BENCHMARKS.md from benchmarks.json

Sections (names or numbers for --sections):
  1 optimize   wall time and peak RSS of `onnxfit optimize --target coreml` on the inswapper-sized
               (552 MB) and GFPGAN-sized (341 MB) models, against the floor (onnx.load + onnx.save),
               onnxsim and onnxslim on the same model
  2 cache      prepare_entry miss vs hit on the 552 MB model (same process), and a hit from a fresh
               process (which hashes the artefact in full once)
  3 inference  ONNX Runtime CPU latency of the weights/ samples before/after optimize (coreml and cpu
               targets); OpenVINO EP partitions and latency before/after (in .venv-openvino)
  4 batch      the SCRFD-like sample after --dynamic-batch: frames/s at batch 1, 4, 16 and the
               per-frame equality check at each size
  5 verify     wall time of `onnxfit verify --batch 16`

Method: every measured command runs in its own subprocess; peak RSS is that child's ru_maxrss from
os.wait4. Time figures are medians of repeats, and the figures to judge by are ratios between
commands measured in the same run, interleaved round by round (so drift and load on a shared
machine hit both sides alike). Absolute times are given for context only.

A partial run (--sections) replaces those sections in the JSON and keeps the others, each section
saying when it was measured. --quick writes into reports/_work/quick/ (not the committed results)
unless --out-dir is given. Large models are built once into reports/_work/ (gitignored) by
reports/build_large_models.py and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPORTS = Path(__file__).resolve().parent
ROOT = REPORTS.parent
WORK = REPORTS / "_work"
WEIGHTS = ROOT / "weights"
PY = sys.executable
BIN = Path(sys.executable).parent
OPENVINO_PY = ROOT / ".venv-openvino" / "bin" / "python"

SECTIONS = ["optimize", "cache", "inference", "batch", "verify"]
TITLES = {
    "optimize": "1. Optimize cost on large models",
    "cache": "2. Cache: hit vs miss",
    "inference": "3. Inference latency before/after optimize",
    "batch": "4. Batch throughput after --dynamic-batch",
    "verify": "5. Verify cost",
}
SAMPLES = ["inswapper_like", "scrfd_like", "gfpgan_like", "facex_nano"]
LARGE = {"inswapper_big.onnx": "inswapper-sized generator (16 reflect Pads)",
         "gfpgan_big.onnx": "GFPGAN-sized model (10 Splits, 6 scalar Gathers)"}

GOAL_FLOOR = 1.5  # onnxfit optimize <= 1.5x the floor
GOAL_RSS = 2.0  # peak RSS <= 2x the model size
GOAL_HIT = 0.05  # cache hit <= 5% of a miss
GOAL_SPEED = 0.98  # latency ratio before/after >= 0.98 (never slower)
BATCH_ATOL = 1e-5


# ------------------------------------------------------------------------------ child processes
@dataclass
class Run:
    wall_s: float
    peak_rss: int  # bytes, ru_maxrss of the child (and its waited-for descendants)
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def error_line(self) -> str:
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        for line in reversed(lines):
            if "Error" in line or "error" in line:
                return line[:300]
        return lines[-1][:300] if lines else f"exit status {self.rc}"


def run_child(argv: list[str], timeout: float = 900, cwd: Path | None = None, env: dict | None = None) -> Run:
    """Run ``argv`` in a subprocess; wall time from spawn to exit, peak RSS from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_maxrss * 1024, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def child_json(argv: list[str], timeout: float = 900) -> tuple[Run, dict | None]:
    """Run a child that prints one JSON document as its last stdout line."""
    run = run_child(argv, timeout)
    data = None
    if run.ok:
        for line in reversed(run.stdout.splitlines()):
            if line.startswith("{"):
                data = json.loads(line)
                break
    return run, data


def onnxfit_cmd(*args) -> list[str]:
    exe = BIN / "onnxfit"
    return ([str(exe)] if exe.exists() else [PY, "-m", "onnxfit"]) + [str(a) for a in args]


def tool_cmd(name: str, *args) -> list[str]:
    exe = BIN / name
    return [str(exe) if exe.exists() else name] + [str(a) for a in args]


FLOOR_CODE = "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rm(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".data")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


# ------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    info: dict = {"os": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
    except OSError:
        info["cpu"] = platform.processor() or platform.machine()
    try:
        meminfo = dict(ln.split(":", 1) for ln in Path("/proc/meminfo").read_text().splitlines() if ":" in ln)
        info["ram_gb"] = round(int(meminfo["MemTotal"].split()[0]) * 1024 / 1e9, 1)
    except (OSError, KeyError, ValueError):
        info["ram_gb"] = None
    try:
        release = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln)
        info["distro"] = release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    info["load_avg_at_start"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["code"] = code_state()
    from importlib import metadata

    versions = {}
    for package in ("onnxfit", "onnx", "onnxruntime", "torch", "numpy", "onnx_graphsurgeon", "onnxsim", "onnxslim"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    info["versions"] = versions
    if OPENVINO_PY.exists():
        probe = run_child([OPENVINO_PY, "-c", "import onnxruntime as o, onnx, json; print(json.dumps("
                           "{'onnxruntime': o.__version__, 'onnx': onnx.__version__, "
                           "'providers': o.get_available_providers()}))"], timeout=120)
        info["openvino_venv"] = json.loads(probe.stdout.strip().splitlines()[-1]) if probe.ok else {
            "error": probe.error_line()}
    else:
        info["openvino_venv"] = None
    return info


def code_state() -> dict:
    """The commit measured and whether onnxfit/ differs from it (read-only git queries)."""
    def git(*args) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    dirty = git("status", "--porcelain", "--", "onnxfit")
    return {"commit": git("rev-parse", "--short", "HEAD"), "onnxfit_tree": git("rev-parse", "--short", "HEAD:onnxfit"),
            "onnxfit_modified": None if dirty is None else bool(dirty)}


def package_changed(start: dict | None, end: dict | None) -> bool | None:
    """Whether onnxfit/ differed between the start and the end of a run (commits elsewhere do not count)."""
    if not start or not end:
        return None
    if start.get("onnxfit_modified") or end.get("onnxfit_modified"):
        return True
    if start.get("onnxfit_tree") and end.get("onnxfit_tree"):
        return start["onnxfit_tree"] != end["onnxfit_tree"]
    if start.get("commit") == end.get("commit"):
        return False
    try:  # runs recorded before the tree id was: ask git whether onnxfit/ differs between the commits
        diff = subprocess.run(["git", "diff", "--quiet", start["commit"], end["commit"], "--", "onnxfit"], cwd=ROOT,
                              timeout=30)
        return None if diff.returncode not in (0, 1) else diff.returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------ bench context
@dataclass
class Ctx:
    quick: bool
    threads: int
    progress: object
    task: object
    repeats: int

    def step(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def log(self, text: str) -> None:
        self.progress.console.log(text)


def prepared(ctx: Ctx, model: Path, out: Path, *flags) -> tuple[Path | None, str | None]:
    """``onnxfit optimize MODEL -o OUT FLAGS`` (setup, not timed); (path, None) or (None, error)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and out.stat().st_mtime > max(model.stat().st_mtime, _package_mtime()):
        return out, None
    run = run_child(onnxfit_cmd("optimize", model, "-o", out, *flags, "--json"), timeout=600)
    if not run.ok:
        rm(out)
        return None, run.error_line()
    return out, None


_PKG_MTIME: list[float] = []


def _package_mtime() -> float:
    """Newest mtime of the package's sources: optimized files older than that are rebuilt."""
    if not _PKG_MTIME:
        _PKG_MTIME.append(max(p.stat().st_mtime for p in (ROOT / "onnxfit").rglob("*.py")))
    return _PKG_MTIME[0]


# ============================================================================ 1. optimize
def section_optimize(ctx: Ctx) -> dict:
    sys.path.insert(0, str(REPORTS))
    import build_large_models

    repeats = ctx.repeats
    out_dir = WORK / "bench_out"
    out_dir.mkdir(parents=True, exist_ok=True)
    models = []
    for name, what in LARGE.items():
        ctx.step(f"optimize: building/reusing {name}")
        path = build_large_models.build(name, quiet=True)
        size = path.stat().st_size
        warm_page_cache(path)
        tools = {
            "floor (onnx.load + onnx.save)": [PY, "-c", FLOOR_CODE, path, out_dir / "floor.onnx"],
            "onnxfit optimize --target coreml": onnxfit_cmd("optimize", path, "-o", out_dir / "onnxfit.onnx",
                                                            "--target", "coreml"),
            "onnxsim": tool_cmd("onnxsim", path, out_dir / "onnxsim.onnx"),
            "onnxslim": tool_cmd("onnxslim", path, out_dir / "onnxslim.onnx"),
            # Not a goal row: what the partition report (before/after) costs when forced on a large model.
            WITH_PARTS: onnxfit_cmd("optimize", path, "-o", out_dir / "onnxfit_parts.onnx", "--target", "coreml",
                                    "--partitions"),
        }
        outputs = {"floor (onnx.load + onnx.save)": out_dir / "floor.onnx",
                   "onnxfit optimize --target coreml": out_dir / "onnxfit.onnx",
                   "onnxsim": out_dir / "onnxsim.onnx", "onnxslim": out_dir / "onnxslim.onnx",
                   WITH_PARTS: out_dir / "onnxfit_parts.onnx"}
        names = list(tools)
        runs: dict[str, list[Run]] = {n: [] for n in names}
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate: no tool always goes first
            for tool in order:
                ctx.step(f"optimize: {name} round {r + 1}/{repeats}: {tool}")
                rm(outputs[tool])
                runs[tool].append(run_child(tools[tool], timeout=900))
                rm(outputs[tool])
        floor = runs[names[0]]
        rows = []
        for tool in names:
            ok_runs = [x for x in runs[tool] if x.ok]
            ratios = [x.wall_s / f.wall_s for x, f in zip(runs[tool], floor) if x.ok and f.ok]
            rows.append({
                "tool": tool,
                "command": " ".join(_short(a) for a in tools[tool]),
                "ok": len(ok_runs) == len(runs[tool]),
                "runs": len(runs[tool]),
                "failed_runs": len(runs[tool]) - len(ok_runs),
                "error": next((x.error_line() for x in runs[tool] if not x.ok), None),
                "wall_s_median": median([x.wall_s for x in ok_runs]),
                "wall_s_all": [round(x.wall_s, 3) for x in runs[tool]],
                "ratio_to_floor": median(ratios),
                "peak_rss_bytes_median": median([x.peak_rss for x in ok_runs]),
                "peak_rss_to_model_size": (median([x.peak_rss for x in ok_runs]) / size) if ok_runs else None,
            })
        fit = rows[1]
        goals = []
        if fit["ok"]:
            sim, slim = rows[2], rows[3]
            if len(rows) > 4 and rows[4]["ok"]:
                rows[4]["ratio_to_default"] = median([a.wall_s / b.wall_s for a, b in
                                                      zip(runs[WITH_PARTS], runs[names[1]]) if a.ok and b.ok])
            goals.append(_goal(f"time <= {GOAL_FLOOR}x floor", fit["ratio_to_floor"], fit["ratio_to_floor"] <= GOAL_FLOOR,
                               f"{fit['ratio_to_floor']:.2f}x floor"))
            for peer in (sim, slim):
                if peer["ok"]:
                    ratio = median([a.wall_s / b.wall_s for a, b in zip(runs[names[1]], runs[peer["tool"]])
                                    if a.ok and b.ok])
                    goals.append(_goal(f"faster than {peer['tool']}", ratio, ratio < 1.0,
                                       f"{ratio:.2f}x {peer['tool']}'s time ({1 / ratio:.1f}x faster)"
                                       if ratio < 1 else f"{ratio:.2f}x {peer['tool']}'s time"))
                else:
                    goals.append(_goal(f"faster than {peer['tool']}", None, True,
                                       f"{peer['tool']} failed: {peer['error']}"))
            goals.append(_goal(f"peak RSS <= {GOAL_RSS}x model size", fit["peak_rss_to_model_size"],
                               fit["peak_rss_to_model_size"] <= GOAL_RSS,
                               f"{fit['peak_rss_to_model_size']:.2f}x model size "
                               f"({fit['peak_rss_bytes_median'] / 1e6:.0f} MB)"))
        else:
            for goal in (f"time <= {GOAL_FLOOR}x floor", "faster than onnxsim", "faster than onnxslim",
                         f"peak RSS <= {GOAL_RSS}x model size"):
                goals.append(_goal(goal, None, False, "not met: `onnxfit optimize` failed (error in the table above)"))
        models.append({"model": f"reports/_work/{name}", "what": what, "size_bytes": size, "rows": rows,
                       "goals": goals})
        ctx.log(f"optimize {name}: " + "; ".join(f"{g['goal']}: {g['status']} ({g['text']})" for g in goals))
    return {"repeats": repeats, "models": models}


WITH_PARTS = "onnxfit optimize --target coreml --partitions"


def _goal(goal: str, value, passed: bool, text: str) -> dict:
    return {"goal": goal, "value": value, "status": "PASS" if passed else "MISS", "text": text}


def _short(arg) -> str:
    text = str(arg)
    for prefix, repl in ((str(BIN) + "/", ""), (str(ROOT) + "/", "")):
        if text.startswith(prefix):
            text = repl + text[len(prefix):]
    if text == PY or text == str(Path(PY)):
        return "python"
    if " " in text or ";" in text:
        return repr(text)
    return text


# ============================================================================ 2. cache
CACHE_MISS_HIT = r"""
import json, shutil, sys, tempfile, time
from pathlib import Path
model, work, target, rounds, hits = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
t = time.perf_counter()
from onnxfit.optimizer.cache import prepare_entry
import_s = time.perf_counter() - t
out = {"import_s": import_s, "rounds": []}
keep = None
for r in range(rounds):
    d = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    t = time.perf_counter(); miss = prepare_entry(model, target, cache_dir=d); miss_s = time.perf_counter() - t
    hit_s = []
    for _ in range(hits):
        t = time.perf_counter(); hit = prepare_entry(model, target, cache_dir=d); hit_s.append(time.perf_counter() - t)
        assert hit.hit and hit.path == miss.path, "second prepare_entry was not a hit"
    assert not miss.hit, "first prepare_entry into a fresh cache dir was a hit"
    out["rounds"].append({"miss_s": miss_s, "hit_s": hit_s, "rewritten": miss.rewritten,
                          "passes": [p["name"] for p in miss.meta.get("passes", [])],
                          "changed_passes": [p["name"] for p in miss.meta.get("passes", []) if p.get("changed")],
                          "artefact_bytes": Path(miss.path).stat().st_size if miss.rewritten else 0})
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
    keep = d
out["cache_dir"] = str(keep)
print(json.dumps(out))
"""

CACHE_FRESH_HIT = r"""
import json, sys, time
t = time.perf_counter()
from onnxfit.optimizer.cache import prepare_entry
import_s = time.perf_counter() - t
t = time.perf_counter(); e = prepare_entry(sys.argv[1], sys.argv[3], cache_dir=sys.argv[2]); s = time.perf_counter() - t
assert e.hit, "fresh-process prepare_entry was not a hit"
print(json.dumps({"hit_s": s, "import_s": import_s}))
"""

# coreml-nn: the NeuralNetwork format takes no reflect Pad at any onnxruntime version, so the miss
# builds and saves a rewritten 552 MB artefact. coreml: with onnxruntime >= 1.26 prepare() knows the
# EP runs reflect Pads itself, nothing is rewritten and the entry only records "unchanged".
CACHE_TARGETS = ("coreml-nn", "coreml")


def section_cache(ctx: Ctx) -> dict:
    import shutil

    sys.path.insert(0, str(REPORTS))
    import build_large_models

    ctx.step("cache: building/reusing inswapper_big.onnx")
    model = build_large_models.build("inswapper_big.onnx", quiet=True)
    warm_page_cache(model)
    work = WORK / "cache_bench"
    rounds = ctx.repeats
    targets = []
    for target in CACHE_TARGETS:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        ctx.step(f"cache ({target}): {rounds} misses into fresh cache dirs, 5 hits after each (one process)")
        run, data = child_json([PY, "-c", CACHE_MISS_HIT, model, work, target, rounds, 5])
        if data is None:
            targets.append({"target": target, "error": f"prepare_entry miss/hit child failed: {run.error_line()}"})
            continue
        fresh, fresh_runs, error = [], [], None
        for r in range(rounds):
            ctx.step(f"cache ({target}): fresh-process hit {r + 1}/{rounds}")
            frun, fdata = child_json([PY, "-c", CACHE_FRESH_HIT, model, data["cache_dir"], target])
            if fdata is None:
                error = f"fresh-process hit failed: {frun.error_line()}"
                break
            fresh.append(fdata)
            fresh_runs.append(frun)
        shutil.rmtree(work, ignore_errors=True)
        if error:
            targets.append({"target": target, "error": error})
            continue
        miss = median([r["miss_s"] for r in data["rounds"]])
        hit = median([h for r in data["rounds"] for h in r["hit_s"]])
        fresh_hit = median([f["hit_s"] for f in fresh])
        fresh_wall = median([r.wall_s for r in fresh_runs])
        first = data["rounds"][0]
        built = first["rewritten"]
        rows = [
            {"case": "miss: into a fresh cache dir (hash source, run passes"
                     + (", save artefact, hash it)" if built else "; nothing changed: no artefact)"),
             "seconds": miss, "of_miss": 1.0, "goal": None},
            {"case": "hit, same process", "seconds": hit, "of_miss": hit / miss,
             "goal": _goal(f"hit <= {GOAL_HIT:.0%} of miss", hit / miss, hit / miss <= GOAL_HIT, f"{hit / miss:.2%}")},
            {"case": "hit, fresh process: the prepare_entry call"
                     + (" (includes the first-use full hash of the artefact)" if built else ""),
             "seconds": fresh_hit, "of_miss": fresh_hit / miss,
             "goal": _goal(f"hit <= {GOAL_HIT:.0%} of miss", fresh_hit / miss, fresh_hit / miss <= GOAL_HIT,
                           f"{fresh_hit / miss:.2%}")},
            {"case": "fresh process, whole: interpreter start + import + hit", "seconds": fresh_wall,
             "of_miss": fresh_wall / miss, "goal": None},
        ]
        ctx.log(f"cache {target}: miss {miss:.2f} s, hit {hit * 1e3:.0f} ms ({hit / miss:.2%}), "
                f"fresh-process hit {fresh_hit * 1e3:.0f} ms ({fresh_hit / miss:.2%})")
        targets.append({"target": target, "rows": rows, "rewritten": built, "passes": first["passes"],
                        "changed_passes": first["changed_passes"], "artefact_bytes": first["artefact_bytes"],
                        "import_s": median([f["import_s"] for f in fresh]),
                        "miss_s_all": [round(r["miss_s"], 3) for r in data["rounds"]],
                        "hit_s_all": [round(h, 4) for r in data["rounds"] for h in r["hit_s"]],
                        "fresh_hit_s_all": [round(f["hit_s"], 4) for f in fresh],
                        "peak_rss_bytes_miss_process": run.peak_rss,
                        "peak_rss_bytes_fresh_hit_process": median([r.peak_rss for r in fresh_runs])})
    from importlib import metadata

    return {"model": "reports/_work/inswapper_big.onnx", "size_bytes": model.stat().st_size, "rounds": rounds,
            "hits_per_round": 5, "onnxruntime": metadata.version("onnxruntime"), "targets": targets}


# ============================================================================ 3. inference
LATENCY_CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
spec = json.loads(sys.argv[1])
threads, provider = spec["threads"], spec["provider"]
sessions = {}
for label, path in spec["variants"].items():
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if provider == "OpenVINOExecutionProvider":
        providers = [(provider, {"device_type": "CPU", "num_of_threads": str(threads)}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    sessions[label] = ort.InferenceSession(path, so, providers=providers)
rng = np.random.default_rng(0)
first = next(iter(sessions.values()))
feed = {}
for i in first.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    feed[i.name] = rng.standard_normal(shape).astype(np.float32)
outputs = {label: s.run(None, feed) for label, s in sessions.items()}
labels = list(sessions)
base = outputs[labels[0]]
max_diff = {l: max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(base, outputs[l])) for l in labels}
warm = {}
for label, s in sessions.items():
    t = time.perf_counter()
    for _ in range(spec["warmup"]):
        s.run(None, feed)
    warm[label] = (time.perf_counter() - t) / spec["warmup"]
per_round = sum(warm.values())
rounds = int(min(spec["max_runs"], max(spec["min_runs"], spec["budget_s"] / max(per_round, 1e-6))))
times = {l: [] for l in labels}
for r in range(rounds):
    order = labels[r % len(labels):] + labels[:r % len(labels)]
    for label in order:
        s = sessions[label]
        t = time.perf_counter_ns()
        s.run(None, feed)
        times[label].append((time.perf_counter_ns() - t) / 1e6)
med = {l: float(np.median(v)) for l, v in times.items()}
pair = {l: float(np.median(np.array(times[labels[0]]) / np.array(times[l]))) for l in labels}
q = {l: [float(np.percentile(v, 25)), float(np.percentile(v, 75))] for l, v in times.items()}
print(json.dumps({"runs": rounds, "median_ms": med, "iqr_ms": q, "pair_ratio": pair, "max_abs_diff": max_diff,
                  "providers": {l: s.get_providers() for l, s in sessions.items()}}))
"""

OPENVINO_PARTITIONS_CHILD = r"""
import json, sys
spec = json.loads(sys.argv[1])
from onnxfit.verify.partitions import count_partitions
out = {}
for label, path in spec["variants"].items():
    try:
        r = count_partitions(path, "openvino")
        out[label] = {"source": r.source, "partitions": r.partitions, "nodes_on_ep": r.nodes_on_ep,
                      "total_nodes": r.total_nodes, "unsupported": [u.op for u in r.unsupported]}
    except Exception as exc:
        out[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
print(json.dumps(out))
"""


def section_inference(ctx: Ctx) -> dict:
    prep = WORK / "inference"
    budget = 4.0 if ctx.quick else 20.0
    cpu_models = []
    prepared_paths: dict[str, dict[str, Path]] = {}
    for name in SAMPLES:
        src = WEIGHTS / f"{name}.onnx"
        if not src.exists():
            continue
        variants = {"before": src}
        errors = {}
        for target in ("coreml", "cpu", "openvino"):
            ctx.step(f"inference: optimize {name} --target {target}")
            path, err = prepared(ctx, src, prep / f"{name}.{target}.onnx", "--target", target)
            if path is not None:
                variants[target] = path
            else:
                errors[target] = err
        prepared_paths[name] = variants
        ctx.step(f"inference: ORT CPU latency of {name} (before, coreml, cpu; interleaved)")
        spec = {"threads": ctx.threads, "provider": "CPUExecutionProvider", "warmup": 10 if not ctx.quick else 5,
                "min_runs": 30 if ctx.quick else 100, "max_runs": 2000, "budget_s": budget,
                "variants": {k: str(v) for k, v in variants.items() if k in ("before", "coreml", "cpu")}}
        run, data = child_json([PY, "-c", LATENCY_CHILD, json.dumps(spec)], timeout=600)
        entry = {"model": f"weights/{name}.onnx", "optimize_errors": errors}
        if data is None:
            entry["error"] = run.error_line()
        else:
            entry.update(data)
            entry["rows"] = []
            for target in ("coreml", "cpu"):
                if target not in data["median_ms"]:
                    continue
                ratio = data["median_ms"]["before"] / data["median_ms"][target]
                entry["rows"].append({
                    "target": target, "before_ms": data["median_ms"]["before"], "after_ms": data["median_ms"][target],
                    "ratio": ratio, "pair_ratio": data["pair_ratio"][target],
                    "max_abs_diff": data["max_abs_diff"][target],
                    "goal": _goal(f"before/after >= {GOAL_SPEED}", ratio, ratio >= GOAL_SPEED, f"{ratio:.3f}")})
            ctx.log(f"inference {name}: " + ", ".join(f"{r['target']} {r['ratio']:.3f}" for r in entry["rows"]))
        cpu_models.append(entry)
    openvino = section_openvino(ctx, prepared_paths, budget)
    return {"threads": ctx.threads, "graph_optimization": "ORT default (ORT_ENABLE_ALL)",
            "input_batch": 1, "cpu": cpu_models, "openvino": openvino}


def section_openvino(ctx: Ctx, prepared_paths: dict[str, dict[str, Path]], budget: float) -> dict:
    if not OPENVINO_PY.exists():
        return {"available": False, "reason": f"{OPENVINO_PY.relative_to(ROOT)} does not exist"}
    probe = run_child([OPENVINO_PY, "-c", "import onnxruntime as o; print(o.__version__); "
                       "print('OpenVINOExecutionProvider' in o.get_available_providers())"], timeout=120)
    lines = probe.stdout.split()
    if not probe.ok or len(lines) < 2 or lines[1] != "True":
        return {"available": False, "reason": "the OpenVINO venv has no OpenVINOExecutionProvider"
                + (f" ({probe.error_line()})" if not probe.ok else "")}
    result = {"available": True, "onnxruntime": lines[0], "models": []}
    for name, variants in prepared_paths.items():
        chosen = {k: str(v) for k, v in variants.items() if k in ("before", "openvino", "coreml")}
        ctx.step(f"inference: OpenVINO EP partitions of {name}")
        prun, parts = child_json([OPENVINO_PY, "-c", OPENVINO_PARTITIONS_CHILD, json.dumps({"variants": chosen})],
                                 timeout=600)
        ctx.step(f"inference: OpenVINO EP latency of {name} (interleaved)")
        spec = {"threads": ctx.threads, "provider": "OpenVINOExecutionProvider", "warmup": 10 if not ctx.quick else 5,
                "min_runs": 30 if ctx.quick else 100, "max_runs": 2000, "budget_s": budget, "variants": chosen}
        lrun, lat = child_json([OPENVINO_PY, "-c", LATENCY_CHILD, json.dumps(spec)], timeout=600)
        entry = {"model": f"weights/{name}.onnx", "partitions": parts,
                 "partitions_error": None if parts is not None else prun.error_line()}
        if lat is None:
            entry["error"] = lrun.error_line()
        else:
            entry.update({k: lat[k] for k in ("runs", "median_ms", "iqr_ms", "pair_ratio", "max_abs_diff", "providers")})
            entry["rows"] = []
            for target in ("openvino", "coreml"):
                if target not in lat["median_ms"]:
                    continue
                ratio = lat["median_ms"]["before"] / lat["median_ms"][target]
                entry["rows"].append({"target": target, "before_ms": lat["median_ms"]["before"],
                                      "after_ms": lat["median_ms"][target], "ratio": ratio,
                                      "max_abs_diff": lat["max_abs_diff"][target],
                                      "goal": _goal(f"before/after >= {GOAL_SPEED}", ratio, ratio >= GOAL_SPEED,
                                                    f"{ratio:.3f}")})
        result["models"].append(entry)
    return result


# ============================================================================ 4. batch
BATCH_CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
spec = json.loads(sys.argv[1])
so = ort.SessionOptions()
so.intra_op_num_threads = spec["threads"]
so.inter_op_num_threads = 1
so.log_severity_level = 3
s = ort.InferenceSession(spec["model"], so, providers=["CPUExecutionProvider"])
inp = s.get_inputs()[0]
sizes = spec["sizes"]
rng = np.random.default_rng(0)
frames = rng.standard_normal([max(sizes)] + [d for d in inp.shape[1:]]).astype(np.float32)
alone = [s.run(None, {inp.name: frames[i:i + 1]}) for i in range(max(sizes))]
checks = {}
for b in sizes:
    outs = s.run(None, {inp.name: frames[:b]})
    ok, worst = True, 0.0
    for i in range(b):
        for o_batch, o_alone in zip(outs, alone[i]):
            a, ref = o_batch[i], o_alone[0]
            worst = max(worst, float(np.max(np.abs(a - ref))))
            ok = ok and a.shape == ref.shape and bool(np.allclose(a, ref, atol=spec["atol"]))
    checks[b] = {"ok": ok, "max_abs_diff": worst, "frames": b}
feeds = {b: {inp.name: frames[:b]} for b in sizes}
for b in sizes:
    for _ in range(spec["warmup"]):
        s.run(None, feeds[b])
times = {b: [] for b in sizes}
for r in range(spec["rounds"]):
    order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
    for b in order:
        t = time.perf_counter_ns()
        s.run(None, feeds[b])
        times[b].append((time.perf_counter_ns() - t) / 1e9)
print(json.dumps({"checks": checks, "median_s": {b: float(np.median(v)) for b, v in times.items()},
                  "rounds": spec["rounds"]}))
"""


def section_batch(ctx: Ctx) -> dict:
    src = WEIGHTS / "scrfd_like.onnx"
    ctx.step("batch: optimize scrfd_like --target coreml --dynamic-batch")
    model, err = prepared(ctx, src, WORK / "batch" / "scrfd_like.dynbatch.onnx", "--target", "coreml",
                          "--dynamic-batch")
    command = "onnxfit optimize weights/scrfd_like.onnx -o scrfd_like.dynbatch.onnx --target coreml --dynamic-batch"
    if model is None:
        return {"error": f"optimize --dynamic-batch failed: {err}", "command": command}
    sizes = [1, 4, 16]
    rounds = 8 if ctx.quick else 30
    ctx.step(f"batch: per-frame equality and frames/s at batch {sizes} ({rounds} interleaved rounds)")
    spec = {"model": str(model), "threads": ctx.threads, "sizes": sizes, "rounds": rounds,
            "warmup": 2 if ctx.quick else 5, "atol": BATCH_ATOL}
    run, data = child_json([PY, "-c", BATCH_CHILD, json.dumps(spec)], timeout=900)
    if data is None:
        return {"error": run.error_line(), "command": command}
    base_fps = 1 / data["median_s"]["1"]
    rows = []
    for b in sizes:
        latency = data["median_s"][str(b)]
        check = data["checks"][str(b)]
        rows.append({"batch": b, "latency_ms": latency * 1e3, "frames_per_s": b / latency,
                     "vs_batch_1": (b / latency) / base_fps, "equal_ok": check["ok"],
                     "max_abs_diff": check["max_abs_diff"]})
    ctx.log("batch: " + ", ".join(f"b{r['batch']} {r['frames_per_s']:.1f} f/s {'ok' if r['equal_ok'] else 'FAIL'}"
                                  for r in rows))
    return {"model": "weights/scrfd_like.onnx", "command": command, "threads": ctx.threads, "rounds": rounds,
            "atol": BATCH_ATOL, "rows": rows}


# ============================================================================ 5. verify
def section_verify(ctx: Ctx) -> dict:
    prep = WORK / "verify"
    repeats = ctx.repeats
    cases = []
    for name in ("scrfd_like", "inswapper_like"):
        ctx.step(f"verify: optimize {name} --target coreml --dynamic-batch")
        model, err = prepared(ctx, WEIGHTS / f"{name}.onnx", prep / f"{name}.dynbatch.onnx", "--target", "coreml",
                              "--dynamic-batch")
        if model is None:
            cases.append({"model": name, "error": f"optimize --dynamic-batch failed: {err}"})
            continue
        runs = []
        for r in range(repeats):
            ctx.step(f"verify: {name} --batch 16, run {r + 1}/{repeats}")
            runs.append(run_child(onnxfit_cmd("verify", model, "--batch", 16), timeout=900))
        ok_runs = [x for x in runs if x.ok]
        cases.append({
            "model": f"weights/{name}.onnx after optimize --target coreml --dynamic-batch",
            "command": f"onnxfit verify {name}.dynbatch.onnx --batch 16",
            "runs": len(runs), "passed_runs": len(ok_runs),
            "exit_codes": [x.rc for x in runs],
            "error": None if len(ok_runs) == len(runs) else next(x.error_line() for x in runs if not x.ok),
            "wall_s_median": median([x.wall_s for x in runs]),
            "wall_s_all": [round(x.wall_s, 2) for x in runs],
            "peak_rss_bytes_median": median([x.peak_rss for x in runs]),
        })
        ctx.log(f"verify {name}: {cases[-1]['wall_s_median']:.1f} s, exit {cases[-1]['exit_codes']}")
    ctx.step("verify: inswapper_like as shipped (fixed batch 1) with --batch 16")
    plain = run_child(onnxfit_cmd("verify", WEIGHTS / "inswapper_like.onnx", "--batch", 16), timeout=600)
    return {"repeats": repeats, "cases": cases,
            "fixed_batch_note": {"command": "onnxfit verify weights/inswapper_like.onnx --batch 16",
                                 "exit_code": plain.rc, "message": plain.error_line()}}


# ============================================================================ report
def fmt_s(value) -> str:
    if value is None:
        return "-"
    if value < 0.01:
        return f"{value * 1e3:.2f} ms"
    if value < 1:
        return f"{value * 1e3:.0f} ms"
    return f"{value:.2f} s"


def fmt_mb(value) -> str:
    return "-" if value is None else f"{value / 1e6:,.0f} MB"


def fmt_x(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def headline(sections: dict) -> list[list[str]]:
    rows = []
    opt = sections.get("optimize")
    if opt and "models" in opt:
        for m in opt["models"]:
            name = Path(m["model"]).name
            size = fmt_mb(m["size_bytes"])
            fit = m["rows"][1]
            if not fit["ok"]:
                rows.append([f"`optimize --target coreml`, {name} ({size}): all four goals",
                             f"FAILED ({fit['failed_runs']}/{fit['runs']} runs): {fit['error']}", "MISS"])
                continue
            for g in m["goals"]:
                rows.append([f"`optimize --target coreml`, {name} ({size}): {g['goal']}", g["text"], g["status"]])
    cache = sections.get("cache")
    for t in (cache or {}).get("targets", []):
        if "rows" not in t:
            rows.append([f"cache hit vs miss, `{t['target']}`", f"FAILED: {t['error']}", "MISS"])
            continue
        miss, hit, fresh = t["rows"][0], t["rows"][1], t["rows"][2]
        what = "artefact built" if t["rewritten"] else "nothing to rewrite"
        rows.append([f"cache hit vs miss, 552 MB model, `{t['target']}` ({what}; miss {fmt_s(miss['seconds'])}), "
                     f"same process", f"hit {fmt_s(hit['seconds'])} = {hit['of_miss']:.2%} of miss",
                     hit["goal"]["status"]])
        rows.append([f"cache hit from a fresh process, `{t['target']}`",
                     f"{fmt_s(fresh['seconds'])} = {fresh['of_miss']:.2%} of miss", fresh["goal"]["status"]])
    inf = sections.get("inference")
    if inf:
        for target in ("coreml", "cpu"):
            found = [(m["model"], r) for m in inf.get("cpu", []) for r in m.get("rows", []) if r["target"] == target]
            if found:
                worst = min(found, key=lambda x: x[1]["ratio"])
                rows.append([f"ORT CPU latency before/after `--target {target}`, worst of {len(found)} samples "
                             f"(>= {GOAL_SPEED})",
                             f"{worst[1]['ratio']:.3f} ({Path(worst[0]).stem})",
                             "PASS" if all(r["goal"]["status"] == "PASS" for _, r in found) else "MISS"])
        ov = inf.get("openvino", {})
        if ov.get("available"):
            parts = []
            for m in ov["models"]:
                p = m.get("partitions") or {}
                if "before" in p and "openvino" in p and "partitions" in p["before"] and "partitions" in p["openvino"]:
                    parts.append(f"{Path(m['model']).stem} {p['before']['partitions']}->{p['openvino']['partitions']}")
            found = [(m["model"], r) for m in ov["models"] for r in m.get("rows", []) if r["target"] == "openvino"]
            if parts:
                rows.append(["OpenVINO EP partitions before->after `--target openvino`", ", ".join(parts), "-"])
            if found:
                worst = min(found, key=lambda x: x[1]["ratio"])
                rows.append([f"OpenVINO EP latency before/after `--target openvino`, worst (>= {GOAL_SPEED})",
                             f"{worst[1]['ratio']:.3f} ({Path(worst[0]).stem})",
                             "PASS" if all(r["goal"]["status"] == "PASS" for _, r in found) else "MISS"])
        elif ov:
            rows.append(["OpenVINO EP", f"not measured: {ov.get('reason')}", "-"])
    batch = sections.get("batch")
    if batch and "rows" in batch:
        b16 = batch["rows"][-1]
        rows.append([f"SCRFD-like after `--dynamic-batch`: frames/s at batch {b16['batch']} vs batch 1",
                     f"{b16['frames_per_s']:.1f} f/s = {b16['vs_batch_1']:.2f}x batch 1",
                     "-"])
        rows.append([f"per-frame equality at batch {', '.join(str(r['batch']) for r in batch['rows'])} "
                     f"(atol {batch['atol']:g})",
                     ", ".join("ok" if r["equal_ok"] else "FAIL" for r in batch["rows"]),
                     "PASS" if all(r["equal_ok"] for r in batch["rows"]) else "MISS"])
    ver = sections.get("verify")
    if ver:
        for c in ver.get("cases", []):
            if "wall_s_median" in c:
                rows.append([f"`{c['command']}` wall time", f"{fmt_s(c['wall_s_median'])} "
                             f"(exit {c['exit_codes'][0] if len(set(c['exit_codes'])) == 1 else c['exit_codes']})",
                             "-" if c["passed_runs"] == c["runs"] else "MISS"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_md(doc: dict) -> str:
    machine = doc["machine"]
    sections = doc["sections"]
    v = machine["versions"]
    out = ["# onnxfit benchmarks", "",
           "Written by `reports/bench.py`; do not edit by hand. Reproduce with", "",
           "    .venv/bin/python reports/bench.py", "",
           f"Last run: {doc['finished_at']} ({doc['duration_s'] / 60:.1f} min, sections: {', '.join(doc['ran'])}"
           f"{', quick' if doc['quick'] else ''}).", ""]
    out += ["## Headline", "",
            "Ratios are between commands measured in the same run, interleaved round by round; "
            "times are medians of repeats. PASS/MISS is against the goal in the row.", "",
            table(["what", "measured", "goal"], headline(sections)), ""]
    out += ["## Machine", "",
            f"- CPU: {machine.get('cpu')}, {machine.get('cores')} logical cores; RAM {machine.get('ram_gb')} GB",
            f"- OS: {machine.get('distro', '')} ({machine.get('os')}); Python {machine.get('python')}",
            f"- onnxfit {v.get('onnxfit')}, onnx {v.get('onnx')}, onnxruntime {v.get('onnxruntime')}, "
            f"torch {v.get('torch')}, numpy {v.get('numpy')}, onnx-graphsurgeon {v.get('onnx_graphsurgeon')}; "
            f"peers: onnxsim {v.get('onnxsim')}, onnxslim {v.get('onnxslim')}"]
    ovv = machine.get("openvino_venv")
    if ovv and "onnxruntime" in ovv:
        out.append(f"- `.venv-openvino`: onnxruntime {ovv['onnxruntime']} (providers: {', '.join(ovv['providers'])}), "
                   f"onnx {ovv['onnx']}")
    else:
        out.append(f"- `.venv-openvino`: {'missing' if ovv is None else ovv.get('error')}")
    load = machine.get("load_avg_at_start")
    if load:
        out.append(f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}. "
                   "The machine was shared with other work: absolute times are noisy; ratios of interleaved "
                   "runs are what to compare.")
    code, code_end = machine.get("code"), machine.get("code_at_end")
    if code:
        text = f"- code measured: commit {code['commit']}" + (
            " with uncommitted changes in onnxfit/" if code["onnxfit_modified"] else "")
        changed = package_changed(code, code_end)
        if changed:
            text += (f"; WARNING: onnxfit/ changed during the run (at the end: commit {code_end['commit']}"
                     f"{', onnxfit/ modified' if code_end['onnxfit_modified'] else ''}), rerun before trusting it")
        elif code_end and code_end.get("commit") != code.get("commit"):
            text += (f" (HEAD moved to {code_end['commit']} during the run, with no change to onnxfit/)"
                     if changed is False else f" (HEAD moved to {code_end['commit']} during the run)")
        out.append(text)
    out.append("")
    for name in SECTIONS:
        sec = sections.get(name)
        out.append(f"## {TITLES[name]}")
        out.append("")
        if sec is None:
            out += ["Not measured in this run (`--sections` did not include it, and no earlier result exists).", ""]
            continue
        if sec.get("measured_at") and sec["measured_at"] != doc["started_at"]:
            out += [f"_Measured in an earlier run, {sec['measured_at']}._", ""]
        if "error" in sec and len(sec) <= 4:
            out += [f"FAILED: {sec['error']}", ""]
            continue
        out += RENDER[name](sec)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_optimize(sec: dict) -> list[str]:
    out = [f"Each command runs {sec['repeats']} time{'s' if sec['repeats'] != 1 else ''} in its own subprocess, "
           "the commands interleaved per round "
           "(the order rotates each round). Time: wall clock of the subprocess (interpreter start included, "
           "the same for all). Ratio to floor: median over rounds of (tool time / floor time in the same round). "
           "Peak RSS: ru_maxrss of the child from `os.wait4`. The model file is in the page cache before the first "
           "run; each output is deleted before and after its run.", "",
           "Build the models (done by the benchmark if missing; reused from `reports/_work/`):", "",
           "    .venv/bin/python reports/build_large_models.py", ""]
    for m in sec["models"]:
        out += [f"### {Path(m['model']).name}: {m['what']}, {fmt_mb(m['size_bytes'])}", ""]
        rows = []
        for r in m["rows"]:
            status = "ok" if r["ok"] else f"FAILED {r['failed_runs']}/{r['runs']}: {r['error']}"
            rows.append([f"`{r['command']}`" if r["tool"] != "floor (onnx.load + onnx.save)" else
                         f"floor: `{r['command']}`",
                         fmt_s(r["wall_s_median"]), fmt_x(r["ratio_to_floor"]), fmt_mb(r["peak_rss_bytes_median"]),
                         fmt_x(r["peak_rss_to_model_size"]), status])
        out += [table(["command", "time (median)", "vs floor", "peak RSS (median)", "RSS / model size", "status"],
                      rows), ""]
        out += [table(["goal for onnxfit", "measured", "result"],
                      [[g["goal"], g["text"], g["status"]] for g in m["goals"]]), ""]
        extra = m["rows"][4] if len(m["rows"]) > 4 else None
        if extra and extra.get("ratio_to_default"):
            out.append(f"The last row is for diagnosis, not a goal: above 256 MB `onnxfit optimize` skips the "
                       f"partition report unless asked; with `--partitions` (two ONNX Runtime sessions on the full "
                       f"model) it takes {extra['ratio_to_default']:.2f}x the default's time.")
            out.append("")
        out.append("All times (s): " + "; ".join(f"{r['tool']}: {r['wall_s_all']}" for r in m["rows"]))
        out.append("")
    return out


def render_cache(sec: dict) -> list[str]:
    if "error" in sec:
        return [f"FAILED: {sec['error']}"]
    out = [f"Model: `{sec['model']}` ({fmt_mb(sec['size_bytes'])}), `prepare_entry(model, TARGET, cache_dir=...)`. "
           f"Per target, one process does {sec['rounds']} rounds of: a miss into a new, empty cache directory, then "
           f"{sec['hits_per_round']} hits; miss times are medians over rounds, hit times over all "
           f"{sec['rounds'] * sec['hits_per_round']} hits. Then {sec['rounds']} fresh processes each make one hit on "
           "the last cache directory; the `prepare_entry` call is timed inside the process, the whole process from "
           "outside. Two targets, because onnxruntime here is "
           f"{sec.get('onnxruntime', '?')}, and from 1.26 on the CoreML EP (MLProgram) runs reflect Pads itself: `prepare(..., \"coreml\")` then "
           "rewrites nothing and the entry only records that, while `coreml-nn` (NeuralNetwork format, no reflect "
           "Pad) rewrites the 16 Pads and builds a 552 MB artefact.", ""]
    for t in sec["targets"]:
        out += [f"### target `{t['target']}`", ""]
        if "error" in t:
            out += [f"FAILED: {t['error']}", ""]
            continue
        rows = [[r["case"], fmt_s(r["seconds"]), f"{r['of_miss']:.2%}",
                 "-" if r["goal"] is None else f"{r['goal']['status']} ({r['goal']['goal']})"] for r in t["rows"]]
        out += [table(["case", "time (median)", "of miss", "goal"], rows), "",
                f"- passes: {', '.join(t['passes'])}; changed the model: "
                f"{', '.join(t['changed_passes']) or 'none (the entry records unchanged; prepare returns the source)'}",
                f"- artefact: {fmt_mb(t['artefact_bytes']) if t['rewritten'] else 'none'}; "
                f"`import onnxfit.optimizer.cache` in a fresh process: {fmt_s(t['import_s'])}",
                f"- peak RSS: miss/hit process {fmt_mb(t['peak_rss_bytes_miss_process'])}, fresh-process hit "
                f"{fmt_mb(t['peak_rss_bytes_fresh_hit_process'])}",
                f"- all misses (s): {t['miss_s_all']}; all same-process hits (s): {t['hit_s_all']}; "
                f"all fresh-process hits (s): {t['fresh_hit_s_all']}", ""]
    return out


def render_inference(sec: dict) -> list[str]:
    out = [f"ONNX Runtime sessions with `intra_op_num_threads={sec['threads']}`, `inter_op_num_threads=1`, "
           f"sequential execution, graph optimizations at the ORT default (all), inputs at batch "
           f"{sec['input_batch']} (seeded normal noise). The variants of one model are loaded in one process and run "
           "interleaved (before, after, after, ..., order rotating each round) after a warmup; latency is the median "
           "of all runs. Ratio = median before / median after (above 1: the optimized model is faster; goal >= "
           f"{GOAL_SPEED}). `max |diff|` compares the optimized model's outputs with the original's.", "",
           "Optimized models: `onnxfit optimize weights/NAME.onnx -o OUT --target coreml` (and `--target cpu`, "
           "`--target openvino`).", "", "### ONNX Runtime CPU EP", ""]
    rows = []
    for m in sec["cpu"]:
        if "error" in m:
            rows.append([f"`{m['model']}`", "-", "-", "-", "-", "-", f"FAILED: {m['error']}"])
            continue
        for target, err in m.get("optimize_errors", {}).items():
            if target in ("coreml", "cpu"):
                rows.append([f"`{m['model']}`", target, "-", "-", "-", "-", f"optimize FAILED: {err}"])
        for r in m["rows"]:
            rows.append([f"`{m['model']}`", r["target"], f"{r['before_ms']:.3f} ms", f"{r['after_ms']:.3f} ms",
                         f"{r['ratio']:.3f}", f"{r['max_abs_diff']:.2g}", r["goal"]["status"]])
    out += [table(["model", "target", "before", "after", "ratio", "max abs diff", "goal"], rows), "",
            "Runs per variant: " + ", ".join(f"{Path(m['model']).stem} {m.get('runs', '-')}" for m in sec["cpu"]), ""]
    ov = sec["openvino"]
    out += ["### OpenVINO EP (`.venv-openvino`)", ""]
    if not ov.get("available"):
        out.append(f"Not measured: {ov.get('reason')}.")
        return out
    out += [f"onnxruntime {ov['onnxruntime']} with `OpenVINOExecutionProvider` (device CPU, "
            f"num_of_threads={sec['threads']}) and the CPU EP as fallback, run by `.venv-openvino/bin/python`. "
            "Partitions: `onnxfit.verify.partitions.count_partitions(model, \"openvino\")` (a real placement read "
            "from ORT's session log). Latency measured as above.", ""]
    rows = []
    for m in ov["models"]:
        parts = m.get("partitions") or {}
        for label in ("before", "openvino", "coreml"):
            p = parts.get(label, {})
            if m.get("partitions") is None:
                ptxt = f"FAILED: {m.get('partitions_error')}"
            elif "error" in p:
                ptxt = f"FAILED: {p['error']}"
            elif p:
                ptxt = f"{p['partitions']} ({p['nodes_on_ep']}/{p['total_nodes']} nodes on EP, {p['source']})"
            else:
                ptxt = "-"
            lat = m.get("median_ms", {}).get(label)
            r = next((r for r in m.get("rows", []) if r["target"] == label), None)
            rows.append([f"`{m['model']}`", label if label == "before" else f"after `--target {label}`", ptxt,
                         "-" if lat is None else f"{lat:.3f} ms",
                         "-" if r is None else f"{r['ratio']:.3f}",
                         "-" if r is None else f"{r['max_abs_diff']:.2g}",
                         "-" if r is None else r["goal"]["status"]])
        if "error" in m:
            rows.append([f"`{m['model']}`", "latency", "-", f"FAILED: {m['error']}", "-", "-", "-"])
    out += [table(["model", "variant", "partitions", "latency (median)", "ratio", "max abs diff", "goal"], rows)]
    return out


def render_batch(sec: dict) -> list[str]:
    if "error" in sec:
        return [f"FAILED: {sec['error']}", "", f"    {sec['command']}"]
    rows = [[r["batch"], f"{r['latency_ms']:.2f} ms", f"{r['frames_per_s']:.1f}", fmt_x(r["vs_batch_1"]),
             ("ok" if r["equal_ok"] else "FAIL") + f" (max |diff| {r['max_abs_diff']:.2g})"] for r in sec["rows"]]
    return [f"`{sec['model']}`, optimized with", "", f"    {sec['command']}", "",
            f"ONNX Runtime CPU, `intra_op_num_threads={sec['threads']}`. 16 seeded frames; each batch size runs on "
            f"the first B of them, {sec['rounds']} interleaved rounds after warmup, median latency. Equality: each "
            f"frame's outputs in the batched run against the same frame run alone at batch 1, "
            f"`np.allclose(atol={sec['atol']:g})` on every output.", "",
            table(["batch", "latency (median)", "frames/s", "vs batch 1", "per-frame equality"], rows)]


def render_verify(sec: dict) -> list[str]:
    rows = []
    for c in sec["cases"]:
        if "wall_s_median" not in c:
            rows.append([c["model"], "-", "-", "-", f"FAILED: {c['error']}"])
            continue
        rows.append([f"`{c['command']}`", fmt_s(c["wall_s_median"]), fmt_mb(c["peak_rss_bytes_median"]),
                     ", ".join(map(str, c["exit_codes"])), "all checks passed" if c["passed_runs"] == c["runs"]
                     else f"FAILED: {c['error']}"])
    note = sec["fixed_batch_note"]
    return [f"Wall time of the CLI in a subprocess (interpreter start and imports included), median of "
            f"{sec['repeats']} runs; the models were optimized with `--target coreml --dynamic-batch` first, "
            "because `--batch` applies to a symbolic leading dim.", "",
            table(["command", "time (median)", "peak RSS", "exit codes", "result"], rows), "",
            f"The inswapper-like sample as shipped has a fixed batch of 1: `{note['command']}` exits "
            f"{note['exit_code']} with: {note['message']}"]


RENDER = {"optimize": render_optimize, "cache": render_cache, "inference": render_inference,
          "batch": render_batch, "verify": render_verify}
RUN = {"optimize": section_optimize, "cache": section_cache, "inference": section_inference,
       "batch": section_batch, "verify": section_verify}


# ============================================================================ main
def parse_sections(text: str | None, quick: bool) -> list[str]:
    if not text:
        return [s for s in SECTIONS if not (quick and s in ("optimize", "cache"))]
    chosen = []
    for part in text.split(","):
        part = part.strip().lower()
        if part.isdigit() and 1 <= int(part) <= len(SECTIONS):
            part = SECTIONS[int(part) - 1]
        if part not in SECTIONS:
            raise SystemExit(f"unknown section '{part}'; choose from {', '.join(SECTIONS)} or 1-{len(SECTIONS)}")
        if part not in chosen:
            chosen.append(part)
    return [s for s in SECTIONS if s in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="onnxfit benchmarks -> reports/BENCHMARKS.md + benchmarks.json")
    parser.add_argument("--quick", action="store_true",
                        help="small repeats; skip the large-model sections (optimize, cache) unless --sections "
                             "names them; writes to reports/_work/quick/ unless --out-dir is given")
    parser.add_argument("--sections", help=f"comma-separated: {','.join(SECTIONS)} (or 1-{len(SECTIONS)})")
    parser.add_argument("--threads", type=int, default=1,
                        help="ORT intra_op_num_threads (default 1: on a small shared machine a second ORT thread "
                             "competes with other work and its spin-waits make latency bimodal)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measured command (default 5; quick 1)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where BENCHMARKS.md and benchmarks.json go")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite BENCHMARKS.md from the existing benchmarks.json")
    args = parser.parse_args(argv)
    if args.render_only:
        out_dir = args.out_dir or (WORK / "quick" if args.quick else REPORTS)
        doc = json.loads((out_dir / "benchmarks.json").read_text())
        (out_dir / "BENCHMARKS.md").write_text(render_md(doc))
        print(f"rendered {out_dir / 'BENCHMARKS.md'} from {out_dir / 'benchmarks.json'}")
        return 0

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    sections = parse_sections(args.sections, args.quick)
    out_dir = args.out_dir or (WORK / "quick" if args.quick else REPORTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "benchmarks.json", out_dir / "BENCHMARKS.md"
    WORK.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    previous = {}
    if json_path.exists():
        try:
            previous = json.loads(json_path.read_text()).get("sections", {})
        except (OSError, ValueError):
            previous = {}
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[section]}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=console) as progress:
        task = progress.add_task("machine info", total=len(sections), section="setup")
        machine = machine_info()
        ctx = Ctx(quick=args.quick, threads=args.threads, progress=progress, task=task,
                  repeats=args.repeats or (1 if args.quick else 5))
        results = {}
        for name in sections:
            progress.update(task, section=TITLES[name])
            s0 = time.perf_counter()
            try:
                results[name] = RUN[name](ctx)
            except Exception as exc:  # a broken section is reported, the others still run
                import traceback

                progress.console.print(traceback.format_exc())
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["measured_at"] = started
            results[name]["duration_s"] = round(time.perf_counter() - s0, 1)
            progress.advance(task)
    merged = {**previous, **results}
    doc = {"started_at": started, "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "duration_s": round(time.perf_counter() - t0, 1), "quick": args.quick, "ran": sections,
           "threads": args.threads, "machine": machine,
           "command": "python reports/bench.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
           "sections": {k: merged[k] for k in SECTIONS if k in merged}}
    doc["machine"]["load_avg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["machine"]["code_at_end"] = code_state()
    json_path.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    md_path.write_text(render_md(doc))
    console.print(f"wrote {md_path} and {json_path} in {doc['duration_s'] / 60:.1f} min")
    for row in headline(doc["sections"]):
        console.print(f"  [{'green' if row[2] == 'PASS' else 'red' if row[2] == 'MISS' else 'white'}]{row[2]:>4}"
                      f"[/] {row[0]}: {row[1]}", soft_wrap=True)
    return 0


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
