//! A distributed rechunk on a SLURM cluster: the batch scripts (one job array per stage, one
//! task per rank, and a driver script that chains them), and a driver that submits them with
//! `--dependency=afterok`, waits by polling `scontrol` (no accounting database is needed), and
//! reports failed tasks with their logs.
//!
//! Script generation is pure ([`stage_script`], [`driver_script`]): `--emit-sbatch` writes the
//! scripts for users to inspect, adapt and submit; [`run_on_slurm`] writes the same scripts and
//! runs them itself (`--slurm`). Either way the flow is: prepare once, stage 1's job array,
//! stage 2's array (started by SLURM only if every task of stage 1 succeeded), ..., finalize
//! once. When a task fails, the driver cancels the jobs still queued or running, names the
//! failed stage, tasks, exit codes and log files, and publishes nothing; re-running the driver
//! with `--resume` (or resubmitting only the failed tasks, `sbatch --array=3,7 stage-1.sbatch`,
//! then the rest) finishes the job, skipping what is done.
//!
//! Clusters that lack `DependencyParameters=kill_invalid_depend` leave a dependent job pending
//! forever after a failure; the driver does not wait for it: it cancels it.
//!
//! Must not: run a rank's work itself, or publish before every stage has succeeded.

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{DistributedError, DistributedRechunk, FinalizeOutcome};

/// The command line that runs one step of the rechunk (`chunkflow rechunk SRC DST --chunks ...
/// --max-mem ...`): the step's flags (`--prepare`, `--stage S --ranks N --rank R`,
/// `--finalize`) are appended to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankCommand {
    /// The program (an absolute path, so jobs find it).
    pub program: PathBuf,
    /// Its arguments before the step's flags.
    pub args: Vec<String>,
    /// The directory the jobs run in (relative paths in `args` are relative to it).
    pub workdir: PathBuf,
}

impl RankCommand {
    /// The shell command line with `extra` arguments appended (each quoted, except that
    /// `$SLURM_ARRAY_TASK_ID` is passed through double quotes so the shell expands it).
    pub fn shell_line(&self, extra: &[&str]) -> String {
        let mut words = vec![sh_quote(&self.program.display().to_string())];
        words.extend(self.args.iter().map(|a| sh_quote(a)));
        words.extend(extra.iter().map(|&a| {
            if a == "$SLURM_ARRAY_TASK_ID" {
                "\"$SLURM_ARRAY_TASK_ID\"".to_string()
            } else {
                sh_quote(a)
            }
        }));
        words.join(" ")
    }
}

/// Quotes `word` for a POSIX shell (unchanged when it holds only safe characters).
///
/// ```
/// use chunkflow::rechunk::distributed::slurm::sh_quote;
/// assert_eq!(sh_quote("data/src.zarr"), "data/src.zarr");
/// assert_eq!(sh_quote("it's here"), r#"'it'\''s here'"#);
/// assert_eq!(sh_quote(""), "''");
/// ```
pub fn sh_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./=:,+-@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Where and how the jobs run.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// Where the scripts go; the tasks' logs go to its `logs/` folder.
    pub dir: PathBuf,
    /// The jobs' name prefix (`-s1`, `-s2`, ... are appended).
    pub job_name: String,
    /// More `sbatch` options, one per `#SBATCH` line (e.g. `--partition=debug`,
    /// `--time=01:00:00`, `--cpus-per-task=4`).
    pub sbatch_args: Vec<String>,
    /// How often the driver asks SLURM about the jobs.
    pub poll: Duration,
    /// Give up (cancelling the jobs) after this long; `None`: wait as long as it takes.
    pub timeout: Option<Duration>,
}

impl SlurmOptions {
    /// Scripts and logs in `dir`, default name, no extra options, polling every half second,
    /// no timeout.
    pub fn new(dir: impl Into<PathBuf>) -> SlurmOptions {
        SlurmOptions {
            dir: dir.into(),
            job_name: "chunkflow-rechunk".into(),
            sbatch_args: Vec::new(),
            poll: Duration::from_millis(500),
            timeout: None,
        }
    }

    fn logs(&self) -> PathBuf {
        absolute(&self.dir).join("logs")
    }

    /// The log file of task `task` of job `job` in stage `stage`.
    pub fn log_file(&self, stage: usize, job: &str, task: &str) -> PathBuf {
        self.logs().join(format!("stage-{stage}-{job}_{task}.log"))
    }
}

/// One stage's job array: its stage number and its number of ranks (array tasks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageJob {
    /// The stage, from 1.
    pub stage: usize,
    /// The ranks (array tasks `0..ranks`).
    pub ranks: usize,
}

/// The job arrays for `run` with at most `max_ranks` ranks per stage (a stage with fewer
/// blocks gets fewer ranks, see [`DistributedStage::ranks_for`](super::DistributedStage::ranks_for)).
pub fn stage_jobs(run: &DistributedRechunk, max_ranks: usize) -> Vec<StageJob> {
    run.stages()
        .iter()
        .map(|s| StageJob {
            stage: s.number,
            ranks: s.ranks_for(max_ranks),
        })
        .collect()
}

/// The batch script of one stage: a job array with one task per rank, each running the
/// stage's share of that rank.
///
/// ```
/// use std::path::PathBuf;
/// use chunkflow::rechunk::distributed::slurm::{RankCommand, SlurmOptions, StageJob, stage_script};
/// let cmd = RankCommand {
///     program: "/usr/bin/chunkflow".into(),
///     args: vec!["rechunk".into(), "a.zarr".into(), "b.zarr".into()],
///     workdir: "/work".into(),
/// };
/// let script = stage_script(&cmd, StageJob { stage: 2, ranks: 16 }, 3, &SlurmOptions::new("/work/jobs"));
/// assert!(script.contains("#SBATCH --array=0-15\n"));
/// assert!(script.contains(
///     "/usr/bin/chunkflow rechunk a.zarr b.zarr --stage 2 --ranks 16 --rank \"$SLURM_ARRAY_TASK_ID\""
/// ));
/// ```
pub fn stage_script(
    cmd: &RankCommand,
    job: StageJob,
    stages: usize,
    opts: &SlurmOptions,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# chunkflow rechunk: stage {} of {stages}, one array task per rank (rank = \
         SLURM_ARRAY_TASK_ID).",
        job.stage
    );
    if job.stage > 1 {
        let _ = writeln!(
            s,
            "# The driver submits it to start once stage {} has succeeded.",
            job.stage - 1
        );
    }
    let _ = writeln!(
        s,
        "# To re-run some ranks only: sbatch --array=3,7 {}",
        sh_quote(&script_path(opts, job.stage).display().to_string())
    );
    let _ = writeln!(s, "#SBATCH --job-name={}-s{}", opts.job_name, job.stage);
    let _ = writeln!(s, "#SBATCH --array=0-{}", job.ranks.max(1) - 1);
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(
        s,
        "#SBATCH --output={}",
        opts.logs()
            .join(format!("stage-{}-%A_%a.log", job.stage))
            .display()
    );
    let _ = writeln!(s, "#SBATCH --chdir={}", cmd.workdir.display());
    for arg in &opts.sbatch_args {
        let _ = writeln!(s, "#SBATCH {arg}");
    }
    let _ = writeln!(s, "set -euo pipefail");
    let stage = job.stage.to_string();
    let ranks = job.ranks.to_string();
    let _ = writeln!(
        s,
        "exec {}",
        cmd.shell_line(&[
            "--stage",
            &stage,
            "--ranks",
            &ranks,
            "--rank",
            "$SLURM_ARRAY_TASK_ID"
        ])
    );
    s
}

fn script_path(opts: &SlurmOptions, stage: usize) -> PathBuf {
    absolute(&opts.dir).join(format!("stage-{stage}.sbatch"))
}

/// The driver script: prepare (its arguments, such as `--resume` or `--overwrite`, are passed
/// to the prepare step), submit every stage's array after the previous one
/// (`--dependency=afterok`), wait for each stage by polling `scontrol` and stop at the first
/// failure (cancelling the rest, exit status 1), then finalize.
///
/// ```
/// use chunkflow::rechunk::distributed::slurm::{RankCommand, SlurmOptions, StageJob, driver_script};
/// let cmd = RankCommand {
///     program: "/usr/bin/chunkflow".into(),
///     args: vec!["rechunk".into(), "a.zarr".into(), "b.zarr".into()],
///     workdir: "/work".into(),
/// };
/// let jobs = [StageJob { stage: 1, ranks: 16 }, StageJob { stage: 2, ranks: 8 }];
/// let script = driver_script(&cmd, &jobs, &SlurmOptions::new("/work/jobs"));
/// assert!(script.contains("--dependency=afterok:$job1"));
/// assert!(script.contains("--prepare \"$@\""));
/// assert!(script.contains("--finalize"));
/// ```
pub fn driver_script(cmd: &RankCommand, jobs: &[StageJob], opts: &SlurmOptions) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# chunkflow rechunk on SLURM: prepare, then one job array per stage (each submitted to \
         start\n# only after the previous one succeeded), then finalize. Arguments go to the \
         prepare step:\n# pass --resume to continue after a failure (finished ranks are \
         skipped) or --overwrite to start over."
    );
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "cd {}", sh_quote(&cmd.workdir.display().to_string()));
    let _ = writeln!(
        s,
        "poll={:.1}  # seconds between checks",
        opts.poll.as_secs_f64().max(0.1)
    );
    s.push_str(DRIVER_FUNCTIONS);
    let _ = writeln!(s, "\n{} --prepare \"$@\"", cmd.shell_line(&[]));
    let _ = writeln!(s, "jobs=()");
    for job in jobs {
        let script = sh_quote(&script_path(opts, job.stage).display().to_string());
        let dep = if job.stage > 1 {
            format!(" --dependency=afterok:$job{}", job.stage - 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "job{n}=$(sbatch --parsable{dep} {script}); job{n}=${{job{n}%%;*}}; jobs+=(\"$job{n}\")",
            n = job.stage
        );
        let _ = writeln!(
            s,
            "echo \"stage {n}: job $job{n} ({} tasks)\" >&2",
            job.ranks,
            n = job.stage
        );
    }
    for job in jobs {
        let _ = writeln!(s, "wait_stage {n} \"$job{n}\" {}", job.ranks, n = job.stage);
    }
    let _ = writeln!(s, "{} --finalize", cmd.shell_line(&[]));
    s
}

/// The driver script's shell functions.
const DRIVER_FUNCTIONS: &str = r#"
failed='JobState=(FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)'
# wait_stage STAGE JOB RANKS: returns when every task completed; on a failure, names the failed
# tasks, cancels every job of this run and exits 1.
wait_stage() {
    local stage=$1 job=$2 ranks=$3 records
    while :; do
        if ! records=$(scontrol -o show job "$job"); then
            echo "cannot query job $job (stage $stage); cancelling the run" >&2
            scancel "${jobs[@]}" 2>/dev/null || true
            exit 1
        fi
        if grep -qE "$failed" <<<"$records"; then
            echo "stage $stage (job $job) failed:" >&2
            grep -E "$failed" <<<"$records" |
                grep -oE 'ArrayTaskId=[^ ]*|JobState=[^ ]*|ExitCode=[^ ]*' | paste -d' ' - - - >&2
            echo "logs: $(dirname "${BASH_SOURCE[0]}")/logs/stage-$stage-${job}_<task>.log" >&2
            scancel "${jobs[@]}" 2>/dev/null || true
            echo "cancelled the remaining jobs; nothing was published (fix the cause, then run this script with --resume)" >&2
            exit 1
        fi
        if [ "$(grep -c 'JobState=COMPLETED' <<<"$records")" -eq "$ranks" ] &&
            [ "$(grep -c . <<<"$records")" -eq "$ranks" ]; then
            echo "stage $stage: done" >&2
            return 0
        fi
        sleep "$poll"
    done
}
"#;

/// The scripts written by [`write_scripts`].
#[derive(Clone, Debug)]
pub struct SlurmScripts {
    /// One batch script per stage, stage 1 first.
    pub stages: Vec<PathBuf>,
    /// The driver script.
    pub driver: PathBuf,
    /// The folder of the tasks' logs.
    pub logs: PathBuf,
}

/// Writes every stage's batch script and the driver script into `opts.dir` (created if
/// missing), executable.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn write_scripts(
    cmd: &RankCommand,
    jobs: &[StageJob],
    opts: &SlurmOptions,
) -> Result<SlurmScripts, DistributedError> {
    let logs = opts.logs();
    std::fs::create_dir_all(&logs).map_err(|e| crate::Error::io(&logs, e))?;
    let mut stages = Vec::new();
    for &job in jobs {
        let path = script_path(opts, job.stage);
        write_executable(&path, &stage_script(cmd, job, jobs.len(), opts))?;
        stages.push(path);
    }
    let driver = absolute(&opts.dir).join("driver.sh");
    write_executable(&driver, &driver_script(cmd, jobs, opts))?;
    Ok(SlurmScripts {
        stages,
        driver,
        logs,
    })
}

fn write_executable(path: &Path, text: &str) -> Result<(), DistributedError> {
    std::fs::write(path, text).map_err(|e| crate::Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| crate::Error::io(path, e))?;
    }
    Ok(())
}

/// One task's record in `scontrol -o show job` (one line per array task; a line can stand for
/// a range of tasks still pending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// `ArrayTaskId`: one id, or a set such as `0-15` or `3,5-7%2` for tasks still pending.
    pub array_task: String,
    /// `JobState` (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, ...).
    pub state: String,
    /// `ExitCode` (`status:signal`).
    pub exit_code: String,
    /// `Reason` (why it is pending or was cancelled).
    pub reason: String,
}

impl TaskRecord {
    /// The task ids this record stands for.
    pub fn task_ids(&self) -> BTreeSet<usize> {
        let spec = self.array_task.split('%').next().unwrap_or("");
        let mut ids = BTreeSet::new();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let part = part.split(':').next().unwrap_or(part); // `0-15:2` steps are not used here
            match part.split_once('-') {
                Some((a, b)) => {
                    if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                        ids.extend(a..=b);
                    }
                }
                None => {
                    if let Ok(a) = part.parse::<usize>() {
                        ids.insert(a);
                    }
                }
            }
        }
        ids
    }

    /// Whether the task ended badly (failed, cancelled, timed out, out of memory, ...).
    pub fn has_failed(&self) -> bool {
        matches!(
            self.state.as_str(),
            "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "PREEMPTED"
                | "REVOKED"
                | "SPECIAL_EXIT"
        )
    }

    /// Whether the task completed successfully.
    pub fn has_completed(&self) -> bool {
        self.state == "COMPLETED"
    }
}

/// Parses `scontrol -o show job JOB` output: one record per line.
///
/// ```
/// use chunkflow::rechunk::distributed::slurm::parse_job_records;
/// let text = "JobId=7 ArrayJobId=5 ArrayTaskId=2 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n\
///             JobId=5 ArrayJobId=5 ArrayTaskId=3-15 JobName=x JobState=PENDING Reason=None ExitCode=0:0\n";
/// let records = parse_job_records(text);
/// assert_eq!(records.len(), 2);
/// assert!(records[0].has_failed());
/// assert_eq!(records[0].exit_code, "1:0");
/// assert_eq!(records[1].task_ids().len(), 13);
/// ```
pub fn parse_job_records(text: &str) -> Vec<TaskRecord> {
    text.lines()
        .filter(|l| l.contains("JobState="))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                    .unwrap_or("")
                    .to_string()
            };
            let array_task = match field("ArrayTaskId") {
                t if t.is_empty() => "0".to_string(),
                t => t,
            };
            TaskRecord {
                array_task,
                state: field("JobState"),
                exit_code: field("ExitCode"),
                reason: field("Reason"),
            }
        })
        .collect()
}

/// A failed task, for the driver's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedTask {
    /// The array task id (the rank).
    pub task: String,
    /// Its final state.
    pub state: String,
    /// Its exit code (`status:signal`).
    pub exit_code: String,
    /// SLURM's reason.
    pub reason: String,
    /// Its log file.
    pub log: PathBuf,
    /// The last lines of its log (empty if unreadable).
    pub log_tail: Vec<String>,
}

/// Why a stage failed on the cluster: [`DistributedError::StageFailed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFailure {
    /// The stage that failed, from 1.
    pub stage: usize,
    /// How many stages the run has.
    pub stages: usize,
    /// Its job id.
    pub job: String,
    /// Its failed tasks.
    pub failed: Vec<FailedTask>,
    /// The jobs cancelled because of it (`stage N (job J)`).
    pub cancelled: Vec<String>,
    /// The stage's batch script (to resubmit some tasks).
    pub script: PathBuf,
}

impl fmt::Display for StageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage {} of {} (SLURM job {}) failed: ",
            self.stage, self.stages, self.job
        )?;
        let list: Vec<String> = self
            .failed
            .iter()
            .map(|t| format!("task {} {} (exit code {})", t.task, t.state, t.exit_code))
            .collect();
        f.write_str(&list.join(", "))?;
        for t in self.failed.iter().take(3) {
            write!(f, "\n  log of task {}: {}", t.task, t.log.display())?;
            for line in &t.log_tail {
                write!(f, "\n    | {line}")?;
            }
        }
        if !self.cancelled.is_empty() {
            write!(f, "\n  cancelled: {}", self.cancelled.join(", "))?;
        }
        let tasks: Vec<&str> = self.failed.iter().map(|t| t.task.as_str()).collect();
        write!(
            f,
            "\n  nothing was published. Fix the cause, then run again with --resume (finished \
             ranks are skipped), or resubmit only the failed tasks (sbatch --array={} {}) and \
             the later stages.",
            tasks.join(","),
            self.script.display()
        )
    }
}

/// A stage submitted by [`submit_and_wait`].
#[derive(Clone, Debug, PartialEq)]
pub struct SubmittedStage {
    /// The stage, from 1.
    pub stage: usize,
    /// Its ranks.
    pub ranks: usize,
    /// Its job id.
    pub job: String,
    /// Seconds from submission until the stage was seen complete.
    pub seconds: f64,
}

fn run_command(program: &str, args: &[String]) -> Result<String, DistributedError> {
    let line = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| DistributedError::Command {
            command: line.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not installed or not on PATH (is this a SLURM cluster?)")
            } else {
                e.to_string()
            },
        })?;
    if !out.status.success() {
        return Err(DistributedError::Command {
            command: line,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cancel(jobs: &[String]) {
    if !jobs.is_empty() {
        // Best effort: a job that already ended cannot be cancelled, which is fine.
        let _ = run_command("scancel", jobs);
    }
}

/// Submits every stage's script (stage `s` with `--dependency=afterok:<job of s-1>`), then
/// waits for each stage in turn, reporting progress through `log`. On a failed task (or a
/// timeout) it cancels every job of the run still queued or running and returns the failure.
///
/// # Errors
/// [`DistributedError::StageFailed`], [`DistributedError::Timeout`],
/// [`DistributedError::Command`] when `sbatch`/`scontrol` fail.
pub fn submit_and_wait(
    scripts: &SlurmScripts,
    jobs: &[StageJob],
    opts: &SlurmOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<SubmittedStage>, DistributedError> {
    let start = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    for (job, script) in jobs.iter().zip(&scripts.stages) {
        let mut args = vec!["--parsable".to_string()];
        if let Some(prev) = ids.last() {
            args.push(format!("--dependency=afterok:{prev}"));
        }
        args.push(script.display().to_string());
        let out = match run_command("sbatch", &args) {
            Ok(out) => out,
            Err(e) => {
                cancel(&ids);
                return Err(e);
            }
        };
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        log(&format!(
            "stage {}: submitted job {id} ({} tasks)",
            job.stage, job.ranks
        ));
        ids.push(id);
    }
    let mut done = Vec::new();
    let mut k = 0;
    while k < jobs.len() {
        let job = jobs[k];
        let id = &ids[k];
        let text = match run_command(
            "scontrol",
            &["-o".into(), "show".into(), "job".into(), id.clone()],
        ) {
            Ok(t) => t,
            Err(e) => {
                cancel(&ids[k..]);
                return Err(e);
            }
        };
        let records = parse_job_records(&text);
        let failed: Vec<&TaskRecord> = records.iter().filter(|r| r.has_failed()).collect();
        if !failed.is_empty() {
            cancel(&ids[k..]);
            let failed = failed
                .into_iter()
                .flat_map(|r| {
                    r.task_ids().into_iter().map(move |t| {
                        let log = opts.log_file(job.stage, id, &t.to_string());
                        FailedTask {
                            task: t.to_string(),
                            state: r.state.clone(),
                            exit_code: r.exit_code.clone(),
                            reason: r.reason.clone(),
                            log_tail: tail(&log, 8),
                            log,
                        }
                    })
                })
                .collect();
            let cancelled = jobs[k + 1..]
                .iter()
                .zip(&ids[k + 1..])
                .map(|(j, id)| format!("stage {} (job {id})", j.stage))
                .collect();
            return Err(DistributedError::StageFailed(Box::new(StageFailure {
                stage: job.stage,
                stages: jobs.len(),
                job: id.clone(),
                failed,
                cancelled,
                script: scripts.stages[k].clone(),
            })));
        }
        let completed: BTreeSet<usize> = records
            .iter()
            .filter(|r| r.has_completed())
            .flat_map(TaskRecord::task_ids)
            .collect();
        if (0..job.ranks).all(|t| completed.contains(&t)) {
            let seconds = start.elapsed().as_secs_f64();
            log(&format!(
                "stage {}: {} tasks done ({seconds:.1} s since submission)",
                job.stage, job.ranks
            ));
            done.push(SubmittedStage {
                stage: job.stage,
                ranks: job.ranks,
                job: id.clone(),
                seconds,
            });
            k += 1;
            continue;
        }
        if let Some(limit) = opts.timeout
            && start.elapsed() > limit
        {
            cancel(&ids[k..]);
            return Err(DistributedError::Timeout {
                stage: job.stage,
                job: id.clone(),
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(opts.poll);
    }
    Ok(done)
}

/// The last `n` lines of a file (empty when it cannot be read).
fn tail(path: &Path, n: usize) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|l| l.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The whole run on SLURM (`chunkflow rechunk ... --slurm`): writes the scripts, prepares the
/// run here, submits one job array per stage (at most `max_ranks` tasks each) and waits for
/// them, then finalizes here.
///
/// # Errors
/// Those of [`DistributedRechunk::prepare`], [`submit_and_wait`] and
/// [`DistributedRechunk::finalize`]; on any of them nothing is published.
pub fn run_on_slurm(
    run: &DistributedRechunk,
    cmd: &RankCommand,
    max_ranks: usize,
    opts: &SlurmOptions,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<SubmittedStage>, FinalizeOutcome), DistributedError> {
    // Fail before preparing anything when this is not a SLURM submission host.
    run_command("sbatch", &["--version".to_string()])?;
    let jobs = stage_jobs(run, max_ranks);
    let scripts = write_scripts(cmd, &jobs, opts)?;
    log(&format!(
        "{} stage(s); scripts in {}, logs in {}",
        jobs.len(),
        absolute(&opts.dir).display(),
        scripts.logs.display()
    ));
    run.prepare()?;
    let stages = submit_and_wait(&scripts, &jobs, opts, log)?;
    let outcome = run.finalize()?;
    Ok((stages, outcome))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
