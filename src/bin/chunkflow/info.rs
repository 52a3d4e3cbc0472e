//! `chunkflow info STORE`: the tree of groups and arrays in a Zarr store, as text or JSON.
//!
//! The tree comes from listing the store (not from consolidated metadata, which may be stale):
//! every key named `zarr.json`, `.zarray` or `.zgroup` marks a node. For each array it shows the
//! shape, chunks (and shards), dtype, codecs, dimension names, fill value, and the bytes stored
//! under its prefix against its uncompressed size; groups show their attributes compactly.
//!
//! A group that follows xarray's conventions (it holds arrays, all with dimension names: v3
//! `dimension_names` or v2 `_ARRAY_DIMENSIONS`) is also shown as the Dataset
//! [`open_zarr`] reads, in xarray's repr (dimensions, coordinates, data variables, attributes),
//! after the tree; `--json` adds it to the group's node as `"dataset"`. Other groups show the
//! tree only.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chunkflow::array::human_bytes;
use chunkflow::dataset::{Dataset, OpenOptions, open_zarr};
use chunkflow::store::{
    FillValue, NodeKind, Store, ZarrArray, group_attributes, list_children, node_kind,
};
use chunkflow::{Error, Result};
use serde_json::{Value, json};

pub struct InfoArgs {
    pub store: String,
    pub json: bool,
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let store = open_existing(&args.store)?;
    let tree = scan(&store, &args.store)?;
    if args.json {
        let doc = json!({"store": store.description(), "root": tree.to_json()});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON values serialise")
        );
    } else {
        let mut out = String::new();
        tree.render(&mut out, "", None);
        tree.render_datasets(&mut out);
        print!("{out}");
    }
    Ok(())
}

/// The group at `path` as a Dataset, when it follows xarray's conventions: it has arrays and
/// opens with [`open_zarr`] (every array has dimension names, lengths agree).
fn dataset_view(store: &Store, path: &str, has_arrays: bool) -> Option<Dataset> {
    if !has_arrays {
        return None;
    }
    open_zarr(store, path, &OpenOptions::default()).ok()
}

/// Opens the store, first checking that a filesystem store's directory exists (opening one
/// would otherwise succeed and find nothing).
fn open_existing(url: &str) -> Result<Store> {
    let path = match url.split_once("://") {
        None => Some(url),
        Some(("file", path)) => Some(path),
        Some(_) => None,
    };
    if let Some(path) = path {
        let p = Path::new(path);
        if !p.exists() {
            return Err(Error::Io {
                path: p.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such store: the directory does not exist",
                ),
            });
        }
        if !p.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{path} is not a Zarr store: it is a file, not a directory"
            )));
        }
    }
    Ok(Store::open(url)?)
}

/// A node of the tree.
enum Node {
    Group {
        path: String,
        name: String,
        /// `None` for a root with no group metadata of its own (nodes below it only).
        format: Option<String>,
        attributes: serde_json::Map<String, Value>,
        consolidated: bool,
        children: Vec<Node>,
        /// The group read as an xarray Dataset, when it is one.
        dataset: Option<Box<Dataset>>,
    },
    Array(Box<ArrayInfo>),
}

struct ArrayInfo {
    name: String,
    array: ZarrArray,
    bytes_stored: u64,
    objects_stored: u64,
}

/// Lists the store once and builds the tree of its nodes, with the bytes under each array.
fn scan(store: &Store, url: &str) -> Result<Node> {
    let keys = store.list("")?;
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for key in &keys {
        let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
        if matches!(file, "zarr.json" | ".zarray" | ".zgroup") {
            paths.insert(dir.to_string());
        }
    }
    let mut kinds: HashMap<String, NodeKind> = HashMap::new();
    for path in &paths {
        if let Some((kind, _)) = node_kind(store, path)? {
            kinds.insert(path.clone(), kind);
        }
    }
    if kinds.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{url} is not a Zarr store: it holds no zarr.json, .zarray or .zgroup ({} keys)",
            keys.len()
        )));
    }

    // Bytes and objects (other than metadata documents) under each array's prefix.
    let mut stored: HashMap<&str, (u64, u64)> = HashMap::new();
    for key in &keys {
        let Some(owner) = owning_array(key, &kinds) else {
            continue;
        };
        let size = store.size(key)?.unwrap_or(0);
        let file = key.rsplit('/').next().unwrap_or(key);
        let is_chunk = !matches!(file, "zarr.json" | ".zarray" | ".zattrs" | ".zgroup");
        let entry = stored.entry(owner).or_default();
        entry.0 += size;
        entry.1 += u64::from(is_chunk);
    }

    // The tree: each node under its nearest ancestor node (the root if none).
    let mut nodes: Vec<&String> = kinds.keys().collect();
    nodes.sort();
    build(store, "", &nodes, &kinds, &stored)
}

/// The array whose prefix holds `key`, if any.
fn owning_array<'a>(key: &str, kinds: &'a HashMap<String, NodeKind>) -> Option<&'a str> {
    let mut dir = key;
    loop {
        dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
        if let Some((path, NodeKind::Array)) = kinds.get_key_value(dir) {
            return Some(path);
        }
        if dir.is_empty() {
            return None;
        }
    }
}

fn parent_of<'a>(path: &str, kinds: &'a HashMap<String, NodeKind>) -> &'a str {
    let mut dir = path;
    while let Some((d, _)) = dir.rsplit_once('/') {
        if let Some((p, _)) = kinds.get_key_value(d) {
            return p;
        }
        dir = d;
    }
    kinds.get_key_value("").map_or("", |(p, _)| p)
}

fn build(
    store: &Store,
    path: &str,
    nodes: &[&String],
    kinds: &HashMap<String, NodeKind>,
    stored: &HashMap<&str, (u64, u64)>,
) -> Result<Node> {
    let name = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    match kinds.get(path) {
        Some(NodeKind::Array) => {
            let array = ZarrArray::open(store, path)?;
            let (bytes_stored, objects_stored) = stored.get(path).copied().unwrap_or_default();
            Ok(Node::Array(Box::new(ArrayInfo {
                name,
                array,
                bytes_stored,
                objects_stored,
            })))
        }
        kind => {
            let (format, attributes, consolidated) = if kind.is_some() {
                let format = node_kind(store, path)?.map(|(_, f)| f.to_string());
                let attrs = group_attributes(store, path)?;
                let consolidated = list_children(store, path)?.consolidated;
                (format, attrs, consolidated)
            } else {
                (None, serde_json::Map::new(), false)
            };
            let mut children = Vec::new();
            for child in nodes {
                if child.as_str() != path && parent_of(child, kinds) == path {
                    let mut node = build(store, child, nodes, kinds, stored)?;
                    let relative = child
                        .strip_prefix(path)
                        .unwrap_or(child)
                        .trim_start_matches('/');
                    node.set_name(relative);
                    children.push(node);
                }
            }
            let has_arrays = children.iter().any(|c| matches!(c, Node::Array(_)));
            let dataset = if kind.is_some() {
                dataset_view(store, path, has_arrays).map(Box::new)
            } else {
                None
            };
            Ok(Node::Group {
                path: path.to_string(),
                name,
                format,
                attributes,
                consolidated,
                children,
                dataset,
            })
        }
    }
}

impl Node {
    fn set_name(&mut self, name: &str) {
        match self {
            Node::Group { name: n, .. } => *n = name.to_string(),
            Node::Array(a) => a.name = name.to_string(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Group {
                path,
                name,
                format,
                attributes,
                consolidated,
                children,
                dataset,
            } => json!({
                "kind": "group", "path": path, "name": name, "format": format,
                "implicit": format.is_none(), "attributes": attributes,
                "consolidated": consolidated,
                "children": children.iter().map(Node::to_json).collect::<Vec<_>>(),
                "dataset": dataset.as_deref().map(dataset_json),
            }),
            Node::Array(info) => {
                let a = &info.array;
                json!({
                    "kind": "array", "path": a.path(), "name": info.name,
                    "format": a.format().to_string(), "shape": a.shape(),
                    "chunks": a.chunk_shape(), "shards": a.shard_shape(),
                    "dtype": a.dtype().name(), "codecs": a.codec_description(),
                    "dimension_names": a.dimension_names(),
                    "fill_value": fill_json(a.fill_value()),
                    "attributes": a.attributes(),
                    "bytes_stored": info.bytes_stored, "bytes_uncompressed": a.nbytes(),
                    "objects_stored": info.objects_stored,
                    "objects_total": a.write_grid_shape().iter().product::<u64>(),
                })
            }
        }
    }

    /// Appends, for every group that is an xarray Dataset, a blank line, a heading and the
    /// Dataset's repr.
    fn render_datasets(&self, out: &mut String) {
        let Node::Group {
            path,
            children,
            dataset,
            ..
        } = self
        else {
            return;
        };
        if let Some(ds) = dataset {
            let shown = if path.is_empty() { "/" } else { path };
            out.push_str(&format!(
                "\n{shown} as an xarray Dataset (xarray's conventions):\n{ds}\n"
            ));
            for warning in ds.warnings() {
                out.push_str(&format!("  note: {warning}\n"));
            }
        }
        for child in children {
            child.render_datasets(out);
        }
    }

    /// Appends this node's lines. `connector`: `None` for the root, else whether it is the last
    /// child of its parent.
    fn render(&self, out: &mut String, prefix: &str, last: Option<bool>) {
        let (head, child_prefix) = match last {
            None => (String::new(), prefix.to_string()),
            Some(true) => (format!("{prefix}└── "), format!("{prefix}    ")),
            Some(false) => (format!("{prefix}├── "), format!("{prefix}│   ")),
        };
        match self {
            Node::Group {
                name,
                format,
                attributes,
                consolidated,
                children,
                ..
            } => {
                let what = match format {
                    Some(f) => format!("group, {f}"),
                    None => "no group metadata".to_string(),
                };
                let consolidated = if *consolidated { ", consolidated" } else { "" };
                let attrs = if attributes.is_empty() {
                    String::new()
                } else {
                    format!("  {}", compact(&Value::Object(attributes.clone()), 100))
                };
                let slash = if name.ends_with('/') { "" } else { "/" };
                out.push_str(&format!(
                    "{head}{name}{slash} ({what}{consolidated}){attrs}\n"
                ));
                for (i, child) in children.iter().enumerate() {
                    child.render(out, &child_prefix, Some(i + 1 == children.len()));
                }
            }
            Node::Array(info) => {
                let a = &info.array;
                out.push_str(&format!("{head}{} (array, {})\n", info.name, a.format()));
                let detail = format!("{child_prefix}  ");
                let mut line = |text: String| out.push_str(&format!("{detail}{text}\n"));
                let mut grid = format!(
                    "shape {}  chunks {}",
                    tuple(a.shape()),
                    tuple(a.chunk_shape())
                );
                if let Some(shards) = a.shard_shape() {
                    grid.push_str(&format!("  shards {}", tuple(shards)));
                }
                line(format!("{grid}  dtype {}", a.dtype()));
                line(format!("codecs {}", a.codec_description()));
                let dims = a
                    .dimension_names()
                    .map_or("-".to_string(), |names| format!("({})", names.join(", ")));
                let fill = match fill_json(a.fill_value()) {
                    Value::String(s) => s,
                    Value::Null => "none (null)".to_string(),
                    other => other.to_string(),
                };
                line(format!("dimensions {dims}  fill value {fill}"));
                if !a.attributes().is_empty() {
                    line(format!(
                        "attributes {}",
                        compact(&Value::Object(a.attributes().clone()), 100)
                    ));
                }
                let unit = if a.shard_shape().is_some() {
                    "shards"
                } else {
                    "chunks"
                };
                let total: u64 = a.write_grid_shape().iter().product();
                let ratio = if info.bytes_stored > 0 {
                    format!(
                        ", ratio {:.2}",
                        a.nbytes() as f64 / info.bytes_stored as f64
                    )
                } else {
                    String::new()
                };
                line(format!(
                    "size {} on disk ({} of {total} {unit} stored), {} uncompressed{ratio}",
                    human_bytes(info.bytes_stored),
                    info.objects_stored,
                    human_bytes(a.nbytes()),
                ));
            }
        }
    }
}

/// A Dataset's structure as JSON: dimensions, coordinates (index ones marked), data variables
/// with their dims and dtypes, attributes, and the repr text.
fn dataset_json(ds: &Dataset) -> Value {
    let var = |name: &str| {
        let v = ds.variable(name).expect("listed by the dataset");
        json!({"name": name, "dims": v.dims(), "dtype": v.dtype().name(), "shape": v.shape(),
               "index": ds.is_index(name)})
    };
    json!({
        "dims": ds.dims().iter().map(|(d, n)| json!([d, n])).collect::<Vec<_>>(),
        "coords": ds.coords().map(|(n, _)| var(n)).collect::<Vec<_>>(),
        "data_vars": ds.data_vars().map(|(n, _)| var(n)).collect::<Vec<_>>(),
        "attributes": ds.attrs(),
        "warnings": ds.warnings(),
        "repr": ds.to_string(),
    })
}

fn tuple(v: &[u64]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A fill value as JSON (`"NaN"`, `"Infinity"` as zarr writes them; `null` for none).
fn fill_json(f: FillValue) -> Value {
    match f {
        FillValue::Null => Value::Null,
        FillValue::Zero => json!(0),
        FillValue::NaN => json!("NaN"),
        FillValue::Bool(b) => json!(b),
        FillValue::Int(i) => json!(i),
        FillValue::UInt(u) => json!(u),
        FillValue::Float(x) if x == f64::INFINITY => json!("Infinity"),
        FillValue::Float(x) if x == f64::NEG_INFINITY => json!("-Infinity"),
        FillValue::Float(x) => json!(x),
    }
}

/// One-line JSON, cut to about `max` characters.
fn compact(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
