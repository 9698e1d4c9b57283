"""Every built-in pass's version and exactness as data, read without importing a pass.

A cache hit keys its entry by pass names and versions, and a fresh process must not import
graph-surgeon and every pass module to learn them; ``select_passes`` reads exactness from here too.
tests/optimizer/test_pipeline.py holds this table equal to the registered passes: bump a pass's
``version`` in both places. A pass registered from outside onnxfit is read from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["PASSES", "PassInfo", "check_names", "is_exact", "pass_labels"]


class PassInfo(NamedTuple):
    version: int
    exact: bool


PASSES = {
    "concat-chains": PassInfo(1, exact=True),
    "constant-chains": PassInfo(1, exact=False),
    "dedupe-nodes": PassInfo(2, exact=True),
    "dense-conv-to-gemm": PassInfo(1, exact=False),
    "dynamic-batch": PassInfo(6, exact=True),
    "eliminate-noops": PassInfo(2, exact=True),
    "flatten-to-reshape": PassInfo(1, exact=True),
    "floor-to-ceil": PassInfo(1, exact=True),
    "fold-batchnorm": PassInfo(3, exact=False),
    "fold-constants": PassInfo(2, exact=True),
    "fold-into-conv": PassInfo(1, exact=False),
    "fold-shapes": PassInfo(5, exact=True),
    "gather-flat-indices": PassInfo(1, exact=True),
    "hard-swish": PassInfo(1, exact=False),
    "infer-shapes": PassInfo(1, exact=True),
    "initializer-inputs": PassInfo(1, exact=True),
    "lower-rank": PassInfo(1, exact=True),
    "inline-if": PassInfo(2, exact=True),
    "matmul-add-to-gemm": PassInfo(1, exact=False),
    "merge-siblings": PassInfo(1, exact=True),
    "native-functions": PassInfo(3, exact=False),
    "neg-to-mul": PassInfo(1, exact=True),
    "reciprocal-to-div": PassInfo(1, exact=False),
    "reduce-sum-to-matmul": PassInfo(1, exact=False),
    "reduce-sum-to-mean": PassInfo(1, exact=True),
    "reflect-pad": PassInfo(3, exact=True),
    "reshape-chains": PassInfo(2, exact=True),
    "reshape-own-shape": PassInfo(3, exact=True),
    "rnn-step": PassInfo(1, exact=True),
    "scalar-gather": PassInfo(3, exact=True),
    "scatter-to-concat": PassInfo(1, exact=True),
    "select-to-where": PassInfo(1, exact=True),
    "simplify": PassInfo(1, exact=True),
    "slice-chains": PassInfo(1, exact=True),
    "split-reshapes": PassInfo(1, exact=True),
    "split-to-slice": PassInfo(2, exact=True),
    "sum-to-add": PassInfo(1, exact=True),
    "transpose-chains": PassInfo(1, exact=True),
    "transpose-to-reshape": PassInfo(1, exact=True),
}


def _clean(names: Iterable[str]) -> list[str]:
    return [n.strip() for n in names if n.strip()]


def check_names(names: Iterable[str]) -> None:
    """Unknown names are a usage error listing the valid ones (the registry decides past the table)."""
    names = _clean(names)
    if any(n not in PASSES for n in names):
        from onnxfit.optimizer.pipeline import get_passes  # deferred: imports graph-surgeon and every pass

        get_passes(names)


def pass_labels(names: Iterable[str]) -> list[str]:
    """``name@version`` of each pass, as the cache key records them."""
    names = _clean(names)
    if all(n in PASSES for n in names):
        return [f"{n}@{PASSES[n].version}" for n in names]
    from onnxfit.optimizer.pipeline import get_passes  # deferred: imports graph-surgeon and every pass

    return [f"{p.name}@{p.version}" for p in get_passes(names)]


def is_exact(name: str) -> bool:
    """Whether the pass keeps every value bit for bit (a pass that does not say is taken as exact)."""
    if name in PASSES:
        return PASSES[name].exact
    from onnxfit.optimizer.pipeline import is_exact as registered_exact  # deferred, as above

    return registered_exact(name)
