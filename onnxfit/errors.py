"""The one error type for problems the user can fix (bad file, bad option, bad model).

The CLI prints it as a single line and exits with ``exit_code`` (2: bad input or usage).
Anything else that escapes is a bug in onnxfit and may show a traceback.
"""

__all__ = ["OnnxfitError", "CheckFailed", "EXTRAS", "MissingExtra", "first_line", "missing_extra", "node_label"]


class OnnxfitError(Exception):
    """A user-fixable problem: ``OnnxfitError("model.onnx: empty file, not an ONNX model")``."""

    exit_code = 2


class CheckFailed(OnnxfitError):
    """A verification check failed (exit code 1), e.g. ``optimize --verify`` found a mismatch."""

    exit_code = 1


class MissingExtra(OnnxfitError):
    """A command needs an optional dependency that this install lacks (exit 2, one line)."""


# Optional dependencies by top-level module -> the extra that installs them (pyproject.toml).
EXTRAS = {
    "torch": "torch",
    "onnxscript": "torch",
    "torchvision": "torch",
    "onnxsim": "simplify",
    "openvino": "openvino",
    "onnxruntime_ep_openvino": "openvino",
}


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The one-line error for an optional dependency that is not installed; None for any other module
    (a missing core dependency, or a typo in onnxfit, stays a bug with its traceback)."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    return MissingExtra(f"this command needs {module}, which is not installed: pip install 'onnxfit[{extra}]'")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty): error lines stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def node_label(node) -> str:
    """How errors name a node: its name, else its first output (exporters leave many nodes nameless).

    Works for onnx_graphsurgeon nodes and NodeProto alike.
    """
    if node.name:
        return node.name
    outputs = [getattr(o, "name", o) for o in node.outputs] if hasattr(node, "outputs") else list(node.output)
    named = [o for o in outputs if o]
    return f"{node.op if hasattr(node, 'op') else node.op_type} -> {named[0]}" if named else "(unnamed)"
