//! Graph plots: DOT built with graphviz-rust, rendered to SVG/PNG/PDF by Graphviz's `dot`.
//!
//! The drawing follows dask's `visualize`: each task is a circle labelled with its function
//! (the key's label, hashes stripped) pointing up (`rankdir=BT`) to a box for the value it
//! produces; literal values are boxes alone. Chunk results are labelled with their index.
//! Options colour nodes by execution order (dask's `color="order"`) or by task kind.
//!
//! `.dot`/`.gv` files are always written; other formats need `dot` on `PATH` and fail with
//! [`Error::GraphvizNotInstalled`] otherwise.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use graphviz_rust::dot_structures::{
    Attribute, Edge, EdgeTy, Graph, GraphAttributes, Id, Node, NodeId, Stmt, Vertex,
};
use graphviz_rust::printer::{DotPrinter, PrinterContext};

use super::frozen::{TaskGraph, TaskId};
use super::task::{TaskKind, TaskOp};
use crate::error::{Error, Result};

/// How nodes are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeColor {
    /// No fill (dask's default).
    #[default]
    None,
    /// A colour ramp over the static execution order (dask's `color="order"`).
    Order,
    /// One colour per task kind (read, compute, rechunk, write, data).
    Kind,
}

/// Options for [`to_dot`] and [`write_graph`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DotOptions {
    /// Node colouring.
    pub color: NodeColor,
}

/// Builds the DOT text of a graph.
///
/// ```
/// use chunkflow::graph::{FreezeOptions, Task, TaskGraph, value};
/// use chunkflow::graph::dot::{to_dot, DotOptions};
/// let g = TaskGraph::from_tasks(
///     [Task::data("x-0123456789abcdef", 1), Task::call("inc-00112233aabbccdd", ["x-0123456789abcdef"], |i| Ok(i[0].clone()))],
///     &["inc-00112233aabbccdd".into()],
///     FreezeOptions { fuse: false },
/// ).unwrap();
/// let dot = to_dot(&g, DotOptions::default());
/// assert!(dot.contains("\"inc\""));
/// ```
pub fn to_dot(g: &TaskGraph, options: DotOptions) -> String {
    let mut stmts: Vec<Stmt> = vec![
        GraphAttributes::Graph(vec![attr("rankdir", "BT")]).into(),
        GraphAttributes::Node(vec![attr("fontname", "Helvetica")]).into(),
    ];
    let n = g.len().max(1) as f64;
    for id in 0..g.len() as TaskId {
        let key = g.key(id);
        let fill = match options.color {
            NodeColor::None => None,
            NodeColor::Order => Some(ramp(g.priority(id) as f64 / n)),
            NodeColor::Kind => Some(kind_color(g.meta(id).kind).to_string()),
        };
        let dark = options.color == NodeColor::Order && (g.priority(id) as f64 / n) < 0.5;
        let mut data_attrs = vec![attr("shape", "box"), attr("label", &data_label(g, id))];
        fill_attrs(&mut data_attrs, fill.as_deref(), dark);
        stmts.push(Node::new(node_id(&data_node(id)), data_attrs).into());
        if matches!(g.op(id), TaskOp::Data(_)) {
            continue;
        }
        let mut label = key.label().to_string();
        if g.fused_count(id) > 1 {
            label = format!("{label} (fused {})", g.fused_count(id));
        }
        let mut fn_attrs = vec![attr("shape", "circle"), attr("label", &label)];
        fill_attrs(&mut fn_attrs, fill.as_deref(), dark);
        stmts.push(Node::new(node_id(&func_node(id)), fn_attrs).into());
        stmts.push(edge(&func_node(id), &data_node(id)));
        for &d in g.deps(id) {
            stmts.push(edge(&data_node(d), &func_node(id)));
        }
    }
    let graph = Graph::DiGraph {
        id: Id::Plain("chunkflow".into()),
        strict: false,
        stmts,
    };
    graph.print(&mut PrinterContext::default())
}

/// Writes a plot of `g` to `path`; the format comes from the extension (`dot`/`gv` as text,
/// anything else, e.g. `svg`, `png`, `pdf`, rendered by Graphviz's `dot`).
pub fn write_graph(g: &TaskGraph, path: &Path, options: DotOptions) -> Result<()> {
    write_dot_text(&to_dot(g, options), path)
}

/// Writes DOT text to `path`, rendering it when the extension asks for an image.
pub fn write_dot_text(dot: &str, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "dot".into());
    if ext == "dot" || ext == "gv" {
        return std::fs::write(path, dot).map_err(|e| Error::io(path, e));
    }
    let child = Command::new("dot")
        .arg(format!("-T{ext}"))
        .arg("-o")
        .arg(path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::GraphvizNotInstalled { format: ext });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(dot.as_bytes())
        .map_err(|e| Error::io(path, e))?;
    let out = child.wait_with_output().map_err(|e| Error::io(path, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Graphviz {
            path: path.to_path_buf(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether Graphviz's `dot` is on `PATH`.
pub fn graphviz_available() -> bool {
    Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn data_label(g: &TaskGraph, id: TaskId) -> String {
    let key = g.key(id);
    if key.index().is_empty() {
        if matches!(g.op(id), TaskOp::Data(_)) {
            key.label().to_string()
        } else {
            String::new()
        }
    } else {
        let idx: Vec<String> = key.index().iter().map(|i| i.to_string()).collect();
        format!("({})", idx.join(", "))
    }
}

fn fill_attrs(attrs: &mut Vec<Attribute>, fill: Option<&str>, dark: bool) {
    if let Some(c) = fill {
        attrs.push(attr("style", "filled"));
        attrs.push(attr("fillcolor", c));
        if dark {
            attrs.push(attr("fontcolor", "white"));
        }
    }
}

fn kind_color(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Compute => "#8ecae6",
        TaskKind::Data => "#e9ecef",
        TaskKind::Read => "#90be6d",
        TaskKind::Write => "#f9844a",
        TaskKind::Rechunk => "#f9c74f",
    }
}

/// A blue → yellow ramp for `t` in `[0, 1]`.
fn ramp(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let (r0, g0, b0) = (68.0, 1.0, 84.0);
    let (r1, g1, b1) = (253.0, 231.0, 37.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1))
}

fn data_node(id: TaskId) -> String {
    format!("d{id}")
}

fn func_node(id: TaskId) -> String {
    format!("f{id}")
}

fn node_id(name: &str) -> NodeId {
    NodeId(Id::Plain(name.to_string()), None)
}

fn edge(from: &str, to: &str) -> Stmt {
    Edge {
        ty: EdgeTy::Pair(Vertex::N(node_id(from)), Vertex::N(node_id(to))),
        attributes: vec![],
    }
    .into()
}

fn attr(name: &str, value: &str) -> Attribute {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    Attribute(
        Id::Plain(name.into()),
        Id::Escaped(format!("\"{escaped}\"")),
    )
}
