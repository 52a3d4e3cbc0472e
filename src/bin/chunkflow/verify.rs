//! `chunkflow verify STORE`: which stored chunks of each array are missing, as text or JSON;
//! exit status 0 when the store is complete, 3 when chunks are missing, 1 on errors (2 is
//! clap's usage error).
//!
//! With `--ranks N --dims a,b` (the partition the writers used) it also names the ranks to
//! re-run. Chunks that are entirely the fill value are never stored, so they are reported
//! missing too (see `chunkflow::partition::verify`); the output says so.

use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;

use chunkflow::partition::{ArrayCompleteness, SplitDim, VerifyOptions, verify_store};
use chunkflow::store::Store;
use chunkflow::{Error, Result};
use serde_json::{Value, json};

const FILL_NOTE: &str = "chunks that are entirely the fill value are never stored \
(write_empty_chunks=False), so a chunk reported missing may hold only the fill value; \
re-running the rank that owns it is harmless (partitioned writes are idempotent)";

/// Arguments of `chunkflow verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The store: a path, file:// or memory:// URL.
    store: String,
    /// The number of ranks that wrote the store (with --dims): name the ranks to re-run.
    #[arg(long, requires = "dims")]
    ranks: Option<usize>,
    /// The dims the ranks split, comma-separated (e.g. time,lat).
    #[arg(long, value_delimiter = ',', requires = "ranks")]
    dims: Vec<String>,
    /// How many missing boxes to list per array (JSON lists all).
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// How many chunk-existence checks run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Exit status when chunks are missing.
const INCOMPLETE: u8 = 3;

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let store = open_existing(&args.store)?;
    let options = VerifyOptions {
        split: args.dims.iter().map(SplitDim::from).collect(),
        ranks: args.ranks,
        concurrency: args.concurrency.max(1),
    };
    let report = verify_store(&store, &options)?;
    if args.json {
        let doc = json!({
            "store": report.store,
            "complete": report.is_complete(),
            "missing": report.missing(),
            "ranks_to_rerun": report.ranks_to_rerun(),
            "arrays": report.arrays.iter().map(array_json).collect::<Vec<_>>(),
            "note": FILL_NOTE,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON values serialise")
        );
    } else {
        let incomplete = report.arrays.iter().filter(|a| !a.is_complete()).count();
        println!(
            "{}: {} ({} arrays, {} incomplete, {} missing)",
            report.store,
            if report.is_complete() {
                "complete"
            } else {
                "INCOMPLETE"
            },
            report.arrays.len(),
            incomplete,
            report.missing()
        );
        for a in &report.arrays {
            print_array(a, args.limit);
        }
        if !report.is_complete() {
            if let Some(ranks) = report.ranks_to_rerun() {
                println!(
                    "ranks to re-run (of {}, split on {}): {}",
                    args.ranks.unwrap_or_default(),
                    args.dims.join(","),
                    compact_ranks(&ranks)
                );
            }
            println!("note: {FILL_NOTE}");
        }
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INCOMPLETE)
    })
}

fn unit(a: &ArrayCompleteness) -> &'static str {
    if a.sharded { "shards" } else { "chunks" }
}

fn print_array(a: &ArrayCompleteness, limit: usize) {
    let name = if a.path.is_empty() { "/" } else { &a.path };
    if a.is_complete() {
        println!("  {name}: complete ({} {})", a.total, unit(a));
        return;
    }
    println!(
        "  {name}: {} of {} {} missing (grid {:?})",
        a.missing,
        a.total,
        unit(a),
        a.grid
    );
    for b in a.missing_boxes.iter().take(limit) {
        println!("    missing {}", fmt_box(b));
    }
    if a.missing_boxes.len() > limit {
        println!(
            "    ... and {} more boxes (--limit, or --json for all)",
            a.missing_boxes.len() - limit
        );
    }
    if let Some(ranks) = &a.ranks_to_rerun {
        println!("    ranks owning them: {}", compact_ranks(ranks));
    }
}

/// `[1, 0..4]`: a single index where a box is one wide.
fn fmt_box(b: &[Range<u64>]) -> String {
    let parts: Vec<String> = b
        .iter()
        .map(|r| {
            if r.end == r.start + 1 {
                r.start.to_string()
            } else {
                format!("{}..{}", r.start, r.end)
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// `0-3,7,9-10`.
fn compact_ranks(ranks: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ranks.len() {
        let mut j = i;
        while j + 1 < ranks.len() && ranks[j + 1] == ranks[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            ranks[i].to_string()
        } else {
            format!("{}-{}", ranks[i], ranks[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn array_json(a: &ArrayCompleteness) -> Value {
    json!({
        "path": a.path,
        "shape": a.shape,
        "grid": a.grid,
        "unit": unit(a),
        "total": a.total,
        "missing": a.missing,
        "complete": a.is_complete(),
        "missing_boxes": a.missing_boxes.iter().map(|b| {
            b.iter().map(|r| json!([r.start, r.end])).collect::<Vec<_>>()
        }).collect::<Vec<_>>(),
        "ranks_to_rerun": a.ranks_to_rerun,
    })
}

/// Opens the store, first checking that a filesystem store's directory exists (opening one
/// would otherwise succeed and find nothing).
fn open_existing(url: &str) -> Result<Store> {
    let path = match url.split_once("://") {
        None => Some(url),
        Some(("file", path)) => Some(path),
        Some(_) => None,
    };
    if let Some(path) = path
        && !Path::new(path).is_dir()
    {
        return Err(Error::InvalidArgument(format!(
            "{path} is not a Zarr store: no such directory"
        )));
    }
    Ok(Store::open(url)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(compact_ranks(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(compact_ranks(&[]), "");
        assert_eq!(fmt_box(&[1..2, 0..4]), "[1, 0..4]");
    }
}
