"""One exception family for the whole tool, so the command line catches errors in one place.

Why a family: every layer (config, sweep, runners) has its own reasons to refuse, but the user only needs to know
two things: *my input or my cluster set-up is wrong, nothing ran* (exit 2, :class:`UsageError`) or *some trials
failed, their errors are in the store* (exit 1, :class:`TrialFailed`). ``cli`` maps the family to exit codes once;
lower layers raise, they never print or exit.
"""
from __future__ import annotations

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_USAGE = 0, 1, 2


class RobustSweepError(Exception):
    """Base of every error the tool raises on purpose (as opposed to bugs)."""

    exit_code = EXIT_USAGE


class UsageError(RobustSweepError, ValueError):
    """Bad input (experiment file, option, sweep name): the message says what to change; nothing was started."""


class SpecError(UsageError):
    """A malformed experiment file or trial config. The message names the bad key and what is allowed; nothing has
    run. Defined here (not in config/spec.py) so the typed trial, which the spec module builds, can raise it too."""


class ClusterError(RobustSweepError, RuntimeError):
    """The cluster cannot take the job as asked (no sbatch, unknown partition, results not shared, sweep busy)."""


class TrialFailed(RobustSweepError, RuntimeError):
    """Raised after a failed trial's row is safely in the store (so the scheduler also marks the trial errored)."""

    exit_code = EXIT_TRIALS_FAILED
