#!/bin/bash
# make test-slurm: install Debian's SLURM daemons (slurmctld, slurmd, munge, the clients) when
# they are missing and this is root with apt; otherwise say why, and the tests skip with it.
need=(slurmctld slurmd munged sbatch squeue scontrol scancel)
missing=()
for b in "${need[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-slurm: ${missing[*]} missing and cannot be installed here (needs root and apt);" \
       "the SLURM tests will skip" >&2
  exit 0
fi
echo "test-slurm: installing slurmctld slurmd munge slurm-client (apt)" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd munge slurm-client \
  >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q slurmctld slurmd munge slurm-client >/dev/null; }
