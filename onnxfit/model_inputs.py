"""``ModelInputs``: what describes a model's inputs, parsed once.

Every way in (the CLI verbs, ``optimize``, ``prepare``, ``session``, ``verify``) takes the same
four things about a model's inputs. They are parsed and checked here, from the CLI's strings or
the API's dicts, and the one value travels on: ``optimize --verify`` hands verify the batch axes
the model was optimized with, ``session`` prepares with the shapes it plans for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onnxfit.batch_axes import BatchAxes, parse_batch_axes
from onnxfit.errors import OnnxfitError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ModelInputs", "parse_input_shapes", "parse_shape"]


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Input shapes to fix, batch axes where dim names do not tell, values that become constants,
    and weights listed as inputs that stay overridable."""

    shapes: Mapping[str | None, tuple[int, ...]] = field(default_factory=dict)  # None: the only input
    batch_axes: BatchAxes = field(default_factory=dict)  # input -> axis, None: no batch axis
    fixed: Mapping[str, np.ndarray] = field(default_factory=dict)  # --fix-input values
    keep: tuple[str, ...] = ()  # --keep-input: initializer-inputs leaves these overridable

    @classmethod
    def parse(
        cls,
        input_shapes: Mapping[str | None, Sequence[int]] | Iterable[str] | None = None,
        batch_axes: Mapping[str, int | None] | Iterable[str] | None = None,
        fixed_inputs: Mapping[str, object] | Iterable[str] | None = None,
        keep_inputs: Iterable[str] | None = None,
    ) -> ModelInputs:
        """From ``{"x": (1, 3, 64, 64)}`` or ``["x=1x3x64x64"]``, ``{"state": 1}`` or
        ``["state=1"]``, ``{"sr": 16000}`` or ``["sr=16000"]``; a bad value fails here."""
        return cls(shapes=_shapes(input_shapes), batch_axes=_batch_axes(batch_axes),
                   fixed=_fixed(fixed_inputs), keep=tuple(keep_inputs or ()))

    @classmethod
    def of(cls, inputs: ModelInputs | None, **keywords) -> ModelInputs:
        """``inputs`` as given, or parsed from the separate keywords (``parse``'s); not both."""
        if inputs is None:
            return cls.parse(**keywords)
        given = [name for name, value in keywords.items() if value]
        if given:
            raise OnnxfitError(f"inputs= already describes the model's inputs; drop {', '.join(given)}")
        return inputs

    def given(self) -> bool:
        """Whether shapes or values were given (advice then has nothing to suggest)."""
        return bool(self.shapes or self.fixed)


def _is_list(value) -> bool:
    return value is not None and not isinstance(value, Mapping)


def _shapes(shapes) -> dict[str | None, tuple[int, ...]]:
    if not shapes:
        return {}
    if _is_list(shapes):
        return parse_input_shapes(list(shapes))
    return {name: tuple(int(d) for d in dims) for name, dims in shapes.items()}


def _batch_axes(axes) -> BatchAxes:
    parsed = parse_batch_axes(list(axes) if _is_list(axes) else axes)
    for name, axis in parsed.items():
        if axis is not None and (isinstance(axis, bool) or not hasattr(axis, "__index__") or axis < 0):
            raise OnnxfitError(f"batch axis {name}={axis}: the axis must be a non-negative integer or None")
    return {name: None if axis is None else int(axis) for name, axis in parsed.items()}


def _fixed(values) -> dict[str, np.ndarray]:
    if not values:
        return {}
    # Deferred: numpy (and onnx, where fixed_inputs binds values) only when values are given;
    # a cache hit without them imports neither.
    import numpy as np

    from onnxfit.fixed_inputs import parse_fixed_inputs

    if _is_list(values):
        return parse_fixed_inputs(list(values))
    return {str(name): np.asarray(value) for name, value in values.items()}


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x3x640x640"`` -> ``(1, 3, 640, 640)``; commas work too."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise OnnxfitError(f"bad shape '{text}': expected dimensions like 1x3x640x640") from None
    if not dims or any(d <= 0 for d in dims):
        raise OnnxfitError(f"bad shape '{text}': every dimension must be a positive integer")
    return dims


def parse_input_shapes(specs: Iterable[str]) -> dict[str | None, tuple[int, ...]]:
    """``["images=1x3x640x640"]`` -> ``{"images": (1, 3, 640, 640)}``; no name -> key None."""
    shapes: dict[str | None, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, shape = spec.rpartition("=")
        shapes[name if sep else None] = parse_shape(shape)
    return shapes
