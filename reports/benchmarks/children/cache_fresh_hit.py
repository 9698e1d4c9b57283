"""Cache section: one hit on an existing cache directory from a fresh process.

    python cache_fresh_hit.py MODEL CACHE_DIR TARGET   -> one JSON line on stdout
"""
import json, sys, time
t = time.perf_counter()
from onnxfit.app.prepare import prepare_entry
import_s = time.perf_counter() - t
t = time.perf_counter(); e = prepare_entry(sys.argv[1], sys.argv[3], cache_dir=sys.argv[2]); s = time.perf_counter() - t
assert e.hit, "fresh-process prepare_entry was not a hit"
print(json.dumps({"hit_s": s, "import_s": import_s}))
