//! Parity of `chunkflow::rechunk::algorithm` with Python rechunker (0.5.4).
//!
//! Reads the JSON-lines cases that `tests/interop/rechunker_cases.py` recorded from rechunker
//! itself (the file named by `CHUNKFLOW_RECHUNKER_CASES`), runs each input through the Rust
//! function of the same name and requires the same outcome: equal plans, chunks and counts; the
//! same `ExcessiveIOWarning` messages, word for word; and the matching error kind, with the same
//! numbers for the memory errors. It also requires a minimum number of cases
//! (`CHUNKFLOW_RECHUNKER_MIN_CASES`, default 1000) and that every branch was reached.
//!
//! Run it with `scripts/rechunker-parity.sh`, which makes the Python venv and the cases.

use std::collections::BTreeMap;

use chunkflow::rechunk::algorithm::{
    ChunkLimit, Consolidation, PlanError, axis_io_ops, calculate_stage_chunks, consolidate_chunks,
    io_ops, multistage_rechunking_plan, rechunking_plan,
};
use serde_json::{Value, json};

const CASES_VAR: &str = "CHUNKFLOW_RECHUNKER_CASES";
const MIN_CASES_VAR: &str = "CHUNKFLOW_RECHUNKER_MIN_CASES";
const DEFAULT_MIN_CASES: usize = 1000;
const SHOW_MISMATCHES: usize = 20;

/// Outcomes that the cases must reach at least once, as `"{func}: {outcome}"`.
const REQUIRED_OUTCOMES: &[&str] = &[
    "multistage_rechunking_plan: 1 stage",
    "multistage_rechunking_plan: 2+ stages",
    "multistage_rechunking_plan: warning",
    "multistage_rechunking_plan: WrongLength",
    "multistage_rechunking_plan: SourceChunkExceedsMemory",
    "multistage_rechunking_plan: TargetChunkExceedsMemory",
    "multistage_rechunking_plan: MaxMemBelowMinMem",
    "multistage_rechunking_plan: TargetChunkExceedsShape",
    "multistage_rechunking_plan: ZeroChunk",
    "multistage_rechunking_plan: ZeroItemsize",
    "multistage_rechunking_plan: EmptyAxis",
    "multistage_rechunking_plan: NoFeasiblePlan",
    "rechunking_plan: 1 stage",
    "rechunking_plan: SourceChunkExceedsMemory",
    "rechunking_plan: TargetChunkExceedsMemory",
    "rechunking_plan: TargetChunkExceedsShape",
    "consolidate_chunks: ok",
    "consolidate_chunks: WrongLength",
    "consolidate_chunks: InvalidChunkLimits",
    "consolidate_chunks: ChunkExceedsMemory",
    "consolidate_chunks: ZeroChunk",
    "consolidate_chunks: ZeroItemsize",
    "consolidate_chunks: EmptyAxis",
    "calculate_stage_chunks: ok",
    "calculate_stage_chunks: ZeroChunk",
    "calculate_single_stage_io_ops: ok",
    "_count_intermediate_chunks: ok",
];

/// What a Rust function did, in the JSON shapes the Python script records.
struct RustOutcome {
    result: Result<Value, PlanError>,
    /// `ExcessiveIOWarning` messages.
    warnings: Vec<String>,
}

fn u64_of(value: &Value, name: &str) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{name} is not a u64: {value}"))
}

fn u64s(value: &Value, name: &str) -> Result<Vec<u64>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{name} is not a list: {value}"))?
        .iter()
        .map(|v| u64_of(v, name))
        .collect()
}

fn flag(args: &Value, name: &str) -> Result<bool, String> {
    args[name]
        .as_bool()
        .ok_or_else(|| format!("{name} is not a bool: {}", args[name]))
}

fn limits_of(value: &Value) -> Result<Option<Vec<Option<ChunkLimit>>>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let list = value
        .as_array()
        .ok_or_else(|| format!("chunk_limits is not a list: {value}"))?;
    list.iter()
        .map(|limit| match limit {
            Value::Null => Ok(None),
            v if v.as_i64() == Some(-1) => Ok(Some(ChunkLimit::Shape)),
            v => v
                .as_u64()
                .map(|n| Some(ChunkLimit::Max(n)))
                .ok_or_else(|| format!("chunk limit {v} has no Rust counterpart")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn stage_json(read: &[u64], int: &[u64], write: &[u64]) -> Value {
    json!([read, int, write])
}

/// Runs one case's inputs through the Rust function that mirrors `func`.
fn run_rust(func: &str, args: &Value) -> Result<RustOutcome, String> {
    let plain = |result: Result<Value, PlanError>| RustOutcome {
        result,
        warnings: Vec::new(),
    };
    let consolidation = || -> Result<Consolidation, String> {
        Ok(Consolidation {
            reads: flag(args, "consolidate_reads")?,
            writes: flag(args, "consolidate_writes")?,
        })
    };
    Ok(match func {
        "consolidate_chunks" => {
            let limits = limits_of(&args["chunk_limits"])?;
            plain(
                consolidate_chunks(
                    &u64s(&args["shape"], "shape")?,
                    &u64s(&args["chunks"], "chunks")?,
                    u64_of(&args["itemsize"], "itemsize")?,
                    u64_of(&args["max_mem"], "max_mem")?,
                    limits.as_deref(),
                )
                .map(|chunks| json!(chunks)),
            )
        }
        "calculate_stage_chunks" => plain(
            calculate_stage_chunks(
                &u64s(&args["read_chunks"], "read_chunks")?,
                &u64s(&args["write_chunks"], "write_chunks")?,
                u64_of(&args["stage_count"], "stage_count")? as usize,
            )
            .map(|stages| json!(stages)),
        ),
        "_count_intermediate_chunks" => {
            let count = axis_io_ops(
                u64_of(&args["source_chunk"], "source_chunk")?,
                u64_of(&args["target_chunk"], "target_chunk")?,
                u64_of(&args["size"], "size")?,
            )
            .ok_or("axis_io_ops returned None")?;
            plain(Ok(json!(count.to_string())))
        }
        "calculate_single_stage_io_ops" => {
            let count = io_ops(
                &u64s(&args["shape"], "shape")?,
                &u64s(&args["in_chunks"], "in_chunks")?,
                &u64s(&args["out_chunks"], "out_chunks")?,
            )
            .ok_or("io_ops returned None")?;
            plain(Ok(json!(count.to_string())))
        }
        "rechunking_plan" => plain(
            rechunking_plan(
                &u64s(&args["shape"], "shape")?,
                &u64s(&args["source_chunks"], "source_chunks")?,
                &u64s(&args["target_chunks"], "target_chunks")?,
                u64_of(&args["itemsize"], "itemsize")?,
                u64_of(&args["max_mem"], "max_mem")?,
                consolidation()?,
            )
            .map(|s| stage_json(&s.read_chunks, &s.int_chunks, &s.write_chunks)),
        ),
        "multistage_rechunking_plan" => {
            let plan = multistage_rechunking_plan(
                &u64s(&args["shape"], "shape")?,
                &u64s(&args["source_chunks"], "source_chunks")?,
                &u64s(&args["target_chunks"], "target_chunks")?,
                u64_of(&args["itemsize"], "itemsize")?,
                u64_of(&args["min_mem"], "min_mem")?,
                u64_of(&args["max_mem"], "max_mem")?,
                consolidation()?,
            );
            match plan {
                Ok(plan) => RustOutcome {
                    result: Ok(Value::Array(
                        plan.stages
                            .iter()
                            .map(|s| stage_json(&s.read_chunks, &s.int_chunks, &s.write_chunks))
                            .collect(),
                    )),
                    warnings: plan.warnings.iter().map(ToString::to_string).collect(),
                },
                Err(err) => plain(Err(err)),
            }
        }
        other => return Err(format!("unknown func {other:?}")),
    })
}

fn error_kind(err: &PlanError) -> &'static str {
    match err {
        PlanError::WrongLength { .. } => "WrongLength",
        PlanError::SourceChunkExceedsMemory { .. } => "SourceChunkExceedsMemory",
        PlanError::TargetChunkExceedsMemory { .. } => "TargetChunkExceedsMemory",
        PlanError::ChunkExceedsMemory { .. } => "ChunkExceedsMemory",
        PlanError::MaxMemBelowMinMem { .. } => "MaxMemBelowMinMem",
        PlanError::InvalidChunkLimits { .. } => "InvalidChunkLimits",
        PlanError::TargetChunkExceedsShape { .. } => "TargetChunkExceedsShape",
        PlanError::ZeroChunk { .. } => "ZeroChunk",
        PlanError::ZeroItemsize => "ZeroItemsize",
        PlanError::EmptyAxis { .. } => "EmptyAxis",
        PlanError::NoFeasiblePlan { .. } => "NoFeasiblePlan",
        _ => "unknown PlanError",
    }
}

/// The Rust error kinds that correspond to a Python exception from `func`.
fn expected_kinds(func: &str, ty: &str, message: &str) -> &'static [&'static str] {
    match ty {
        "ValueError" if message.starts_with("source_chunks ") => &["WrongLength"],
        "ValueError" if message.starts_with("target_chunks ") => &["WrongLength"],
        "ValueError" if message.starts_with("Source chunk memory") => &["SourceChunkExceedsMemory"],
        "ValueError" if message.starts_with("Target chunk memory") => &["TargetChunkExceedsMemory"],
        "ValueError" if message.starts_with("max_mem (") => &["MaxMemBelowMinMem"],
        "ValueError" if message.starts_with("chunk_mem ") => &["ChunkExceedsMemory"],
        "ValueError" if message.starts_with("Invalid chunk_limits") => {
            if func == "consolidate_chunks" {
                &["InvalidChunkLimits"]
            } else {
                // Only write consolidation can hit it: a target chunk longer than its axis.
                &["TargetChunkExceedsShape"]
            }
        }
        "ValueError" if message == "Geometric sequence cannot include zero" => &["ZeroChunk"],
        // max_mem / chunk_mem with a zero-byte chunk.
        "ZeroDivisionError" => &["ZeroChunk", "ZeroItemsize", "EmptyAxis"],
        "AssertionError" if message.starts_with("Failed to find a feasible") => &["NoFeasiblePlan"],
        // `assert len(chunk_limits) == ndim`.
        "AssertionError" if func == "consolidate_chunks" && message.is_empty() => &["WrongLength"],
        _ => &[],
    }
}

/// The decimal numbers in a message, in order.
fn numbers_in(message: &str) -> Vec<u128> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The numbers a Rust error shares with rechunker's message, if rechunker's message has them.
fn error_numbers(err: &PlanError) -> Option<Vec<u128>> {
    match *err {
        PlanError::SourceChunkExceedsMemory {
            chunk_bytes,
            max_mem,
        }
        | PlanError::TargetChunkExceedsMemory {
            chunk_bytes,
            max_mem,
        }
        | PlanError::ChunkExceedsMemory {
            chunk_bytes,
            max_mem,
        } => Some(vec![chunk_bytes, u128::from(max_mem)]),
        PlanError::MaxMemBelowMinMem { max_mem, min_mem } => {
            Some(vec![u128::from(max_mem), u128::from(min_mem)])
        }
        _ => None,
    }
}

/// Compares one recorded case with Rust. Returns the outcome label, or why they differ.
fn check_case(case: &Value) -> Result<String, String> {
    let func = case["func"].as_str().ok_or("case has no func")?;
    let args = &case["args"];
    let rust = run_rust(func, args)?;

    let python_warnings: Vec<&Value> = case["warnings"]
        .as_array()
        .ok_or("case has no warnings list")?
        .iter()
        .collect();
    let mut python_excessive = Vec::new();
    for warning in python_warnings {
        let category = warning["category"].as_str().unwrap_or("?");
        let message = warning["message"].as_str().unwrap_or("?");
        match category {
            "ExcessiveIOWarning" => python_excessive.push(message.to_string()),
            // NumPy's divide-by-zero warnings for geomspace(num=1), i.e. stage_count 0.
            "RuntimeWarning" if func == "calculate_stage_chunks" => {}
            _ => return Err(format!("unexpected Python warning {category}: {message}")),
        }
    }
    if rust.warnings != python_excessive {
        return Err(format!(
            "warnings differ: python {python_excessive:?}, rust {:?}",
            rust.warnings
        ));
    }

    let outcome = &case["outcome"];
    match (outcome.get("ok"), outcome.get("error"), &rust.result) {
        (Some(ok), None, Ok(value)) => {
            if ok != value {
                return Err(format!("python returned {ok}, rust {value}"));
            }
            let label = match func {
                "multistage_rechunking_plan" if !rust.warnings.is_empty() => "warning",
                "multistage_rechunking_plan" if value.as_array().map(Vec::len) == Some(1) => {
                    "1 stage"
                }
                "multistage_rechunking_plan" => "2+ stages",
                "rechunking_plan" => "1 stage",
                _ => "ok",
            };
            Ok(format!("{func}: {label}"))
        }
        (Some(ok), None, Err(err)) => Err(format!(
            "python returned {ok}, rust failed: {} ({err})",
            error_kind(err)
        )),
        (None, Some(error), Ok(value)) => {
            Err(format!("python raised {error}, rust returned {value}"))
        }
        (None, Some(error), Err(err)) => {
            let ty = error["type"].as_str().unwrap_or("?");
            let message = error["message"].as_str().unwrap_or("?");
            let kinds = expected_kinds(func, ty, message);
            let kind = error_kind(err);
            if !kinds.contains(&kind) {
                return Err(format!(
                    "python raised {ty}({message:?}), expected rust {kinds:?}, got {kind} ({err})"
                ));
            }
            if let Some(numbers) = error_numbers(err)
                && numbers != numbers_in(message)
            {
                return Err(format!(
                    "python raised {ty}({message:?}), rust {kind} has numbers {numbers:?}"
                ));
            }
            Ok(format!("{func}: {kind}"))
        }
        _ => Err(format!("malformed outcome {outcome}")),
    }
}

#[test]
#[ignore = "run by scripts/rechunker-parity.sh, which creates the Python venv"]
fn rust_planner_matches_python_rechunker() {
    let path = std::env::var(CASES_VAR).unwrap_or_else(|_| {
        panic!(
            "{CASES_VAR} is not set: it must name the JSON-lines file written by \
             tests/interop/rechunker_cases.py; run scripts/rechunker-parity.sh"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!("cannot read {CASES_VAR}={path}: {err}; run scripts/rechunker-parity.sh")
    });
    let min_cases = match std::env::var(MIN_CASES_VAR) {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("{MIN_CASES_VAR}={n} is not a number")),
        Err(_) => DEFAULT_MIN_CASES,
    };

    let mut checked = 0usize;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches: Vec<String> = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("{path}:{}: not JSON: {err}", line_no + 1));
        if case["func"] == "header" {
            println!("cases from {path}: {case}");
            continue;
        }
        checked += 1;
        for tag in case["tags"].as_array().into_iter().flatten() {
            *tags
                .entry(tag.as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        match check_case(&case) {
            Ok(label) => *outcomes.entry(label).or_default() += 1,
            Err(why) => mismatches.push(format!(
                "case {} ({}, tags {}): {why}\n    args: {}\n    python: {} warnings {}",
                case["id"],
                case["func"],
                case["tags"],
                case["args"],
                case["outcome"],
                case["warnings"]
            )),
        }
    }

    println!("checked {checked} cases; {} mismatches", mismatches.len());
    for (label, count) in &outcomes {
        println!("{count:8}  {label}");
    }
    println!("tags: {tags:?}");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} cases differ from rechunker; the first {}:\n{}",
        mismatches.len(),
        mismatches.len().min(SHOW_MISMATCHES),
        mismatches[..mismatches.len().min(SHOW_MISMATCHES)].join("\n")
    );
    assert!(
        checked >= min_cases,
        "only {checked} cases in {path}, fewer than {min_cases} ({MIN_CASES_VAR})"
    );
    let missing: Vec<&str> = REQUIRED_OUTCOMES
        .iter()
        .copied()
        .filter(|label| !outcomes.contains_key(*label))
        .collect();
    assert!(
        missing.is_empty(),
        "the cases never reached these outcomes: {missing:?}"
    );
}
