#!/bin/bash
# xpartition's README flow on SLURM: initialize the store once, write it with a job array of
# RANKS independent ranks, wait for the array, then check that every chunk is there.
#
#   examples/slurm/write_zarr.sh STORE [RANKS] [size flags and write flags...]
#   e.g. examples/slurm/write_zarr.sh /scratch/climate.zarr 16 --ntime 256 --time-chunk 8
#
# Binaries (build them first): PARTITION_WRITE (default target/release/examples/partition_write)
# and CHUNKFLOW (default target/release/chunkflow). SBATCH_ARGS adds sbatch options (e.g.
# "--partition=debug --time=00:10:00"). Exit status: 0 when the store is complete; 1 when a rank
# failed (its log is named); 3 when chunks are missing (chunkflow verify names the ranks).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
store=${1:?usage: write_zarr.sh STORE [RANKS] [flags...]}
ranks=${2:-16}
shift $(($# >= 2 ? 2 : 1))
bin=${PARTITION_WRITE:-target/release/examples/partition_write}
chunkflow=${CHUNKFLOW:-target/release/chunkflow}
logs=${LOG_DIR:-$store.logs}
mkdir -p "$logs"

# Size flags go to every step; --fail-rank only to the ranks.
size=()
write=()
dims=time
while (($#)); do
    case $1 in
        --dims) dims=$2; shift 2 ;;
        --fail-rank) write+=("$1" "$2"); shift 2 ;;
        *) size+=("$1"); shift ;;
    esac
done
write+=(--dims "$dims")

# 1. Once: metadata and index coordinates.
"$bin" init "$store" --overwrite "${size[@]}"

# 2. The ranks: one job array. (`sbatch --wait` polls slowly, up to 10 s between checks, so
#    poll squeue instead.)
# shellcheck disable=SC2086
job=$(sbatch --parsable --array=0-$((ranks - 1)) --output="$logs/rank-%a.log" ${SBATCH_ARGS:-} \
    "$here/write_partition.sh" "$store" "${size[@]}" "${write[@]}")
job=${job%%;*}
echo "submitted job array $job ($ranks ranks)" >&2
while squeue -h -j "$job" -o %i 2>/dev/null | grep -q .; do sleep 0.5; done

# 3. Did every rank succeed? (No accounting database needed: scontrol keeps finished jobs for
#    MinJobAge seconds.)
bad=$(scontrol -o show job "$job" | grep -v 'JobState=COMPLETED' || true)
if [[ -n $bad ]]; then
    echo "ranks failed:" >&2
    grep -oE 'ArrayTaskId=[^ ]*|JobState=[^ ]*|ExitCode=[^ ]*' <<<"$bad" | paste -d' ' - - - >&2
    for t in $(grep -oE 'ArrayTaskId=[0-9]+' <<<"$bad" | cut -d= -f2); do
        echo "--- $logs/rank-$t.log" >&2
        tail -n 5 "$logs/rank-$t.log" >&2 || true
    done
    echo "re-run them with: sbatch --array=<ids> $here/write_partition.sh $store --ranks $ranks --rank-from-task-id --dims $dims ${size[*]}" >&2
    exit 1
fi

# 4. Every chunk of every variable written?
"$chunkflow" verify "$store" --ranks "$ranks" --dims "$dims"
