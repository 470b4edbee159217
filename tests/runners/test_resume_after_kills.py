"""Issue 16, part 5: exactly-once after a killed driver. A tiny local sweep's driver (its whole process group) is
SIGKILLed at seeded random moments while trials run, three times, each time ``resume`` goes on at once (no stale
"still running" refusal), quietly (no Tune restore noise, no Ray notices) and with a header that agrees with its
progress lines; at the end every trial has exactly one ``ok`` file with the expected rows and no duplicate row."""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.exactly_once import assert_exactly_once

SPEC = {"name": "chaos", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
        "train": {"epochs": 1}, "eval": {"n_eval": 40}, "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
        "search": {"seed": {"grid": list(range(6))}}}
N_TRIALS, ROWS = 6, 2  # one row per eps value
NOISE = ("Could not fetch metrics", "Token authentication", "Traceback")


def _start(args: list[str], results: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen([sys.executable, "-m", "robustsweep", *args, "--results", str(results), "--cpus", "2"],
                            stdout=out.open("w"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _kill_mid_trial(p: subprocess.Popen, results: Path, rng: random.Random, timeout: float = 60) -> None:
    """SIGKILL the driver's process group a random moment after one of its trials announced itself (a marker
    written after it started: the killed run's markers are still there), or when it ends."""
    running = results / "chaos" / "running"
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < timeout:
        if running.is_dir() and any(_mtime(m) >= t0 for m in running.glob("*.json")):
            time.sleep(rng.uniform(0.0, 2.0))
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # the run may have ended first: then nothing is left to kill
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile (its trial ended)
        return 0.0


def _check_output(text: str) -> None:
    assert "still running" not in text, text  # a killed driver's markers are recognised as dead at once
    for noise in NOISE:
        assert noise not in text, text
    header = re.search(r"resuming (\d+) of (\d+) trials", text)
    if header:
        totals = {int(t) for t in re.findall(r"\[\s*\d+/(\d+)\]", text)}
        assert totals <= {int(header.group(1))}, text  # "[x/M]" counts what the header announced


def test_sigkilled_driver_resumes_exactly_once(tmp_path):
    rng = random.Random(16)
    spec = tmp_path / "chaos.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    results = tmp_path / "results"
    logs = []
    for kill in range(3):
        log = tmp_path / f"out{kill}.txt"
        p = _start(["run", str(spec)] if kill == 0 else ["resume", "chaos"], results, log)
        _kill_mid_trial(p, results, rng)
        logs.append(log)
    log = tmp_path / "final.txt"
    p = _start(["resume", "chaos"], results, log)
    assert p.wait(timeout=120) == 0, log.read_text()
    for f in [*logs[1:], log]:
        _check_output(f.read_text())
    assert_exactly_once(results / "chaos", N_TRIALS, ROWS)
