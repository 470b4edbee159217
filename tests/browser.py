"""Render an HTML page in Debian's headless chromium: the DOM after scripts ran, and a screenshot."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def chromium_or_skip() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not on PATH (install Debian's: apt-get install -y chromium)")
    return chromium


def render(page: Path, tmp: Path, *, height: int = 2000) -> tuple[str, Path]:
    """(DOM after the page's onload script, screenshot PNG path) of ``page``."""
    base = [chromium_or_skip(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}"]
    url = page.resolve().as_uri()
    dom = subprocess.run([*base, "--virtual-time-budget=5000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    shot = tmp / "shot.png"
    subprocess.run([*base, f"--screenshot={shot}", f"--window-size=1200,{height}", "--virtual-time-budget=5000", url],
                   capture_output=True, text=True, timeout=120, check=True)
    return dom, shot
