"""Checks run on the login node before anything is submitted, so mistakes fail in seconds with a fix.

Why: a SLURM mistake otherwise shows up hours later (job pending forever on a partition that does not exist,
workers that never find the head because the results folder was /tmp on another node) or as an opaque
sbatch message. Each check raises :class:`SlurmSetupError` whose message says what to change.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from robustsweep.errors import ClusterError

# filesystems that every node of a cluster typically sees the same way
SHARED_FS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "panfs", "wekafs", "glusterfs",
             "fuse.glusterfs", "fuse.beegfs", "fuse.cephfs", "fuse.sshfs", "cifs", "smb3", "smbfs", "9p",
             "virtiofs", "afs", "orangefs", "pvfs2", "fuse.juicefs", "fuse.gcsfuse", "fuse.s3fs"}
# path prefixes that are node-local on essentially every cluster
LOCAL_PREFIXES = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/scratch/local", "/local", "/localscratch",
                  "/lscratch", "/state/partition1")


class SlurmSetupError(ClusterError):
    """Something about the cluster or the options prevents submitting; the message says what to fix."""


@dataclass(frozen=True)
class Partition:
    name: str
    available: str  # up / down / drain / inact
    default: bool


def require_slurm_commands() -> None:
    """sbatch, squeue and srun must be on PATH (submitit uses all three)."""
    missing = [c for c in ("sbatch", "squeue", "scancel") if shutil.which(c) is None]
    if missing:
        raise SlurmSetupError(
            f"{', '.join(missing)} not found on PATH: `robustsweep submit --backend slurm` must run on a SLURM "
            f"login node (try `module load slurm`), or use `robustsweep run` / `--backend local` to run on this "
            f"machine. For the single-node test cluster: eval \"$(slurm/local_slurm.sh start)\"")


def _run(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmSetupError(f"{cmd[0]} not found on PATH; are you on a SLURM login node?") from None
    except subprocess.TimeoutExpired:
        raise SlurmSetupError(f"`{' '.join(cmd)}` did not answer within {timeout:.0f} s: the SLURM controller "
                              f"is unreachable or overloaded (check `scontrol ping`)") from None


def controller_hint() -> str:
    conf = os.environ.get("SLURM_CONF")
    if conf:
        return (f"SLURM_CONF={conf}: is slurmctld running there (`scontrol ping`)? For the local test cluster "
                f"run: eval \"$(slurm/local_slurm.sh start)\"")
    return ("check `scontrol ping`; if the cluster's config is not in the default place, export SLURM_CONF "
            "(for the local test cluster: eval \"$(slurm/local_slurm.sh start)\")")


def list_partitions() -> list[Partition]:
    """The cluster's partitions from ``sinfo`` (raises SlurmSetupError if the controller does not answer)."""
    res = _run(["sinfo", "--noheader", "--format=%P|%a"])
    if res.returncode != 0:
        raise SlurmSetupError(f"cannot talk to the SLURM controller: {res.stderr.strip() or res.stdout.strip()}. "
                              f"{controller_hint()}")
    parts: dict[str, Partition] = {}
    for line in res.stdout.splitlines():
        if "|" not in line:
            continue
        name, avail = line.strip().split("|", 1)
        default = name.endswith("*")
        name = name.rstrip("*")
        parts[name] = Partition(name, avail.strip(), default)
    return list(parts.values())


def check_partition(requested: str | None, partitions: list[Partition]) -> str | None:
    """Validate ``--partition`` against the cluster; return the warning text for a down partition, else None."""
    names = [p.name for p in partitions]
    listing = ", ".join(f"{p.name}{' (default)' if p.default else ''}" for p in partitions) or "(none)"
    if requested is None:
        if not any(p.default for p in partitions):
            raise SlurmSetupError(f"this cluster has no default partition; choose one with --partition or "
                                  f"slurm.partition (partitions: {listing})")
        return None
    if requested not in names:
        raise SlurmSetupError(f"SLURM has no partition {requested!r}; partitions here: {listing}. "
                              f"Fix --partition or slurm.partition in the experiment file")
    part = next(p for p in partitions if p.name == requested)
    if part.available != "up":
        return f"partition {requested!r} is {part.available}: the job will wait until an admin brings it up"
    return None


def filesystem_type(path: Path, mounts_file: str = "/proc/self/mounts") -> str | None:
    """fstype of the mount holding ``path`` (longest mount-point prefix), None if unknown."""
    try:
        lines = Path(mounts_file).read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    p = str(path)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mnt = fields[1].replace("\\040", " ")
        if (p == mnt or p.startswith(mnt.rstrip("/") + "/") or mnt == "/") and len(mnt) >= len(best):
            best, fstype = mnt, fields[2]
    return fstype


def results_locality(results: Path, mounts_file: str = "/proc/self/mounts") -> tuple[str, str]:
    """('local' | 'shared' | 'unknown', reason) for the results folder, by path prefix and filesystem type."""
    path = results.expanduser().resolve()
    tmpdir = os.environ.get("TMPDIR")
    prefixes = LOCAL_PREFIXES + ((tmpdir.rstrip("/"),) if tmpdir and tmpdir != "/" else ())
    for pre in prefixes:
        if str(path) == pre or str(path).startswith(pre + "/"):
            return "local", f"{path} is under {pre}, which is node-local on clusters"
    fstype = filesystem_type(path, mounts_file)
    if fstype == "tmpfs":
        return "local", f"{path} is on a tmpfs (in-memory, node-local) filesystem"
    if fstype in SHARED_FS:
        return "shared", f"{path} is on {fstype}"
    return "unknown", f"{path} is on a {fstype or 'unknown'} filesystem, not a known network filesystem"


def check_results_shared(results: Path, nodes: int, allow_local: bool, array_mode: bool = False,
                         mounts_file: str = "/proc/self/mounts") -> str | None:
    """Refuse a node-local results folder when several nodes must see it; return a warning otherwise.

    Every node writes Parquet files and Tune state there, and the workers find the Ray head through it; the
    login node reads it back for ``status`` and ``resume``.
    """
    kind, why = results_locality(results, mounts_file)
    if kind == "shared":
        return None
    fix = ("put --results on a filesystem all nodes mount (your home or project directory, usually NFS/Lustre/"
           "GPFS), or pass --allow-local-results if this really is shared")
    if kind == "local" and nodes > 1 and not allow_local:
        raise SlurmSetupError(f"results folder is not on a shared path: {why}. With --nodes {nodes} the compute "
                              f"nodes would not see each other's files; {fix}")
    if kind == "local":
        who = "array tasks may run on other nodes than" if array_mode else "the compute node may not be"
        return (f"results folder looks node-local ({why}); {who} this login node, so `status` and `resume` "
                f"here may not see the results. Fine on a single-machine SLURM; otherwise {fix}")
    if nodes > 1:
        return f"cannot tell whether the results folder is shared ({why}); if the job fails to start, {fix}"
    return None


def python_path_setup() -> list[str]:
    """Shell lines so that compute nodes import this same robustsweep (a source checkout is not installed)."""
    import robustsweep

    pkg_parent = Path(robustsweep.__file__).resolve().parent.parent
    return [f'export PYTHONPATH="{pkg_parent}${{PYTHONPATH:+:$PYTHONPATH}}"']


def explain_sbatch_error(stderr: str, partition: str | None) -> str:
    """Turn sbatch's rejection into a message that names the option to change."""
    low = stderr.lower()
    hints = [
        ("invalid partition", f"partition {partition!r} does not exist: fix --partition / slurm.partition "
                              f"(see `sinfo -s`)"),
        ("invalid account", "fix --account / slurm.account (see `sacctmgr show assoc user=$USER`)"),
        ("invalid qos", "fix --qos / slurm.qos (see `sacctmgr show qos`)"),
        ("memory specification can not be satisfied", "lower --mem / slurm.mem to what the nodes have "
                                                      "(see `sinfo -o '%P %m'`)"),
        ("requested node configuration is not available", "no node has that many CPUs/GPUs or that constraint:"
                                                          " lower --cpus-per-node / --gpus-per-node or fix "
                                                          "--constraint (see `sinfo -o '%P %c %G %f'`)"),
        ("node count specification invalid", "--nodes exceeds the partition's nodes (see `sinfo -s`)"),
        ("time limit", "--time exceeds the partition's MaxTime (see `sinfo -o '%P %l'`)"),
        ("unable to contact slurm controller", controller_hint()),
        ("invalid generic resource", "this partition has no GPUs (gres): set --gpus-per-node 0 or choose a GPU "
                                     "partition"),
    ]
    for needle, hint in hints:
        if needle in low:
            return f"sbatch refused the job: {stderr.strip()}\n  fix: {hint}"
    return f"sbatch refused the job: {stderr.strip()}"


def warn(msg: str) -> None:
    print(f"robustsweep: warning: {msg}", file=sys.stderr)
