"""Shared pieces of the FacePhys benchmarks (reports/facephys_cpu.py, reports/facephys_gpu.py).

FacePhys (../shared/models/facephys, tests/zoo/facephys) is a streaming rPPG model: one 36x36 face
crop per call, `dt` [1] (seconds per frame, one value per call), 46 state tensors carried from call
to call (`state_in_0..45` in, the new states out after `Identity:0`, in the same order). All-zero
states are a valid start. Every runner here carries its states frame to frame, as an application
does, and times one call per frame.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL = ROOT / "tests" / "zoo" / "facephys" / "model.onnx"
DT = np.array([1 / 30], np.float32)
FRAME_SHAPE = (1, 1, 36, 36, 3)

# Element-wise ops: one kernel launch each on the CUDA EP, whatever their size.
ELEMENTWISE = {
    "Abs", "Add", "And", "BitShift", "Cast", "Ceil", "Clip", "Div", "Elu", "Equal", "Erf", "Exp", "Floor", "Gelu",
    "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Less",
    "LessOrEqual", "Log", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal", "Relu",
    "Round", "Selu", "Sigmoid", "Sign", "Sin", "Cos", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tanh", "Where",
    "Xor", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "Affine",
}


def state_index(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else -1


def frames(count: int, seed: int = 0, batch: int = 1) -> list[np.ndarray]:
    """``count`` face crops [batch,1,36,36,3] in [0, 1), fixed by ``seed`` (cycled by the runners)."""
    rng = np.random.default_rng(seed)
    return [rng.random((batch, *FRAME_SHAPE[1:]), dtype=np.float32) for _ in range(count)]


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"


# ---------------------------------------------------------------------------------- ORT runners


class OrtStream:
    """An ORT session (or anything with ``get_inputs``/``get_outputs``/``run``) fed frame by frame,
    the new states of each call fed back as the next call's states (host numpy arrays, as
    ``session.run`` takes and returns them)."""

    def __init__(self, session, batch: int = 1, seed: int = 0) -> None:
        self.session = session
        inputs = session.get_inputs()
        self.state_names = sorted((i.name for i in inputs if i.name.startswith("state_in_")), key=state_index)
        self.output_names = [o.name for o in session.get_outputs()]
        if len(self.output_names) != len(self.state_names) + 1:
            raise ValueError(f"{len(self.output_names)} outputs for {len(self.state_names)} states")
        self.batch = batch

        def dims(value) -> list[int]:  # symbolic dims (a batched copy) take the batch
            return [d if isinstance(d, int) and d >= 0 else batch for d in value.shape]

        by_name = {i.name: i for i in inputs}
        self.feeds: dict[str, np.ndarray] = {"dt": DT.copy()}
        for name in self.state_names:
            self.feeds[name] = np.zeros(dims(by_name[name]), np.float32)
        rng = np.random.default_rng(seed)
        self.frames = [rng.random(dims(by_name["input"]), dtype=np.float32) for _ in range(16)]
        self.count = 0

    def step(self) -> np.ndarray:
        self.feeds["input"] = self.frames[self.count % len(self.frames)]
        self.count += 1
        outputs = self.session.run(self.output_names, self.feeds)
        for name, value in zip(self.state_names, outputs[1:]):
            self.feeds[name] = value
        return outputs[0]

    def reset(self, initial: Mapping[str, np.ndarray] | None = None) -> None:
        """Back to the first frame, states zero or ``initial`` (``state_in_k`` -> array)."""
        for name in self.state_names:
            start = initial.get(name) if initial else None
            self.feeds[name] = (np.array(start, np.float32).reshape(self.feeds[name].shape) if start is not None
                                else np.zeros_like(self.feeds[name]))
        self.count = 0


def ort_options(threads: int | None = None, optimized_path: str | None = None, level: str = "all"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return options


# ------------------------------------------------------------------------------------ node counts


def graph_counts(model) -> dict:
    """Nodes, op histogram, element-wise nodes and the connected regions they form."""
    nodes = list(model.graph.node)
    ops: dict[str, int] = {}
    for node in nodes:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
        ops[key] = ops.get(key, 0) + 1
    elementwise = [i for i, n in enumerate(nodes) if n.op_type in ELEMENTWISE]
    parent = {i: i for i in elementwise}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    for i in elementwise:
        for name in nodes[i].input:
            j = producer.get(name)
            if j is not None and j in parent:
                parent[find(i)] = find(j)
    regions = len({find(i) for i in elementwise})
    return {"nodes": len(nodes), "elementwise": len(elementwise), "elementwise_regions": regions,
            "constants": ops.get("Constant", 0), "initializers": len(model.graph.initializer),
            "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))}


def ort_node_counts(path: str | os.PathLike, providers: list, level: str = "all") -> dict:
    """Node counts of ``path`` as published and after ONNX Runtime's own graph optimizations
    (``graph_optimization_level`` ``level``, saved with ``optimized_model_filepath``) for ``providers``."""
    import onnx
    import onnxruntime as ort

    entry: dict = {"model": str(path), "providers": [p if isinstance(p, str) else p[0] for p in providers],
                   "level": level}
    entry["published"] = graph_counts(onnx.load(str(path), load_external_data=False))
    with tempfile.TemporaryDirectory(prefix="facephys-ort-opt-") as tmp:
        saved = os.path.join(tmp, "optimized.onnx")
        session = ort.InferenceSession(str(path), ort_options(threads=1, optimized_path=saved, level=level),
                                       providers=providers)
        entry["session_providers"] = session.get_providers()
        del session
        entry["after_ort"] = graph_counts(onnx.load(saved, load_external_data=False))
    return entry


# ---------------------------------------------------------------------------------------- timing


def summarize(times_s: Sequence[float], round_medians: Sequence[float] = (), batch: int = 1) -> dict:
    ms = np.asarray(times_s, np.float64) * 1e3
    median = float(np.median(ms))
    entry = {"median_ms": round(median, 4), "p10_ms": round(float(np.percentile(ms, 10)), 4),
             "p90_ms": round(float(np.percentile(ms, 90)), 4), "mean_ms": round(float(ms.mean()), 4),
             "frames": int(ms.size), "calls_per_s": round(1000.0 / median, 1)}
    if batch != 1:
        entry["batch"] = batch
        entry["stream_frames_per_s"] = round(batch * 1000.0 / median, 1)
    else:
        entry["fps"] = round(1000.0 / median, 1)
    if len(round_medians):
        entry["median_of_round_medians_ms"] = round(float(np.median(np.asarray(round_medians) * 1e3)), 4)
        entry["rounds"] = len(round_medians)
    return entry


def interleave(steps: Mapping[str, Callable[[], object]], rounds: int, frames_per_round: int, warmup: int = 20,
               batches: Mapping[str, int] | None = None, deadline: float | None = None,
               log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Time ``steps`` in alternating rounds: each round runs every step ``frames_per_round`` times,
    one after the other (the order rotates each round); one time per call. After ``warmup`` untimed
    calls each. A step that raises is dropped and its error recorded. ``deadline``
    (time.perf_counter value) ends the rounds early; the rounds run are recorded."""
    batches = dict(batches or {})
    alive = dict(steps)
    errors: dict[str, str] = {}
    for name, step in list(alive.items()):
        try:
            for _ in range(warmup):
                step()
        except Exception as exc:  # noqa: BLE001 - the error is the result for this runner
            errors[name] = error_text(exc)
            del alive[name]
    times: dict[str, list[float]] = {name: [] for name in alive}
    round_medians: dict[str, list[float]] = {name: [] for name in alive}
    names = list(alive)
    clock = time.perf_counter
    for r in range(rounds):
        if deadline is not None and clock() > deadline and r >= 2:
            if log:
                log(f"deadline reached after {r} rounds")
            break
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name not in alive:
                continue
            step = alive[name]
            mine = []
            try:
                for _ in range(frames_per_round):
                    t0 = clock()
                    step()
                    mine.append(clock() - t0)
            except Exception as exc:  # noqa: BLE001
                errors[name] = error_text(exc)
                del alive[name]
                continue
            times[name] += mine
            round_medians[name].append(float(np.median(mine)))
    result = {}
    for name in steps:
        if name in errors:
            result[name] = {"error": errors[name]}
        elif times.get(name):
            result[name] = summarize(times[name], round_medians[name], batches.get(name, 1))
    return result


# --------------------------------------------------------------------------------------- machine


def cpu_info() -> dict:
    import platform

    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = None
    try:
        import subprocess

        text = subprocess.run(["lscpu", "-p=core,socket"], capture_output=True, text=True, check=False).stdout
        cores = len({line for line in text.splitlines() if line and not line.startswith("#")}) or None
    except OSError:
        pass
    return {"model": model, "logical_cpus": os.cpu_count(), "physical_cores": cores,
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version()}


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def git_state() -> dict:
    """The commit the scripts and onnxfit ran from, and whether onnxfit/ had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False,
                                  timeout=30).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--", "onnxfit")
    return {"commit": head or None, "onnxfit_uncommitted": sorted(line[3:] for line in dirty.splitlines()) if head else None}
