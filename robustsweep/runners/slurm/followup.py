"""A small SLURM job that starts after others end (``--dependency=afterany:<ids>``): ``reproduce --backend slurm``
chains its report after the experiments' jobs this way, so the paper's report is there when the last trial ends.

``afterany``, not ``afterok``: a report of what finished (failed trials show as failed / empty cells) is worth more
than none, and an array with one failed task would otherwise never release it. Plain ``sbatch`` (no submitit): the
job runs one command line and needs no pickled callable.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from robustsweep.runners.slurm.checks import SlurmSetupError, explain_sbatch_error, python_path_setup
from robustsweep.runners.slurm.options import SlurmOptions

REPORT_TIME_MIN = 30  # the report job's time limit: reading Parquet and writing tables


def dependency(job_ids: Sequence[str]) -> str:
    """``afterany:<id>:<id>...`` (an array's main id stands for all its tasks)."""
    ids = list(dict.fromkeys(str(j).split("_")[0] for j in job_ids))
    if not ids:
        raise ValueError("a dependent job needs at least one job to wait for")
    return "afterany:" + ":".join(ids)


def sbatch_args(opts: SlurmOptions, after: Sequence[str], folder: Path, name: str) -> list[str]:
    """The ``sbatch`` command line (pure; unit-tested): the options' partition / account / qos, one CPU, a short
    time limit, the log in ``folder``."""
    args = ["sbatch", "--parsable", f"--dependency={dependency(after)}", f"--job-name={name}",
            f"--output={folder / '%j.out'}", "--nodes=1", "--ntasks=1", "--cpus-per-task=1",
            f"--time={REPORT_TIME_MIN}"]
    for key in ("partition", "account", "qos"):
        if (value := getattr(opts, key)) is not None:
            args.append(f"--{key}={value}")
    return args


def script(opts: SlurmOptions, argv: Sequence[str], cwd: Path) -> str:
    python = opts.python or sys.executable
    lines = ["#!/bin/bash", *python_path_setup(), *opts.setup, f"cd {shlex.quote(str(cwd))}",
             shlex.join([python, "-m", "robustsweep", *argv])]
    return "\n".join(lines) + "\n"


def submit_after(opts: SlurmOptions, argv: Sequence[str], after: Sequence[str], folder: Path, name: str) -> str:
    """Submit ``robustsweep <argv>`` as a job that starts once every job of ``after`` has ended; its id."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sh"
    path.write_text(script(opts, argv, Path.cwd()))
    res = subprocess.run([*sbatch_args(opts, after, folder, name), str(path)], capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        raise SlurmSetupError(explain_sbatch_error(res.stderr or res.stdout, opts.partition))
    return res.stdout.strip().split(";")[0]
