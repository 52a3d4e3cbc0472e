//! `Display` for [`Dataset`], [`DataArray`] and [`Variable`], laid out like xarray's repr:
//! dimensions, coordinates (`*` marks index coordinates), data variables with their
//! dimensions, dtype, size and chunks, then attributes. Nothing is computed: where xarray shows
//! values of in-memory variables, this shows the lazy array's chunking.

use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use super::any_array::AnyArray;
use super::data_array::DataArray;
use super::dataset::Dataset;
use super::variable::Variable;
use crate::array::human_bytes;

/// `chunkflow.Array<chunksize=(2, 2, 5), chunks=6>`: the lazy data, in one cell.
fn data_cell(data: &AnyArray) -> String {
    let chunksize = data.chunks().chunksize();
    format!(
        "chunkflow.Array<chunksize={}, chunks={}>",
        tuple(&chunksize),
        data.num_chunks()
    )
}

fn tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One variable's line: `  * time     (time) datetime64[ns] 48 B chunkflow.Array<…>`.
fn variable_line(name: &str, var: &Variable, index: bool, width: usize) -> String {
    let marker = if index { '*' } else { ' ' };
    let first = format!("  {marker} {name} ");
    format!(
        "{first:<width$}({}) {} {} {}",
        var.dims.join(", "),
        var.dtype(),
        human_bytes(var.nbytes()),
        data_cell(&var.data)
    )
}

fn attr_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `Attributes:` section, with its own column width (as xarray).
fn write_attrs(f: &mut fmt::Formatter<'_>, attrs: &Map<String, Value>) -> fmt::Result {
    if attrs.is_empty() {
        return Ok(());
    }
    let width = column_width(attrs.keys().map(String::as_str));
    f.write_str("\nAttributes:")?;
    for (k, v) in attrs {
        let key = format!("    {k}:");
        write!(f, "\n{key:<width$} {}", attr_value(v))?;
    }
    Ok(())
}

/// xarray's `Dimensions without coordinates:` line, when some dimension has no coordinate.
fn write_bare_dims<'a>(
    f: &mut fmt::Formatter<'_>,
    dims: impl Iterator<Item = &'a str>,
    has_coord: impl Fn(&str) -> bool,
) -> fmt::Result {
    let bare: Vec<&str> = dims.filter(|d| !has_coord(d)).collect();
    if bare.is_empty() {
        return Ok(());
    }
    write!(f, "\nDimensions without coordinates: {}", bare.join(", "))
}

/// xarray's column width: the longest name (at least 7) plus 6.
fn column_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max(7) + 6
}

impl fmt::Display for Dataset {
    /// ```text
    /// <chunkflow.Dataset> Size: 680 B
    /// Dimensions:    (time: 6, lat: 4, lon: 5)
    /// Coordinates:
    ///     cell_area  (lat, lon) float32 80 B chunkflow.Array<chunksize=(2, 5), chunks=2>
    ///   * lat        (lat) float64 32 B chunkflow.Array<chunksize=(4,), chunks=1>
    ///   * time       (time) datetime64[ns] 48 B chunkflow.Array<chunksize=(6,), chunks=1>
    /// Data variables:
    ///     t2m        (time, lat, lon) float32 480 B chunkflow.Array<chunksize=(2, 2, 5), chunks=6>
    /// Attributes:
    ///     title:        interop sample
    ///     Conventions:  CF-1.8
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = column_width(self.names.iter().map(String::as_str));
        write!(
            f,
            "<chunkflow.Dataset> Size: {}",
            human_bytes(self.nbytes())
        )?;
        write!(f, "\n{:<width$}{}", "Dimensions:", self.dims())?;
        let mut coords = self.coords().peekable();
        if coords.peek().is_some() {
            f.write_str("\nCoordinates:")?;
            for (name, var) in coords {
                write!(
                    f,
                    "\n{}",
                    variable_line(name, var, self.is_index(name), width)
                )?;
            }
        }
        let dims = self.dims();
        write_bare_dims(f, dims.names(), |d| self.is_index(d))?;
        f.write_str("\nData variables:")?;
        let mut data_vars = self.data_vars().peekable();
        if data_vars.peek().is_none() {
            f.write_str("\n    *empty*")?;
        }
        for (name, var) in data_vars {
            write!(f, "\n{}", variable_line(name, var, false, width))?;
        }
        write_attrs(f, &self.attrs)
    }
}

impl fmt::Display for DataArray {
    /// ```text
    /// <chunkflow.DataArray 't2m' (time: 6, lat: 4, lon: 5)> Size: 480 B
    /// float32 chunkflow.Array<chunksize=(2, 2, 5), chunks=6>
    /// Coordinates:
    ///   * lat        (lat) float64 32 B chunkflow.Array<chunksize=(4,), chunks=1>
    /// Attributes:
    ///     units:     K
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.name {
            Some(n) => format!("'{n}' "),
            None => String::new(),
        };
        write!(
            f,
            "<chunkflow.DataArray {name}{}> Size: {}\n{} {}",
            self.sizes(),
            human_bytes(self.variable.nbytes()),
            self.dtype(),
            data_cell(&self.variable.data)
        )?;
        let width = column_width(self.coords.iter().map(|(n, _)| n.as_str()));
        if !self.coords.is_empty() {
            f.write_str("\nCoordinates:")?;
            for (n, v) in &self.coords {
                write!(f, "\n{}", variable_line(n, v, self.is_index(n), width))?;
            }
        }
        write_bare_dims(f, self.dims().iter().map(String::as_str), |d| {
            self.is_index(d)
        })?;
        write_attrs(f, &self.variable.attrs)
    }
}

impl fmt::Display for Variable {
    /// `<chunkflow.Variable (time: 6, x: 3)> Size: 72 B`, the data, then attributes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = String::new();
        write!(
            head,
            "<chunkflow.Variable {}> Size: {}",
            self.sizes(),
            human_bytes(self.nbytes())
        )?;
        write!(f, "{head}\n{} {}", self.dtype(), data_cell(&self.data))?;
        write_attrs(f, &self.attrs)
    }
}

#[cfg(test)]
mod tests {
    use crate::array;
    use crate::dataset::{Dataset, Variable};

    #[test]
    fn dataset_repr_lists_sections() {
        let ds = Dataset::new()
            .with_variable(
                "t2m",
                Variable::new(["time", "x"], array::zeros::<f32>(&[4, 3], [2, 3]).unwrap())
                    .unwrap()
                    .with_attr("units", "K"),
            )
            .unwrap()
            .with_variable(
                "x",
                Variable::new(["x"], array::zeros::<f64>(&[3], 3).unwrap()).unwrap(),
            )
            .unwrap()
            .with_attr("title", "demo")
            .with_attr("Conventions", "CF");
        let text = ds.to_string();
        let expected = "<chunkflow.Dataset> Size: 72 B\n\
            Dimensions:  (time: 4, x: 3)\n\
            Coordinates:\n  \
              * x        (x) float64 24 B chunkflow.Array<chunksize=(3,), chunks=1>\n\
            Dimensions without coordinates: time\n\
            Data variables:\n    \
                t2m      (time, x) float32 48 B chunkflow.Array<chunksize=(2, 3), chunks=2>\n\
            Attributes:\n    \
                title:        demo\n    \
                Conventions:  CF";
        assert_eq!(text, expected, "\n{text}");
        let da = ds.data_array("t2m").unwrap().to_string();
        assert!(
            da.starts_with("<chunkflow.DataArray 't2m' (time: 4, x: 3)> Size: 48 B\nfloat32"),
            "{da}"
        );
        assert!(da.contains("  * x ") && da.contains("units:"), "{da}");
        let v = ds.variable("x").unwrap().to_string();
        assert!(
            v.starts_with("<chunkflow.Variable (x: 3)> Size: 24 B"),
            "{v}"
        );
    }
}
