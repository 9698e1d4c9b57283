"""Sessions on a GPU: a plain CUDA session vs the one `onnxfit.session()` plans, at batch 1.

    python reports/sessions_gpu.py pack                    # any machine: zoo detector -> build/sessions-gpu/
    python reports/sessions_gpu.py measure --models build/sessions-gpu --out reports
                                                           # where onnxruntime has the CUDA EP
    python reports/sessions_gpu.py measure --dry-run --out /tmp/sessions   # any machine: CPU EP, few runs
    python reports/sessions_gpu.py render reports/sessions.json            # SESSIONS.md again from the figures

Models: `ssm_head`, a fragmented state-space/recurrent head built here (110 steps of MatMul, Add,
Sigmoid, Tanh, Mul, Add on [1, 64]: 660 nodes); `ssm_head_exported`, the same with a symbolic batch
and an exporter's Reshape to [Shape(h)[0], -1] every other step (shape math ORT places on the CPU),
prepared with `input_shapes`; `upsample_head`, a ConvTranspose with asymmetric pads (no CUDA kernel)
between CUDA nodes; the scrfd_like sample (weights/) and the YOLOv8n detector of the zoo.

For each model, in one process:
1. What ORT accepts: a raw session with `enable_cuda_graph=1` on the model as published and as
   prepared (created or refused, and whether replays at fixed shapes match a plain session), next
   to the plan's prediction (placement, device copies).
2. Latency at batch 1 (median ms over >= 1 s): the plain session (CUDA EP defaults) fed numpy, the
   same with inputs and outputs bound on the device (IOBinding), and the planned session bound on
   the device (its runner) and fed numpy (`session.run`).
3. Parity: planned vs plain CUDA outputs on the same inputs, planned vs ORT CPU, and
   `verify(prepared, reference=published, runtimes=["ort-cpu", "ort-cuda"], target="cuda")`, which
   adds the planned session (`planned-cuda`, CUDA graph included) to its parity check.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
ZOO = {"yolov8n_nudenet": {"images": (1, 3, 320, 320)}}
WIDTH, STEPS = 64, 110


# ------------------------------------------------------------------------------------ models


def _weight(name: str, shape, rng) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)


def ssm_head(exported: bool = False) -> onnx.ModelProto:
    """STEPS recurrent steps h = h + sigmoid(a) * tanh(a), a = h @ W + b; with ``exported``, a
    symbolic batch and an exporter's Reshape through Shape -> Gather -> Unsqueeze -> Concat."""
    rng = np.random.default_rng(0)
    batch = "N" if exported else 1
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")] if exported else []
    nodes, h = [], "x"
    for i in range(STEPS):
        inits += [_weight(f"w{i}", [WIDTH, WIDTH], rng), _weight(f"b{i}", [WIDTH], rng)]
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Sigmoid", [f"a{i}"], [f"g{i}"]),
            helper.make_node("Tanh", [f"a{i}"], [f"t{i}"]),
            helper.make_node("Mul", [f"g{i}", f"t{i}"], [f"u{i}"]),
            helper.make_node("Add", [h, f"u{i}"], [f"h{i}"]),
        ]
        h = f"h{i}"
        if exported and i % 2 == 0:
            nodes += [
                helper.make_node("Shape", [h], [f"s{i}"]),
                helper.make_node("Gather", [f"s{i}", "zero"], [f"n{i}"], axis=0),
                helper.make_node("Unsqueeze", [f"n{i}", "axes0"], [f"n1_{i}"]),
                helper.make_node("Concat", [f"n1_{i}", "minus_one"], [f"shape{i}"], axis=0),
                helper.make_node("Reshape", [h, f"shape{i}"], [f"r{i}"]),
            ]
            h = f"r{i}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    graph = helper.make_graph(nodes, "ssm_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, WIDTH])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def upsample_head() -> onnx.ModelProto:
    """Conv -> ConvTranspose with asymmetric pads (the CUDA EP has no kernel for that) -> Conv."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("ConvTranspose", ["r0", "wt"], ["u"], strides=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("Conv", ["u", "w1"], ["y"], pads=[1, 1, 1, 1])]
    inits = [_weight("w0", [16, 8, 3, 3], rng), _weight("wt", [16, 16, 3, 3], rng), _weight("w1", [4, 16, 3, 3], rng)]
    graph = helper.make_graph(nodes, "upsample_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def models(zoo_dir: Path | None, work: Path) -> dict[str, tuple[Path, dict]]:
    """name -> (published model, input shapes to prepare with)."""
    found = {}
    for name, proto, shapes in (("ssm_head", ssm_head(), {}), ("ssm_head_exported", ssm_head(True), {"x": (1, WIDTH)}),
                                ("upsample_head", upsample_head(), {})):
        onnx.save(proto, work / f"{name}.onnx")
        found[name] = (work / f"{name}.onnx", shapes)
    found["scrfd_like"] = (ROOT / "weights" / "scrfd_like.onnx", {})
    for name, shapes in ZOO.items():
        if zoo_dir is not None and (zoo_dir / f"{name}.onnx").is_file():
            found[name] = (zoo_dir / f"{name}.onnx", shapes)
    return found


def pack(dest: Path) -> None:
    from tests.zoo.fetch import fetch
    from tests.zoo.manifest import by_name

    dest.mkdir(parents=True, exist_ok=True)
    paths = fetch([by_name(name) for name in ZOO])
    for name in ZOO:
        shutil.copyfile(paths[name], dest / f"{name}.onnx")
    print(f"copied {', '.join(ZOO)} into {dest}")


# ------------------------------------------------------------------------------- measuring


def latency(step, seconds: float, min_runs: int = 20) -> dict:
    for _ in range(5):
        step()
    times: list[float] = []
    start = time.perf_counter()
    while (time.perf_counter() - start < seconds or len(times) < min_runs) and len(times) < 20000:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "runs": len(times)}


def feeds_for(session, shapes: dict, seed: int) -> dict[str, np.ndarray]:
    from onnxfit.app.cuda_graph import buffer_specs

    rng = np.random.default_rng(seed)
    return {b.name: rng.random(b.shape).astype(b.dtype) for b in buffer_specs(session.get_inputs(), shapes)}


def compare(actual: dict, expected: dict) -> dict:
    from onnxfit.verification.parity import compare_outputs

    results = [r.to_dict() for r in compare_outputs(actual, expected)]
    return {"ok": all(r["ok"] for r in results), "max_abs": max(r["max_abs"] or 0.0 for r in results),
            "max_rel": max(r["max_rel"] or 0.0 for r in results)}


def raw_capture(path: Path, shapes: dict, output_shapes: dict, ep: str, device: str, reference: dict,
                feeds: dict) -> dict:
    """A session with enable_cuda_graph=1 made by hand: does ORT create it, do replays match?"""
    import onnxruntime as ort

    from onnxfit.app.cuda_graph import BoundRunner

    options = {"enable_cuda_graph": "1"} if ep == CUDA_EP else {}
    try:
        session = ort.InferenceSession(str(path), providers=[(ep, options), CPU_EP], enable_fallback=0)
    except Exception as exc:  # noqa: BLE001 - ORT's refusal is the finding
        return {"created": False, "error": " ".join(str(exc).split())[:300]}
    entry = {"created": True, "providers": session.get_providers()}
    try:
        runner = BoundRunner(session, output_shapes, shapes, device=device)
        entry["replay_vs_plain"] = compare(runner.run(feeds), reference)
    except Exception as exc:  # noqa: BLE001
        entry["replay_error"] = " ".join(str(exc).split())[:300]
    return entry


def measure_model(name: str, path: Path, shapes: dict, ep: str, device: str, target: str, seconds: float,
                  cache: Path) -> dict:
    import onnxruntime as ort

    import onnxfit
    from onnxfit.app.cuda_graph import BoundRunner
    from onnxfit.app.session import plan_session
    from onnxfit import verify

    entry: dict = {"model": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name,
                   "input_shapes": {k: list(v) for k, v in shapes.items()}}
    planned = onnxfit.session(path, target=target, input_shapes=shapes or None, cache_dir=cache)
    plan = planned.plan
    entry["plan"] = {k: plan.to_dict()[k] for k in ("providers", "provider_options", "cuda_graph", "reasons", "prepared")}
    published_plan = plan_session(path, target)
    entry["published_plan"] = {"cuda_graph": published_plan.cuda_graph, "reasons": published_plan.reasons,
                               "placement": published_plan.placement}
    entry["prepared_placement"] = plan.placement
    fixed = {i.name: tuple(d for d in plan.input_shapes[i.name]) for i in planned.get_inputs()}

    plain = ort.InferenceSession(str(path), providers=list(dict.fromkeys([ep, CPU_EP])))
    feeds = feeds_for(plain, fixed, seed=1)
    names = [o.name for o in plain.get_outputs()]
    reference = dict(zip(names, plain.run(None, feeds)))
    outputs = {name: value.shape for name, value in reference.items()}  # buffers for the plain session too
    cpu = ort.InferenceSession(str(path), providers=[CPU_EP])
    on_cpu = dict(zip(names, cpu.run(None, feeds)))

    entry["capture"] = {
        "published": raw_capture(path, fixed, outputs, ep, device, reference, feeds),
        "prepared": raw_capture(Path(plan.model), fixed, outputs, ep, device, reference, feeds),
    }
    runs = {"plain, numpy feeds": lambda: plain.run(None, feeds)}
    plain_bound = BoundRunner(plain, outputs, fixed, device=device)
    plain_bound.write(feeds)
    runs["plain, bound on device"] = plain_bound.run_on_device
    planned_bound = planned.runner or BoundRunner(planned, outputs, fixed, device=device)
    planned_bound.write(feeds)
    runs["planned, bound on device"] = planned_bound.run_on_device
    runs["planned, numpy feeds (session.run)"] = lambda: planned.run(None, feeds)
    entry["latency"] = {label: latency(step, seconds) for label, step in runs.items()}

    planned_out = dict(zip(names, planned.run(None, feeds)))
    entry["parity"] = {"planned vs plain": compare(planned_out, reference),
                       "planned vs CPU": compare(planned_out, on_cpu),
                       "plain vs CPU": compare(reference, on_cpu)}
    runtimes = ["ort-cpu", "ort-cuda"] if ep == CUDA_EP else ["ort-cpu"]
    report = verify(plan.model, reference=path, runtimes=runtimes, target=target).to_dict()
    entry["verify"] = {"ok": report["ok"], "runtimes": report["runtimes"],
                       "checks": [{"name": c["name"], "ok": c["ok"], "summary": c["summary"]} for c in report["checks"]]}
    parity = next(c for c in report["checks"] if c["name"] == "parity")
    entry["verify"]["comparisons"] = [
        {"label": c["label"], "ok": c["ok"], "max_abs": max((o.get("max_abs") or 0.0) for o in c["outputs"]) if c["outputs"] else None,
         "error": c.get("error")} for c in parity["details"]["comparisons"]]
    return entry


def measure(zoo_dir: Path | None, out: Path, dry_run: bool) -> dict:
    import onnxruntime as ort

    if not dry_run and CUDA_EP not in ort.get_available_providers():
        raise SystemExit(f"this onnxruntime ({ort.__version__}) has no {CUDA_EP}; use --dry-run to check the script")
    ep, device, target, seconds = (CPU_EP, "cpu", "cpu", 0.2) if dry_run else (CUDA_EP, "cuda", "cuda", 1.0)
    ort.set_default_logger_severity(3)  # ORT's placement warnings would bury the figures in the log
    smi = shutil.which("nvidia-smi")
    gpu = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                         text=True, check=False).stdout.strip() if smi else "no GPU"
    result = {"onnxruntime": ort.__version__, "gpu": gpu, "python": platform.python_version(), "ep": ep,
              "dry_run": dry_run, "models": {}}
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sessions-gpu-"))
    for name, (path, shapes) in models(zoo_dir, work).items():
        try:
            result["models"][name] = measure_model(name, path, shapes, ep, device, target, seconds, work / "cache")
        except Exception as exc:  # noqa: BLE001 - one model's failure is reported, the others still run
            result["models"][name] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"}
        print(name, json.dumps(result["models"][name].get("latency") or result["models"][name])[:600], flush=True)
        (out / "sessions.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "SESSIONS.md").write_text(render(result))
    return result


# ---------------------------------------------------------------------------------- render


def _capture_text(entry: dict) -> str:
    if not entry.get("created"):
        return f"refused: {entry.get('error', '')[:160]}"
    if "replay_error" in entry:
        return f"created; replay failed: {entry['replay_error'][:120]}"
    parity = entry["replay_vs_plain"]
    return f"created; replays {'match' if parity['ok'] else 'DIFFER from'} plain (max abs {parity['max_abs']:.2g})"


def render(result: dict) -> str:
    lines = [
        "# Sessions: plain CUDA vs `onnxfit.session()` at batch 1",
        "",
        f"Measured by `reports/sessions_gpu.py measure` with onnxruntime {result['onnxruntime']} "
        f"({result['ep']}) on {result['gpu']}, Python {result['python']}; one run, so compare within a row."
        + (" **Dry run on the CPU EP: the figures say nothing about a GPU.**" if result["dry_run"] else ""),
        "",
        "## Latency (median ms per run, batch 1)",
        "",
        "| model | nodes | plain, numpy | plain, bound | planned, bound | planned, numpy | bound: plain / planned | CUDA graph |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in result["models"].items():
        if "error" in m:
            lines.append(f"| {name} | | {m['error'][:200]} | | | | | |")
            continue
        lat = {k: v["median_ms"] for k, v in m["latency"].items()}
        nodes = (m.get("prepared_placement") or {}).get("nodes", "")
        ratio = lat["plain, bound on device"] / lat["planned, bound on device"]
        lines.append(
            f"| {name} | {nodes} | {lat['plain, numpy feeds']:.3f} | {lat['plain, bound on device']:.3f} | "
            f"{lat['planned, bound on device']:.3f} | {lat['planned, numpy feeds (session.run)']:.3f} | {ratio:.2f}x | "
            f"{'yes' if m['plan']['cuda_graph'] else 'no'} |")
    lines += [
        "",
        "Plain: `InferenceSession(model, providers=[CUDA, CPU])` on the model as published. Planned: "
        "`onnxfit.session(model, target=\"cuda\", input_shapes=...)` (prepared through the cache; `enable_cuda_graph` "
        "when the plan finds the model eligible). Bound: inputs and outputs in device buffers allocated once "
        "(IOBinding); numpy: host arrays in and out, as `session.run` takes them.",
        "",
        "## What ONNX Runtime captures (`enable_cuda_graph=1` on a session made by hand)",
        "",
        "| model | published: placement (real) | published: ORT | prepared: ORT | plan for the prepared model |",
        "|---|---|---|---|---|",
    ]
    for name, m in result["models"].items():
        if "error" in m:
            continue
        p = m["published_plan"]["placement"] or {}
        placed = (f"{p.get('nodes', 0) - len(p.get('on_cpu', []))}/{p.get('nodes', 0)} on CUDA, "
                  f"{len(p.get('device_copies', []))} device copies ({p.get('source', '-')})") if p else "-"
        reason = "; ".join(r for r in m["plan"]["reasons"] if "cuda_graph" in r)[:220]
        lines.append(f"| {name} | {placed} | {_capture_text(m['capture']['published'])} | "
                     f"{_capture_text(m['capture']['prepared'])} | {reason} |")
    lines += [
        "",
        "## Parity",
        "",
        "| model | planned vs plain (max abs) | planned vs CPU (max abs / rel) | plain vs CPU (max abs) | "
        "`verify --target cuda` |",
        "|---|---:|---:|---:|---|",
    ]
    for name, m in result["models"].items():
        if "error" in m:
            continue
        par = m["parity"]
        checks = ", ".join(f"{c['name']} {'ok' if c['ok'] else 'FAIL'}" for c in m["verify"]["checks"])
        planned = next((c for c in m["verify"]["comparisons"] if c["label"].startswith("planned-")), None)
        if planned is not None:
            checks += f"; planned-cuda vs reference max abs {planned['max_abs']:.2g}" if planned["max_abs"] is not None \
                else f"; planned-cuda: {planned['error']}"
        lines.append(f"| {name} | {par['planned vs plain']['max_abs']:.2g} | {par['planned vs CPU']['max_abs']:.2g} / "
                     f"{par['planned vs CPU']['max_rel']:.2g} | {par['plain vs CPU']['max_abs']:.2g} | {checks} |")
    lines += ["", *_findings(result), "", "Full figures, reasons and placements: `reports/sessions.json`.", ""]
    return "\n".join(lines)


def _findings(result: dict) -> list[str]:
    """What the tables say about ORT's capture rule and about parity, in sentences."""
    ok = {n: m for n, m in result["models"].items() if "error" not in m}
    created = [n for n, m in ok.items() if m["capture"]["published"].get("created")]
    refused = [n for n, m in ok.items() if not m["capture"]["published"].get("created")]
    with_cpu = [f"{n} ({len(m['published_plan']['placement']['on_cpu'])} nodes on the CPU)" for n, m in ok.items()
                if n in created and (m["published_plan"]["placement"] or {}).get("on_cpu")]
    predicted = all(bool((m["published_plan"]["placement"] or {}).get("device_copies")) == (n in refused)
                    for n, m in ok.items())
    captured = [n for n, m in ok.items() if m["plan"]["cuda_graph"]]
    identical = all(m["parity"]["planned vs plain"]["max_abs"] == 0 for n, m in ok.items() if n in captured)
    cpu_gap = [n for n, m in ok.items() if not m["parity"]["plain vs CPU"]["ok"]]
    lines = ["## Findings", ""]
    lines.append(
        f"- ORT created a session with `enable_cuda_graph=1` for {', '.join(created) or 'no model'} and refused "
        f"{', '.join(refused) or 'none'}. Nodes on the CPU do not stop a capture: "
        f"{', '.join(with_cpu) or 'no model here had any'} was captured, its shape math on host tensors; what stops "
        f"it is a device copy (a Memcpy node). The plan's device-copy count "
        f"{'predicted every outcome' if predicted else 'missed some outcomes'}.")
    lines.append(
        "- A model with symbolic input dims is created too, but a replay is of one set of launches: the plan turns "
        "the graph on only for fixed shapes (`input_shapes`), and its runner binds buffers of those shapes.")
    lines.append(
        f"- Where a graph was captured, the planned session's outputs are "
        f"{'identical to' if identical else 'NOT identical to'} the plain CUDA session's (max abs 0)."
        + (f" Against ORT CPU, {', '.join(cpu_gap)} differs beyond verify's fp32 default tolerance in the plain "
           "CUDA session as much as in the planned one: the CUDA kernels' arithmetic (ORT allows TF32 by default), "
           "not the graph." if cpu_gap else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pack").add_argument("--dest", type=Path, default=ROOT / "build" / "sessions-gpu")
    again = sub.add_parser("render", help="rewrite SESSIONS.md from a sessions.json")
    again.add_argument("json", type=Path)
    again.add_argument("--out", type=Path, default=ROOT / "reports")
    run = sub.add_parser("measure")
    run.add_argument("--models", type=Path, default=None, help="folder with the packed zoo models")
    run.add_argument("--out", type=Path, default=ROOT / "reports")
    run.add_argument("--dry-run", action="store_true", help="CPU EP, short runs: check the script anywhere")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.dest)
    elif args.command == "render":
        (args.out / "SESSIONS.md").write_text(render(json.loads(args.json.read_text())))
    else:
        measure(args.models, args.out, args.dry_run)


if __name__ == "__main__":
    main()
