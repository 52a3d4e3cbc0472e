//! `chunkflow plan`: prints the rechunker plan for a shape and two chunkings, as JSON or text.

use chunkflow::array::chunks::parse_bytes;
use chunkflow::rechunk::algorithm::{
    Consolidation, Plan, multistage_rechunking_plan, rechunking_plan,
};
use chunkflow::{Error, Result};

pub struct PlanArgs {
    pub shape: String,
    pub source_chunks: String,
    pub target_chunks: String,
    pub itemsize: u64,
    pub max_mem: String,
    pub min_mem: Option<String>,
    pub json: bool,
}

pub fn run(args: &PlanArgs) -> Result<()> {
    let shape = parse_list("--shape", &args.shape)?;
    let source = parse_list("--source-chunks", &args.source_chunks)?;
    let target = parse_list("--target-chunks", &args.target_chunks)?;
    let max_mem = parse_bytes(&args.max_mem)?;
    let plan = match &args.min_mem {
        Some(min) => multistage_rechunking_plan(
            &shape,
            &source,
            &target,
            args.itemsize,
            parse_bytes(min)?,
            max_mem,
            Consolidation::default(),
        )?,
        None => Plan {
            stages: vec![rechunking_plan(
                &shape,
                &source,
                &target,
                args.itemsize,
                max_mem,
                Consolidation::default(),
            )?],
            warnings: vec![],
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&plan).expect("plans serialise"));
    } else {
        for (i, s) in plan.stages.iter().enumerate() {
            println!(
                "stage {}: read {:?} -> intermediate {:?} -> write {:?}",
                i + 1,
                s.read_chunks,
                s.int_chunks,
                s.write_chunks
            );
        }
        for w in &plan.warnings {
            println!("warning: {w}");
        }
    }
    Ok(())
}

/// Parses `"4096,256,256"` (also with spaces or parentheses) into sizes.
fn parse_list(flag: &str, s: &str) -> Result<Vec<u64>> {
    s.trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!(
                    "{flag}: {p:?} is not a whole number; give sizes like 4096,256,256"
                ))
            })
        })
        .collect()
}
