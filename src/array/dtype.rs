//! Element types: the run-time [`DType`] (what a store says) and the compile-time [`Element`]
//! trait (what `Array<T>` holds), with numpy's names so users and stores agree.
//!
//! Invariant: `T::DTYPE` round-trips through [`DType::name`] / [`DType::from_name`] and through
//! the numpy type strings of Zarr v2 (`"<f4"`, `"|b1"`, ...).

use std::fmt;

use crate::graph::token::Tokenize;

/// An element type known at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// `bool`
    Bool,
    /// `int8`
    I8,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `uint8`
    U8,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64`
    U64,
    /// `float32`
    F32,
    /// `float64`
    F64,
}

impl DType {
    /// Every dtype, in a fixed order.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// numpy's (and Zarr v3's) name: `"float32"`, `"int16"`, `"bool"`.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// The dtype with numpy name `name` (also accepts Zarr v2 type strings like `"<f4"`).
    ///
    /// ```
    /// use chunkflow::array::DType;
    /// assert_eq!(DType::from_name("float32"), Some(DType::F32));
    /// assert_eq!(DType::from_name("<i2"), Some(DType::I16));
    /// assert_eq!(DType::from_name("complex64"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<DType> {
        // v2 type strings: byte order ('<', '|' or native '=') then kind and size ("f4").
        let v2 = name.strip_prefix(['<', '|', '=']);
        DType::ALL
            .into_iter()
            .find(|d| d.name() == name || v2 == Some(&d.v2_typestr()[1..]))
    }

    /// The little-endian Zarr v2 type string: `"<f4"`, `"|b1"`, `"|u1"`.
    pub fn v2_typestr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A type an `Array<T>` can hold and a store can read or write.
pub trait Element:
    Copy + Default + PartialEq + PartialOrd + fmt::Debug + Send + Sync + Tokenize + 'static
{
    /// The run-time dtype of `Self`.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}
element!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
         u32 => U32, u64 => U64, f32 => F32, f64 => F64);

/// Whether `x` is NaN: the one value not comparable with itself (false for every non-float).
pub fn is_nan<T: PartialOrd>(x: &T) -> bool {
    x.partial_cmp(x).is_none()
}

/// Numeric elements: arithmetic, sums and products.
pub trait Number:
    Element + num_traits::Num + num_traits::NumCast + num_traits::ToPrimitive + std::iter::Sum
{
}

impl<T> Number for T where
    T: Element + num_traits::Num + num_traits::NumCast + num_traits::ToPrimitive + std::iter::Sum
{
}

/// Floating-point elements: `sqrt`, `exp`, `log`, NaN.
pub trait Float: Number + num_traits::Float {}

impl<T> Float for T where T: Number + num_traits::Float {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(DType::from_name(d.v2_typestr()), Some(d));
        }
        assert_eq!(<f32 as Element>::DTYPE.itemsize(), 4);
    }
}
