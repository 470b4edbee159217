"""Bring up a Ray cluster inside a SLURM allocation: a head on the first node, workers on the others.

Why by hand (``ray start`` in each SLURM task) instead of Ray's autoscaler: the allocation already is the
cluster; we only have to start one Ray node per SLURM node and tell the workers where the head is.

Two sweeps (two users, or one user twice) may share a node, so nothing may use Ray's fixed default ports
(6379, 8265, 10001, 52365, workers 10002-19999) or its shared temp dir, and nothing may call ``ray stop``
(it kills *every* Ray process of the user on the node). Instead:

* ports come from a block of ``PORT_BLOCK`` ports chosen from the SLURM job id (consecutive jobs get
  different blocks) and shifted to the next block if any port in it is taken on this node;
* each node runs ``ray start --block`` as a child process in its own session and stops exactly that process
  group at the end;
* the head publishes ``ip:port`` in a small JSON file in the (shared) sweep folder; workers wait for it, test
  that they can open a TCP connection to it, and report a clear error there if they cannot.
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from robustsweep.errors import ClusterError

PORT_LOW = 10000  # below Linux's ephemeral range (32768-60999), so outgoing connections never take our ports
PORT_HIGH = 32000
PORT_BLOCK = 200  # 10 fixed service ports + 190 Ray worker ports per node
N_BLOCKS = (PORT_HIGH - PORT_LOW) // PORT_BLOCK


class RayClusterError(ClusterError):
    """Ray could not be brought up in the allocation; the message says which node and what to change."""


@dataclass(frozen=True)
class RayPorts:
    """Every port one Ray node opens (head-only ones are unused on workers)."""

    gcs: int
    node_manager: int
    object_manager: int
    runtime_env_agent: int
    dashboard_agent_grpc: int
    dashboard_agent_listen: int
    metrics_export: int
    ray_client_server: int
    dashboard: int
    min_worker: int
    max_worker: int

    def all(self) -> list[int]:
        fixed = [self.gcs, self.node_manager, self.object_manager, self.runtime_env_agent,
                 self.dashboard_agent_grpc, self.dashboard_agent_listen, self.metrics_export,
                 self.ray_client_server, self.dashboard]
        return fixed + list(range(self.min_worker, self.max_worker + 1))


def ports_for_block(block: int) -> RayPorts:
    if not 0 <= block < N_BLOCKS:
        raise ValueError(f"port block {block} out of range 0..{N_BLOCKS - 1}")
    b = PORT_LOW + block * PORT_BLOCK
    return RayPorts(gcs=b, node_manager=b + 1, object_manager=b + 2, runtime_env_agent=b + 3,
                    dashboard_agent_grpc=b + 4, dashboard_agent_listen=b + 5, metrics_export=b + 6,
                    ray_client_server=b + 7, dashboard=b + 8, min_worker=b + 10, max_worker=b + PORT_BLOCK - 1)


def block_for_job(job_id: str | int) -> int:
    """The first port block to try for a SLURM job: ``main job id mod N_BLOCKS`` (array suffix ignored)."""
    digits = str(job_id).split("_")[0].split(".")[0]
    if not digits.isdigit():
        raise ValueError(f"not a SLURM job id: {job_id!r}")
    return int(digits) % N_BLOCKS


def port_is_free(port: int) -> bool:
    """True when nothing on this node listens on ``port`` (TCP, any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def choose_ports(job_id: str | int, is_free: Callable[[int], bool] = port_is_free) -> RayPorts:
    """Ports for this job on this node: the job's block, or the next block whose ports are all free."""
    start = block_for_job(job_id)
    for i in range(N_BLOCKS):
        ports = ports_for_block((start + i) % N_BLOCKS)
        if all(is_free(p) for p in ports.all()):
            return ports
    raise RayClusterError(f"no free block of {PORT_BLOCK} TCP ports between {PORT_LOW} and {PORT_HIGH} "
                          f"on {socket.gethostname()}; the node is saturated with other Ray clusters")


# ------------------------------------------------------------------------------------------------ node IP
def interface_ipv4(name: str) -> str | None:
    """IPv4 address of a network interface (Linux SIOCGIFADDR), None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


def node_ip(interface: str | None = None) -> str:
    """The IP this node's Ray processes bind to and other nodes connect to.

    With ``interface`` (``slurm.ray_interface``, e.g. ``ib0``) its address; otherwise the address the node's
    hostname resolves to (what SLURM and ssh use), falling back to the first non-loopback interface when the
    hostname maps to 127.x (common in /etc/hosts on single machines).
    """
    names = [n for _, n in socket.if_nameindex()]
    if interface:
        ip = interface_ipv4(interface)
        if ip is None:
            raise RayClusterError(
                f"network interface {interface!r} has no IPv4 address on {socket.gethostname()} "
                f"(interfaces here: {', '.join(names)}); fix slurm.ray_interface in the experiment file")
        return ip
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        ip = "127.0.0.1"
    if not is_loopback(ip):
        return ip
    for n in names:
        cand = interface_ipv4(n)
        if cand and not is_loopback(cand):
            return cand
    return ip


def can_connect(ip: str, port: int, timeout: float = 5.0) -> str | None:
    """None if a TCP connection to ip:port opens, else the OS error text."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return None
    except OSError as e:
        return e.strerror or str(e)


# ------------------------------------------------------------------------------------------------ commands
def ray_start_command(*, head: bool, ip: str, ports: RayPorts, num_cpus: int | None, num_gpus: int | None,
                      temp_dir: str | None = None, head_address: str | None = None,
                      object_store_bytes: int | None = None, ray_exe: Sequence[str] | None = None) -> list[str]:
    """The ``ray start --block`` command line for one node (head when ``head``, else joining ``head_address``)."""
    if not head and not head_address:
        raise ValueError("a worker needs head_address")
    cmd = list(ray_exe or [sys.executable, "-m", "ray.scripts.scripts"])
    cmd += ["start", "--block", "--disable-usage-stats", f"--node-ip-address={ip}"]
    if head:
        cmd += ["--head", f"--port={ports.gcs}", "--include-dashboard=false", f"--dashboard-port={ports.dashboard}"]
        if _has_ray_client():  # with ray[client] installed the head would otherwise take the fixed port 10001
            cmd.append(f"--ray-client-server-port={ports.ray_client_server}")
        if temp_dir:
            cmd.append(f"--temp-dir={temp_dir}")
    else:
        cmd.append(f"--address={head_address}")
    cmd += [f"--node-manager-port={ports.node_manager}", f"--object-manager-port={ports.object_manager}",
            f"--runtime-env-agent-port={ports.runtime_env_agent}",
            f"--dashboard-agent-grpc-port={ports.dashboard_agent_grpc}",
            f"--dashboard-agent-listen-port={ports.dashboard_agent_listen}",
            f"--metrics-export-port={ports.metrics_export}",
            f"--min-worker-port={ports.min_worker}", f"--max-worker-port={ports.max_worker}"]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        cmd.append(f"--num-gpus={num_gpus}")
    if object_store_bytes:
        cmd.append(f"--object-store-memory={object_store_bytes}")
    return cmd


def _has_ray_client() -> bool:
    """Whether ``ray start --head`` starts a Ray Client server (only with the ``ray[client]`` extras)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error
    except ImportError:  # moved in some future Ray: assume no client, passing the port would then fail
        return False
    return get_ray_client_dependency_error() is None


def slurm_node_resources(env: dict[str, str] | None = None) -> tuple[int | None, int | None, int | None]:
    """(cpus, gpus, object store bytes) this node may use in the allocation, from SLURM's variables.

    Ray would otherwise claim the whole machine's CPUs, GPUs and 30 % of its RAM -- wrong on a shared node.
    """
    env = dict(os.environ if env is None else env)
    cpus = _first_int(env.get("SLURM_CPUS_ON_NODE"))
    gpus: int | None = None
    if env.get("CUDA_VISIBLE_DEVICES") not in (None, ""):
        gpus = len([d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()])
    elif env.get("SLURM_GPUS_ON_NODE"):
        gpus = _first_int(env["SLURM_GPUS_ON_NODE"])
    else:
        gpus = 0
    mem_mb = _first_int(env.get("SLURM_MEM_PER_NODE"))
    store = max(int(mem_mb * 1024 * 1024 * 0.2), 100 * 1024 * 1024) if mem_mb else None
    return cpus, gpus, store


def _first_int(text: str | None) -> int | None:
    """SLURM writes e.g. ``4`` or ``4(x2)``; take the leading integer."""
    if not text:
        return None
    digits = ""
    for c in text:
        if not c.isdigit():
            break
        digits += c
    return int(digits) if digits else None


# ------------------------------------------------------------------------------------------------ processes
@dataclass
class RayNode:
    """One ``ray start --block`` child process (own session, so it can be stopped with its whole group)."""

    proc: subprocess.Popen
    log_path: Path
    address: str

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop this node and everything it started, nothing else (never ``ray stop``).

        SIGTERM goes to ``ray start`` alone: it drains the node and shuts its children down in order
        (signalling the whole group at once leaves it waiting on dead children). Whatever is left in our
        session after ``timeout`` -- or after a clean exit -- gets SIGKILL.
        """
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the SLURM task that started us dies (Linux prctl).

    ``scancel`` kills the task with SIGKILL after KillWait; without this, ``ray start`` (in its own session)
    would outlive the job on clusters whose process tracking is not cgroup-based. Ray's own children share
    the fate of ``ray start`` the same way, so the whole node goes.
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn_ray_node(cmd: list[str], log_path: Path, address: str) -> RayNode:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    return RayNode(proc=proc, log_path=log_path, address=address)


def wait_for_port(node: RayNode, ip: str, port: int, timeout: float) -> None:
    """Block until the node's GCS accepts connections; explain and stop if the process died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise RayClusterError(f"`ray start` on {socket.gethostname()} exited with code "
                                  f"{node.proc.returncode}; its log ({node.log_path}) ends with:\n{node.log_tail()}")
        if can_connect(ip, port, timeout=1.0) is None:
            return
        time.sleep(0.5)
    node.stop()
    raise RayClusterError(f"Ray head on {socket.gethostname()} did not open {ip}:{port} within {timeout:.0f} s; "
                          f"see {node.log_path}")


# ------------------------------------------------------------------------------------------------ rendezvous
@dataclass(frozen=True)
class Rendezvous:
    """Files in the shared sweep folder through which the nodes of one allocation find each other.

    One directory per (job id, restart count): a requeued job never reads the previous run's head address.
    """

    root: Path

    @classmethod
    def for_job(cls, sweep_dir: Path, job_id: str, restart: int) -> Rendezvous:
        return cls(sweep_dir / "slurm" / "ray" / f"{job_id}.{restart}")

    @property
    def head_file(self) -> Path:
        return self.root / "head.json"

    @property
    def done_file(self) -> Path:
        return self.root / "done"

    def error_file(self, host: str) -> Path:
        return self.root / f"error-{host}.txt"

    def publish_head(self, ip: str, port: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.head_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ip": ip, "port": port, "host": socket.gethostname(), "pid": os.getpid()}))
        os.replace(tmp, self.head_file)

    def read_head(self, timeout: float, poll: float = 0.5) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads(self.head_file.read_text())
                return str(info["ip"]), int(info["port"])
            except (OSError, ValueError, KeyError):
                time.sleep(poll)
        raise RayClusterError(
            f"{socket.gethostname()}: the Ray head never published its address in {self.head_file} within "
            f"{timeout:.0f} s. Either the head node failed (see the job's rank-0 log) or this node does not see "
            f"the same results folder as the head -- the results folder must be on a shared filesystem")

    def mark_done(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.done_file.touch()

    def report_error(self, host: str, message: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.error_file(host).write_text(message)

    def errors(self) -> dict[str, str]:
        return {p.name[len("error-"):-len(".txt")]: p.read_text() for p in sorted(self.root.glob("error-*.txt"))}


def unreachable_head_message(host: str, ip: str, port: int, why: str, interface: str | None) -> str:
    hint = ("the interface set in slurm.ray_interface is not routable between nodes; choose another "
            "(e.g. the cluster's ib0 or eth0)") if interface else (
            "set slurm.ray_interface in the experiment file to the interface the nodes share (e.g. ib0)")
    return (f"node {host} cannot reach the Ray head at {ip}:{port} ({why}). Check that compute nodes may open "
            f"TCP ports {PORT_LOW}-{PORT_HIGH} to each other (firewall), or {hint}.")
