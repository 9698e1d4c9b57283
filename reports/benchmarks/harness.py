"""What every benchmark section shares: child processes measured from outside, the machine's
facts, the run context, goals and number formats."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from onnxfit.text import markdown_table

REPORTS = Path(__file__).resolve().parent.parent
ROOT = REPORTS.parent
WORK = REPORTS / "_work"
WEIGHTS = ROOT / "weights"
CHILDREN = Path(__file__).resolve().parent / "children"  # scripts a section runs in its own process
PY = sys.executable
BIN = Path(sys.executable).parent
OPENVINO_PY = ROOT / ".venv-openvino" / "bin" / "python"


# ------------------------------------------------------------------------------ child processes
@dataclass
class Run:
    wall_s: float
    peak_rss: int  # bytes, ru_maxrss of the child (and its waited-for descendants)
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def error_line(self) -> str:
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        for line in reversed(lines):
            if "Error" in line or "error" in line:
                return line[:300]
        return lines[-1][:300] if lines else f"exit status {self.rc}"


def run_child(argv: list[str], timeout: float = 900, cwd: Path | None = None, env: dict | None = None) -> Run:
    """Run ``argv`` in a subprocess; wall time from spawn to exit, peak RSS from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env)
        except FileNotFoundError:  # a peer tool that is not installed: a failed row, not a failed section
            return Run(0.0, 0, 127, "", f"error: {argv[0]} is not installed")
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_maxrss * 1024, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def child_json(argv: list[str], timeout: float = 900) -> tuple[Run, dict | None]:
    """Run a child that prints one JSON document as its last stdout line."""
    run = run_child(argv, timeout)
    data = None
    if run.ok:
        for line in reversed(run.stdout.splitlines()):
            if line.startswith("{"):
                data = json.loads(line)
                break
    return run, data


def onnxfit_cmd(*args) -> list[str]:
    exe = BIN / "onnxfit"
    return ([str(exe)] if exe.exists() else [PY, "-m", "onnxfit"]) + [str(a) for a in args]


def tool_cmd(name: str, *args) -> list[str]:
    exe = BIN / name
    return [str(exe) if exe.exists() else name] + [str(a) for a in args]


def child_script(name: str, *args) -> list[str]:
    """``python children/NAME.py ARGS`` with this interpreter."""
    return [PY, CHILDREN / name, *args]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rm(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".data")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


# ------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    info: dict = {"os": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
    except OSError:
        info["cpu"] = platform.processor() or platform.machine()
    try:
        meminfo = dict(ln.split(":", 1) for ln in Path("/proc/meminfo").read_text().splitlines() if ":" in ln)
        info["ram_gb"] = round(int(meminfo["MemTotal"].split()[0]) * 1024 / 1e9, 1)
    except (OSError, KeyError, ValueError):
        info["ram_gb"] = None
    try:
        release = dict(ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln)
        info["distro"] = release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    info["load_avg_at_start"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["code"] = code_state()
    from importlib import metadata

    versions = {}
    for package in ("onnxfit", "onnx", "onnxruntime", "torch", "numpy", "onnx_graphsurgeon", "onnxsim", "onnxslim"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    info["versions"] = versions
    if OPENVINO_PY.exists():
        probe = run_child([OPENVINO_PY, "-c", "import onnxruntime as o, onnx, json; print(json.dumps("
                           "{'onnxruntime': o.__version__, 'onnx': onnx.__version__, "
                           "'providers': o.get_available_providers()}))"], timeout=120)
        info["openvino_venv"] = json.loads(probe.stdout.strip().splitlines()[-1]) if probe.ok else {
            "error": probe.error_line()}
    else:
        info["openvino_venv"] = None
    return info


def code_state() -> dict:
    """The commit measured and whether onnxfit/ differs from it (read-only git queries)."""
    def git(*args) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    dirty = git("status", "--porcelain", "--", "onnxfit")
    return {"commit": git("rev-parse", "--short", "HEAD"), "onnxfit_tree": git("rev-parse", "--short", "HEAD:onnxfit"),
            "onnxfit_modified": None if dirty is None else bool(dirty)}


def package_changed(start: dict | None, end: dict | None) -> bool | None:
    """Whether onnxfit/ differed between the start and the end of a run (commits elsewhere do not count)."""
    if not start or not end:
        return None
    if start.get("onnxfit_modified") or end.get("onnxfit_modified"):
        return True
    if start.get("onnxfit_tree") and end.get("onnxfit_tree"):
        return start["onnxfit_tree"] != end["onnxfit_tree"]
    if start.get("commit") == end.get("commit"):
        return False
    try:  # runs recorded before the tree id was: ask git whether onnxfit/ differs between the commits
        diff = subprocess.run(["git", "diff", "--quiet", start["commit"], end["commit"], "--", "onnxfit"], cwd=ROOT,
                              timeout=30)
        return None if diff.returncode not in (0, 1) else diff.returncode == 1
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------ bench context
@dataclass
class Ctx:
    quick: bool
    threads: int
    progress: object
    task: object
    repeats: int

    def step(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def log(self, text: str) -> None:
        self.progress.console.log(text)


def prepared(ctx: Ctx, model: Path, out: Path, *flags) -> tuple[Path | None, str | None]:
    """``onnxfit optimize MODEL -o OUT FLAGS`` (setup, not timed); (path, None) or (None, error)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and out.stat().st_mtime > max(model.stat().st_mtime, _package_mtime()):
        return out, None
    run = run_child(onnxfit_cmd("optimize", model, "-o", out, *flags, "--json"), timeout=600)
    if not run.ok:
        rm(out)
        return None, run.error_line()
    return out, None


_PKG_MTIME: list[float] = []


def _package_mtime() -> float:
    """Newest mtime of the package's sources: optimized files older than that are rebuilt."""
    if not _PKG_MTIME:
        _PKG_MTIME.append(max(p.stat().st_mtime for p in (ROOT / "onnxfit").rglob("*.py")))
    return _PKG_MTIME[0]


def goal_row(goal: str, value, passed: bool, text: str) -> dict:
    return {"goal": goal, "value": value, "status": "PASS" if passed else "MISS", "text": text}


def short(arg) -> str:
    text = str(arg)
    for prefix, repl in ((str(BIN) + "/", ""), (str(ROOT) + "/", "")):
        if text.startswith(prefix):
            text = repl + text[len(prefix):]
    if text == PY or text == str(Path(PY)):
        return "python"
    if " " in text or ";" in text:
        return repr(text)
    return text


# ------------------------------------------------------------------------------ formats
def fmt_s(value) -> str:
    if value is None:
        return "-"
    if value < 0.01:
        return f"{value * 1e3:.2f} ms"
    if value < 1:
        return f"{value * 1e3:.0f} ms"
    return f"{value:.2f} s"


def fmt_mb(value) -> str:
    return "-" if value is None else f"{value / 1e6:,.0f} MB"


def fmt_x(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(markdown_table(header, rows))
