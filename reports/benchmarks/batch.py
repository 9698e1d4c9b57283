"""Section 4: the SCRFD-like sample after --dynamic-batch: frames/s at batch 1, 4, 16 and the
per-frame equality check at each size (children/batch_frames.py)."""

from __future__ import annotations

import json

from .harness import WEIGHTS, WORK, Ctx, child_json, child_script, fmt_x, prepared, table

TITLE = "4. Batch throughput after --dynamic-batch"
BATCH_ATOL = 1e-5


def run(ctx: Ctx) -> dict:
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
    run, data = child_json(child_script("batch_frames.py", json.dumps(spec)), timeout=900)
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


def render(sec: dict) -> list[str]:
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


def headline(sec: dict) -> list[list[str]]:
    if "rows" not in sec:
        return []
    b16 = sec["rows"][-1]
    return [[f"SCRFD-like after `--dynamic-batch`: frames/s at batch {b16['batch']} vs batch 1",
             f"{b16['frames_per_s']:.1f} f/s = {b16['vs_batch_1']:.2f}x batch 1", "-"],
            [f"per-frame equality at batch {', '.join(str(r['batch']) for r in sec['rows'])} "
             f"(atol {sec['atol']:g})",
             ", ".join("ok" if r["equal_ok"] else "FAIL" for r in sec["rows"]),
             "PASS" if all(r["equal_ok"] for r in sec["rows"]) else "MISS"]]
