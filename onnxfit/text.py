"""Text output shared by the CLI, the verify report and the benchmark scripts: JSON and Markdown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["json_default", "markdown_table"]


def json_default(value: Any):
    """``json.dumps(default=...)`` for onnxfit's data: numpy values, report objects, paths."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> list[str]:
    """A Markdown table as lines; ``align`` has one letter per column, ``l`` or ``r`` (default all left).

    A ``|`` inside a cell is escaped: it would otherwise end the cell.
    """
    align = align or "l" * len(header)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(str(c) for c in header) + " |", rule]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines
