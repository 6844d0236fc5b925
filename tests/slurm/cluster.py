"""A real one-node SLURM on localhost, in one temporary folder, for the tests in this package.

Started from generated files (munge key, slurm.conf) with Debian's munged, slurmctld and slurmd
(`make test-slurm` installs them with apt when they are missing); stopped by the PIDs in their
own pid files: only the daemons it started. Needs root (slurmd runs jobs as their user).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why a cluster cannot start here (None when it can)."""
    absent = [d for d in (*DAEMONS, "sbatch", "squeue", "scontrol", "scancel")
              if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} missing; make test-slurm installs it)"
    if os.geteuid() != 0:
        return "the one-node SLURM needs root (slurmd runs jobs as their user)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    """start() the daemons in `root`; env for the clients; stop() them."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root, self.cpus = Path(root), cpus
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: dict[str, Path] = {}

    def start(self, timeout: float = 60) -> "Cluster":
        r = self.root
        for d in ("state", "spool", "log", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        sock = r / "munge" / "munge.socket"
        self.pids["munged"] = r / "munge" / "munged.pid"
        subprocess.run([_exe("munged"), f"--key-file={key}", f"--socket={sock}",
                        f"--pid-file={self.pids['munged']}", f"--log-file={r}/log/munged.log",
                        f"--seed-file={r}/munge/seed", "--force"], check=True, timeout=30)
        ctl, node = _free_port(), _free_port()
        self.conf.write_text(f"""ClusterName=tnatest
SlurmctldHost={self.host}
SlurmctldPort={ctl}
SlurmdPort={node}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=600
NodeName={self.host} CPUs={self.cpus} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        self.pids["slurmctld"] = r / "slurmctld.pid"
        self.pids["slurmd"] = r / "slurmd.pid"
        subprocess.run([_exe("slurmctld"), "-f", str(self.conf)], check=True, env=self.env,
                       timeout=30)
        subprocess.run([_exe("slurmd"), "-f", str(self.conf)], check=True, env=self.env,
                       timeout=30)
        t0 = time.time()
        while time.time() - t0 < timeout:
            p = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True,
                               text=True, timeout=10)
            if p.returncode == 0 and p.stdout.strip() in ("idle", "mixed", "allocated"):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the one-node SLURM did not come up in {timeout:.0f} s; see {r}/log")

    def run(self, *cmd, check=True) -> str:
        p = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
        return p.stdout

    def wait(self, job_ids, timeout: float = 300) -> None:
        """Until none of `job_ids` is pending or running."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if not self.run("squeue", "-h", "-j", ",".join(job_ids), check=False).strip():
                return
            time.sleep(1)
        raise TimeoutError(f"jobs {job_ids} still queued after {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the daemons this cluster started, by the PIDs in their pid files."""
        if (self.root / "slurmctld.pid").exists():
            subprocess.run(["scancel", "--full", "-u", "root"], env=self.env,
                           capture_output=True, timeout=30)
        for name in reversed(DAEMONS):
            path = self.pids.get(name)
            try:
                pid = int(path.read_text().split()[0]) if path else None
            except (OSError, ValueError, IndexError):
                pid = None
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
