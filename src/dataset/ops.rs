//! Maths between [`DataArray`]s by dimension name: `+ - * /` with each other and with
//! scalars, and [`DataArray::dot`] (xarray's arithmetic and `xarray.dot`).
//!
//! # Broadcasting by name
//!
//! The result's dimensions are the left operand's, then the right operand's that the left
//! lacks (xarray's order). The right operand is transposed to that order, and each operand
//! gets length-1 axes for the dimensions it lacks, so numpy broadcasting lines the axes up by
//! name, whatever order the operands hold them in. A dimension both have must have one length:
//! chunkflow does **not** align or reindex (xarray's `join`); instead it requires equal index
//! coordinates on shared dimensions (xarray's `join="exact"`), comparing their values (the
//! small index coordinates are computed for that unless both operands hold the very same
//! lazy array), and fails with [`DatasetError::IndexMismatch`] otherwise.
//!
//! # Types, names, coordinates
//!
//! - Element types promote as numpy's do (see `promote.rs`); `/` of integers gives `float64`
//!   (true division). A scalar takes the array's type when it fits (numpy 2's rule for Python
//!   scalars): `float32 + 1.5` stays `float32`, `int16 + 1.5` becomes `float64`, and an integer
//!   scalar that does not fit the array's integer type is an error. Datetimes, and arithmetic
//!   between two boolean arrays, are [`DatasetError::UnsupportedDType`].
//! - The result keeps the coordinates of both operands (the left's where both have one by the
//!   same name), is named when both operands have the same name (or with a scalar), and
//!   drops attributes (xarray's `keep_attrs=False`).
//! - Integer overflow follows the array room: the task fails in debug builds.
//!
//! Operators return a [`DatasetResult`]: write `(&a + &b)?`.
//!
//! Must not: compute data (only the index coordinates compared for the exact join).

use std::ops::{Add, Div, Mul, Sub};

use super::any_array::{AnyArray, map_any};
use super::data_array::DataArray;
use super::error::{DatasetError, DatasetResult};
use super::promote::{cast, numeric_dtype, result_type};
use super::variable::Variable;
use crate::array::{Array, DType, Number, tensordot};
use crate::collection::Collection;
use crate::graph::token::token_of;

/// An arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (true division: integers give `float64`)
    Div,
}

impl BinaryOp {
    /// The verb used in error messages: `"add"`.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "subtract",
            BinaryOp::Mul => "multiply",
            BinaryOp::Div => "divide",
        }
    }
}

/// Two operands brought to the same dimensions (length 1 where one lacks a dimension).
struct Aligned {
    dims: Vec<String>,
    left: AnyArray,
    right: AnyArray,
}

/// Broadcasts `right` against `left` by dimension name (see the module doc).
fn align(op: &str, left: &Variable, right: &Variable) -> DatasetResult<Aligned> {
    let mut dims = left.dims.clone();
    for (d, &n) in right.dims.iter().zip(right.shape()) {
        match left.dims.iter().position(|x| x == d) {
            Some(a) if left.shape()[a] != n => {
                return Err(DatasetError::DimSizeMismatch {
                    op: op.to_string(),
                    dim: d.clone(),
                    left: left.shape()[a],
                    right: n,
                });
            }
            Some(_) => {}
            None => dims.push(d.clone()),
        }
    }
    let mut l = left.data.clone();
    for axis in left.ndim()..dims.len() {
        l = map_any!(&l, a => a.expand_dims(axis))?;
    }
    let order: Vec<usize> = dims
        .iter()
        .filter_map(|d| right.dims.iter().position(|x| x == d))
        .collect();
    let mut r = right.data.clone();
    if order.iter().enumerate().any(|(i, &a)| i != a) {
        r = map_any!(&r, a => a.transpose(&order))?;
    }
    for (axis, d) in dims.iter().enumerate() {
        if !right.dims.contains(d) {
            r = map_any!(&r, a => a.expand_dims(axis))?;
        }
    }
    Ok(Aligned {
        dims,
        left: l,
        right: r,
    })
}

/// The common element type of two operands of `op`, or an error for datetimes and two
/// boolean operands.
fn common_dtype(op: &str, left: &AnyArray, right: &AnyArray) -> DatasetResult<DType> {
    let a = numeric_dtype(left, op, "the left operand")?;
    let b = numeric_dtype(right, op, "the right operand")?;
    if a == DType::Bool && b == DType::Bool {
        return Err(DatasetError::UnsupportedDType {
            op: op.to_string(),
            what: "two boolean arrays".into(),
            reason: "cast one to a number first (numpy would give a logical result)".into(),
        });
    }
    Ok(result_type(a, b))
}

/// Runs `$body` on two arrays of one numeric type, rewrapping the result.
macro_rules! zip_numeric {
    ($l:expr, $r:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($l, $r) {
            (AnyArray::I8($a), AnyArray::I8($b)) => AnyArray::I8($body?),
            (AnyArray::I16($a), AnyArray::I16($b)) => AnyArray::I16($body?),
            (AnyArray::I32($a), AnyArray::I32($b)) => AnyArray::I32($body?),
            (AnyArray::I64($a), AnyArray::I64($b)) => AnyArray::I64($body?),
            (AnyArray::U8($a), AnyArray::U8($b)) => AnyArray::U8($body?),
            (AnyArray::U16($a), AnyArray::U16($b)) => AnyArray::U16($body?),
            (AnyArray::U32($a), AnyArray::U32($b)) => AnyArray::U32($body?),
            (AnyArray::U64($a), AnyArray::U64($b)) => AnyArray::U64($body?),
            (AnyArray::F32($a), AnyArray::F32($b)) => AnyArray::F32($body?),
            (AnyArray::F64($a), AnyArray::F64($b)) => AnyArray::F64($body?),
            (a, b) => unreachable!(
                "operands were cast to one numeric type, got {} and {}",
                a.dtype(),
                b.dtype()
            ),
        }
    };
}

fn apply<T: Number>(op: BinaryOp, a: &Array<T>, b: &Array<T>) -> crate::Result<Array<T>> {
    match op {
        BinaryOp::Add => a.try_add(b),
        BinaryOp::Sub => a.try_sub(b),
        BinaryOp::Mul => a.try_mul(b),
        BinaryOp::Div => a.try_div(b),
    }
}

fn apply_scalar<T: Number>(op: BinaryOp, a: &Array<T>, s: T, scalar_left: bool) -> Array<T> {
    match (op, scalar_left) {
        (BinaryOp::Add, _) => a + s,
        (BinaryOp::Mul, _) => a * s,
        (BinaryOp::Sub, false) => a - s,
        (BinaryOp::Div, false) => a / s,
        (BinaryOp::Sub, true) => {
            a.map_same_with_token("rsub", token_of(&("rsub", s)), move |x| s - x)
        }
        (BinaryOp::Div, true) => {
            a.map_same_with_token("rdiv", token_of(&("rdiv", s)), move |x| s / x)
        }
    }
}

/// A Python-like scalar operand.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    Int(i64),
    Float(f64),
}

/// `a op s` (or `s op a`) for a scalar of any numeric type.
fn scalar_data(op: BinaryOp, data: &AnyArray, s: Scalar, left: bool) -> DatasetResult<AnyArray> {
    let verb = op.name();
    let dt = numeric_dtype(data, verb, "the array")?;
    let target = match (s, dt) {
        (_, DType::F32 | DType::F64) => dt,
        (Scalar::Float(_), _) => DType::F64,
        (Scalar::Int(_), _) if op == BinaryOp::Div => DType::F64,
        (Scalar::Int(_), DType::Bool) => DType::I64,
        (Scalar::Int(_), _) => dt,
    };
    let data = cast(data, target)?;
    let overflow = || DatasetError::UnsupportedDType {
        op: verb.to_string(),
        what: format!("{data:?} and the scalar {s:?}"),
        reason: format!(
            "the scalar does not fit {target} (numpy raises OverflowError); cast the data to a \
             wider type first"
        ),
    };
    macro_rules! go {
        ($a:expr, $t:ty) => {{
            let v: $t = match s {
                Scalar::Int(i) => num_traits::cast(i).ok_or_else(overflow)?,
                Scalar::Float(x) => num_traits::cast(x).ok_or_else(overflow)?,
            };
            apply_scalar(op, $a, v, left)
        }};
    }
    Ok(match &data {
        AnyArray::I8(a) => AnyArray::I8(go!(a, i8)),
        AnyArray::I16(a) => AnyArray::I16(go!(a, i16)),
        AnyArray::I32(a) => AnyArray::I32(go!(a, i32)),
        AnyArray::I64(a) => AnyArray::I64(go!(a, i64)),
        AnyArray::U8(a) => AnyArray::U8(go!(a, u8)),
        AnyArray::U16(a) => AnyArray::U16(go!(a, u16)),
        AnyArray::U32(a) => AnyArray::U32(go!(a, u32)),
        AnyArray::U64(a) => AnyArray::U64(go!(a, u64)),
        AnyArray::F32(a) => AnyArray::F32(go!(a, f32)),
        AnyArray::F64(a) => AnyArray::F64(go!(a, f64)),
        other => unreachable!("cast to a numeric type, got {}", other.dtype()),
    })
}

/// Checks that the index coordinates of the dimensions both operands have are equal, and
/// merges the coordinates that fit `dims` (the left's first).
fn merge_coords(
    op: &str,
    left: &DataArray,
    right: &DataArray,
    dims: &[String],
) -> DatasetResult<Vec<(String, Variable)>> {
    for d in left.dims().iter().filter(|d| right.dims().contains(d)) {
        let (Some(a), Some(b)) = (index_coord(left, d), index_coord(right, d)) else {
            continue;
        };
        if a.data().name() == b.data().name() {
            continue;
        }
        let (va, vb) = (a.data().compute()?, b.data().compute()?);
        if va != vb {
            let detail = first_difference(&va, &vb);
            return Err(DatasetError::IndexMismatch {
                op: op.to_string(),
                coord: d.clone(),
                detail,
            });
        }
    }
    let mut coords: Vec<(String, Variable)> = Vec::new();
    for (n, c) in left.coords.iter().chain(&right.coords) {
        if c.dims.iter().all(|d| dims.contains(d)) && !coords.iter().any(|(m, _)| m == n) {
            coords.push((n.clone(), c.clone()));
        }
    }
    Ok(coords)
}

fn index_coord<'a>(da: &'a DataArray, dim: &str) -> Option<&'a Variable> {
    da.coords
        .iter()
        .find(|(n, c)| n == dim && c.dims.len() == 1 && c.dims[0] == dim)
        .map(|(_, c)| c)
}

fn first_difference(a: &super::AnyNdArray, b: &super::AnyNdArray) -> String {
    if a.dtype() != b.dtype() {
        return format!("{} vs {}", a.dtype(), b.dtype());
    }
    let show = |x: &super::AnyNdArray, i: usize| match x.as_datetime() {
        Some(t) => super::time::format_datetime(t.iter().nth(i).copied().unwrap_or(0)),
        None => x
            .to_f64_vec()
            .and_then(|v| v.get(i).copied())
            .map_or("?".into(), |v| v.to_string()),
    };
    let n = a
        .shape()
        .iter()
        .product::<usize>()
        .min(b.shape().iter().product());
    let at = (0..n).find(|&i| show(a, i) != show(b, i)).unwrap_or(n);
    format!(
        "first difference at position {at}: {} vs {}",
        show(a, at),
        show(b, at)
    )
}

fn result_name(left: &DataArray, right: &DataArray) -> Option<String> {
    (left.name == right.name)
        .then(|| left.name.clone())
        .flatten()
}

impl DataArray {
    /// `self op other`, broadcast by dimension name (see the module doc); the operators
    /// `+ - * /` call this.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{BinaryOp, DataArray, Variable};
    ///
    /// let a = DataArray::new(Variable::new(["x", "y"], array::arange(0.0f64, 6.0, 1.0, 4)?.reshape([2, 3])?)?);
    /// let b = DataArray::new(Variable::new(["y", "z"], array::ones::<f64>(&[3, 2], 2)?)?);
    /// let c = (&a + &b)?; // dims: a's, then b's new ones
    /// assert_eq!(c.dims(), ["x", "y", "z"]);
    /// assert_eq!(c.shape(), &[2, 3, 2]);
    /// let d = (&b * 2.0)?;
    /// assert_eq!(d.data().typed::<f64>().unwrap().compute()?.sum(), 12.0);
    /// let bad = DataArray::new(Variable::new(["y"], array::ones::<f64>(&[4], 2)?)?);
    /// assert!(a.binary(BinaryOp::Sub, &bad).unwrap_err().to_string().contains("\"y\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimSizeMismatch`] for a shared dimension of different lengths,
    /// [`DatasetError::IndexMismatch`] for different index coordinates on a shared dimension,
    /// [`DatasetError::UnsupportedDType`] for datetimes or two boolean operands.
    pub fn binary(&self, op: BinaryOp, other: &DataArray) -> DatasetResult<DataArray> {
        let verb = op.name();
        let aligned = align(verb, &self.variable, &other.variable)?;
        let mut dt = common_dtype(verb, &aligned.left, &aligned.right)?;
        if op == BinaryOp::Div && !dt.is_float() {
            dt = DType::F64;
        }
        let (l, r) = (cast(&aligned.left, dt)?, cast(&aligned.right, dt)?);
        let data = zip_numeric!(&l, &r, |a, b| apply(op, a, b));
        let coords = merge_coords(verb, self, other, &aligned.dims)?;
        Ok(DataArray::from_parts(
            result_name(self, other),
            Variable::new(aligned.dims, data)?,
            coords,
        ))
    }

    fn scalar(&self, op: BinaryOp, s: Scalar, scalar_left: bool) -> DatasetResult<DataArray> {
        let data = scalar_data(op, &self.variable.data, s, scalar_left)?;
        let mut out = self.clone();
        out.variable = Variable::new(self.variable.dims.clone(), data)?;
        Ok(out)
    }

    /// `self op x` for a float scalar (`x op self` when `scalar_left`).
    pub fn binary_f64(&self, op: BinaryOp, x: f64, scalar_left: bool) -> DatasetResult<DataArray> {
        self.scalar(op, Scalar::Float(x), scalar_left)
    }

    /// `self op i` for an integer scalar (`i op self` when `scalar_left`).
    pub fn binary_i64(&self, op: BinaryOp, i: i64, scalar_left: bool) -> DatasetResult<DataArray> {
        self.scalar(op, Scalar::Int(i), scalar_left)
    }

    /// The sum of products over the dimensions both operands share (xarray's `da.dot(other)`
    /// and `xarray.dot(a, b)`); the result has the remaining dimensions, `self`'s first.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Variable};
    ///
    /// // The notebook's `tas.mean(["lat", "lon"]).dot(tas.T)`: sums over time.
    /// let tas = DataArray::new(Variable::new(["time", "lat", "lon"], array::ones::<f32>(&[4, 2, 3], [2, 2, 3])?)?);
    /// let z = tas.mean(["lat", "lon"])?.dot(&tas.t())?;
    /// assert_eq!(z.dims(), ["lon", "lat"]);
    /// assert!(z.data().typed::<f32>().unwrap().compute()?.iter().all(|&v| v == 4.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`DataArray::binary`].
    pub fn dot(&self, other: &DataArray) -> DatasetResult<DataArray> {
        let shared: Vec<String> = self
            .dims()
            .iter()
            .filter(|d| other.dims().contains(d))
            .cloned()
            .collect();
        self.dot_over(other, shared)
    }

    /// The sum of products over `dims` (xarray's `dot(other, dim=dims)`): dimensions both
    /// operands have but `dims` omits are kept (matched elementwise), and a listed dimension
    /// only one operand has is summed in that operand.
    ///
    /// ```
    /// use chunkflow::array;
    /// use chunkflow::dataset::{DataArray, Variable};
    ///
    /// let a = DataArray::new(Variable::new(["t", "x"], array::ones::<f64>(&[3, 4], 2)?)?);
    /// let b = DataArray::new(Variable::new(["x", "t"], array::ones::<f64>(&[4, 3], 2)?)?);
    /// let per_t = a.dot_over(&b, ["x"])?; // keeps t
    /// assert_eq!(per_t.dims(), ["t"]);
    /// assert_eq!(per_t.data().typed::<f64>().unwrap().compute()?.into_raw_vec_and_offset().0, vec![4.0; 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DatasetError::DimNotFound`] for a dimension neither operand has, and as
    /// [`DataArray::binary`].
    pub fn dot_over<S: AsRef<str>>(
        &self,
        other: &DataArray,
        dims: impl IntoIterator<Item = S>,
    ) -> DatasetResult<DataArray> {
        let dims: Vec<String> = dims.into_iter().map(|d| d.as_ref().to_string()).collect();
        for d in &dims {
            if !self.dims().contains(d) && !other.dims().contains(d) {
                let mut available = self.sizes().into_pairs();
                for (n, l) in other.sizes().into_pairs() {
                    if !available.iter().any(|(m, _)| *m == n) {
                        available.push((n, l));
                    }
                }
                return Err(DatasetError::DimNotFound {
                    dim: d.clone(),
                    context: "either operand of dot".into(),
                    available,
                });
            }
        }
        let aligned = align("dot", &self.variable, &other.variable)?;
        let dt = common_dtype("dot", &aligned.left, &aligned.right)?;
        let kept: Vec<String> = aligned
            .dims
            .iter()
            .filter(|d| !dims.contains(d))
            .cloned()
            .collect();
        let shared_kept = self
            .dims()
            .iter()
            .any(|d| other.dims().contains(d) && !dims.contains(d));
        let in_both = dims
            .iter()
            .all(|d| self.dims().contains(d) && other.dims().contains(d));
        let data = if in_both && !shared_kept {
            // A plain contraction: tensordot over the summed dimensions.
            let (l, r) = (
                cast(&self.variable.data, dt)?,
                cast(&other.variable.data, dt)?,
            );
            let axes_a: Vec<usize> = dims
                .iter()
                .map(|d| self.variable.axis(d))
                .collect::<DatasetResult<_>>()?;
            let axes_b: Vec<usize> = dims
                .iter()
                .map(|d| other.variable.axis(d))
                .collect::<DatasetResult<_>>()?;
            zip_numeric!(&l, &r, |a, b| tensordot(a, b, &axes_a, &axes_b))
        } else {
            // Batch dimensions or one-sided sums: multiply broadcast by name, then sum.
            let (l, r) = (cast(&aligned.left, dt)?, cast(&aligned.right, dt)?);
            let axes: Vec<usize> = aligned
                .dims
                .iter()
                .enumerate()
                .filter(|(_, d)| dims.contains(d))
                .map(|(i, _)| i)
                .collect();
            zip_numeric!(&l, &r, |a, b| apply(BinaryOp::Mul, a, b)
                .and_then(|p| p.sum(&axes)))
        };
        let coords = merge_coords("dot", self, other, &kept)?;
        Ok(DataArray::from_parts(
            result_name(self, other),
            Variable::new(kept, data)?,
            coords,
        ))
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl $trait<&DataArray> for &DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: &DataArray) -> DatasetResult<DataArray> {
                self.binary($op, rhs)
            }
        }
        impl $trait<DataArray> for DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: DataArray) -> DatasetResult<DataArray> {
                self.binary($op, &rhs)
            }
        }
        impl $trait<f64> for &DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: f64) -> DatasetResult<DataArray> {
                self.binary_f64($op, rhs, false)
            }
        }
        impl $trait<f64> for DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: f64) -> DatasetResult<DataArray> {
                self.binary_f64($op, rhs, false)
            }
        }
        impl $trait<i64> for &DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: i64) -> DatasetResult<DataArray> {
                self.binary_i64($op, rhs, false)
            }
        }
        impl $trait<i64> for DataArray {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: i64) -> DatasetResult<DataArray> {
                self.binary_i64($op, rhs, false)
            }
        }
        impl $trait<&DataArray> for f64 {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: &DataArray) -> DatasetResult<DataArray> {
                rhs.binary_f64($op, self, true)
            }
        }
        impl $trait<&DataArray> for i64 {
            type Output = DatasetResult<DataArray>;
            fn $method(self, rhs: &DataArray) -> DatasetResult<DataArray> {
                rhs.binary_i64($op, self, true)
            }
        }
    };
}

operator!(Add, add, BinaryOp::Add);
operator!(Sub, sub, BinaryOp::Sub);
operator!(Mul, mul, BinaryOp::Mul);
operator!(Div, div, BinaryOp::Div);
