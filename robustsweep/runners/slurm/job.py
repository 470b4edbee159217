"""What runs inside the SLURM allocation in ``--mode ray``: one submitit task per node.

Rank 0 starts the Ray head, publishes its address, waits for the other nodes, runs the Tune driver over the
sweep's unfinished trials (storage on the shared results folder) and finally tells the workers to stop.
Every other rank starts a Ray worker that joins the head and stays until the head is done.

Pre-emption / time limit: submitit sends SIGUSR2 to rank 0, calls :meth:`RaySweepJob.checkpoint` and requeues
the job. Nothing needs to be saved in the callable: the Parquet files and Tune's experiment state on the shared
folder are the checkpoint, and the requeued job restores Tune and skips every trial already in the store.

Ray is imported only after the cluster's auth-token environment is set (Ray reads it at import/init).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import submitit

from robustsweep.runners.slurm.ray_cluster import (
    RayClusterError,
    Rendezvous,
    can_connect,
    choose_ports,
    is_loopback,
    node_ip,
    ray_start_command,
    slurm_node_resources,
    spawn_ray_node,
    unreachable_head_message,
    wait_for_port,
)

HEAD_LOST_S = 60.0


@dataclass
class JobConfig:
    """Everything the allocation needs, pickled by submitit (plain values only)."""

    results: str
    sweep: str
    runtime: dict[str, Any] = field(default_factory=dict)  # robustsweep.core.trial.Runtime fields
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    restart_errored: bool = False
    ray_interface: str | None = None
    head_timeout_s: float = 180.0

    @property
    def sweep_dir(self) -> Path:
        return Path(self.results) / self.sweep


def _use_token(path: Path) -> None:
    """Token authentication for this job's Ray cluster (Ray >= 2.5x enables it by default for ``ray start``).

    A per-job token in the (shared, private) rendezvous folder instead of ``~/.ray/auth_token``: works when
    home directories differ between nodes, and other users' drivers on a shared node cannot attach.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


def _create_token(rdv: Rendezvous) -> Path:
    rdv.root.mkdir(parents=True, exist_ok=True)
    path = rdv.root / "auth_token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


def _temp_dir(job_id: str) -> str:
    # short: Ray's unix sockets live under it and paths are limited to ~107 bytes
    return f"/tmp/rs-ray-{job_id}"


def wait_for_nodes(expected: int, timeout: float, rdv: Rendezvous, head_alive, address: str) -> None:
    """Block until ``expected`` Ray nodes are alive; fail fast with a worker's own error when it reports one."""
    import ray

    deadline = time.monotonic() + timeout
    alive = 0
    while time.monotonic() < deadline:
        alive = sum(1 for n in ray.nodes() if n.get("Alive"))
        if alive >= expected:
            return
        errs = rdv.errors()
        if errs:
            detail = "\n".join(f"  {host}: {msg}" for host, msg in errs.items())
            raise RayClusterError(f"{len(errs)} worker node(s) could not join the Ray head at {address}:\n{detail}")
        if not head_alive():
            raise RayClusterError(f"the Ray head at {address} died while waiting for workers; see {rdv.root}")
        time.sleep(1.0)
    raise RayClusterError(
        f"only {alive} of {expected} nodes joined the Ray head at {address} within {timeout:.0f} s. Worker logs: "
        f"{rdv.root}/ray-worker-*.log and the job's per-rank logs. Common causes: a firewall between compute "
        f"nodes, or the head's address ({address}) not routable from them -- set slurm.ray_interface")


class RaySweepJob(submitit.helpers.Checkpointable):
    """The callable every task of a ray-mode job runs (``nodes`` tasks, one per node)."""

    def __init__(self, cfg: JobConfig) -> None:
        self.cfg = cfg

    def __call__(self) -> dict[str, Any]:
        # SLURM's own variables (not submitit.JobEnvironment): the same code runs under a plain sbatch script
        job_id = os.environ["SLURM_JOB_ID"]
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        nnodes = int(os.environ.get("SLURM_JOB_NUM_NODES", os.environ.get("SLURM_NNODES", "1")))
        restart = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        rdv = Rendezvous.for_job(self.cfg.sweep_dir, job_id, restart)
        if rank == 0:
            return self._head(rdv, job_id, nnodes, restart)
        self._worker(rdv, job_id)
        return {"role": "worker", "host": socket.gethostname()}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on pre-emption/time-out: requeue as is -- the state is on the shared folder."""
        print(f"robustsweep: job interrupted on {socket.gethostname()}; requeueing. Finished trials are in "
              f"{self.cfg.sweep_dir / 'trials'}, Tune state in {self.cfg.sweep_dir / 'tune'}", flush=True)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    # ------------------------------------------------------------------------------------------ head
    def _head(self, rdv: Rendezvous, job_id: str, nnodes: int, restart: int) -> dict[str, Any]:
        cfg = self.cfg
        host = socket.gethostname()
        ip = node_ip(cfg.ray_interface)
        if nnodes > 1 and is_loopback(ip):
            raise RayClusterError(f"the head node {host} resolves to the loopback address {ip}, which other nodes "
                                  f"cannot reach; set slurm.ray_interface to the cluster network interface")
        _use_token(_create_token(rdv))
        ports = choose_ports(job_id)
        cpus, gpus, store = slurm_node_resources()
        cmd = ray_start_command(head=True, ip=ip, ports=ports, num_cpus=cpus, num_gpus=gpus,
                                temp_dir=_temp_dir(job_id), object_store_bytes=store)
        address = f"{ip}:{ports.gcs}"
        node = spawn_ray_node(cmd, rdv.root / f"ray-head-{host}.log", address)
        try:
            wait_for_port(node, ip, ports.gcs, cfg.head_timeout_s)
            rdv.publish_head(ip, ports.gcs)
            print(f"robustsweep: Ray head {address} on {host} (restart {restart}; {cpus} CPUs, {gpus} GPUs); "
                  f"{nnodes - 1} worker node(s) to join", flush=True)
            from robustsweep.runners.tune import ensure_ray

            ensure_ray(address=address)
            wait_for_nodes(nnodes, cfg.head_timeout_s, rdv, node.alive, address)
            return self._drive(address)
        finally:
            rdv.mark_done()
            if "ray" in sys.modules:
                import ray

                ray.shutdown()
            node.stop()
            shutil.rmtree(_temp_dir(job_id), ignore_errors=True)  # Ray's session files of this job only

    def _drive(self, address: str) -> dict[str, Any]:
        from robustsweep.core.trial import Runtime
        from robustsweep.runners.tune import run_pending
        from robustsweep.sweep.folder import load_sweep

        cfg = self.cfg
        sw = load_sweep(cfg.results, cfg.sweep)
        rt = Runtime(**cfg.runtime)
        summary = run_pending(sw, rt, cpus_per_trial=cfg.cpus_per_trial, gpus_per_trial=cfg.gpus_per_trial,
                              address=address, max_concurrent=cfg.max_concurrent,
                              restart_errored=cfg.restart_errored, out=sys.stdout)
        print(f"robustsweep: {summary.ok}/{summary.total} trials ok, {summary.failed} failed, "
              f"{summary.elapsed_s:.0f}s", flush=True)
        for tid, err in summary.errors.items():
            print(f"robustsweep: FAILED {tid}: {err}", flush=True)
        return {"role": "head", **asdict(summary)}

    # ------------------------------------------------------------------------------------------ worker
    def _worker(self, rdv: Rendezvous, job_id: str) -> None:
        cfg = self.cfg
        host = socket.gethostname()
        try:
            head_ip, port = rdv.read_head(cfg.head_timeout_s)
            why = can_connect(head_ip, port)
            if why is not None:
                raise RayClusterError(unreachable_head_message(host, head_ip, port, why, cfg.ray_interface))
            _use_token(rdv.root / "auth_token")
            ip = node_ip(cfg.ray_interface)
            ports = choose_ports(job_id)
            cpus, gpus, store = slurm_node_resources()
            cmd = ray_start_command(head=False, ip=ip, ports=ports, num_cpus=cpus, num_gpus=gpus,
                                    head_address=f"{head_ip}:{port}", object_store_bytes=store)
            node = spawn_ray_node(cmd, rdv.root / f"ray-worker-{host}.log", f"{head_ip}:{port}")
        except RayClusterError as e:
            rdv.report_error(host, str(e))
            raise
        try:
            lost_since: float | None = None
            while not rdv.done_file.exists():
                if not node.alive():
                    msg = (f"`ray start` on worker {host} exited with code {node.proc.returncode}; "
                           f"log {node.log_path} ends with:\n{node.log_tail(15)}")
                    rdv.report_error(host, msg)
                    raise RayClusterError(msg)
                # a head killed outright never writes the done file: stop once its port stays closed
                if can_connect(head_ip, port, timeout=5.0) is None:
                    lost_since = None
                elif lost_since is None:
                    lost_since = time.monotonic()
                elif time.monotonic() - lost_since > HEAD_LOST_S:
                    raise RayClusterError(f"worker {host}: the Ray head {head_ip}:{port} has been unreachable "
                                          f"for {HEAD_LOST_S:.0f} s; the head task probably died (see rank 0's log)")
                time.sleep(2.0)
        finally:
            node.stop()


# ------------------------------------------------------------------------------------------ plain sbatch
def main(argv: list[str] | None = None) -> int:
    """``srun python -m robustsweep.runners.slurm.job --spec S --results R`` in a plain sbatch script.

    The same head/worker logic as ``robustsweep submit`` without submitit on the login node (see
    slurm/sbatch_template.sh). Rank 0 prepares the sweep folder and records the job so that ``status`` and
    ``resume`` know about it; a requeued job (``#SBATCH --requeue``) restores Tune and skips finished trials.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m robustsweep.runners.slurm.job",
                                 description="Run a robustsweep sweep on a Ray cluster spanning this SLURM job.")
    ap.add_argument("--spec", help="experiment file; prepares the sweep (rank 0) before running it")
    ap.add_argument("--sweep", help="sweep name (default: the spec's name)")
    ap.add_argument("--results", required=True, help="results folder on a filesystem every node mounts")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--max-concurrent", type=int, default=None)
    ap.add_argument("--restart-errored", action="store_true")
    ap.add_argument("--ray-interface", default=None, help="network interface for Ray, e.g. ib0")
    ap.add_argument("--head-timeout", type=float, default=180.0)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    if "SLURM_JOB_ID" not in os.environ:
        ap.error("run this inside a SLURM job step: srun python -m robustsweep.runners.slurm.job ...")
    from robustsweep.config.spec import SpecError, load_spec
    from robustsweep.core.runtime import runtime_for
    from robustsweep.sweep.folder import load_sweep, prepare_sweep

    results = str(Path(a.results).expanduser().resolve())
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    try:
        if a.spec:
            spec = load_spec(a.spec, a.overrides)
            name = a.sweep or spec.name
            if rank == 0:
                sw = prepare_sweep(spec, results, name)
                _record_sbatch_job(sw)
        elif not a.sweep:
            ap.error("give --spec (and optionally --sweep) or --sweep of an existing sweep")
        else:
            name = a.sweep
        sw = load_sweep(results, name) if rank == 0 else None
        sw_spec = sw.spec if sw else None
    except (SpecError, FileNotFoundError) as e:
        print(f"robustsweep: error: {e}", file=sys.stderr)
        return 2
    # rank 0 drives the sweep and needs its runtime; other ranks only start Ray workers
    runtime = asdict(runtime_for(sw, data_root=a.data_root, cache_dir=a.cache_dir, device=a.device)) if sw else {}
    res = sw_spec.resources if sw_spec else None
    cfg = JobConfig(results=results, sweep=name, runtime=runtime,
                    cpus_per_trial=res.cpus_per_trial if res else 1.0,
                    gpus_per_trial=res.gpus_per_trial if res else 0.0, max_concurrent=a.max_concurrent,
                    restart_errored=a.restart_errored, ray_interface=a.ray_interface, head_timeout_s=a.head_timeout)
    out = RaySweepJob(cfg)()
    return 0 if out.get("role") == "worker" or not out.get("failed") else 1


def _record_sbatch_job(sw: Any) -> None:
    """Add this plain-sbatch job to the sweep's job list (once, even when the job is requeued)."""
    from robustsweep.runners.slurm.records import SlurmJob, append_record, read_records

    job_id = os.environ["SLURM_JOB_ID"]
    if any(r.job_id == job_id for r in read_records(sw.dir)):
        return
    log = os.environ.get("RS_SBATCH_LOG")  # the template exports the resolved --output path
    append_record(sw.dir, SlurmJob(job_id=job_id, mode="ray", sweep=sw.name, folder=str(sw.dir / "slurm"),
                                   trial_ids=[t["trial_id"] for t in sw.pending()],
                                   nodes=int(os.environ.get("SLURM_JOB_NUM_NODES", "1")), command="sbatch",
                                   log=log))


if __name__ == "__main__":
    sys.exit(main())
