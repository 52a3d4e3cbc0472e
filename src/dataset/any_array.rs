//! [`AnyArray`]: a lazy chunked array whose element type is chosen at run time (from a store's
//! dtype), and [`AnyNdArray`], its computed form.
//!
//! One variant per [`Element`] type, plus [`AnyArray::Datetime`]: nanoseconds since
//! 1970-01-01 as `Array<i64>` with `i64::MIN` as NaT, which is numpy's and xarray's
//! `datetime64[ns]`. The variant, not the inner array, says what the numbers mean: an
//! `AnyArray::I64` is plain integers, an `AnyArray::Datetime` is times.
//!
//! Code generic over the element type dispatches with the crate-internal `with_any!` (read)
//! and `map_any!` (same element type out) macros, so new operations (selection, maths by
//! name) are one line per operation, not one per type.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ndarray::ArrayD;

use super::error::{DatasetError, DatasetResult};
use crate::array::{Array, Chunks, DType, Element};
use crate::collection::Collection;
use crate::graph::token::TokenHasher;
use crate::graph::{Key, Layer, Value};

/// The element type of a variable: a stored [`DType`], or a datetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarDType {
    /// Numbers or booleans of this type.
    Plain(DType),
    /// `datetime64[ns]`: nanoseconds since 1970-01-01, held as `i64`.
    Datetime,
}

impl VarDType {
    /// numpy's name: `"float32"`, `"datetime64[ns]"`.
    pub fn name(self) -> &'static str {
        match self {
            VarDType::Plain(d) => d.name(),
            VarDType::Datetime => "datetime64[ns]",
        }
    }

    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            VarDType::Plain(d) => d.itemsize(),
            VarDType::Datetime => 8,
        }
    }
}

impl fmt::Display for VarDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<DType> for VarDType {
    fn from(d: DType) -> Self {
        VarDType::Plain(d)
    }
}

/// A lazy chunked array of any element type.
///
/// ```
/// use chunkflow::array;
/// use chunkflow::dataset::{AnyArray, VarDType};
/// use chunkflow::array::DType;
///
/// let a = AnyArray::from(array::arange(0i16, 6, 1, 4)?);
/// assert_eq!(a.dtype(), VarDType::Plain(DType::I16));
/// assert_eq!(a.shape(), &[6]);
/// assert!(a.typed::<i16>().is_some() && a.typed::<f32>().is_none());
/// let mean = a.to_f64().mean_all().compute()?;
/// assert_eq!(mean, 2.5);
/// # Ok::<(), chunkflow::Error>(())
/// ```
#[derive(Clone)]
#[allow(missing_docs)]
pub enum AnyArray {
    Bool(Array<bool>),
    I8(Array<i8>),
    I16(Array<i16>),
    I32(Array<i32>),
    I64(Array<i64>),
    U8(Array<u8>),
    U16(Array<u16>),
    U32(Array<u32>),
    U64(Array<u64>),
    F32(Array<f32>),
    F64(Array<f64>),
    /// Datetimes: nanoseconds since 1970-01-01 (UTC), `i64::MIN` for NaT.
    Datetime(Array<i64>),
}

/// Runs `$body` with `$a` bound to the inner `Array<T>` of any variant (a reference when
/// `$any` is one).
macro_rules! with_any {
    ($any:expr, $a:ident => $body:expr) => {
        match $any {
            $crate::dataset::AnyArray::Bool($a) => $body,
            $crate::dataset::AnyArray::I8($a) => $body,
            $crate::dataset::AnyArray::I16($a) => $body,
            $crate::dataset::AnyArray::I32($a) => $body,
            $crate::dataset::AnyArray::I64($a) => $body,
            $crate::dataset::AnyArray::U8($a) => $body,
            $crate::dataset::AnyArray::U16($a) => $body,
            $crate::dataset::AnyArray::U32($a) => $body,
            $crate::dataset::AnyArray::U64($a) => $body,
            $crate::dataset::AnyArray::F32($a) => $body,
            $crate::dataset::AnyArray::F64($a) => $body,
            $crate::dataset::AnyArray::Datetime($a) => $body,
        }
    };
}

#[allow(unused_macros)]
/// Like `with_any!`, where `$body` returns `Result<Array<T>, E>` of the same `T`: the result
/// is rewrapped in the same variant (a datetime stays a datetime).
macro_rules! map_any {
    ($any:expr, $a:ident => $body:expr) => {
        match $any {
            $crate::dataset::AnyArray::Bool($a) => $body.map($crate::dataset::AnyArray::Bool),
            $crate::dataset::AnyArray::I8($a) => $body.map($crate::dataset::AnyArray::I8),
            $crate::dataset::AnyArray::I16($a) => $body.map($crate::dataset::AnyArray::I16),
            $crate::dataset::AnyArray::I32($a) => $body.map($crate::dataset::AnyArray::I32),
            $crate::dataset::AnyArray::I64($a) => $body.map($crate::dataset::AnyArray::I64),
            $crate::dataset::AnyArray::U8($a) => $body.map($crate::dataset::AnyArray::U8),
            $crate::dataset::AnyArray::U16($a) => $body.map($crate::dataset::AnyArray::U16),
            $crate::dataset::AnyArray::U32($a) => $body.map($crate::dataset::AnyArray::U32),
            $crate::dataset::AnyArray::U64($a) => $body.map($crate::dataset::AnyArray::U64),
            $crate::dataset::AnyArray::F32($a) => $body.map($crate::dataset::AnyArray::F32),
            $crate::dataset::AnyArray::F64($a) => $body.map($crate::dataset::AnyArray::F64),
            $crate::dataset::AnyArray::Datetime($a) => {
                $body.map($crate::dataset::AnyArray::Datetime)
            }
        }
    };
}

#[allow(unused_imports)]
pub(crate) use {map_any, with_any};

impl AnyArray {
    /// Wraps an `Array<T>` in the variant of `T` (never [`AnyArray::Datetime`]: use
    /// [`AnyArray::datetime`] for times).
    pub fn from_array<T: Element>(array: Array<T>) -> AnyArray {
        fn cast<T: 'static, U: 'static>(a: Array<T>) -> Array<U> {
            let boxed: Box<dyn Any> = Box::new(a);
            *boxed
                .downcast::<Array<U>>()
                .expect("T is U: checked by DTYPE")
        }
        match T::DTYPE {
            DType::Bool => AnyArray::Bool(cast(array)),
            DType::I8 => AnyArray::I8(cast(array)),
            DType::I16 => AnyArray::I16(cast(array)),
            DType::I32 => AnyArray::I32(cast(array)),
            DType::I64 => AnyArray::I64(cast(array)),
            DType::U8 => AnyArray::U8(cast(array)),
            DType::U16 => AnyArray::U16(cast(array)),
            DType::U32 => AnyArray::U32(cast(array)),
            DType::U64 => AnyArray::U64(cast(array)),
            DType::F32 => AnyArray::F32(cast(array)),
            DType::F64 => AnyArray::F64(cast(array)),
        }
    }

    /// Datetimes from nanoseconds since 1970-01-01 (`i64::MIN` is NaT).
    pub fn datetime(ns: Array<i64>) -> AnyArray {
        AnyArray::Datetime(ns)
    }

    /// The element type.
    pub fn dtype(&self) -> VarDType {
        match self {
            AnyArray::Datetime(_) => VarDType::Datetime,
            other => VarDType::Plain(other.storage_dtype()),
        }
    }

    /// The element type of the inner array (`int64` for datetimes).
    pub fn storage_dtype(&self) -> DType {
        with_any!(self, a => a.dtype())
    }

    /// Whether this holds datetimes.
    pub fn is_datetime(&self) -> bool {
        matches!(self, AnyArray::Datetime(_))
    }

    /// The inner array when it holds plain `T` (not datetimes).
    pub fn typed<T: Element>(&self) -> Option<&Array<T>> {
        if self.is_datetime() {
            return None;
        }
        with_any!(self, a => (a as &dyn Any).downcast_ref::<Array<T>>())
    }

    /// The nanoseconds of a datetime array.
    pub fn as_datetime(&self) -> Option<&Array<i64>> {
        match self {
            AnyArray::Datetime(a) => Some(a),
            _ => None,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_any!(self, a => a.shape())
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The chunks.
    pub fn chunks(&self) -> &Chunks {
        with_any!(self, a => a.chunks())
    }

    /// The number of chunks.
    pub fn num_chunks(&self) -> usize {
        with_any!(self, a => a.num_chunks())
    }

    /// Bytes of the whole array.
    pub fn nbytes(&self) -> u64 {
        with_any!(self, a => a.nbytes())
    }

    /// The layer name (the name part of every chunk key).
    pub fn name(&self) -> &str {
        with_any!(self, a => a.name())
    }

    /// The layer producing the chunks.
    pub fn layer(&self) -> &Arc<Layer> {
        with_any!(self, a => a.layer())
    }

    /// The values as `f64`, lazily (booleans are 0 and 1). Datetimes are an error: their
    /// nanoseconds are not quantities (use [`AnyArray::as_datetime`]).
    pub fn try_to_f64(&self) -> DatasetResult<Array<f64>> {
        match self {
            AnyArray::Bool(a) => {
                Ok(a.map_with_token("to-f64", bool_token(), |b| f64::from(u8::from(b))))
            }
            AnyArray::I8(a) => Ok(a.astype()),
            AnyArray::I16(a) => Ok(a.astype()),
            AnyArray::I32(a) => Ok(a.astype()),
            AnyArray::I64(a) => Ok(a.astype()),
            AnyArray::U8(a) => Ok(a.astype()),
            AnyArray::U16(a) => Ok(a.astype()),
            AnyArray::U32(a) => Ok(a.astype()),
            AnyArray::U64(a) => Ok(a.astype()),
            AnyArray::F32(a) => Ok(a.astype()),
            AnyArray::F64(a) => Ok(a.clone()),
            AnyArray::Datetime(_) => Err(DatasetError::DTypeMismatch {
                variable: self.name().to_string(),
                found: VarDType::Datetime.to_string(),
                requested: "numbers convertible to float64".into(),
            }),
        }
    }

    /// [`AnyArray::try_to_f64`] for arrays known not to hold datetimes.
    ///
    /// # Panics
    /// On a datetime array.
    pub fn to_f64(&self) -> Array<f64> {
        self.try_to_f64()
            .expect("to_f64 on a datetime array (use try_to_f64 or as_datetime)")
    }
}

fn bool_token() -> u64 {
    let mut h = TokenHasher::new();
    h.tag("bool-as-f64");
    h.finish()
}

macro_rules! from_array {
    ($($t:ty),*) => {$(
        impl From<Array<$t>> for AnyArray {
            fn from(a: Array<$t>) -> Self {
                AnyArray::from_array(a)
            }
        }
    )*};
}
from_array!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Collection for AnyArray {
    type Output = AnyNdArray;

    fn layers(&self) -> Vec<Arc<Layer>> {
        vec![self.layer().clone()]
    }

    fn output_keys(&self) -> Vec<Key> {
        with_any!(self, a => a.output_keys())
    }

    fn finalize(&self, values: Vec<Value>) -> crate::Result<AnyNdArray> {
        Ok(match self {
            AnyArray::Bool(a) => AnyNdArray::Bool(a.finalize(values)?),
            AnyArray::I8(a) => AnyNdArray::I8(a.finalize(values)?),
            AnyArray::I16(a) => AnyNdArray::I16(a.finalize(values)?),
            AnyArray::I32(a) => AnyNdArray::I32(a.finalize(values)?),
            AnyArray::I64(a) => AnyNdArray::I64(a.finalize(values)?),
            AnyArray::U8(a) => AnyNdArray::U8(a.finalize(values)?),
            AnyArray::U16(a) => AnyNdArray::U16(a.finalize(values)?),
            AnyArray::U32(a) => AnyNdArray::U32(a.finalize(values)?),
            AnyArray::U64(a) => AnyNdArray::U64(a.finalize(values)?),
            AnyArray::F32(a) => AnyNdArray::F32(a.finalize(values)?),
            AnyArray::F64(a) => AnyNdArray::F64(a.finalize(values)?),
            AnyArray::Datetime(a) => AnyNdArray::Datetime(a.finalize(values)?),
        })
    }
}

impl fmt::Debug for AnyArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AnyArray<{}, shape={:?}, chunks={}>",
            self.dtype(),
            self.shape(),
            self.chunks()
        )
    }
}

/// A computed [`AnyArray`]: an in-memory `ndarray` of the same variant.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum AnyNdArray {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    /// Nanoseconds since 1970-01-01, `i64::MIN` for NaT.
    Datetime(ArrayD<i64>),
}

macro_rules! with_nd {
    ($any:expr, $a:ident => $body:expr) => {
        match $any {
            AnyNdArray::Bool($a) => $body,
            AnyNdArray::I8($a) => $body,
            AnyNdArray::I16($a) => $body,
            AnyNdArray::I32($a) => $body,
            AnyNdArray::I64($a) => $body,
            AnyNdArray::U8($a) => $body,
            AnyNdArray::U16($a) => $body,
            AnyNdArray::U32($a) => $body,
            AnyNdArray::U64($a) => $body,
            AnyNdArray::F32($a) => $body,
            AnyNdArray::F64($a) => $body,
            AnyNdArray::Datetime($a) => $body,
        }
    };
}

impl AnyNdArray {
    /// The element type.
    pub fn dtype(&self) -> VarDType {
        match self {
            AnyNdArray::Datetime(_) => VarDType::Datetime,
            other => VarDType::Plain(with_nd!(other, a => element_dtype(a))),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_nd!(self, a => a.shape())
    }

    /// The values when they are plain `T` (not datetimes).
    pub fn typed<T: Element>(&self) -> Option<&ArrayD<T>> {
        if matches!(self, AnyNdArray::Datetime(_)) {
            return None;
        }
        with_nd!(self, a => (a as &dyn Any).downcast_ref::<ArrayD<T>>())
    }

    /// The nanoseconds of datetimes.
    pub fn as_datetime(&self) -> Option<&ArrayD<i64>> {
        match self {
            AnyNdArray::Datetime(a) => Some(a),
            _ => None,
        }
    }

    /// The values in C order as `f64` (booleans 0 and 1); `None` for datetimes.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        use num_traits::ToPrimitive;
        fn conv<T: ToPrimitive + Copy>(a: &ArrayD<T>) -> Vec<f64> {
            a.iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).collect()
        }
        Some(match self {
            AnyNdArray::Bool(a) => a.iter().map(|&b| f64::from(u8::from(b))).collect(),
            AnyNdArray::I8(a) => conv(a),
            AnyNdArray::I16(a) => conv(a),
            AnyNdArray::I32(a) => conv(a),
            AnyNdArray::I64(a) => conv(a),
            AnyNdArray::U8(a) => conv(a),
            AnyNdArray::U16(a) => conv(a),
            AnyNdArray::U32(a) => conv(a),
            AnyNdArray::U64(a) => conv(a),
            AnyNdArray::F32(a) => conv(a),
            AnyNdArray::F64(a) => conv(a),
            AnyNdArray::Datetime(_) => return None,
        })
    }
}

fn element_dtype<T: Element>(_: &ArrayD<T>) -> DType {
    T::DTYPE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;

    #[test]
    fn variants_follow_the_element_type() {
        let x = AnyArray::from(array::arange(0u16, 5, 1, 2).unwrap());
        assert!(matches!(x, AnyArray::U16(_)));
        assert_eq!(x.dtype().name(), "uint16");
        assert_eq!(x.chunks().axis(0), &[2, 2, 1]);
        let t = AnyArray::datetime(array::arange(0i64, 3, 1, 3).unwrap());
        assert_eq!(t.dtype().to_string(), "datetime64[ns]");
        assert_eq!(t.storage_dtype(), DType::I64);
        assert!(t.typed::<i64>().is_none() && t.as_datetime().is_some());
        assert!(t.try_to_f64().is_err());

        let computed = x.compute().unwrap();
        assert_eq!(computed.dtype(), VarDType::Plain(DType::U16));
        assert_eq!(
            computed.typed::<u16>().unwrap().as_slice().unwrap(),
            &[0, 1, 2, 3, 4]
        );
        assert_eq!(
            computed.to_f64_vec().unwrap(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0]
        );
        let b = AnyArray::from(array::arange(0i8, 4, 1, 4).unwrap().gt_scalar(1));
        assert_eq!(b.to_f64().sum_all().compute().unwrap(), 2.0);
        let same: DatasetResult<AnyArray> = map_any!(&x, a => a.slice([ndarray::SliceInfoElem::from(1..3)]).map_err(DatasetError::from));
        assert!(matches!(same.unwrap(), AnyArray::U16(_)));
    }
}
