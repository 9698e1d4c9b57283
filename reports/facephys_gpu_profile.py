"""Where FacePhys's GPU time goes: every CUDA kernel of one frame under ONNX Runtime's CUDA EP.

Run on the GPU machine by reports/facephys_gpu.sh after the timing run (torch's profiler reads
the kernels through CUPTI, whoever launches them). Two runners of the cuda-optimized model, states
carried, batch 1:

- `plain`: a plain CUDA EP session (no CUDA graph), so each kernel is launched from the host;
- `stream`: `onnxfit.session(model, target="cuda").stream()`, the CUDA graph replay users get.

Per runner: kernels per frame, the sum of their durations (GPU busy time) and the wall time per
frame, and the kernels grouped by name (the 25 with the most time). Busy time far below wall time
means the frame is bound by the count of kernels, not by what they compute.

``--variant NAME=key=value[,key=value]`` adds a `stream()` runner opened with those CUDA provider
options (``nhwc=prefer_nhwc=1``), or of another model (``model=PATH``, e.g. one written with other
passes): profiled like the others, and timed against the plain `stream()` without the profiler,
interleaved (``--rounds`` x ``--frames`` calls each, medians). Writes ``facephys_gpu_profile.json``
into ``--out``.

    python3 reports/facephys_gpu_profile.py --model /tmp/facephys/facephys_cuda.onnx --out $OUT \
        --variant nhwc=prefer_nhwc=1
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "reports"))

import numpy as np  # noqa: E402

from facephys_common import DT, OrtStream  # noqa: E402

FRAMES = 50


def profile(step, frames: int) -> dict:
    """Kernels of ``frames`` calls of ``step`` (after warm-up), per frame."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    for _ in range(20):
        step()
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(frames):
            step()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / frames
    by_name: dict[str, list[float]] = collections.defaultdict(list)
    for event in prof.events():
        duration = event.device_time if hasattr(event, "device_time") else event.cuda_time
        if event.device_type.name == "CUDA" and duration > 0:
            by_name[event.name].append(duration)
    count = sum(len(v) for v in by_name.values())
    busy = sum(sum(v) for v in by_name.values())
    top = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:25]
    return {
        "frames": frames,
        "wall_ms_per_frame": round(wall * 1e3, 4),
        "kernels_per_frame": round(count / frames, 1),
        "busy_ms_per_frame": round(busy / frames / 1e3, 4),
        "mean_kernel_us": round(busy / max(count, 1), 2),
        "top": [{"kernel": name[:120], "per_frame": round(len(v) / frames, 1),
                 "us_per_frame": round(sum(v) / frames, 1)} for name, v in top],
    }


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def stream_of(planned, frames):
    """One frame per call of ``planned.stream()``, states on the device."""
    runner = planned.stream()
    count = [0]

    def step() -> None:
        count[0] += 1
        runner.run({"input": frames[count[0] % len(frames)], "dt": DT})

    return step


def interleaved(steps: dict, rounds: int, frames: int) -> dict:
    """Median wall ms per frame of each runner, the runners alternating round by round."""
    import torch

    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name in list(steps)[r % len(steps):] + list(steps)[:r % len(steps)]:
            for _ in range(frames):
                start = time.perf_counter()
                steps[name]()
                torch.cuda.synchronize()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(float(np.median(v)), 4) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the cuda-optimized FacePhys model")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--variant", action="append", default=[], help="NAME=key=value[,key=value]")
    args = parser.parse_args()
    import onnxruntime as ort

    import onnxfit

    result: dict = {"model": str(args.model), "onnxruntime": ort.__version__, "gpu": _gpu_name(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "command": "python3 reports/facephys_gpu_profile.py " + " ".join(sys.argv[1:])}
    options = ort.SessionOptions()
    plain = OrtStream(ort.InferenceSession(str(args.model), options, providers=["CUDAExecutionProvider"]))
    result["plain"] = profile(plain.step, args.frames)
    steps = {"stream": stream_of(onnxfit.session(str(args.model), target="cuda"), plain.frames)}
    result["variants"] = {}
    for variant in args.variant:
        name, options = variant.split("=", 1)
        options = dict(item.split("=", 1) for item in options.split(","))
        model = options.pop("model", str(args.model))
        try:
            planned = onnxfit.session(model, target="cuda", provider_options=options)
            steps[name] = stream_of(planned, plain.frames)
            result["variants"][name] = {"model": model, "provider_options": options, "plan": planned.plan.to_dict()}
        except Exception as error:  # an option this build lacks: recorded, the others still run
            result["variants"][name] = {"model": model, "provider_options": options,
                                        "error": f"{type(error).__name__}: {error}"}
    for name, step in steps.items():
        result[name] = profile(step, args.frames)
    if len(steps) > 1:
        result["timing"] = interleaved(steps, args.rounds, args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "facephys_gpu_profile.json").write_text(json.dumps(result, indent=1) + "\n")
    if "timing" in result:
        print("interleaved, median ms per frame:", result["timing"])
    for key in ("plain", *steps):
        r = result[key]
        print(f"{key}: {r['kernels_per_frame']} kernels/frame, busy {r['busy_ms_per_frame']} ms, "
              f"wall {r['wall_ms_per_frame']} ms, mean kernel {r['mean_kernel_us']} us")
        for row in r["top"][:12]:
            print(f"   {row['us_per_frame']:8.1f} us  x{row['per_frame']:5.1f}  {row['kernel']}")


if __name__ == "__main__":
    main()
