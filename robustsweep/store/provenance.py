"""Where and with what a trial ran: host, package versions, git revision (for the result rows)."""
from __future__ import annotations

import functools
import json
import platform
import socket
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=1)
def versions() -> str:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("robustsweep", "torch", "torchvision", "ray", "polars", "pyarrow", "submitit"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return json.dumps(out, sort_keys=True)


@functools.lru_cache(maxsize=1)
def git_rev() -> str | None:
    """Revision of the robustsweep source tree (with '-dirty' when it has uncommitted changes)."""
    src = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def host() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
