"""Every example in README.md and docs/ runs, and the output a page shows is what the command prints.

Fenced blocks are read from the Markdown. A `bash` block runs each of its `onnxfit ...` lines (other
lines, `pip install` or `make`, are for the reader); a `console` block runs each `$ onnxfit ...` line
and compares what it prints with the lines shown under it; a `python` block runs as a script. The
fence's info string marks what a block needs beyond the test venv, as in ```` ```bash needs=zoo ````:

- `needs=zoo`: models of the zoo (tests/zoo/manifest.py), named in the block by the file names of
  `ZOO_FILES` and fetched once into the zoo cache as the zoo tests do;
- `needs=gpu`, `needs=coreml`: that execution provider in this onnxruntime (skipped without it);
- `needs=torch`, `needs=simplify`: the extra's package (skipped without it).

A `python file=NAME` block is not run: it is written as NAME next to the page's other examples. A
`python sketch` block (a signature, not an example) is only compiled.
Each block runs in a fresh directory holding a copy of weights/, FacePhys as `facephys.onnx`, and a
cache of its own. `# exit N` after a command says the exit code it must give (default 0).

Shown output is compared with whitespace collapsed (rich wraps at the terminal's width), timings
normalised, and `...` standing for any text, across lines too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FACEPHYS = ROOT / "tests" / "zoo" / "facephys" / "model.onnx"

# File names the pages use -> zoo model names (tests/zoo/manifest.py).
ZOO_FILES = {
    "silero_vad.onnx": "silero_vad",
    "yolov8n.onnx": "yolov8n_nudenet",
    "centerface.onnx": "centerface",
}

_FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
_EXIT = re.compile(r"#\s*exit (\d+)\b")
_TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    attrs: dict[str, str]
    flags: frozenset[str]
    text: str

    @property
    def needs(self) -> set[str]:
        return set(filter(None, self.attrs.get("needs", "").split(",")))

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    text = page.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        words = match.group(2).split()
        attrs = dict(word.split("=", 1) for word in words if "=" in word)
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page, line, match.group(1), attrs, frozenset(w for w in words if "=" not in w),
                            match.group(3)))
    return blocks


def _logical_lines(text: str) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined."""
    return text.replace("\\\n", " ").splitlines()


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, shown output lines) for each onnxfit command the block runs."""
    if block.lang == "bash":
        return [(line.strip(), []) for line in _logical_lines(block.text) if line.strip().startswith("onnxfit ")]
    commands: list[tuple[str, list[str]]] = []
    for line in _logical_lines(block.text):
        if line.startswith("$ "):
            commands.append((line[2:].strip(), []))
        elif commands:
            commands[-1][1].append(line)
    return [(command, shown) for command, shown in commands if command.startswith("onnxfit ")]


def _runnable(block: Block) -> bool:
    if block.lang == "python":
        return "file" not in block.attrs
    return block.lang in ("bash", "console") and bool(_commands(block))


EXAMPLES = [b for page in PAGES for b in _blocks(page) if _runnable(b)]


_EPS = {"gpu": "CUDAExecutionProvider", "coreml": "CoreMLExecutionProvider"}


def _skip_unless_available(block: Block) -> None:
    """An example for an EP this machine lacks is compiled (a Python block) and skipped; one for a
    missing extra is skipped."""
    providers = ort.get_available_providers()
    missing = [need for need, ep in _EPS.items() if need in block.needs and ep not in providers]
    if missing:
        if block.lang == "python":
            compile(block.text, str(block.page), "exec")  # what can be checked here: it is valid Python
        pytest.skip(f"needs the {_EPS[missing[0]].removesuffix('ExecutionProvider')} execution provider")
    for extra, module in (("torch", "torch"), ("simplify", "onnxsim")):
        if extra in block.needs:
            pytest.importorskip(module, reason=f"needs the {extra} extra")


def _workdir(block: Block, tmp_path: Path, zoo_model) -> Path:
    shutil.copytree(ROOT / "weights", tmp_path / "weights")
    (tmp_path / "facephys.onnx").symlink_to(FACEPHYS)
    for other in _blocks(block.page):
        if other.lang == "python" and "file" in other.attrs:
            (tmp_path / other.attrs["file"]).write_text(other.text)
    if "zoo" in block.needs:
        for name, zoo_name in ZOO_FILES.items():
            if name in block.text:
                (tmp_path / name).symlink_to(zoo_model(zoo_name))
    return tmp_path


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ONNXFIT_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="200", PYTHONPATH=str(ROOT))
    return env


def _run_shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # `onnxfit` is this checkout's CLI, whatever is installed on PATH.
    script = f'onnxfit() {{ "{sys.executable}" -m onnxfit "$@"; }}\n{command}\n'
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _normalise(text: str) -> str:
    return " ".join(_TIMING.sub("<time>", text).split())


def _matches(shown: list[str], printed: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in _normalise("\n".join(shown)).split("..."))
    return re.fullmatch(pattern, _normalise(printed), re.S) is not None


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.id for b in EXAMPLES])
def test_doc_example_runs(block: Block, tmp_path, zoo_model):
    if "sketch" in block.flags:
        compile(block.text, block.id, "exec")
        return
    _skip_unless_available(block)
    cwd = _workdir(block, tmp_path, zoo_model)
    env = _env(tmp_path)
    if block.lang == "python":
        (tmp_path / "example.py").write_text(block.text)
        result = subprocess.run([sys.executable, "example.py"], cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{block.id}\n{block.text}\n{result.stderr}"
        return
    for command, shown in _commands(block):
        expected = _EXIT.search(command)
        result = _run_shell(command, cwd, env)
        assert result.returncode == (int(expected.group(1)) if expected else 0), \
            f"{block.id}: {command}\n{result.stdout}{result.stderr}"
        assert "Traceback" not in result.stdout + result.stderr, f"{block.id}: {command}\n{result.stderr}"
        if any(line.strip() for line in shown):
            assert _matches(shown, result.stdout), f"{block.id}: {command}\nshown:\n" + "\n".join(shown) + \
                f"\nprinted:\n{result.stdout}"


def test_every_page_has_examples_and_every_console_output_is_checked():
    """The extraction itself: a fence typo would otherwise silently drop a page's examples."""
    runnable_pages = {b.page.name for b in EXAMPLES}
    assert {"README.md", "cli.md", "api.md", "passes.md"} <= runnable_pages, runnable_pages
    readme = [b for b in EXAMPLES if b.page.name == "README.md"]
    quick_start = [c for b in readme if b.lang == "console" for c in _commands(b)]
    assert len(quick_start) >= 3 and all(shown for _, shown in quick_start), quick_start


def test_make_demo_runs_the_command_the_readme_shows():
    """The README shows `make demo`'s output under the command the Makefile's recipe runs."""
    recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    command = re.sub(r"\$\(VENV\)/bin/onnxfit( \$\(if \$\(V\),-v\))?", "onnxfit", recipe)
    shown = [c for b in _blocks(ROOT / "README.md") if b.lang == "console" for c, _ in _commands(b)]
    assert command in shown, (command, shown)


def test_output_matching_collapses_wrapping_and_treats_dots_as_any_text():
    assert _matches(["a b", "...", "c 1.5 s"], "a  b\nwrapped\ntable\nc 2 s\n")
    assert not _matches(["a b", "c"], "a b\nd\n")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_point_to_files_and_headings_that_exist(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", _FENCE.sub("", page.read_text())):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def _cli_commands() -> list[str]:
    """Every leaf command of the `onnxfit` app, as typed: 'optimize', 'cache list', ..."""
    import typer

    from onnxfit.cli import app

    def walk(command, prefix: str) -> list[str]:
        children = getattr(command, "commands", None)
        if not children:
            return [prefix]
        return [leaf for name, child in children.items() for leaf in walk(child, f"{prefix} {name}".strip())]

    return walk(typer.main.get_command(app), "")


def test_every_cli_command_has_a_line_in_the_readme_and_an_entry_in_the_cli_reference():
    readme = (ROOT / "README.md").read_text()
    reference = (ROOT / "docs" / "cli.md").read_text()
    commands = _cli_commands()
    assert "optimize" in commands and "cache list" in commands, commands
    for command in commands:
        assert re.search(rf"^\| `onnxfit {re.escape(command)}[ `]", readme, re.M), f"README verbs table: {command}"
        assert f"onnxfit {command}" in reference or f"`{command}" in reference, f"docs/cli.md: {command}"
