"""Section 3: ONNX Runtime CPU latency of the weights/ samples before/after optimize (coreml and cpu
targets); OpenVINO EP partitions and latency before/after (in .venv-openvino). Latency runs in
children/latency.py, OpenVINO partitions in children/openvino_partitions.py."""

from __future__ import annotations

import json
from pathlib import Path

from .harness import (
    CHILDREN,
    OPENVINO_PY,
    ROOT,
    WEIGHTS,
    WORK,
    Ctx,
    child_json,
    child_script,
    goal_row,
    prepared,
    run_child,
    table,
)

TITLE = "3. Inference latency before/after optimize"
SAMPLES = ["inswapper_like", "scrfd_like", "gfpgan_like", "facex_nano"]
GOAL_SPEED = 0.98  # latency ratio before/after >= 0.98 (never slower)


def run(ctx: Ctx) -> dict:
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
        run, data = child_json(child_script("latency.py", json.dumps(spec)), timeout=600)
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
                    "goal": goal_row(f"before/after >= {GOAL_SPEED}", ratio, ratio >= GOAL_SPEED, f"{ratio:.3f}")})
            ctx.log(f"inference {name}: " + ", ".join(f"{r['target']} {r['ratio']:.3f}" for r in entry["rows"]))
        cpu_models.append(entry)
    openvino = _openvino(ctx, prepared_paths, budget)
    return {"threads": ctx.threads, "graph_optimization": "ORT default (ORT_ENABLE_ALL)",
            "input_batch": 1, "cpu": cpu_models, "openvino": openvino}


def _openvino(ctx: Ctx, prepared_paths: dict[str, dict[str, Path]], budget: float) -> dict:
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
        prun, parts = child_json([OPENVINO_PY, CHILDREN / "openvino_partitions.py", json.dumps({"variants": chosen})],
                                 timeout=600)
        ctx.step(f"inference: OpenVINO EP latency of {name} (interleaved)")
        spec = {"threads": ctx.threads, "provider": "OpenVINOExecutionProvider", "warmup": 10 if not ctx.quick else 5,
                "min_runs": 30 if ctx.quick else 100, "max_runs": 2000, "budget_s": budget, "variants": chosen}
        lrun, lat = child_json([OPENVINO_PY, CHILDREN / "latency.py", json.dumps(spec)], timeout=600)
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
                                      "goal": goal_row(f"before/after >= {GOAL_SPEED}", ratio, ratio >= GOAL_SPEED,
                                                       f"{ratio:.3f}")})
        result["models"].append(entry)
    return result


def render(sec: dict) -> list[str]:
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
            "Partitions: `onnxfit.verification.partitions.count_partitions(model, \"openvino\")` (a real placement read "
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


def headline(sec: dict) -> list[list[str]]:
    rows = []
    for target in ("coreml", "cpu"):
        found = [(m["model"], r) for m in sec.get("cpu", []) for r in m.get("rows", []) if r["target"] == target]
        if found:
            worst = min(found, key=lambda x: x[1]["ratio"])
            rows.append([f"ORT CPU latency before/after `--target {target}`, worst of {len(found)} samples "
                         f"(>= {GOAL_SPEED})",
                         f"{worst[1]['ratio']:.3f} ({Path(worst[0]).stem})",
                         "PASS" if all(r["goal"]["status"] == "PASS" for _, r in found) else "MISS"])
    ov = sec.get("openvino", {})
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
    return rows
