//! Seeing a graph and its run: DOT plots, rendered images, task-stream profiles, the progress bar.
//!
//! - `visualize("x.dot")` writes DOT that graphviz-rust parses: function nodes are circles
//!   labelled with the key's label (hashes stripped: `square`, `add`), values are boxes, chunk
//!   values are labelled with their index, fused tasks say so; colouring by order or kind fills
//!   every node with a colour.
//! - With Graphviz's `dot` installed, `.svg`, `.png` and `.pdf` render and `dot` itself accepts
//!   the `.dot` file. Without it, `.svg` fails with `Error::GraphvizNotInstalled` (checked in a
//!   child process whose `PATH` has no `dot`, so it runs on every machine). When the `CI`
//!   environment variable is set, a missing `dot` fails the render test instead of skipping it.
//! - `ChromeTrace` writes JSON with one `thread_name` event per worker and one `X` event per task
//!   whose `tid` is a worker; `ProgressBar` prints nothing when standard error is not a terminal
//!   (and does print on a pseudo-terminal, where `script` is available to make one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chunkflow::collection::{Collection, VisualizeOptions};
use chunkflow::graph::Key;
use chunkflow::graph::dot::{NodeColor, graphviz_available};
use chunkflow::prelude::*;
use chunkflow::scheduler::{ChromeTrace, ProgressBar};
use graphviz_rust::dot_structures::{Graph, Id, Stmt};

/// A fresh directory under the system temp dir, unique to this process and test.
fn temp_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("chunkflow-visualize-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

fn square(x: i64) -> i64 {
    x * x
}

fn add(x: i64, y: i64) -> i64 {
    x + y
}

fn inc(x: i64) -> i64 {
    x + 1
}

/// `add(square(value 2), square(4))`: three calls and one literal value.
fn sample() -> Delayed<i64> {
    let v = Delayed::value(2i64);
    delayed!(add(delayed!(square(&v)), delayed!(square(4))))
}

fn id_text(id: &Id) -> String {
    match id {
        Id::Escaped(s) => s
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(s)
            .replace("\\\"", "\""),
        Id::Html(s) | Id::Plain(s) | Id::Anonymous(s) => s.clone(),
    }
}

/// A parsed DOT file: node attributes by node id, and edges.
struct Plot {
    nodes: BTreeMap<String, BTreeMap<String, String>>,
    edges: Vec<(String, String)>,
}

impl Plot {
    fn parse(path: &Path) -> Plot {
        let text = std::fs::read_to_string(path).expect("reading the .dot file");
        let graph = graphviz_rust::parse(&text).unwrap_or_else(|e| {
            panic!("graphviz-rust cannot parse {}: {e}\n{text}", path.display())
        });
        let Graph::DiGraph { stmts, .. } = graph else {
            panic!("expected a digraph: {text}");
        };
        let mut nodes = BTreeMap::new();
        let mut edges = Vec::new();
        for stmt in stmts {
            match stmt {
                Stmt::Node(node) => {
                    let attrs = node
                        .attributes
                        .iter()
                        .map(|a| (id_text(&a.0), id_text(&a.1)))
                        .collect();
                    nodes.insert(id_text(&node.id.0), attrs);
                }
                Stmt::Edge(edge) => {
                    if let graphviz_rust::dot_structures::EdgeTy::Pair(
                        graphviz_rust::dot_structures::Vertex::N(a),
                        graphviz_rust::dot_structures::Vertex::N(b),
                    ) = edge.ty
                    {
                        edges.push((id_text(&a.0), id_text(&b.0)));
                    }
                }
                _ => {}
            }
        }
        Plot { nodes, edges }
    }

    /// The labels of the nodes with this shape, sorted.
    fn labels(&self, shape: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .nodes
            .values()
            .filter(|a| a.get("shape").map(String::as_str) == Some(shape))
            .map(|a| a.get("label").cloned().unwrap_or_default())
            .collect();
        out.sort();
        out
    }
}

/// Whether `s` contains a `-` followed by 8 or more hex digits (a key token).
fn has_token(s: &str) -> bool {
    s.split('-')
        .skip(1)
        .any(|w| w.len() >= 8 && w.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn dot_file_parses_with_stripped_labels_and_shapes() {
    let dir = temp_dir("dot");
    let path = dir.join("x.dot");
    sample().visualize(&path).unwrap();
    let plot = Plot::parse(&path);

    assert_eq!(plot.labels("circle"), ["add", "square", "square"]);
    // One box per value: three call results (unlabelled) and the literal (its type).
    assert_eq!(plot.labels("box"), ["", "", "", "i64"]);
    assert_eq!(plot.nodes.len(), 7, "every node is a circle or a box");
    for (id, attrs) in &plot.nodes {
        let label = attrs.get("label").expect("every node is labelled");
        assert!(!has_token(label), "{id}: label {label:?} keeps a hash");
        assert!(!attrs.contains_key("fillcolor"), "no colour by default");
    }
    // Each call points to its value, each used value to its consumer.
    assert_eq!(plot.edges.len(), 3 + 3);
    for (a, b) in &plot.edges {
        assert!(plot.nodes.contains_key(a) && plot.nodes.contains_key(b));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("rankdir"), "{text}");
    // `.gv` is DOT too, and the Collection trait method writes the same plot.
    let gv = dir.join("x.gv");
    Collection::visualize(&sample(), &gv).unwrap();
    assert_eq!(std::fs::read_to_string(&gv).unwrap(), text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chunk_values_show_their_index_and_fused_tasks_say_so() {
    let dir = temp_dir("chunks");
    let block = delayed(square)
        .key(Key::chunk("blk-0123456789abcdef", &[2, 0]))
        .call((3,));
    let path = dir.join("chunk.dot");
    delayed!(inc(block)).visualize(&path).unwrap();
    let plot = Plot::parse(&path);
    assert_eq!(plot.labels("circle"), ["blk", "inc"]);
    assert_eq!(plot.labels("box"), ["", "(2, 0)"]);

    let chain = delayed!(inc(delayed!(inc(delayed!(inc(1))))));
    let path = dir.join("fused.dot");
    let options = VisualizeOptions {
        optimize: true,
        ..Default::default()
    };
    chain.visualize_with(&path, options).unwrap();
    assert_eq!(Plot::parse(&path).labels("circle"), ["inc (fused 3)"]);
    chain.visualize(&path).unwrap();
    assert_eq!(Plot::parse(&path).labels("circle"), ["inc", "inc", "inc"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn colour_by_order_and_kind_fill_every_node() {
    let dir = temp_dir("colour");
    for (color, name) in [(NodeColor::Order, "order"), (NodeColor::Kind, "kind")] {
        let path = dir.join(format!("{name}.dot"));
        let options = VisualizeOptions {
            color,
            ..Default::default()
        };
        sample().visualize_with(&path, options).unwrap();
        let plot = Plot::parse(&path);
        let mut colours = BTreeSet::new();
        for (id, attrs) in &plot.nodes {
            assert_eq!(
                attrs.get("style").map(String::as_str),
                Some("filled"),
                "{id}"
            );
            let fill = attrs.get("fillcolor").expect("a fill colour");
            assert!(is_hex_colour(fill), "{id}: {fill}");
            colours.insert(fill.clone());
        }
        // Order: one colour per task (4 tasks); kind: data and compute differ.
        let want = if color == NodeColor::Order { 4 } else { 2 };
        assert_eq!(colours.len(), want, "{name}: {colours:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rendering_needs_graphviz_and_works_with_it() {
    if !graphviz_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Graphviz's `dot` is not installed: the render path must run in CI \
             (apt-get install -y graphviz)"
        );
        eprintln!("Graphviz's `dot` is not installed: checking the error instead of rendering");
        let dir = temp_dir("render-missing");
        let err = sample().visualize(dir.join("x.svg")).unwrap_err();
        assert!(matches!(err, Error::GraphvizNotInstalled { .. }), "{err:?}");
        return;
    }
    let dir = temp_dir("render");
    let x = sample();
    let dot = dir.join("x.dot");
    x.visualize(&dot).unwrap();
    let status = Command::new("dot")
        .arg("-Tcanon")
        .arg(&dot)
        .output()
        .expect("running dot");
    assert!(
        status.status.success(),
        "dot rejects our DOT: {}",
        String::from_utf8_lossy(&status.stderr)
    );

    let svg = dir.join("x.svg");
    x.visualize(&svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    let head = text.trim_start();
    assert!(
        head.starts_with("<?xml") || head.starts_with("<svg"),
        "{head:.80}"
    );
    assert!(text.contains("square") && text.contains("add"));

    let png = dir.join("x.png");
    x.visualize_with(
        &png,
        VisualizeOptions {
            color: NodeColor::Order,
            ..Default::default()
        },
    )
    .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    let pdf = dir.join("x.PDF");
    x.visualize(&pdf).unwrap();
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));

    // A format dot does not know is Graphviz's error, naming the file.
    let err = x.visualize(dir.join("x.notaformat")).unwrap_err();
    assert!(
        matches!(&err, Error::Graphviz { path, .. } if path.ends_with("x.notaformat")),
        "{err:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const NO_DOT_CHILD: &str = "CHUNKFLOW_VISUALIZE_NO_DOT_CHILD";

#[test]
fn svg_without_graphviz_is_graphviz_not_installed() {
    if std::env::var_os(NO_DOT_CHILD).is_some() || !graphviz_available() {
        assert!(!graphviz_available());
        let dir = temp_dir("no-dot");
        let err = sample().visualize(dir.join("x.svg")).unwrap_err();
        match &err {
            Error::GraphvizNotInstalled { format } => assert_eq!(format, "svg"),
            other => panic!("expected GraphvizNotInstalled, got {other:?}"),
        }
        assert!(err.to_string().contains("apt-get install"), "{err}");
        // A .dot file needs no Graphviz.
        sample().visualize(dir.join("x.dot")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // Graphviz is installed here: check the missing case in a child whose PATH has no `dot`.
    let empty = temp_dir("empty-path");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "svg_without_graphviz_is_graphviz_not_installed",
            "--exact",
            "--test-threads=1",
        ])
        .env("PATH", &empty)
        .env(NO_DOT_CHILD, "1")
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn writing_into_a_missing_directory_is_an_io_error() {
    let dir = temp_dir("io");
    let path = dir.join("no").join("such").join("x.dot");
    let err = sample().visualize(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("x.dot"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Task-stream profile
// ---------------------------------------------------------------------------------------------

fn slow_inc(x: i64) -> i64 {
    std::thread::sleep(Duration::from_millis(1));
    x + 1
}

fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

/// Checks a trace of `tasks` tasks run on `workers` workers.
fn check_trace(json: &serde_json::Value, workers: usize, tasks: usize, context: &str) {
    let events = json["traceEvents"].as_array().expect("traceEvents");
    let names: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .collect();
    assert_eq!(
        names.len(),
        workers,
        "{context}: one thread_name per worker"
    );
    let tids: BTreeSet<u64> = names.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
    assert_eq!(tids, (0..workers as u64).collect(), "{context}");
    let slices: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(slices.len(), tasks, "{context}: one X event per task");
    for e in &slices {
        let tid = e["tid"].as_u64().expect("a numeric tid");
        assert!(
            tid < workers as u64,
            "{context}: tid {tid} with {workers} workers"
        );
        assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
        let name = e["name"].as_str().unwrap();
        assert!(name == "slow_inc" || name == "total", "{context}: {name}");
        assert!(e["args"]["key"].as_str().unwrap().starts_with(name));
        assert_eq!(e["args"]["failed"], false);
    }
}

#[test]
fn chrome_trace_has_one_lane_per_worker() {
    let parts: Vec<Delayed<i64>> = (0..64).map(|i| delayed!(slow_inc(i))).collect();
    let sum = delayed!(total(parts));
    let dir = temp_dir("trace");
    for threads in [1, 2, 4] {
        let trace = Arc::new(ChromeTrace::new());
        let options = ComputeOptions::default()
            .threads(threads)
            .callback(trace.clone());
        assert_eq!(sum.compute_with(&options).unwrap(), (1..=64).sum::<i64>());
        let context = format!("threaded({threads})");
        check_trace(&trace.to_json(), threads, 65, &context);
        let path = dir.join(format!("trace-{threads}.json"));
        trace.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let read: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(read, trace.to_json(), "{context}");
    }
    let trace = Arc::new(ChromeTrace::new());
    let options = ComputeOptions::default()
        .executor(Sequential)
        .callback(trace.clone());
    sum.compute_with(&options).unwrap();
    check_trace(&trace.to_json(), 1, 65, "sequential");
    // More threads than tasks: only as many workers as tasks.
    let small = delayed!(total(vec![delayed!(slow_inc(1)), delayed!(slow_inc(2))]));
    let trace = Arc::new(ChromeTrace::new());
    let options = ComputeOptions::default().threads(8).callback(trace.clone());
    small.compute_with(&options).unwrap();
    check_trace(&trace.to_json(), 3, 3, "threaded(8) on 3 tasks");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Progress bar
// ---------------------------------------------------------------------------------------------

const PROGRESS_CHILD: &str = "CHUNKFLOW_VISUALIZE_PROGRESS_CHILD";
const PROGRESS_TEST: &str = "progress_bar_is_silent_when_stderr_is_not_a_terminal";

/// What the child runs: a short computation with two progress bars that draw at once.
fn run_with_progress_bars() {
    let parts: Vec<Delayed<i64>> = (0..40).map(|i| delayed!(slow_inc(i))).collect();
    let sum = delayed!(total(parts));
    let options = ComputeOptions::default()
        .threads(2)
        .progress()
        .callback(Arc::new(ProgressBar::new().with_minimum(Duration::ZERO)));
    assert_eq!(sum.compute_with(&options).unwrap(), (1..=40).sum::<i64>());
}

#[test]
fn progress_bar_is_silent_when_stderr_is_not_a_terminal() {
    if std::env::var_os(PROGRESS_CHILD).is_some() {
        run_with_progress_bars();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // Standard error is a pipe: nothing may be drawn on it.
    let out = Command::new(&exe)
        .args([PROGRESS_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(PROGRESS_CHILD, "1")
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains("tasks"),
        "progress drawn on a pipe: {stderr:?}"
    );
    assert!(
        !stderr.contains('%'),
        "progress drawn on a pipe: {stderr:?}"
    );

    // Control: on a pseudo-terminal (util-linux `script`) the bar does draw.
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_script {
        let command = format!(
            "'{}' {PROGRESS_TEST} --exact --nocapture --test-threads=1",
            exe.display()
        );
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env(PROGRESS_CHILD, "1")
            .output()
            .expect("running script");
        let tty = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{tty}");
        assert!(
            tty.contains("40/41 tasks") || tty.contains("41/41 tasks"),
            "{tty}"
        );
    }
}
