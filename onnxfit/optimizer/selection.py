"""Which passes a run uses: the target's list (or the caller's), with dynamic-batch and simplify placed."""

from __future__ import annotations

from onnxfit.optimizer.catalog import is_exact
from onnxfit.targets import get_target

__all__ = ["select_passes"]


def select_passes(target: str, passes: list[str] | None = None, dynamic_batch: bool = False,
                  ort_version: tuple[int, int] | None = None, simplify: bool = False,
                  exact: bool = False) -> list[str]:
    """The pass names a run uses: ``passes`` if given, else the target's, plus dynamic-batch and simplify.

    ``exact``: the target's passes that change float rounding (``exact = False``: folds into
    weights, native functions) are left out; passes named in ``passes`` are run as asked.

    ``ort_version`` (the onnxruntime the model will run on) does not change the list: passes ask
    the target's profile about each node they would rewrite (``MatchContext.target_takes``).
    """
    preset = get_target(target)
    names = list(passes) if passes else list(preset.passes)
    if exact and not passes:
        names = [n for n in names if is_exact(n)]
    if simplify and "simplify" not in names:
        # simplify before the EP passes, after dynamic-batch (inserted next): onnxsim then keeps
        # the batch symbolic instead of folding batch 1 into constants dynamic-batch must repair.
        names.insert(0, "simplify")
    if dynamic_batch and "dynamic-batch" not in names:
        # dynamic-batch first: shape folding must then keep the batch symbolic.
        names.insert(0, "dynamic-batch")
    return names
