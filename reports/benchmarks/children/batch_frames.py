"""Batch section: per-frame equality at each batch size against batch 1, then latency per size.

    python batch_frames.py SPEC_JSON   -> one JSON line on stdout

SPEC: model, threads, sizes, rounds, warmup, atol.
"""
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
