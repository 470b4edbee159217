"""The ``slurm:`` section of an experiment file, and the same options from ``robustsweep submit`` flags.

The SLURM backend's own options section: :mod:`robustsweep.runners.backends.slurm` declares it (``options_key``,
``options_model()``) and adds the flags. The experiment file keeps the section a plain mapping
(:mod:`robustsweep.config.spec` accepts one for every registered backend's ``options_key`` and validates it against
the backend's ``options_model()`` after the spec itself), so loading an experiment file never imports submitit; the
SLURM backend validates it again here, merged with the command-line flags (flags win), and turns it into submitit
executor parameters. Validation errors name the key and what is allowed, like the rest of the spec.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from robustsweep.config.pydantic_errors import format_validation_error
from robustsweep.errors import UsageError

_MEM_RE = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
# SLURM time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


class SlurmOptionsError(UsageError):
    """Bad cluster options. The message names the key (as in the experiment file / the flag) and the fix."""


def parse_time_minutes(value: str | int) -> int:
    """SLURM ``--time`` (``90``, ``1:30:00``, ``2-00:00:00``, ``1-12``) -> whole minutes (rounded up, >= 1).

    submitit takes the limit in minutes and also uses it to tell a time-out from a pre-emption, so we keep
    the exact value instead of passing the raw string through ``additional_parameters``.
    """
    if isinstance(value, bool):
        raise ValueError("time must be minutes or D-HH:MM:SS, not a boolean")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"time must be at least 1 minute, got {value}")
        return value
    text = str(value).strip()
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError(f"time {value!r} is not a SLURM time; use minutes (90), HH:MM:SS (01:30:00) "
                         f"or D-HH:MM:SS (1-00:00:00)")
    days, a, b, c = m.groups()
    a_i, b_i, c_i = int(a), int(b) if b else None, int(c) if c else None
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = int(days) * 86400 + a_i * 3600 + (b_i or 0) * 60 + (c_i or 0)
    elif c_i is not None:  # H:M:S
        seconds = a_i * 3600 + (b_i or 0) * 60 + c_i
    elif b_i is not None:  # M:S
        seconds = a_i * 60 + b_i
    else:  # M
        seconds = a_i * 60
    minutes = -(-seconds // 60)
    if minutes < 1:
        raise ValueError(f"time {value!r} is shorter than one minute")
    return minutes


class SlurmOptions(BaseModel):
    """Everything ``robustsweep submit --backend slurm`` needs to know about the cluster.

    In an experiment file::

        slurm:
          partition: gpu
          nodes: 2
          gpus_per_node: 4
          cpus_per_node: 32
          mem: 128G
          time: "08:00:00"
          account: myproject
          mode: ray            # or: array (one SLURM array task per trial, no long-lived driver)
          array_parallelism: 16
          trials_per_task: 4   # array mode: pack tiny trials (default: 1, more only to fit MaxArraySize)
          setup: ["module load cuda/12.4", "source ~/venvs/rs/bin/activate"]
    """

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None  # None = the cluster's default partition
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    cpus_per_node: int | None = Field(None, ge=1)  # None = SLURM's default (usually 1 CPU per task)
    mem: str | None = None  # per node, e.g. 16G; None = partition default
    time: str | int = "01:00:00"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mode: Literal["ray", "array"] = "ray"
    array_parallelism: int = Field(16, ge=1)  # array mode: tasks running at once
    trials_per_task: int | None = Field(None, ge=1)  # array mode: trials one task runs (None: 1, or as many as
    # keep the array within max_array_size)
    max_array_size: int | None = Field(None, ge=1)  # array mode: None = the cluster's MaxArraySize (scontrol)
    setup: list[str] = []  # shell lines run in the job before Python starts (module load, venv activate)
    python: str | None = None  # interpreter on the compute nodes; default: the one running submit
    max_requeues: int = Field(3, ge=0)  # pre-emptions/time-outs after which the job gives up
    signal_delay_s: int = Field(120, ge=10)  # SIGUSR2 this long before the time limit -> checkpoint+requeue
    ray_interface: str | None = None  # network interface whose IPv4 the Ray nodes use (e.g. ib0); None = auto
    ray_head_timeout_s: float = Field(180.0, gt=0)  # how long workers wait for the head, head for workers
    allow_local_results: bool = False  # accept a node-local results folder even with nodes > 1
    additional: dict[str, str | int] = {}  # extra sbatch options, e.g. {"mail-type": "END"}

    @field_validator("mem")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        if v is not None and not _MEM_RE.match(str(v)):
            raise ValueError(f"mem {v!r} is not a SLURM memory size; use e.g. 16G, 4000M or 64000")
        return None if v is None else str(v).upper()

    @field_validator("time")
    @classmethod
    def _time(cls, v: str | int) -> str | int:
        parse_time_minutes(v)  # raises with the accepted formats
        return v

    @field_validator("partition", "account", "qos", "constraint")
    @classmethod
    def _no_spaces(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c.isspace() for c in v)):
            raise ValueError(f"{v!r} must be a single non-empty word")
        return v

    @model_validator(mode="after")
    def _mode_consistency(self) -> SlurmOptions:
        if self.mode == "array" and self.nodes != 1:
            raise ValueError("mode: array runs one single-node task per trial; set nodes: 1 "
                             "(or use mode: ray for a multi-node Ray cluster)")
        return self

    @property
    def time_minutes(self) -> int:
        return parse_time_minutes(self.time)


# command-line flag name -> option field (the flags that ``robustsweep submit`` accepts)
FLAG_FIELDS: dict[str, str] = {
    "partition": "partition",
    "nodes": "nodes",
    "gpus_per_node": "gpus_per_node",
    "cpus_per_node": "cpus_per_node",
    "mem": "mem",
    "time": "time",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "mode": "mode",
    "array_parallelism": "array_parallelism",
    "trials_per_task": "trials_per_task",
    "max_array_size": "max_array_size",
}


def resolve_options(spec_section: dict[str, Any] | None, flags: dict[str, Any] | None = None) -> SlurmOptions:
    """Merge the experiment file's ``slurm:`` section with command-line flags (a flag left unset = None).

    Raises SlurmOptionsError with one line per bad key, e.g. ``slurm.mem: ... use e.g. 16G``.
    """
    merged: dict[str, Any] = dict(spec_section or {})
    for flag, value in (flags or {}).items():
        if value is None:
            continue
        if flag not in FLAG_FIELDS:
            raise SlurmOptionsError(f"--{flag.replace('_', '-')}: not a SLURM option")
        merged[FLAG_FIELDS[flag]] = value
    try:
        return SlurmOptions.model_validate(merged)
    except ValidationError as e:
        raise SlurmOptionsError(_format(e)) from None


def _format(e: ValidationError) -> str:
    lines = format_validation_error(e, prefix="slurm", root=SlurmOptions, strip_value_error=True).splitlines()
    return "invalid SLURM options\n" + "\n".join("  " + line for line in lines)
