"""reports/FACEPHYS.md from reports/facephys_cpu.json and, where present, reports/facephys_gpu.json
and reports/facephys_partitions.json.

    python reports/facephys_report.py [--cpu reports/facephys_cpu.json] [--gpu reports/facephys_gpu.json]

Every figure is printed with the machine it came from, the onnxruntime version and the command
that produced it; compare figures only within one table (one process, one machine).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"

CPU_LABELS = {
    "ort_original": "ONNX Runtime, published model, 1 thread",
    "ort_optimized": "ONNX Runtime, `onnxfit.optimize(target=\"cpu\")` model, 1 thread",
    "litert": "LiteRT (XNNPACK), `model.tflite`, 1 thread",
    "onnxfit_session_cpu": "`onnxfit.session(model, target=\"cpu\")`: its prepared model, the threads it plans",
    "ort_convolutions": "ONNX Runtime, the optimized model's Convs alone (no other op), 1 thread",
}
GPU_LABELS = {
    "plain_original": "(a) plain ORT CUDA EP, published model",
    "plain_optimized": "(b) plain ORT CUDA EP, `optimize --target cuda` model",
    "onnxfit_session": "(c) `onnxfit.session(model, target=\"cuda\")`, `session.run`",
    "onnxfit_session_device_states": "(c') same session, states copied on the GPU (cupy, by hand)",
    "onnxfit_session_stream": "(c'') same session, `session.stream()`: states stay on the GPU",
    "jax": "(d) JAX jit (model's own source), state on device",
    "jax_host_states": "(d') JAX jit, state through the host each call",
}


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def cpu_machine(m: dict) -> str:
    cores = m.get("physical_cores") or m.get("logical_cpus")
    return f"{m.get('model') or 'CPU'} ({cores} cores, {m.get('machine')}, Python {m.get('python')})"


def node_table(counts: dict, ep: str) -> list[str]:
    lines = [f"| model | nodes as published | nodes after ORT (level ALL, {ep}) | element-wise after ORT | "
             "element-wise regions |", "|---|---:|---:|---:|---:|"]
    for label, entry in counts.items():
        if "error" in entry:
            lines.append(f"| {label} | {entry['error'][:160]} | | | |")
            continue
        pub, after = entry["published"], entry["after_ort"]
        lines.append(f"| {label} | {pub['nodes']} | {after['nodes']} | {after['elementwise']} | "
                     f"{after['elementwise_regions']} |")
    return lines


def top_ops(entry: dict, n: int = 8) -> str:
    ops = entry.get("after_ort", {}).get("ops", {})
    return ", ".join(f"{k} {v}" for k, v in list(ops.items())[:n])


def open_costs(d: dict) -> list[str]:
    """What a process pays once before its first frame, beside the per-frame figures."""
    opened, jax = d.get("open_s", {}), d.get("jax", {})
    parts = [f"{what} {opened[key]:.2f} s" for key, what in (
        ("plain_original", "a plain CUDA session"),
        ("onnxfit_session", "`onnxfit.session()` on a cold cache (prepare, plan, open, capture)"),
        ("onnxfit_session_device_states", "the same on a cache hit"),
        ("onnxfit_session_stream", "`stream()` (its two captures)")) if key in opened]
    if "build_s" in jax:
        parts.append(f"JAX building the model {jax['build_s']:.1f} s and jitting its first call {jax['first_call_s']:.1f} s")
    return ["", "Once per process, before the first frame: " + "; ".join(parts) + "."] if parts else []


def session_vs_one_thread(lat: dict) -> str:
    one, planned = lat.get("ort_optimized", {}), lat.get("onnxfit_session_cpu", {})
    if "median_ms" not in one or "median_ms" not in planned:
        return ""
    return (f"Measured in the table above (the session runs the model `prepare()` made for target cpu, the "
            f"same rewrite as the optimized one: parity identical): {planned['median_ms']:.2f} ms median per frame "
            f"(p10 {planned['p10_ms']:.2f}) with the session's threads vs {one['median_ms']:.2f} ms "
            f"(p10 {one['p10_ms']:.2f}) with one thread.")


def convolutions_floor(d: dict) -> list[str]:
    """What float arithmetic alone costs: the Convs' time and rate against LiteRT's whole frame."""
    conv, lat = d.get("convolutions", {}), d.get("latency", {})
    if "gflops" not in conv or "median_ms" not in lat.get("litert", {}):
        return []
    floor_ms = 2 * conv["multiply_adds"] / (conv["matmul_gflops"] * 1e9) * 1e3
    nodes = d.get("optimize", {}).get("nodes_after")
    dispatch = conv.get("dispatch_us_per_node")
    others = (f" ONNX Runtime spends at least {dispatch} us on a node however little it computes (a chain of 1000 "
              f"Add/Mul on 4 floats), so the model's other {nodes - conv['convs']} nodes add at least "
              f"{(nodes - conv['convs']) * dispatch / 1e3:.2f} ms: {floor_ms + (nodes - conv['convs']) * dispatch / 1e3:.2f} "
              "ms per frame with nothing computed but the convolutions, at peak." if dispatch and nodes else "")
    conv_ms, lite_ms = lat["ort_convolutions"]["median_ms"], lat["litert"]["median_ms"]
    return ["", "### Where LiteRT's lead comes from", "",
            f"The optimized model's {conv['convs']} Convs alone, same shapes and weights, take {conv_ms:.3f} ms per "
            f"frame on one thread ({conv['gflops']} GFLOP/s over {conv['multiply_adds'] / 1e6:.1f} M multiply-adds): "
            f"{'more' if conv_ms > lite_ms else 'less'} than LiteRT's whole frame, {lite_ms:.3f} ms. At the rate of ONNX "
            f"Runtime's float MatMul on large matrices on this core ({conv['matmul_gflops']} GFLOP/s) they would "
            f"need {floor_ms:.2f} ms.{others} Matching LiteRT in float32 would take every convolution at that peak "
            "and every other node at its dispatch floor: the gap is LiteRT's int8 weights (above), not the graph, "
            "and the parity goal (1e-5 over 300 frames) rules int8 out."]


def cpu_section(d: dict) -> list[str]:
    machine = cpu_machine(d["machine"])
    lit = d.get("litert", {})
    lines = [
        "## CPU: one thread, ONNX Runtime vs LiteRT",
        "",
        f"Machine: {machine}. onnxruntime {d['onnxruntime']}; LiteRT `{lit.get('package', '-')}`. "
        f"Measured {d['date']} by `{d['command']}` (interleaved rounds in one process: "
        f"{d['timing']['rounds']} rounds x {d['timing']['frames_per_round']} calls per runner, after "
        f"{d['timing']['warmup']} warm-up calls; states carried frame to frame, batch 1)."
        + (f" The machine is shared: 1-minute load average {d['load_average_1min']['before']} before the timing, "
           f"{d['load_average_1min']['after']} after, on {d['machine'].get('logical_cpus')} CPUs; p10 is the least "
           "disturbed figure." if d.get("load_average_1min") else ""),
        "",
        "| runner | median ms / frame | p10 - p90 ms | frames/s | time / LiteRT's (median) | (p10) | timed calls |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lat = d.get("latency", {})
    lite = lat.get("litert", {})
    for name, entry in lat.items():
        label = CPU_LABELS.get(name, name)
        if "error" in entry:
            lines.append(f"| {label} | {entry['error'][:200]} | | | | | |")
            continue
        ratio = f"{entry['median_ms'] / lite['median_ms']:.2f}x" if "median_ms" in lite else "-"
        ratio10 = f"{entry['p10_ms'] / lite['p10_ms']:.2f}x" if "p10_ms" in lite else "-"
        lines.append(f"| {label} | {entry['median_ms']:.3f} | {entry['p10_ms']:.3f} - {entry['p90_ms']:.3f} | "
                     f"{entry['fps']:.0f} | {ratio} | {ratio10} | {entry['frames']} |")
    opt = d.get("optimize", {})
    if "nodes_before" in opt:
        changed = [p["name"] for p in opt.get("passes", []) if p.get("changed")]
        notes = [n for p in opt.get("passes", []) for n in (p.get("notes") or [])]
        lines += ["", f"The optimized model: `{opt['written_by']}`: {opt['nodes_before']} -> {opt['nodes_after']} nodes "
                      f"(passes that changed it: {', '.join(changed) or 'none'})" + (f"; {'; '.join(notes)}" if notes else "")
                  + "."]
    elif opt.get("given"):
        lines += ["", f"The optimized model: `{opt['given']}` (given)."]
    par = d.get("parity", {})
    if par:
        lines += ["", f"Parity: the pulse over {par['frames']} frames from zero states, against "
                      f"`{par['reference']}`:", "", "| runner | max abs diff | first frame | correlation |",
                  "|---|---:|---:|---:|"]
        for name, entry in par.items():
            if not isinstance(entry, dict) or name == par.get("reference"):
                continue
            if "error" in entry:
                lines.append(f"| {CPU_LABELS.get(name, name)} | {entry['error'][:160]} | | |")
            else:
                lines.append(f"| {CPU_LABELS.get(name, name)} | {entry['max_abs']:.2g} | {entry['first_frame_abs']:.2g} | "
                             f"{entry['correlation']} |")
    if lit.get("int8_weight_tensors"):
        users = ", ".join(f"{v} {k}" for k, v in lit.get("ops_reading_int8_weights", {}).items())
        lines += ["", f"**The .tflite is not the float32 model.** {lit['int8_weight_tensors']} of its weight tensors "
                      f"are int8 (dynamic-range quantization; read by {users} of its "
                      f"{sum(lit.get('conv_ops', {}).values())} convolutions), while the ONNX export is float32 "
                      "throughout: LiteRT runs those convolutions with int8 weights, and its pulse differs from "
                      "ONNX Runtime's from the first frame (table above). The LiteRT figure is for that model, "
                      "not for the same arithmetic."]
    lines += convolutions_floor(d)
    st = d.get("session_threads", {})
    if st and "error" not in st:
        verdict = ("one thread" if st["is_one_thread"] else
                   f"{st['effective_intra_op_threads']} intra-op threads" + (" (every core)" if st["all_cores"] else ""))
        lines += ["", "### Threads `onnxfit.session(target=\"cpu\")` picks", "",
                  f"`{st['call']}` opens the session with intra_op_num_threads={st['intra_op_num_threads_option']} "
                  + ("(ONNX Runtime's default: one per physical core)" if st['intra_op_num_threads_option'] == 0 else
                     "(the plan's choice)") + "; ONNX Runtime started "
                  f"{st['threads_started_by_session']} pool thread(s) for it, so it runs on **{verdict}** on this "
                  f"{st['physical_cores']}-core machine. Plan: {'; '.join(st['plan_reasons'])}. "
                  + ("For a streaming model this small (a few ms per call, one frame per call) a pool of every core "
                     "spins threads for little work, and an application running several streams or other work "
                     "beside it loses those cores. " if not st["is_one_thread"] else "")
                  + session_vs_one_thread(lat)]
    if d.get("node_counts"):
        lines += ["", "### Nodes (CPU EP)", ""] + node_table(d["node_counts"], "CPU EP")
        for label, entry in d["node_counts"].items():
            if "after_ort" in entry:
                lines.append(f"\n{label}, most frequent ops after ORT: {top_ops(entry)}.")
    return lines


def gpu_section(d: dict) -> list[str]:
    gpu = d.get("gpu", {})
    check = d.get("device_mode") == "cpu"
    jax = d.get("jax", {})
    gpu_text = gpu.get("name") or "no GPU"
    if gpu.get("driver"):
        gpu_text += f" (driver {gpu['driver']}, {gpu.get('memory')})"
    pkg = d.get("onnxruntime_package", {})
    ort_text = f"onnxruntime {d['onnxruntime']}" + (" (onnxruntime-gpu)" if pkg.get("onnxruntime-gpu") else "")
    jax_text = (f"JAX {jax['jax']} (jaxlib {jax.get('jaxlib')}, Keras {jax.get('keras')}) on {jax.get('device')}"
                if "jax" in jax else f"JAX: {jax.get('error', 'not run')}")
    s = d.get("settings", {})
    lines = [
        "## GPU: batch 1, one process, one GPU",
        "",
        (f"**Check run with `--device cpu` on {cpu_machine(d.get('cpu', {}))}: CPU EP and CPU JAX; these "
         "figures test the script and say nothing about a GPU.**" if check else f"GPU: **{gpu_text}**."),
        f"{ort_text}; {jax_text}. Measured {d['date']} by `{d['command']}` "
        f"({s.get('rounds')} rounds x {s.get('frames_per_round')} calls per runner, interleaved, after "
        f"{s.get('warmup')} warm-up calls; states carried frame to frame; {d.get('elapsed_s')} s in all).",
        "",
        "| runner | median ms / frame | p10 - p90 ms | frames/s | speed vs (a) | time / JAX's | timed calls |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lat = d.get("latency", {})
    base = lat.get("plain_original", {}).get("median_ms")
    jx = lat.get("jax", {}).get("median_ms")
    for name in d.get("latency_order", list(lat)):
        entry = lat.get(name, {})
        label = GPU_LABELS.get(name, name)
        if "error" in entry:
            lines.append(f"| {label} | {entry['error'][:200]} | | | | | |")
            continue
        if "median_ms" not in entry:
            continue
        vs_base = f"{base / entry['median_ms']:.2f}x" if base else "-"
        vs_jax = f"{entry['median_ms'] / jx:.2f}x" if jx else "-"
        lines.append(f"| {label} | {entry['median_ms']:.3f} | {entry['p10_ms']:.3f} - {entry['p90_ms']:.3f} | "
                     f"{entry['fps']:.0f} | {vs_base} | {vs_jax} | {entry['frames']} |")
    lines += open_costs(d)
    errors = d.get("errors", {})
    if errors:
        lines += ["", "Not measured (errors recorded by the script):", ""]
        lines += [f"- `{k}`: {v[:300]}" for k, v in errors.items()]
    plan = d.get("plan")
    if plan:
        p = plan.get("placement") or {}
        lines += ["", f"`onnxfit.session` plan: CUDA graph **{'on' if plan['cuda_graph'] else 'off'}**; "
                      + "; ".join(plan.get("reasons", [])) + (
                          f" (placement {p.get('source')}: {p.get('nodes')} nodes, {p.get('on_cpu')} on the CPU, "
                          f"{p.get('device_copies')} device copies)" if p else "")
                  + (f"; prepared: {plan['prepared']}" if plan.get("prepared") else "") + "."]
    estimate = d.get("plan_for_cuda_machine")
    if check and estimate:
        lines += ["", f"Plan for a CUDA machine (estimated here): CUDA graph {'on' if estimate['cuda_graph'] else 'off'}; "
                      + "; ".join(estimate.get("reasons", [])) + "."]
    par = d.get("parity", {})
    if par:
        rows = [(n, e) for n, e in par.items() if isinstance(e, dict) and n != par.get("reference")]
        lines += ["", f"Parity: the pulse over {par['frames']} frames from one state ({par['initial_state']}), "
                      f"against `{par['reference']}`: " + "; ".join(
                          f"{GPU_LABELS.get(n, n).split(' ', 1)[0]} {n}: " + (f"max abs {e['max_abs']:.2g}" if "max_abs" in e
                                                                             else e.get("error", "")[:120])
                          for n, e in rows) + "."]
    batched = d.get("batched")
    if batched:
        lines += ["", "### Streams per call under `onnxfit.session` (batched copy)", "",
                  f"Model `{batched['model']}`, `onnxfit.session(model, target=\"cuda\", input_shapes=<batch B>)`; "
                  "each call advances B streams by one frame.", "",
                  "| batch | runner | CUDA graph | median ms / call | stream-frames/s | vs batch 1 |",
                  "|---:|---|---|---:|---:|---:|"]
        for label, sess in batched.get("sessions", {}).items():
            b = label.split("_")[-1]
            for runner, key in (("`session.run`", label), ("`session.stream()`", f"stream_{label}")):
                lat_b = batched.get("latency", {}).get(key, {})
                if "error" in sess or "error" in lat_b:
                    lines.append(f"| {b} | {runner} | {(sess.get('error') or lat_b.get('error'))[:200]} | | | |")
                elif "median_ms" in lat_b:
                    fps = lat_b.get("stream_frames_per_s") or lat_b.get("fps")
                    lines.append(f"| {b} | {runner} | {'yes' if sess.get('cuda_graph') else 'no'} | "
                                 f"{lat_b['median_ms']:.3f} | {fps:.0f} | {lat_b.get('stream_frames_per_s_vs_batch_1', '-')}x |")
        if batched.get("error"):
            lines.append(f"\n{batched['error']}")
    elif d.get("models", {}).get("batched") is None:
        lines += ["", "No batched copy was measured (`--batched` not given: `onnxfit optimize --dynamic-batch` "
                      "did not produce one; see optimize_batch.json from the run)."]
    if d.get("node_counts"):
        ep = "CUDA EP" if not check else "CPU EP"
        lines += ["", f"### Nodes ({ep})", ""] + node_table(d["node_counts"], ep)
    return lines


def partitions_section(d: dict) -> list[str]:
    lines = ["## CoreML and NNAPI: partitions (estimated)", "",
             f"Estimated by onnxfit's EP profiles per ONNX Runtime release (no device needed), as published and "
             f"after `onnxfit.optimize(model, target=T, ort_version=release)`; {d['date']}, `{d['command']}`.", "",
             "| target | onnxruntime | partitions | nodes on the EP | left on the CPU (first reasons) |",
             "|---|---|---:|---:|---|"]
    for row in d["rows"]:
        pub, opt = row["published"], row["optimized"]
        left = "; ".join(f"{k} ({v})" for k, v in list(opt["left"].items())[:2]) or "-"
        lines.append(f"| {row['target']} | {row['ort']} | {pub['partitions']} → {opt['partitions']} | "
                     f"{pub['nodes_on_ep']}/{pub['nodes']} → {opt['nodes_on_ep']}/{opt['nodes']} | {left[:220]} |")
    return lines


def short_kernel(name: str) -> str:
    """A CUDA kernel's name without its template arguments, ONNX Runtime's element-wise op kept."""
    op = re.search(r"OP_(\w+?)<", name)
    base = re.sub(r"^(void |std::enable_if<[^>]*>::type )", "", name).split("<")[0].split("(")[0]
    return base + (f" ({op.group(1)})" if op else "")


def profile_section(d: dict, gpu: dict | None) -> list[str]:
    """The CUDA kernels of one frame (facephys_gpu_profile.json), and stream() under other CUDA
    provider options where the run had variants."""
    name = d.get("gpu") or (gpu or {}).get("gpu", {}).get("name", "the GPU of the run above")
    lines = ["### Kernels per frame (CUDA EP, CUPTI)", "",
             f"`{d.get('command', 'python3 reports/facephys_gpu_profile.py')}` ({d.get('date', 'after the timing')}, "
             f"{name}, onnxruntime {d['onnxruntime']}): the cuda-optimized model, {d['plain']['frames']} frames under "
             "torch's profiler (it slows the host side: wall times here are above the table's). Busy = the sum of "
             "the kernels' own durations per frame.", "",
             "| runner | kernels + copies / frame | GPU busy ms / frame | wall ms / frame | mean kernel µs |",
             "|---|---:|---:|---:|---:|"]
    labels = {"plain": "plain CUDA EP, host states", "stream": "`onnxfit.session(...).stream()` (CUDA graph)"}
    for key, options in d.get("variants", {}).items():
        if key in d:
            given = [f"{k}={v}" for k, v in options["provider_options"].items()]
            if options.get("model") and options["model"] != d.get("model"):
                given.insert(0, f"model {options['model']}")
            labels[key] = f"`stream()`, {key}: " + ", ".join(given)
    for key, label in labels.items():
        r = d[key]
        lines.append(f"| {label} | {r['kernels_per_frame']:g} | {r['busy_ms_per_frame']:.3f} | "
                     f"{r['wall_ms_per_frame']:.3f} | {r['mean_kernel_us']:.2f} |")
    if d.get("timing"):
        lines += ["", "Without the profiler, the `stream()` runners interleaved round by round (each call followed by a "
                  "device synchronize), median ms per frame: " + ", ".join(
                      f"{labels.get(k, k)} {v:.3f}" for k, v in d["timing"].items()) + "."]
    lines += ["", "Most time per frame under `stream()`:", "", "| µs / frame | launches / frame | kernel |", "|---:|---:|---|"]
    for row in d["stream"]["top"][:10]:
        lines.append(f"| {row['us_per_frame']:.1f} | {row['per_frame']:g} | `{short_kernel(row['kernel'])}` |")
    return lines


def runs_section(runs: list[dict]) -> list[str]:
    """``stream()`` against JAX in each GPU run: JAX's spread from run to run is as wide as the gap."""
    lines = ["### `stream()` against JAX, run by run", "",
             "| run | GPU | `stream()` median (p10) ms | JAX median (p10) ms | time / JAX's, median | p10 |",
             "|---|---|---:|---:|---:|---:|"]
    for d in runs:
        lat = d.get("latency", {})
        s, j = lat.get("onnxfit_session_stream", {}), lat.get("jax", {})
        if "median_ms" not in s or "median_ms" not in j:
            continue
        lines.append(f"| {d['date']} | {d.get('gpu', {}).get('name')} | {s['median_ms']:.3f} ({s['p10_ms']:.3f}) | "
                     f"{j['median_ms']:.3f} ({j['p10_ms']:.3f}) | {s['median_ms'] / j['median_ms']:.2f}x | "
                     f"{s['p10_ms'] / j['p10_ms']:.2f}x |")
    return lines


def render(cpu: dict | None, gpu: dict | None, cpu_path: Path, gpu_path: Path,
           partitions: dict | None = None, profile: dict | None = None, repeats: list[dict] | None = None) -> str:
    lines = [
        "# FacePhys: a fragmented streaming model on CPU and GPU",
        "",
        "FacePhys (tests/zoo/facephys, MIT) estimates a pulse wave from 36x36 face crops, one frame per call, "
        "carrying 46 state tensors from call to call; its state-space layers are thousands of tiny element-wise "
        "ops. Every runner below carries its states frame to frame as an application does, batch 1, `dt` = 1/30.",
        "",
        f"Generated by `python reports/facephys_report.py` from `{cpu_path.name}`"
        + (f" and `{gpu_path.name}`" if gpu else "") + "; do not edit by hand.",
        "",
    ]
    lines += cpu_section(cpu) if cpu else ["## CPU", "", f"No {cpu_path.name}: run `python reports/facephys_cpu.py`."]
    if partitions:
        lines += [""] + partitions_section(partitions)
    lines += ["", "## Reproduce", "",
              "- CPU (here): `.venv/bin/pip install -e '.[bench]'` (LiteRT `ai-edge-litert==2.3.0`), then "
              "`.venv/bin/python reports/facephys_cpu.py` (writes reports/facephys_cpu.json).",
              "- GPU: stage with `../shared/gpu/prepare_ort_gpu.sh` and `../shared/gpu/prepare_facephys_jax.sh`, "
              "check with `bash reports/facephys_gpu.sh --plan` (prints the calls and carry lists), then make the "
              "calls back to back; the last one runs `bash reports/facephys_gpu.sh`. Copy `$OUT/facephys_gpu.json` "
              "to reports/ (a second run on the same warm machine as `facephys_gpu_repeat.json`). `python reports/facephys_gpu.py --device cpu` checks the script anywhere.",
              "- Partitions: `python reports/facephys_partitions.py` (writes reports/facephys_partitions.json).",
              "- This page: `python reports/facephys_report.py`."]
    lines.append("")
    if gpu:
        lines += gpu_section(gpu)
        if repeats:
            lines += ["", f"The same script run again on the same machine ({', '.join(p['name'] for p in repeats)}):", ""]
            lines += runs_section([gpu, *(p["data"] for p in repeats)])
        if profile:
            lines += [""] + profile_section(profile, gpu)
    else:
        lines += ["## GPU", "", f"Not measured yet (no {gpu_path.name}). On the GPU machine, as the last call of the "
                  "onnxruntime-gpu transfer: `bash reports/facephys_gpu.sh` (its header and `bash reports/facephys_gpu.sh "
                  "--plan` give the calls and carry lists); copy `$OUT/facephys_gpu.json` to reports/ and run this "
                  "script again."]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=Path, default=REPORTS / "facephys_cpu.json")
    parser.add_argument("--gpu", type=Path, default=REPORTS / "facephys_gpu.json")
    parser.add_argument("--out", type=Path, default=REPORTS / "FACEPHYS.md")
    args = parser.parse_args()
    cpu = json.loads(args.cpu.read_text()) if args.cpu.is_file() else None
    gpu = json.loads(args.gpu.read_text()) if args.gpu.is_file() else None
    partitions = REPORTS / "facephys_partitions.json"
    partitions = json.loads(partitions.read_text()) if partitions.is_file() else None
    profile = REPORTS / "facephys_gpu_profile.json"
    profile = json.loads(profile.read_text()) if profile.is_file() else None
    # Later runs of reports/facephys_gpu.sh on the same warm machine, copied as facephys_gpu_repeat*.json.
    repeats = [{"name": p.name, "data": json.loads(p.read_text())} for p in sorted(REPORTS.glob("facephys_gpu_repeat*.json"))]
    args.out.write_text(render(cpu, gpu, args.cpu, args.gpu, partitions, profile, repeats))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
