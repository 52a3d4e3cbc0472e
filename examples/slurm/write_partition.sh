#!/bin/bash
# One rank of a partitioned write (xpartition's write_partition.sh): a SLURM job array, one
# task per rank. write_zarr.sh submits it after `partition_write init`:
#
#   sbatch --array=0-15 examples/slurm/write_partition.sh STORE [--dims time] [size flags]
#
# Each task runs `partition_write write`, which takes its rank from SLURM_ARRAY_TASK_ID (minus
# SLURM_ARRAY_TASK_MIN) and the number of ranks from SLURM_ARRAY_TASK_COUNT. To re-run some
# failed ranks of 16: sbatch --array=3,7 write_partition.sh STORE --ranks 16 --rank-from-task-id
# (sparse arrays need the count explicitly: pass --ranks 16; the rank is then the task id).
#SBATCH --job-name=partition-write
#SBATCH --ntasks=1
#SBATCH --output=partition-write-%A_%a.log
set -euo pipefail

# The example binary (cargo build --release --example partition_write); jobs start in the
# directory sbatch was called from.
bin=${PARTITION_WRITE:-target/release/examples/partition_write}

args=()
for a in "$@"; do
    if [[ $a == --rank-from-task-id ]]; then
        args+=(--rank "$SLURM_ARRAY_TASK_ID")
    else
        args+=("$a")
    fi
done
echo "rank task $SLURM_ARRAY_TASK_ID of array $SLURM_ARRAY_JOB_ID on $(hostname)" >&2
exec "$bin" write "${args[@]}"
