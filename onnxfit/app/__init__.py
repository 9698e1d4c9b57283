"""The application layer: what a user calls and what the CLI runs, over the engine.

Jobs (``job``: one run's options and its rewrite step; ``flow``: rewrite -> partitions -> advice ->
verify), the per-machine cache and ``prepare``, advice, sessions and CUDA-graph planning, and the
public ``optimize`` / ``optimize_model`` / ``prepare`` / ``session`` / ``verify`` / ``inspect``
functions (re-exported lazily by ``onnxfit``). The engine below (``optimizer``, ``verify``,
``targets``) never imports this package.
"""
