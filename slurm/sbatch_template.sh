#!/bin/bash
# robustsweep with plain sbatch -- for users who prefer writing their own job script to `robustsweep submit`.
#
#   cp slurm/sbatch_template.sh my_sweep.sh   # edit the #SBATCH lines and the settings below
#   sbatch my_sweep.sh
#   robustsweep status quickstart --results "$HOME/robustsweep-results"
#
# What it does (the same as `robustsweep submit --backend slurm --mode ray`, minus submitit):
#   * one task per node (--ntasks-per-node=1); task 0 starts the Ray head, the others start Ray workers that
#     join it. Ports are derived from the job id and checked free, so two sweeps sharing a node do not collide;
#     Ray is given only the CPUs/GPUs/memory of this allocation.
#   * task 0 then runs the Ray Tune driver over every trial of the sweep that has no result yet; each trial
#     writes <results>/<sweep>/trials/<trial_id>.parquet. Finished trials are never rerun.
#   * rank 0 records the job in <results>/<sweep>/slurm/jobs.jsonl, so `robustsweep status` and
#     `robustsweep resume` know about it.
#
# Requirements:
#   * RESULTS must be on a filesystem every node mounts (home/project space on NFS, Lustre, GPFS ...). The nodes
#     find the Ray head through a file there, and the login node reads the results from there.
#   * The same Python environment (with robustsweep installed) on every node: activate it below.
#   * Compute nodes must reach each other on TCP ports 10000-32000 (Ray). If the nodes' hostnames resolve to an
#     address the others cannot reach, set RAY_INTERFACE to the cluster network interface (e.g. ib0).
#
# Pre-emption / time limit: with --requeue, a pre-empted job is put back in the queue by SLURM and starts over;
# the restarted driver restores Ray Tune's saved state and skips every trial already in the store. (Jobs from
# `robustsweep submit` additionally checkpoint and requeue themselves before the time limit via submitit.)
# After a cancelled or failed job: `robustsweep resume SWEEP --results RESULTS` runs only what is missing.

#SBATCH --job-name=rs-quickstart
#SBATCH --nodes=1                     # >1: a multi-node Ray cluster
#SBATCH --ntasks-per-node=1           # exactly one task per node (a Ray head or a Ray worker)
#SBATCH --cpus-per-task=4             # CPUs per node handed to Ray (trials ask resources.cpus_per_trial each)
##SBATCH --gpus-per-node=1            # GPUs per node; fractional resources.gpus_per_trial packs trials on a GPU
#SBATCH --mem=16G                     # per node; Ray's object store gets 20 % of it
#SBATCH --time=01:00:00
##SBATCH --partition=gpu
##SBATCH --account=myproject
##SBATCH --qos=normal
##SBATCH --constraint=a100
#SBATCH --requeue                     # allow SLURM to requeue this job on pre-emption
#SBATCH --output=rs-%x-%j.out         # all tasks' output (Ray head progress lines come from task 0)

set -euo pipefail

# ---- settings ------------------------------------------------------------------------------------------------
SPEC="${SPEC:-experiments/quickstart.yaml}"        # experiment file (relative to the submit directory)
RESULTS="${RESULTS:-$HOME/robustsweep-results}"    # shared results folder (see Requirements)
RAY_INTERFACE="${RAY_INTERFACE:-}"                 # e.g. ib0; empty = the address the hostname resolves to
EXTRA_ARGS=()                                      # e.g. (--set train.epochs=5 --max-concurrent 8)

# ---- environment ---------------------------------------------------------------------------------------------
# module load cuda/12.4
# source "$HOME/venvs/robustsweep/bin/activate"

# ---- run -----------------------------------------------------------------------------------------------------
# where this job's output goes, so `robustsweep status` can point at it
RS_SBATCH_LOG="$(scontrol show job "$SLURM_JOB_ID" | sed -n 's/^ *StdOut=//p' | head -n1)"
export RS_SBATCH_LOG
iface=()
if [[ -n "$RAY_INTERFACE" ]]; then iface=(--ray-interface "$RAY_INTERFACE"); fi
# --kill-on-bad-exit: if the head (or a worker) fails, end the whole step instead of leaving nodes idling
srun --kill-on-bad-exit=1 python -m robustsweep.runners.slurm.job \
  --spec "$SPEC" --results "$RESULTS" "${iface[@]}" "${EXTRA_ARGS[@]}"
