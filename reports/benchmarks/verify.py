"""Section 5: wall time of `onnxfit verify --batch 16`."""

from __future__ import annotations

from .harness import WEIGHTS, WORK, Ctx, fmt_mb, fmt_s, median, onnxfit_cmd, prepared, run_child, table

TITLE = "5. Verify cost"


def run(ctx: Ctx) -> dict:
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


def render(sec: dict) -> list[str]:
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


def headline(sec: dict) -> list[list[str]]:
    rows = []
    for c in sec.get("cases", []):
        if "wall_s_median" in c:
            rows.append([f"`{c['command']}` wall time", f"{fmt_s(c['wall_s_median'])} "
                         f"(exit {c['exit_codes'][0] if len(set(c['exit_codes'])) == 1 else c['exit_codes']})",
                         "-" if c["passed_runs"] == c["runs"] else "MISS"])
    return rows
