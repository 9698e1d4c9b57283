"""The parts of reports/bench.py: harness.py (child processes measured from outside, machine facts,
formats), one module per section (optimize, cache, inference, batch, verify: each with TITLE,
run(ctx), render(sec), headline(sec)), document.py (BENCHMARKS.md) and children/ (the scripts a
section runs in a process of its own)."""
