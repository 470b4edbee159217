"""The one interface every backend implements, so nothing outside a backend's own modules names its scheduler.

A backend is a complete plugin: one module in ``robustsweep/runners/backends/`` registers a :class:`Backend`
(``@register_backend``), and from then on

- the command line offers it (``--backend`` choices, its own flags: :meth:`Backend.add_arguments`) and builds it
  from the flags and the experiment file (:meth:`Backend.make`, its own options section :attr:`Backend.options_key`);
- the :class:`Runner` it makes takes the trials of a sweep that still need running and either runs them to the end
  (``local``: Ray Tune on this machine or a given Ray address) or hands them to a scheduler and returns at once
  (``slurm``): both answer with an :class:`Outcome`; what happens to a single trial is the same everywhere
  (:func:`robustsweep.core.trial.run_logged`);
- ``status``, ``resume`` and ``--wait`` read what it submitted and ask it for the states of those jobs (the
  :class:`robustsweep.sweep.jobs.Scheduler` side: :meth:`Backend.tasks`, :meth:`Backend.states`, ...);
- a running marker records the job a trial runs in (:meth:`Backend.current_job`, under ``<name>_job``).

The defaults are those of an in-process backend: it submits nothing, so it has no jobs to describe.
Why a plugin object apart from the runner: ``status`` on a login node asks a backend about its jobs without
building it from options and without importing what runs trials (Ray, torch, submitit); the registered class only
imports those inside :meth:`Backend.make`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TextIO

from robustsweep.registry import BACKENDS
from robustsweep.sweep.jobs import JobRecord, Task, read_records

SWEEP_PLACEHOLDER = "<sweep>"  # in cancel_hint(); the cluster commands put the sweep's name in its place


@dataclass
class RunSummary:
    """What a finished run did: counts, the failed trials' errors, wall time."""

    total: int
    ok: int
    failed: int
    errors: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass
class Outcome:
    """``summary`` when the backend ran the trials here; ``job`` (a :class:`robustsweep.sweep.jobs.JobRecord`)
    when it submitted them; neither when there was nothing to do."""

    summary: RunSummary | None = None
    job: Any = None


class Runner(Protocol):
    """What :meth:`Backend.make` returns: the backend configured for one command."""

    name: str  # the backend's registry name

    def run(self, sweep: Any, trials: list[dict[str, Any]], runtime: Any, *, restart_errored: bool = False,
            command: str = "run") -> Outcome:
        """Run (or submit) ``trials`` of ``sweep`` with ``runtime``; ``command`` is recorded with a submission."""
        ...


class Backend:
    """A backend plugin (see the module docstring). Subclasses set the class attributes and override what applies."""

    name: ClassVar[str] = ""  # registry name: ``--backend NAME``; its records live in ``<sweep>/NAME/jobs.jsonl``
    title: ClassVar[str] = ""  # how messages name its jobs ("SLURM" -> "SLURM jobs:")
    submits: ClassVar[bool] = False  # hands trials to a scheduler and returns: status / resume track its jobs
    # its own section of the experiment file (``slurm:``), if any: the spec accepts it for every registered backend
    # (config/spec.py reads this through the registry), checks it against options_model(), keeps it as given;
    # make() reads it with ``spec.backend_options(options_key)``
    options_key: ClassVar[str | None] = None

    # ------------------------------------------------------------------------------ the command line
    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """Add this backend's own flags to a command that can run on it (submit, resume, reproduce)."""

    def options_model(self) -> type | None:
        """The pydantic model its options section validates against when the experiment file is loaded (errors read
        ``<options_key>.<field>: ...``); imported here, lazily, so that loading an experiment file never imports a
        scheduler's client."""
        return None

    def make(self, a: argparse.Namespace, spec: Any) -> Runner:
        """The runner for one command, from its flags and the experiment file; option errors (a UsageError) raise
        here, before anything is written."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ a submitted job
    def current_job(self) -> str | None:
        """The id of this scheduler's job the calling process runs in (read from its environment), else None."""
        return None

    def read_records(self, sweep_dir: Path) -> Sequence[JobRecord]:
        """What it submitted for a sweep (``<sweep>/<name>/jobs.jsonl``), oldest first."""
        return read_records(sweep_dir, self.name)

    def tasks(self, rec: JobRecord) -> list[Task]:
        """The tasks of a submitted job, each with its log and trials (default: the job is one task)."""
        return [Task(rec.job_id, rec.log or str(Path(rec.folder) / f"{rec.job_id}.out"), tuple(rec.trial_ids))]

    def states(self, records: Sequence[JobRecord]) -> dict[str, tuple[str, str]]:
        """{task id: (state, nodes)} for every task of ``records``."""
        return {}

    def is_active(self, state: str) -> bool:
        return False

    def job_of(self, task_id: str) -> str:
        return task_id

    def cancel(self, job_ids: list[str], records: Sequence[JobRecord]) -> None:
        """Cancel these jobs of ``records`` (the sweep's submissions) for ``robustsweep cancel``; returns once the
        scheduler has been told, not when they end."""
        raise NotImplementedError(f"the {self.name} backend cannot cancel jobs")

    def cancel_hint(self, job_ids: list[str]) -> str:
        """How messages tell the user to stop these jobs: ``robustsweep cancel`` (the sweep's name is filled in by
        the command that shows the message: :data:`SWEEP_PLACEHOLDER`)."""
        return f"robustsweep cancel {SWEEP_PLACEHOLDER}"

    def submit_after(self, runner: Runner, argv: list[str], after: Sequence[JobRecord], folder: Path,
                     name: str) -> str | None:
        """Submit ``robustsweep <argv>`` as a small job that starts once the jobs of ``after`` have ended (whatever
        their outcome), with ``runner``'s options and its log under ``folder``; its job id. None: this backend
        cannot chain a job (the caller tells the user to run the command later)."""
        return None

    def print_submitted(self, rec: JobRecord, sweep: Any, n_todo: int, out: TextIO | None = None) -> None:
        """What ``submit`` prints once the job is in (to ``out``, default stdout): its id, how to follow it, its log."""
        out = sys.stdout if out is None else out
        print(f"sweep {sweep.name}: {len(sweep.trials)} trials, {n_todo} to run -> {sweep.dir}", file=out)
        print(f"submitted {self.title} job {rec.job_id}", file=out)
        print(f"  status: robustsweep status {sweep.name} --results {sweep.results}", file=out)
        print(f"  log:    {self.tasks(rec)[0].log}", file=out)


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: register a backend under its ``name`` (help: the first line of its docstring), with its
    ``options_key`` in the entry's metadata: the experiment file's loader (:mod:`robustsweep.config.spec`, below the
    runners) finds the backends' sections there."""
    return BACKENDS.register(cls.name, options_key=cls.options_key)(cls)


def get_backend(name: str) -> Backend:
    """The registered backend ``name`` (KeyError listing the names otherwise)."""
    return BACKENDS.get(name).fn()


def backend_names() -> list[str]:
    return BACKENDS.names()
