"""A real two-node Ray cluster on this machine, started by ``scripts/cluster.sh``.

One cluster serves the whole session (starting one costs ~15 s and ~2 GiB with the
dashboard): a head with the dashboard/job server and one worker node, 1 CPU each, so two
1-CPU trials at once must land on different nodes. Ports are picked free at random below
the kernel's ephemeral range, so parallel sessions on one machine do not collide, and the
cluster is always stopped, leftover processes included.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster.sh"
BLOCK = 300  # head and node ports, dashboard, and 100 worker ports per node


@dataclass(frozen=True)
class Cluster:
    """A running local cluster: what tests connect to, and how to drive cluster.sh."""

    address: str  # GCS, for --ray-address
    dashboard: str  # job server URL, for submit
    dir: Path
    env: dict[str, str]

    def script(self, command: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), command], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def node_ids(self) -> set[str]:
        """Ids of the alive nodes, from ``ray status``."""
        out = subprocess.run(["ray", "status", "--address", self.address], env=self.env,
                             capture_output=True, text=True, timeout=120).stdout
        active = out.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return {word[len("node_"):] for word in active.split() if word.startswith("node_")}


def _free_block() -> int:
    """A first port of BLOCK consecutive ports that nothing listens on."""
    for _ in range(50):
        base = random.randrange(20_000, 32_000 - BLOCK, 10)
        sockets = []
        try:
            for port in range(base, base + BLOCK):
                s = socket.socket()
                sockets.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free block of ports found")


def _leftovers(root: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line.strip()[:160] for line in out.splitlines() if f"{root}/ray/" in line]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    # Short on purpose: Ray's Unix socket paths live under it (limit ~107 characters).
    root = Path(tempfile.mkdtemp(prefix="apc-", dir="/tmp"))
    base = _free_block()
    env = {
        **os.environ,
        "AUTOPEFT_CLUSTER_DIR": str(root),
        "AUTOPEFT_CLUSTER_NODES": "2",
        "AUTOPEFT_CLUSTER_CPUS": "1",
        "AUTOPEFT_CLUSTER_PORT": str(base),
        "AUTOPEFT_CLUSTER_DASHBOARD_PORT": str(base + 40),
        "AUTOPEFT_CLUSTER_WORKER_PORTS": str(base + 100),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    cluster = Cluster(f"127.0.0.1:{base}", f"http://127.0.0.1:{base + 40}", root, env)
    try:
        up = cluster.script("up")
        if up.returncode != 0:
            logs = "\n".join(p.read_text()[-1500:] for p in sorted(root.glob("node*.log")))
            pytest.fail(f"cluster.sh up failed:\n{up.stdout}\n{up.stderr}\n{logs}", pytrace=False)
        yield cluster
    finally:
        down = cluster.script("down")
        left = _leftovers(root)
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stderr
        assert not left, f"cluster.sh down left processes behind: {left}"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    from autopeft.testing import tiny_model_dir

    return tiny_model_dir("bert", tmp_path_factory.mktemp("cluster-bert"))
