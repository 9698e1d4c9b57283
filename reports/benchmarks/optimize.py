"""Section 1: wall time and peak RSS of `onnxfit optimize --target coreml` on the inswapper-sized
(552 MB) and GFPGAN-sized (341 MB) models, against the floor (onnx.load + onnx.save), onnxsim and
onnxslim on the same model."""

from __future__ import annotations

import sys
from pathlib import Path

from .harness import (
    PY,
    REPORTS,
    WORK,
    Ctx,
    Run,
    fmt_mb,
    fmt_s,
    fmt_x,
    goal_row,
    median,
    onnxfit_cmd,
    rm,
    run_child,
    short,
    table,
    tool_cmd,
    warm_page_cache,
)

TITLE = "1. Optimize cost on large models"
LARGE = {"inswapper_big.onnx": "inswapper-sized generator (16 reflect Pads)",
         "gfpgan_big.onnx": "GFPGAN-sized model (10 Splits, 6 scalar Gathers)"}
GOAL_FLOOR = 1.5  # onnxfit optimize <= 1.5x the floor
GOAL_RSS = 2.0  # peak RSS <= 2x the model size
FLOOR_CODE = "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])"
# Not a goal row: what the partition report (before/after) costs when forced on a large model.
WITH_PARTS = "onnxfit optimize --target coreml --partitions"


def run(ctx: Ctx) -> dict:
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
                "command": " ".join(short(a) for a in tools[tool]),
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
            goals.append(goal_row(f"time <= {GOAL_FLOOR}x floor", fit["ratio_to_floor"], fit["ratio_to_floor"] <= GOAL_FLOOR,
                                  f"{fit['ratio_to_floor']:.2f}x floor"))
            for peer in (sim, slim):
                if peer["ok"]:
                    ratio = median([a.wall_s / b.wall_s for a, b in zip(runs[names[1]], runs[peer["tool"]])
                                    if a.ok and b.ok])
                    goals.append(goal_row(f"faster than {peer['tool']}", ratio, ratio < 1.0,
                                          f"{ratio:.2f}x {peer['tool']}'s time ({1 / ratio:.1f}x faster)"
                                          if ratio < 1 else f"{ratio:.2f}x {peer['tool']}'s time"))
                else:
                    goals.append(goal_row(f"faster than {peer['tool']}", None, True,
                                          f"{peer['tool']} failed: {peer['error']}"))
            goals.append(goal_row(f"peak RSS <= {GOAL_RSS}x model size", fit["peak_rss_to_model_size"],
                                  fit["peak_rss_to_model_size"] <= GOAL_RSS,
                                  f"{fit['peak_rss_to_model_size']:.2f}x model size "
                                  f"({fit['peak_rss_bytes_median'] / 1e6:.0f} MB)"))
        else:
            for goal in (f"time <= {GOAL_FLOOR}x floor", "faster than onnxsim", "faster than onnxslim",
                         f"peak RSS <= {GOAL_RSS}x model size"):
                goals.append(goal_row(goal, None, False, "not met: `onnxfit optimize` failed (error in the table above)"))
        models.append({"model": f"reports/_work/{name}", "what": what, "size_bytes": size, "rows": rows,
                       "goals": goals})
        ctx.log(f"optimize {name}: " + "; ".join(f"{g['goal']}: {g['status']} ({g['text']})" for g in goals))
    return {"repeats": repeats, "models": models}


def render(sec: dict) -> list[str]:
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


def headline(sec: dict) -> list[list[str]]:
    rows = []
    if "models" not in sec:
        return rows
    for m in sec["models"]:
        name = Path(m["model"]).name
        size = fmt_mb(m["size_bytes"])
        fit = m["rows"][1]
        if not fit["ok"]:
            rows.append([f"`optimize --target coreml`, {name} ({size}): all four goals",
                         f"FAILED ({fit['failed_runs']}/{fit['runs']} runs): {fit['error']}", "MISS"])
            continue
        for g in m["goals"]:
            rows.append([f"`optimize --target coreml`, {name} ({size}): {g['goal']}", g["text"], g["status"]])
    return rows
