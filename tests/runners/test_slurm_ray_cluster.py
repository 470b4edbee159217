"""Ray-in-allocation bootstrap without SLURM: port blocks, ray start command lines, node resources,
the rendezvous files, and the failure messages (unreachable head, dead ray start)."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from robustsweep.runners.slurm import ray_cluster as rc


def test_ports_follow_the_job_id_and_do_not_overlap_between_blocks():
    a, b = rc.choose_ports(1000, is_free=lambda p: True), rc.choose_ports(1001, is_free=lambda p: True)
    assert a == rc.ports_for_block(1000 % rc.N_BLOCKS)
    assert not set(a.all()) & set(b.all())  # consecutive jobs on one node never share a port
    for p in (a, b):
        assert len(set(p.all())) == len(p.all())
        assert all(rc.PORT_LOW <= x < rc.PORT_HIGH for x in p.all())
        # none of Ray's fixed defaults, which would collide with another user's Ray on the node
        assert not {6379, 8265, 10001, 52365} & set(p.all())
    assert rc.block_for_job("1000_7") == rc.block_for_job(1000)  # array suffix ignored


def test_busy_block_is_skipped():
    taken = set(rc.ports_for_block(rc.block_for_job(42)).all()[:1])
    ports = rc.choose_ports(42, is_free=lambda p: p not in taken)
    assert ports == rc.ports_for_block((rc.block_for_job(42) + 1) % rc.N_BLOCKS)


def test_real_listening_port_is_detected():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not rc.port_is_free(port)


def test_all_blocks_busy_is_a_clear_error():
    with pytest.raises(rc.RayClusterError, match="no free block"):
        rc.choose_ports(1, is_free=lambda p: False)


def test_bad_job_id():
    with pytest.raises(ValueError):
        rc.block_for_job("abc")


def test_head_and_worker_commands():
    ports = rc.ports_for_block(3)
    head = rc.ray_start_command(head=True, ip="10.0.0.1", ports=ports, num_cpus=8, num_gpus=2,
                                temp_dir="/tmp/rs-ray-9", object_store_bytes=10**9, ray_exe=["ray"])
    assert head[:3] == ["ray", "start", "--block"]
    assert "--head" in head and f"--port={ports.gcs}" in head and "--node-ip-address=10.0.0.1" in head
    assert f"--min-worker-port={ports.min_worker}" in head and f"--max-worker-port={ports.max_worker}" in head
    assert "--num-cpus=8" in head and "--num-gpus=2" in head and "--temp-dir=/tmp/rs-ray-9" in head
    assert "--include-dashboard=false" in head
    worker = rc.ray_start_command(head=False, ip="10.0.0.2", ports=ports, num_cpus=None, num_gpus=0,
                                  head_address="10.0.0.1:1234", ray_exe=["ray"])
    assert "--head" not in worker and "--address=10.0.0.1:1234" in worker
    assert not any(a.startswith("--port=") for a in worker)
    assert not any(a.startswith("--num-cpus") for a in worker)
    with pytest.raises(ValueError):
        rc.ray_start_command(head=False, ip="x", ports=ports, num_cpus=1, num_gpus=0)


def test_node_resources_from_slurm_env():
    cpus, gpus, store = rc.slurm_node_resources(
        {"SLURM_CPUS_ON_NODE": "16", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_MEM_PER_NODE": "10240"})
    assert (cpus, gpus) == (16, 2)
    assert store == int(10240 * 1024 * 1024 * 0.2)
    cpus, gpus, store = rc.slurm_node_resources({"SLURM_CPUS_ON_NODE": "4(x2)", "SLURM_GPUS_ON_NODE": "1"})
    assert (cpus, gpus, store) == (4, 1, None)
    assert rc.slurm_node_resources({}) == (None, 0, None)  # outside SLURM: no GPUs claimed, Ray decides CPUs


def test_node_ip_with_unknown_interface_names_the_setting():
    with pytest.raises(rc.RayClusterError, match="slurm.ray_interface"):
        rc.node_ip("nosuchif0")
    assert rc.node_ip("lo") == "127.0.0.1"


def test_rendezvous_round_trip_and_errors(tmp_path: Path):
    rdv = rc.Rendezvous.for_job(tmp_path, "77", 1)
    assert rdv.root == tmp_path / "slurm" / "ray" / "77.1"  # a requeue gets a new folder
    rdv.publish_head("10.1.2.3", 15000)
    assert rdv.read_head(timeout=1) == ("10.1.2.3", 15000)
    rdv.report_error("node7", "cannot reach")
    assert rdv.errors() == {"node7": "cannot reach"}
    assert not rdv.done_file.exists()
    rdv.mark_done()
    assert rdv.done_file.exists()


def test_missing_head_blames_shared_filesystem(tmp_path: Path):
    rdv = rc.Rendezvous.for_job(tmp_path, "78", 0)
    with pytest.raises(rc.RayClusterError, match="shared filesystem"):
        rdv.read_head(timeout=0.3, poll=0.1)


def test_unreachable_head_message():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    why = rc.can_connect("127.0.0.1", port, timeout=1)
    assert why is not None
    msg = rc.unreachable_head_message("node3", "127.0.0.1", port, why, None)
    assert "node3 cannot reach the Ray head" in msg and "slurm.ray_interface" in msg and "firewall" in msg


def test_dead_ray_start_is_reported_with_its_log(tmp_path: Path):
    node = rc.spawn_ray_node([sys.executable, "-c", "import sys; print('boom: bad flag'); sys.exit(3)"],
                             tmp_path / "head.log", "x")
    with pytest.raises(rc.RayClusterError) as e:
        rc.wait_for_port(node, "127.0.0.1", 1, timeout=20)
    assert "exited with code 3" in str(e.value) and "boom: bad flag" in str(e.value)


def test_stop_kills_the_whole_process_group(tmp_path: Path):
    # a parent that ignores SIGTERM and has a child: stop() must leave neither behind
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              "print(p.pid, flush=True); time.sleep(60)")
    node = rc.spawn_ray_node([sys.executable, "-c", script], tmp_path / "n.log", "x")
    import time

    for _ in range(100):
        text = (tmp_path / "n.log").read_text().strip()
        if text:
            break
        time.sleep(0.1)
    child = int(text)
    node.stop(timeout=1)
    assert node.proc.poll() is not None
    time.sleep(0.3)
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(child)], capture_output=True, text=True).stdout.strip()
    assert out == "" or out.startswith("Z")  # gone (or a zombie awaiting its reaper)
