"""What every CLI verb shares: the typer app, one-line errors, JSON output, the console."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from onnxfit import __version__
from onnxfit.errors import OnnxfitError, missing_extra
from onnxfit.text import json_default

__all__ = ["app", "export_app", "main", "console", "err_console", "handle_errors", "print_json", "fail_usage"]

app = typer.Typer(
    name="onnxfit",
    help="Make ONNX vision models run whole on their execution provider, and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# `onnxfit export torch ...` and `onnxfit export efm3 ...` register on this group.
export_app = typer.Typer(help="Export models: torch -> ONNX, ONNX/torch -> EFM3 .bin.", no_args_is_help=True)
app.add_typer(export_app, name="export")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def handle_errors(func: Callable) -> Callable:
    """Turn OnnxfitError into one red line on stderr and its exit code (2 bad input, 1 check failed);
    an optional dependency missing on a plain install (torch, onnxsim, ...) names its extra, exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OnnxfitError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            error = missing_extra(exc)
            if error is None:
                raise
            _print_error(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _print_error(exc: OnnxfitError) -> None:
    # Escaped: "pip install 'onnxfit[simplify]'" must not lose "[simplify]" as a rich tag.
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, markup=True, emoji=False)


def fail_usage(message: str) -> None:
    raise OnnxfitError(message)


def print_json(document: Any) -> None:
    """Machine output: exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=json_default) + "\n")


def _print_version(value: bool) -> None:
    if value:
        print(f"onnxfit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what each pass does."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")


def main() -> None:
    # typer/click usage errors exit 2 already; OnnxfitError is mapped by handle_errors.
    app(prog_name="onnxfit")
