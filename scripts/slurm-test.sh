#!/usr/bin/env bash
# chunkflow on real engines: a single-node SLURM cluster (scripts/slurm-local.sh) and Open MPI,
# both from Debian's packages. Called by .ci/run; needs root (or sudo) the first time, to
# install and start the daemons. Takes about a minute once the packages are installed.
#
#  (a) a 16-rank partitioned write of the example's climate dataset through a real SLURM job
#      array (examples/slurm/write_zarr.sh: init, array, verify) holds exactly the files, byte
#      for byte, of the same dataset written by a single process;
#  (b) failures: a rank that fails (--fail-rank 3) makes the write driver fail naming it, and
#      `chunkflow verify` names rank 3 to re-run; re-running only that array task completes the
#      store. In a staged rechunk, a failing rank (a corrupt source chunk read only by the last
#      rank) fails the `--slurm` driver with a non-zero exit naming the stage and task, the
#      dependent stages are cancelled, nothing is published; after the fix `--resume` finishes;
#  (c) a two-stage rechunk plan run through SLURM (`--slurm`, 16 ranks, 4 job arrays) equals the
#      in-process rechunk byte for byte, and rechunked back it equals the source; the emitted
#      batch scripts (`--emit-sbatch`, driver.sh) do the same;
#  (d) the same partitioned write under `mpirun -n 4` (ranks from OMPI_COMM_WORLD_RANK) holds
#      the same bytes as the single-process write.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if ! command -v mpirun >/dev/null; then
    echo "installing Open MPI (openmpi-bin)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        openmpi-bin >/dev/null
fi

cargo build --quiet --bin chunkflow --example partition_write
export CHUNKFLOW=$root/target/debug/chunkflow
export PARTITION_WRITE=$root/target/debug/examples/partition_write

# Bring the cluster up, and down at the end unless it was already up before.
if bash scripts/slurm-local.sh status >/dev/null 2>&1; then
    echo "using the SLURM cluster that is already up" >&2
else
    trap 'bash scripts/slurm-local.sh down' EXIT
    bash scripts/slurm-local.sh up
fi

W=$root/target/slurm-test
rm -rf "$W"
mkdir -p "$W"
SIZE=(--ntime 256 --time-chunk 1 --nlat 16 --nlon 32 --seed 7)
passed=0
failed=0
t0=$SECONDS
check() { # description, then the command; runs it and counts
    local what=$1 t=$SECONDS
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $what ($((SECONDS - t)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $what"
    fi
}
# Same files, same bytes (diff -r also reports files present on one side only).
same_tree() { diff -r "$1" "$2" >&2; }
# Waits for a job to leave the queue; 0 when every task completed.
wait_job() {
    while squeue -h -j "$1" -o %i 2>/dev/null | grep -q .; do sleep 0.3; done
    ! scontrol -o show job "$1" | grep -v 'JobState=COMPLETED' | grep -q .
}

"$PARTITION_WRITE" single "$W/reference.zarr" "${SIZE[@]}" >/dev/null

# (a) ------------------------------------------------------------------------------------------
test_array_write() {
    LOG_DIR=$W/a.logs bash examples/slurm/write_zarr.sh "$W/a.zarr" 16 "${SIZE[@]}" >"$W/a.out" 2>&1 ||
        { cat "$W/a.out" >&2; return 1; }
    grep -q "complete" "$W/a.out" && same_tree "$W/reference.zarr" "$W/a.zarr"
}
check "(a) 16-rank SLURM array write == single-process write" test_array_write

# (b) ------------------------------------------------------------------------------------------
test_failed_rank_rerun() {
    if LOG_DIR=$W/b.logs bash examples/slurm/write_zarr.sh "$W/b.zarr" 16 "${SIZE[@]}" \
        --fail-rank 3 >"$W/b.out" 2>&1; then
        echo "the driver succeeded although rank 3 failed" >&2
        return 1
    fi
    grep -q "ArrayTaskId=3 JobState=FAILED" "$W/b.out" || { cat "$W/b.out" >&2; return 1; }
    grep -q "fails on purpose" "$W/b.out" || { cat "$W/b.out" >&2; return 1; }
    local rc=0
    "$CHUNKFLOW" verify "$W/b.zarr" --ranks 16 --dims time >"$W/b.verify" || rc=$?
    [[ $rc == 3 ]] && grep -q "ranks to re-run .*: 3$" "$W/b.verify" || { cat "$W/b.verify" >&2; return 1; }
    # Re-run only the failed task (a sparse array: the rank is the task id, the count explicit).
    local job
    job=$(sbatch --parsable --array=3 --output="$W/b.logs/rerun-%a.log" \
        examples/slurm/write_partition.sh "$W/b.zarr" --ranks 16 --rank-from-task-id \
        --dims time "${SIZE[@]}")
    wait_job "${job%%;*}" || return 1
    "$CHUNKFLOW" verify "$W/b.zarr" --ranks 16 --dims time >/dev/null &&
        same_tree "$W/reference.zarr" "$W/b.zarr"
}
check "(b) a failed rank is reported, verify names it, re-running it completes the store" \
    test_failed_rank_rerun

RECHUNK=(--chunks time=256,lat=2,lon=4 --max-mem 60KB --min-mem 8KB --threads 1)

test_rechunk_failure() {
    cp -r "$W/reference.zarr" "$W/broken.zarr"
    # The corner chunk: read by the last rank of stage 1 only.
    local chunk=$W/broken.zarr/tas/c/255/0/0
    cp "$chunk" "$W/chunk.saved"
    echo "not zstd" >"$chunk"
    local rc=0
    "$CHUNKFLOW" rechunk "$W/broken.zarr" "$W/f.zarr" "${RECHUNK[@]}" --slurm --ranks 4 \
        >"$W/f.out" 2>&1 || rc=$?
    [[ $rc != 0 ]] || { echo "the driver succeeded on a corrupt chunk" >&2; return 1; }
    grep -q "stage 1 of 4 (SLURM job [0-9]*) failed: task 3 FAILED" "$W/f.out" &&
        grep -q 'tas/c/255/0/0.*corrupt' "$W/f.out" &&
        grep -q "cancelled: stage 2 (job" "$W/f.out" || { cat "$W/f.out" >&2; return 1; }
    local dependent
    dependent=$(grep -o 'cancelled: stage 2 (job [0-9]*' "$W/f.out" | grep -o '[0-9]*$')
    scontrol -o show job "$dependent" | grep -q 'JobState=CANCELLED' ||
        { scontrol -o show job "$dependent" >&2; return 1; }
    [[ ! -e $W/f.zarr/zarr.json ]] || { echo "a failed rechunk was published" >&2; return 1; }
    # Fixed: resume; the finished ranks are skipped.
    cp "$W/chunk.saved" "$chunk"
    "$CHUNKFLOW" rechunk "$W/broken.zarr" "$W/f.zarr" "${RECHUNK[@]}" --slurm --ranks 4 \
        --resume >"$W/f2.out" 2>&1 || { cat "$W/f2.out" >&2; return 1; }
    [[ -e $W/f.zarr/zarr.json ]]
}
check "(b) a failing rank fails the rechunk driver, cancels the dependent stages; --resume finishes" \
    test_rechunk_failure

# (c) ------------------------------------------------------------------------------------------
test_rechunk_slurm() {
    "$CHUNKFLOW" rechunk "$W/reference.zarr" "$W/c.zarr" "${RECHUNK[@]}" --dry-run >"$W/c.plan"
    grep -q "^  stage 2: read" "$W/c.plan" || { echo "not a multi-stage plan:" >&2; cat "$W/c.plan" >&2; return 1; }
    "$CHUNKFLOW" rechunk "$W/reference.zarr" "$W/c.zarr" "${RECHUNK[@]}" --slurm --ranks 16 \
        >"$W/c.out" 2>&1 || { cat "$W/c.out" >&2; return 1; }
    grep -q "stage 4: 16 tasks done" "$W/c.out" || { cat "$W/c.out" >&2; return 1; }
    [[ ! -e $W/c.zarr.rechunk-tmp ]] || { echo "intermediates left behind" >&2; return 1; }
    "$CHUNKFLOW" rechunk "$W/reference.zarr" "$W/c-single.zarr" "${RECHUNK[@]}" >/dev/null
    same_tree "$W/c-single.zarr" "$W/c.zarr" || return 1
    # Rechunked back to the source's chunks, the data variables are the source's files.
    "$CHUNKFLOW" rechunk "$W/c.zarr" "$W/c-back.zarr" --chunks time=1,lat=16,lon=32 \
        --max-mem 16MB --array tas --array pr >/dev/null
    same_tree "$W/reference.zarr/tas" "$W/c-back.zarr/tas" &&
        same_tree "$W/reference.zarr/pr" "$W/c-back.zarr/pr"
}
check "(c) a two-stage rechunk on SLURM (16 ranks) == in-process rechunk; back == source" \
    test_rechunk_slurm

test_emitted_scripts() {
    "$CHUNKFLOW" rechunk "$W/reference.zarr" "$W/e.zarr" "${RECHUNK[@]}" --ranks 8 \
        --emit-sbatch "$W/e.jobs" >/dev/null
    bash "$W/e.jobs/driver.sh" >"$W/e.out" 2>&1 || { cat "$W/e.out" >&2; return 1; }
    same_tree "$W/c-single.zarr" "$W/e.zarr"
}
check "(c) the emitted sbatch scripts and driver.sh give the same target" test_emitted_scripts

# (d) ------------------------------------------------------------------------------------------
test_mpirun() {
    "$CHUNKFLOW" partition init "$W/d.zarr" "${SIZE[@]}" >/dev/null
    mpirun -n 4 --allow-run-as-root --oversubscribe \
        "$CHUNKFLOW" partition write "$W/d.zarr" --dims time "${SIZE[@]}" >"$W/d.out" 2>&1 ||
        { cat "$W/d.out" >&2; return 1; }
    [[ $(grep -c "rank from Open MPI" "$W/d.out") == 4 ]] || { cat "$W/d.out" >&2; return 1; }
    same_tree "$W/reference.zarr" "$W/d.zarr"
}
check "(d) mpirun -n 4 partitioned write (chunkflow partition) == single-process write" test_mpirun

echo "slurm-test: $passed passed, $failed failed in $((SECONDS - t0)) s"
[[ $failed == 0 ]]
