"""Cache section: ROUNDS misses into fresh cache directories, HITS hits after each, in this one process.

    python cache_miss_hit.py MODEL WORKDIR TARGET ROUNDS HITS   -> one JSON line on stdout
"""
import json, shutil, sys, tempfile, time
from pathlib import Path
model, work, target, rounds, hits = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
t = time.perf_counter()
from onnxfit.app.prepare import prepare_entry
import_s = time.perf_counter() - t
out = {"import_s": import_s, "rounds": []}
keep = None
for r in range(rounds):
    d = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    t = time.perf_counter(); miss = prepare_entry(model, target, cache_dir=d); miss_s = time.perf_counter() - t
    hit_s = []
    for _ in range(hits):
        t = time.perf_counter(); hit = prepare_entry(model, target, cache_dir=d); hit_s.append(time.perf_counter() - t)
        assert hit.hit and hit.path == miss.path, "second prepare_entry was not a hit"
    assert not miss.hit, "first prepare_entry into a fresh cache dir was a hit"
    out["rounds"].append({"miss_s": miss_s, "hit_s": hit_s, "rewritten": miss.rewritten,
                          "passes": [p["name"] for p in miss.meta.get("passes", [])],
                          "changed_passes": [p["name"] for p in miss.meta.get("passes", []) if p.get("changed")],
                          "artefact_bytes": Path(miss.path).stat().st_size if miss.rewritten else 0})
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
    keep = d
out["cache_dir"] = str(keep)
print(json.dumps(out))
