"""FacePhys on one GPU, batch 1, in one process: plain ONNX Runtime CUDA, `onnxfit.session`, JAX.

On the GPU machine (reports/facephys_gpu.sh does the whole last call: wheel, PYTHONPATH, models):

    PYTHONPATH=/tmp/site:/tmp/jxsite:$PWD python3 reports/facephys_gpu.py \
        --original tests/zoo/facephys/model.onnx --optimized /tmp/facephys/facephys_cuda.onnx \
        [--batched /tmp/facephys/facephys_cuda_batch.onnx] --jax-dir .gpu/jax --out $OUT

Anywhere (checks the code paths on the CPU EP and CPU JAX; the figures say nothing about a GPU):

    .venv/bin/python reports/facephys_gpu.py --device cpu --out /tmp/fp-gpu-check

What it measures, states carried frame to frame, `dt` = 1/30, one call per frame:
- `plain_original` (a): `InferenceSession(original, providers=[CUDA, CPU])`, ORT's defaults, numpy
  feeds and outputs (what an application writes by hand);
- `plain_optimized` (b): the same on the model `onnxfit optimize --target cuda` wrote;
- `onnxfit_session` (c): `onnxfit.session(original, target="cuda")`, fed with `session.run` as a user
  does (it plans a CUDA graph when the model is eligible; `run` then goes through its bound runner:
  inputs copied into fixed device buffers, the graph replayed, outputs copied back);
- `onnxfit_session_device_states` (c'): a second such session whose new states are copied into the
  state inputs' device buffers on the GPU (cupy's cudaMemcpyAsync), only the frame in and the pulse out
  crossing to the host: what the graph costs without the host round trip of 46 states;
- `jax` (d): the model's own Keras/JAX source, jitted (reports/facephys_jax.py, adapted from
  ../shared/gpu/facephys_jax_reference.py), state on the device; `jax_host_states`: the same with
  the state pulled to the host after every call and passed back (as a, b and c carry theirs);
- what opening each costs once (`open_s`): plain sessions, `onnxfit.session` on a cold cache
  (prepare, plan, open, capture) and on a hit (the second session), `stream()` (its two captures);
  JAX's build and first call (`jax.build_s`, `jax.first_call_s`);
- `onnxfit_session_stream` (c''): the same planned session through `session.stream()`, onnxfit's
  own runner for streaming models: the states stay in device buffers between calls (two captured
  graphs ping-pong them), only the frame in and the pulse out cross the host;
- with `--batched` (e): stream-frames/s at batch 1, 8, 16, 32 (`--batches`) under
  `onnxfit.session(batched, target="cuda", input_shapes=<batch B>)`, B streams advanced per call,
  with `session.run` (`batch_B`) and with `session.stream()` (`stream_batch_B`).
Rounds alternate the runners (order rotating), `--frames` timed calls each per round, after a
warm-up; the figure is the median per call over all timed calls (>= 200 by default). Also: node
counts as published and after ONNX Runtime's optimizations (level ALL, `optimized_model_filepath`,
CUDA EP), the plan `onnxfit.session` made and why, and parity of the pulse over 32 frames from one
state (JAX's learned initial state when JAX runs, else zeros) against `plain_original`.

Nothing missing stops the run: no CUDA EP, no JAX, no cupy, a batched model that does not load are
each recorded as an error string in the JSON, which is rewritten after every stage (a run killed
at its time limit still leaves what it measured) and printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "reports"))

import numpy as np  # noqa: E402

from facephys_common import (DT, ORIGINAL, OrtStream, cpu_info, error_text, git_state, interleave,  # noqa: E402
                             ort_node_counts, ort_options)

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
PARITY_FRAMES = 32


def log(message: str) -> None:
    print(f"[facephys_gpu {time.strftime('%H:%M:%S')}] {message}", flush=True)


def gpu_name() -> dict:
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, check=False).stdout.strip()
        if out:
            first = [p.strip() for p in out.splitlines()[0].split(",")]
            return {"name": first[0], "driver": first[1] if len(first) > 1 else None,
                    "memory": first[2] if len(first) > 2 else None, "source": "nvidia-smi", "count": len(out.splitlines())}
    # No nvidia-smi: ask torch in a child process (its CUDA libraries stay out of this one).
    try:
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0))"],
                             capture_output=True, text=True, check=False, timeout=120)
        if out.returncode == 0 and out.stdout.strip():
            return {"name": out.stdout.strip().splitlines()[-1], "source": "torch.cuda.get_device_name"}
        return {"name": None, "error": " ".join((out.stderr or "no output").split())[-300:]}
    except Exception as exc:  # noqa: BLE001
        return {"name": None, "error": error_text(exc)}


def probe_cuda(path: Path) -> dict:
    """Does a CUDA session of ``path`` keep the CUDA EP? If its libraries fail to load, try once more
    after ``onnxruntime.preload_dlls()`` (CUDA/cuDNN from the nvidia-* wheels of the Python install)."""
    import onnxruntime as ort

    def opens() -> bool:
        return CUDA_EP in ort.InferenceSession(str(path), providers=[CUDA_EP, CPU_EP]).get_providers()

    try:
        if opens():
            return {"ok": True}
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
            return {"ok": opens(), "preload_dlls": True}
        return {"ok": False}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": error_text(exc)}


class DeviceStateStream:
    """A planned session's bound runner, the new states copied into the state inputs' buffers on
    the device after each call: only the frame goes in and the pulse comes out through the host."""

    def __init__(self, planned, device: str) -> None:
        runner = planned.runner
        if runner is None:
            raise RuntimeError("the session has no bound runner (no CUDA graph planned)")
        stream = OrtStream(planned)
        self.state_names = stream.state_names
        self.frames = stream.frames
        self.runner = runner
        self.session = planned
        self.pairs = []
        for state, out in zip(stream.state_names, stream.output_names[1:]):
            dst, src = runner.input_values[state], runner.output_values[out]
            nbytes = int(np.prod(dst.shape())) * 4
            if dst.shape() != src.shape():
                raise RuntimeError(f"{out} {src.shape()} does not fit {state} {dst.shape()}")
            self.pairs.append((dst, src, nbytes))
        self.frame_value = runner.input_values["input"]
        self.pulse = runner.output_values[stream.output_names[0]]
        runner.input_values["dt"].update_inplace(DT.copy())
        if device == "cuda":
            import cupy

            rt = cupy.cuda.runtime
            kind = rt.memcpyDeviceToDevice

            ptrs = [(dst.data_ptr(), src.data_ptr(), nbytes) for dst, src, nbytes in self.pairs]

            def copy_states() -> None:
                # ORT's run has synchronized its own stream; the copies go on the legacy default stream, which
                # ORT's (non-blocking) stream does not wait for: wait here before the next replay.
                for dst, src, nbytes in ptrs:
                    rt.memcpyAsync(dst, src, nbytes, kind, 0)
                rt.streamSynchronize(0)

            self.cupy_version = cupy.__version__
        else:
            def copy_states() -> None:
                for dst, src, _ in self.pairs:
                    dst.update_inplace(src.numpy())

            self.cupy_version = None
        self.copy_states = copy_states
        self.reset()

    def reset(self, initial: dict | None = None) -> None:
        for (dst, _, _), name in zip(self.pairs, self.state_names):
            start = (initial or {}).get(name)
            shape = dst.shape()
            dst.update_inplace(np.ascontiguousarray(np.array(start, np.float32).reshape(shape)) if start is not None
                               else np.zeros(shape, np.float32))
        self.count = 0

    def step(self) -> np.ndarray:
        self.frame_value.update_inplace(self.frames[self.count % len(self.frames)])
        self.count += 1
        self.session.run_with_iobinding(self.runner.binding)
        self.copy_states()
        return self.pulse.numpy()


class SessionStream:
    """``onnxfit.session(...).stream()``: the states stay in device buffers between calls (two
    captured graphs that ping-pong them), only the frame in and the pulse out cross the host."""

    def __init__(self, planned, batch: int = 1) -> None:
        probe = OrtStream(planned, batch=batch)
        self.frames, self.state_names = probe.frames, probe.state_names
        self.runner = planned.stream()
        self.pulse_name = probe.output_names[0]
        self.count = 0

    def reset(self, initial: dict | None = None) -> None:
        self.runner.reset({k: np.asarray(v, np.float32) for k, v in (initial or {}).items()})
        self.count = 0

    def step(self) -> np.ndarray:
        frame = self.frames[self.count % len(self.frames)]
        self.count += 1
        return self.runner.run({"input": frame, "dt": DT})[self.pulse_name]


def plan_summary(plan) -> dict:
    placement = plan.placement or {}
    return {"model": plan.model, "cuda_graph": plan.cuda_graph, "providers": plan.providers,
            "provider_options": plan.provider_options, "reasons": plan.reasons, "prepared": plan.prepared,
            "placement": {"source": placement.get("source"), "nodes": placement.get("nodes"),
                          "on_cpu": len(placement.get("on_cpu", [])), "on_cpu_first": placement.get("on_cpu", [])[:5],
                          "device_copies": len(placement.get("device_copies", [])),
                          "control_flow": len(placement.get("control_flow", []))} if placement else None}


def batched_shapes(path: Path, batch: int) -> dict[str, list[int]]:
    """Every input of the batched copy at ``batch``: symbolic dims take it; a fixed batch of the
    frame input that differs is an error (the copy was not made dynamic)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if value.name == "input" and dims and dims[0] is not None and dims[0] != batch:
            raise ValueError(f"{path.name}: input 'input' has a fixed batch of {dims[0]}, not a dynamic one")
        shapes[value.name] = [batch if d is None else d for d in dims]
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, default=ORIGINAL)
    parser.add_argument("--optimized", type=Path, default=None,
                        help="the model `onnxfit optimize --target cuda` wrote (default: written here with the API)")
    parser.add_argument("--batched", type=Path, default=None,
                        help="a copy from `onnxfit optimize --target cuda --dynamic-batch --batch-axis dt=none`")
    parser.add_argument("--jax-dir", type=Path, default=ROOT / ".gpu" / "jax",
                        help="FacePhys_model.py and FacePhys.weights.h5 (../shared/gpu/prepare_facephys_jax.sh)")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cpu: CPU EP, CPU JAX, 1 thread, few frames: checks the script on any machine")
    parser.add_argument("--rounds", type=int, default=None, help="default 10 (cuda), 3 (cpu)")
    parser.add_argument("--frames", type=int, default=None, help="timed calls per runner per round; default 25 (cuda), 10 (cpu)")
    parser.add_argument("--warmup", type=int, default=None, help="default 30 (cuda), 5 (cpu)")
    parser.add_argument("--batches", default="1,8,16,32")
    parser.add_argument("--budget-s", type=float, default=360.0,
                        help="timing rounds stop (after at least 2) once the run is this old; the JSON says so")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "reports" / "_work")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    rounds = args.rounds or (10 if cuda else 3)
    frames_per_round = args.frames or (25 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (30 if cuda else 5)
    start = time.perf_counter()
    deadline = start + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / "facephys_gpu.json"

    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    result: dict = {
        "command": "python3 reports/facephys_gpu.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device_mode": args.device,
        "onnxruntime": ort.__version__, "onnxruntime_package": _ort_package(),
        "available_providers": ort.get_available_providers(),
        "gpu": gpu_name() if cuda else {"name": None, "note": "--device cpu: no GPU used"},
        "cpu": cpu_info(), "numpy": np.__version__, "git": git_state(),
        "settings": {"rounds": rounds, "frames_per_round": frames_per_round, "warmup": warmup,
                     "budget_s": args.budget_s, "parity_frames": PARITY_FRAMES},
        "models": {"original": str(args.original)}, "errors": {},
    }

    def save() -> None:
        result["elapsed_s"] = round(time.perf_counter() - start, 1)
        out_file.write_text(json.dumps(result, indent=1, default=str) + "\n")

    def attempt(key: str, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as exc:  # noqa: BLE001 - every failure is a result, not a crash
            result["errors"][key] = error_text(exc)
            log(f"{key}: {result['errors'][key]}")
            if os.environ.get("FACEPHYS_TRACEBACK"):
                traceback.print_exc()
            return None

    def opened(key: str, fn, *a, **kw):
        """``attempt``, timed: what opening a session (or a runner) costs a process once."""
        t0 = time.perf_counter()
        value = attempt(key, fn, *a, **kw)
        if value is not None:
            result.setdefault("open_s", {})[key] = round(time.perf_counter() - t0, 2)
        return value

    if cuda and CUDA_EP not in ort.get_available_providers():
        result["errors"]["cuda_ep"] = (f"onnxruntime {ort.__version__} has no {CUDA_EP} (providers: "
                                       f"{', '.join(ort.get_available_providers())}); is onnxruntime-gpu first on PYTHONPATH?")
    elif cuda:
        probe = probe_cuda(args.original)
        result["cuda_probe"] = probe
        if not probe["ok"]:
            result["errors"]["cuda_ep"] = (f"{CUDA_EP} is listed but a session drops it at creation (its libraries "
                                           f"do not load: see the log)" + (", also after onnxruntime.preload_dlls()"
                                                                           if probe.get("preload_dlls") else ""))
    providers = [CUDA_EP, CPU_EP] if cuda else [CPU_EP]
    target = "cuda" if cuda else "cpu"
    work = Path(tempfile.mkdtemp(prefix="facephys-gpu-"))
    cache = work / "cache"
    one_thread = None if cuda else ort_options(threads=1)  # keep the CPU check modest

    # -- the optimized model: given, or written here as `optimize --target cuda` would
    optimized = args.optimized
    if optimized is None:
        import onnxfit

        optimized = work / "facephys_cuda.onnx"
        attempt("optimize", onnxfit.optimize, args.original, optimized, target="cuda")
        result["models"]["optimized_written_by"] = f"onnxfit.optimize(original, {optimized.name!r}, target='cuda')"
    result["models"]["optimized"] = str(optimized)
    result["models"]["batched"] = str(args.batched) if args.batched else None
    for label, path in (("original", args.original), ("optimized", optimized), ("batched", args.batched)):
        if path is not None and not Path(path).is_file():
            result["errors"][f"model_{label}"] = f"{path}: no such file"
    save()

    # -- node counts after ORT's optimizations (level ALL), on the EP the timings use
    log("node counts")
    result["node_counts"] = {}
    if not (cuda and "cuda_ep" in result["errors"]):
        for label, path in (("original", args.original), ("optimized", optimized)):
            counts = attempt(f"node_counts_{label}", ort_node_counts, path, providers)
            if counts and cuda and CUDA_EP not in counts.get("session_providers", []):
                result["errors"][f"node_counts_{label}"] = f"{CUDA_EP} dropped at creation: counts are the CPU EP's"
                counts["error"] = result["errors"][f"node_counts_{label}"]
            if counts:
                result["node_counts"][label] = counts
    save()

    # -- the runners
    log("opening sessions")
    streams: dict = {}
    ep_ok = not (cuda and "cuda_ep" in result["errors"])
    if ep_ok:
        for label, path in (("plain_original", args.original), ("plain_optimized", optimized)):
            session = opened(label, ort.InferenceSession, str(path), one_thread, providers=providers)
            if session is not None and cuda and CUDA_EP not in session.get_providers():
                result["errors"][label] = f"{CUDA_EP} dropped at creation (providers: {session.get_providers()})"
                session = None
            if session is not None:
                streams[label] = OrtStream(session)
                result.setdefault("sessions", {})[label] = {"providers": session.get_providers()}
    import onnxfit
    from onnxfit.app.session import plan_session

    # What the plan would be on a machine with the CUDA EP (estimated where this one lacks it).
    estimate = attempt("plan_estimate", plan_session, args.original, "cuda", [CUDA_EP, CPU_EP])
    if estimate is not None:
        result["plan_for_cuda_machine"] = plan_summary(estimate)
    planned = None
    if ep_ok:
        # A cold cache: the call prepares the model (optimize), plans, opens and captures the graph.
        planned = opened("onnxfit_session", onnxfit.session, args.original, target=target, cache_dir=cache,
                         session_options=one_thread)
    if planned is not None:
        if not cuda:  # exercise the bound-runner path as the CUDA graph uses it, on CPU buffers
            from onnxfit.app.cuda_graph import BoundRunner

            probe = OrtStream(planned)
            outputs = planned.run(None, {**probe.feeds, "input": probe.frames[0]})
            planned.runner = BoundRunner(planned, {o.name: v.shape for o, v in zip(planned.get_outputs(), outputs)},
                                         device="cpu")
        result["plan"] = plan_summary(planned.plan)
        result.setdefault("sessions", {})["onnxfit_session"] = {
            "providers": planned.get_providers(), "cuda_graph": planned.plan.cuda_graph,
            "bound_runner": planned.runner is not None, "call": "onnxfit.session(original, target=%r)" % target}
        streams["onnxfit_session"] = OrtStream(planned)
        stream = opened("onnxfit_session_stream", SessionStream, planned)
        if stream is not None:
            streams["onnxfit_session_stream"] = stream
            result["sessions"]["onnxfit_session_stream"] = {"call": "onnxfit.session(original, target=%r).stream()"
                                                            % target, "carried": len(stream.runner.carry)}
        # The same call again: a cache hit, what every later process pays.
        second = opened("onnxfit_session_device_states", onnxfit.session, args.original, target=target,
                        cache_dir=cache, session_options=one_thread)
        if second is not None:
            if not cuda:
                from onnxfit.app.cuda_graph import BoundRunner

                second.runner = BoundRunner(second, {b.name: b.shape for b in planned.runner.outputs}, device="cpu")
            stream = attempt("onnxfit_session_device_states", DeviceStateStream, second, args.device)
            if stream is not None:
                streams["onnxfit_session_device_states"] = stream
                result["sessions"]["onnxfit_session_device_states"] = {"cupy": stream.cupy_version,
                                                                         "copies": "cudaMemcpyAsync D2D, one sync" if cuda else "numpy"}
    save()

    # -- JAX
    jax_fp = None
    if args.no_jax:
        result["jax"] = {"error": "--no-jax"}
    else:
        log("JAX")
        try:
            sys.path.insert(0, str(ROOT / "reports"))
            if not cuda:
                os.environ.setdefault("JAX_PLATFORMS", "cpu")
            from facephys_jax import JaxFacePhys, JaxStream

            t0 = time.perf_counter()
            jax_fp = JaxFacePhys(str(args.jax_dir))
            result["jax"] = {"jax": jax_fp.jax.__version__, "jaxlib": _version("jaxlib"), "keras": jax_fp.keras_version,
                             "device": jax_fp.device(), "build_s": round(time.perf_counter() - t0, 1)}
            if cuda and "cuda" not in jax_fp.device().lower() and "gpu" not in jax_fp.device().lower():
                result["jax"]["warning"] = f"JAX runs on {jax_fp.device()}, not the GPU"
            frames = next((s.frames for s in streams.values()), None)
            if frames is None:
                rng = np.random.default_rng(0)
                frames = [rng.random((1, 1, 36, 36, 3), dtype=np.float32) for _ in range(16)]
            shapes = jax_fp.leaf_shapes()
            result["jax"]["state_leaves"] = len(shapes)
            t0 = time.perf_counter()
            streams["jax"] = JaxStream(jax_fp, frames)
            streams["jax"].step()
            streams["jax"].reset()
            result["jax"]["first_call_s"] = round(time.perf_counter() - t0, 1)
            streams["jax_host_states"] = JaxStream(jax_fp, frames, host_states=True)
        except Exception as exc:  # noqa: BLE001
            result["jax"] = {**result.get("jax", {}), "error": error_text(exc)}
            log(f"jax: {result['jax']['error']}")
            streams.pop("jax", None)
            streams.pop("jax_host_states", None)
    save()

    # -- parity: the pulse over PARITY_FRAMES frames from one state
    log("parity")
    initial = jax_fp.onnx_states() if jax_fp is not None else None
    result["parity"] = parity(streams, initial)
    save()

    # -- batch-1 latency, interleaved
    log(f"timing {', '.join(streams)}: {rounds} rounds x {frames_per_round} calls")
    result["latency"] = interleave({name: s.step for name, s in streams.items()}, rounds, frames_per_round,
                                   warmup=warmup, deadline=deadline, log=log)
    result["latency_order"] = list(streams)
    lat = {k: v["median_ms"] for k, v in result["latency"].items() if "median_ms" in v}
    result["ratios"] = {f"{a}_over_{b}": round(lat[a] / lat[b], 2)
                        for a, b in (("plain_original", "onnxfit_session"), ("plain_optimized", "onnxfit_session"),
                                     ("plain_original", "plain_optimized"), ("onnxfit_session", "jax"),
                                     ("onnxfit_session_device_states", "jax"), ("onnxfit_session_stream", "jax"),
                                     ("plain_original", "jax"), ("onnxfit_session", "onnxfit_session_stream"),
                                     ("onnxfit_session", "onnxfit_session_device_states"))
                        if a in lat and b in lat}
    save()
    streams.clear()  # the batch-1 sessions go before the batched ones open
    planned = second = None
    import gc

    gc.collect()

    # -- stream-frames/s at several batches under the planned session
    if args.batched is not None:
        log("batched")
        result["batched"] = batched(args, target, cache, one_thread, deadline + 120, rounds, frames_per_round, warmup,
                                    ep_ok)
        save()

    save()
    text = json.dumps(result, indent=1, default=str)
    print(text)
    log(f"wrote {out_file} in {result['elapsed_s']} s")


def batched(args, target: str, cache: Path, session_options, deadline: float, rounds: int, frames_per_round: int,
            warmup: int, ep_ok: bool) -> dict:
    import onnxfit

    entry: dict = {"model": str(args.batched), "sessions": {}}
    if not ep_ok:
        entry["error"] = "no CUDA EP"
        return entry
    steps, batch_of = {}, {}
    for b in [int(x) for x in args.batches.split(",") if x.strip()]:
        label = f"batch_{b}"
        try:
            shapes = batched_shapes(args.batched, b)
            planned = onnxfit.session(args.batched, target=target, input_shapes=shapes, cache_dir=cache,
                                      session_options=session_options)
            stream = OrtStream(planned, batch=b)
            stream.step()
            steps[label], batch_of[label] = stream.step, b
            entry["sessions"][label] = {"cuda_graph": planned.plan.cuda_graph, "input_shape": shapes.get("input"),
                                        "reasons": [r for r in planned.plan.reasons if "cuda_graph" in r][:2]}
            carried = SessionStream(planned, batch=b)  # the same session, states kept on the device
            carried.step()
            steps[f"stream_{label}"], batch_of[f"stream_{label}"] = carried.step, b
        except Exception as exc:  # noqa: BLE001
            entry["sessions"][label] = {"error": error_text(exc)}
    entry["latency"] = interleave(steps, max(3, rounds // 2), frames_per_round, warmup=min(warmup, 10),
                                  batches=batch_of, deadline=deadline, log=log)
    for label, value in entry["latency"].items():
        one = entry["latency"].get("stream_batch_1" if label.startswith("stream_") else "batch_1", {}).get("median_ms")
        if one and "median_ms" in value:
            value["stream_frames_per_s_vs_batch_1"] = round(batch_of[label] * one / value["median_ms"], 2)
    return entry


def parity(streams: dict, initial: dict | None) -> dict:
    pulses = {}
    for name, stream in streams.items():
        try:
            if name.startswith("jax"):
                stream.reset()  # JAX starts from its own learned state, which is `initial`
            else:
                stream.reset(initial)
            pulses[name] = np.array([np.asarray(stream.step()).reshape(-1)[0] for _ in range(PARITY_FRAMES)], np.float64)
        except Exception as exc:  # noqa: BLE001
            pulses[name] = error_text(exc)
        finally:
            try:
                stream.reset() if name.startswith("jax") else stream.reset(initial)
            except Exception:  # noqa: BLE001
                pass
    reference = "plain_original" if isinstance(pulses.get("plain_original"), np.ndarray) else next(
        (k for k, v in pulses.items() if isinstance(v, np.ndarray)), None)
    result: dict = {"frames": PARITY_FRAMES, "reference": reference,
                    "initial_state": "JAX model's learned initial state" if initial else "zeros"}
    for name, values in pulses.items():
        if isinstance(values, str):
            result[name] = {"error": values}
        elif reference is not None:
            ref = pulses[reference]
            diff = np.abs(values - ref)
            result[name] = {"max_abs": float(diff.max()), "first_frames": [round(float(v), 6) for v in values[:3]]}
    return result


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def _ort_package() -> dict:
    import onnxruntime as ort

    return {"path": str(Path(ort.__file__).parent), "onnxruntime-gpu": _version("onnxruntime-gpu"),
            "onnxruntime": _version("onnxruntime")}


if __name__ == "__main__":
    main()
