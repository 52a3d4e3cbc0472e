//! numpy's type promotion for maths between variables of different element types, and lazy
//! casts of an [`AnyArray`] to another element type.
//!
//! [`result_type`] follows numpy's table for the types we hold: the same type stays; a float
//! with a float is the wider float; a float with an integer is `float32` only when the integer
//! has at most 16 bits (and the float is `float32`), else `float64`; signed with unsigned is
//! the smallest signed type holding both, `float64` for `uint64` with a signed type; `bool`
//! takes the other operand's type. Datetimes take part in no arithmetic here.
//!
//! Must not: compute anything (casts are lazy element-wise layers).

use super::any_array::{AnyArray, VarDType};
use super::error::{DatasetError, DatasetResult};
use crate::array::{Array, DType, Element};
use crate::graph::token::token_of;

/// numpy's `result_type` of two plain dtypes (see the module doc).
pub(crate) fn result_type(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (a, b) {
        (Bool, x) | (x, Bool) => x,
        (F64, _) | (_, F64) => F64,
        (F32, x) | (x, F32) => {
            if x.itemsize() <= 2 {
                F32
            } else {
                F64
            }
        }
        _ => {
            let (sa, sb) = (is_signed(a), is_signed(b));
            let bytes = a.itemsize().max(b.itemsize());
            if sa == sb {
                return int_type(sa, bytes);
            }
            let (signed, unsigned) = if sa { (a, b) } else { (b, a) };
            if signed.itemsize() > unsigned.itemsize() {
                signed
            } else if unsigned.itemsize() < 8 {
                int_type(true, unsigned.itemsize() * 2)
            } else {
                F64
            }
        }
    }
}

fn is_signed(d: DType) -> bool {
    matches!(d, DType::I8 | DType::I16 | DType::I32 | DType::I64)
}

fn int_type(signed: bool, bytes: usize) -> DType {
    match (signed, bytes) {
        (true, 1) => DType::I8,
        (true, 2) => DType::I16,
        (true, 4) => DType::I32,
        (true, _) => DType::I64,
        (false, 1) => DType::U8,
        (false, 2) => DType::U16,
        (false, 4) => DType::U32,
        (false, _) => DType::U64,
    }
}

/// The plain dtype of a variable for maths, or [`DatasetError::UnsupportedDType`] for
/// datetimes (`what` names the operand in the message).
pub(crate) fn numeric_dtype(data: &AnyArray, op: &str, what: &str) -> DatasetResult<DType> {
    match data.dtype() {
        VarDType::Plain(d) => Ok(d),
        VarDType::Datetime => Err(DatasetError::UnsupportedDType {
            op: op.to_string(),
            what: format!("{what} (datetime64[ns])"),
            reason: "datetimes take part in no arithmetic here; work on the numbers with a \
                     cast of the nanoseconds (AnyArray::as_datetime) if that is what you mean"
                .into(),
        }),
    }
}

/// `data` as `Array<U>`, lazily converted (values out of `U`'s range fail the task).
pub(crate) fn to_typed<U: Element + num_traits::NumCast>(
    data: &AnyArray,
) -> DatasetResult<Array<U>> {
    fn conv<T: Element + num_traits::ToPrimitive, U: Element + num_traits::NumCast>(
        a: &Array<T>,
    ) -> Array<U> {
        if let Some(same) = (a as &dyn std::any::Any).downcast_ref::<Array<U>>() {
            return same.clone();
        }
        a.astype::<U>()
    }
    Ok(match data {
        AnyArray::Bool(a) => {
            a.map_with_token("bool-to", token_of(&("bool-to", U::DTYPE.name())), |b| {
                U::from(u8::from(b)).expect("0 and 1 fit every numeric type")
            })
        }
        AnyArray::I8(a) => conv(a),
        AnyArray::I16(a) => conv(a),
        AnyArray::I32(a) => conv(a),
        AnyArray::I64(a) => conv(a),
        AnyArray::U8(a) => conv(a),
        AnyArray::U16(a) => conv(a),
        AnyArray::U32(a) => conv(a),
        AnyArray::U64(a) => conv(a),
        AnyArray::F32(a) => conv(a),
        AnyArray::F64(a) => conv(a),
        AnyArray::Datetime(_) => {
            return Err(DatasetError::UnsupportedDType {
                op: "cast".into(),
                what: format!("datetimes to {}", U::DTYPE),
                reason: "datetimes are not numbers here".into(),
            });
        }
    })
}

/// `data` cast to the plain dtype `to` (a no-op when it already is).
pub(crate) fn cast(data: &AnyArray, to: DType) -> DatasetResult<AnyArray> {
    if data.dtype() == VarDType::Plain(to) {
        return Ok(data.clone());
    }
    Ok(match to {
        DType::Bool => {
            return Err(DatasetError::UnsupportedDType {
                op: "cast".into(),
                what: format!("{} to bool", data.dtype()),
                reason: "only booleans are booleans here; compare instead".into(),
            });
        }
        DType::I8 => AnyArray::I8(to_typed(data)?),
        DType::I16 => AnyArray::I16(to_typed(data)?),
        DType::I32 => AnyArray::I32(to_typed(data)?),
        DType::I64 => AnyArray::I64(to_typed(data)?),
        DType::U8 => AnyArray::U8(to_typed(data)?),
        DType::U16 => AnyArray::U16(to_typed(data)?),
        DType::U32 => AnyArray::U32(to_typed(data)?),
        DType::U64 => AnyArray::U64(to_typed(data)?),
        DType::F32 => AnyArray::F32(to_typed(data)?),
        DType::F64 => AnyArray::F64(to_typed(data)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_follows_numpy() {
        let cases = [
            (F32, F32, F32),
            (F32, F64, F64),
            (F32, I16, F32),
            (F32, U8, F32),
            (F32, I32, F64),
            (F64, I64, F64),
            (I8, I32, I32),
            (U8, U16, U16),
            (U8, I8, I16),
            (U16, I16, I32),
            (U32, I32, I64),
            (U32, I64, I64),
            (U64, I8, F64),
            (I16, U8, I16),
            (Bool, I8, I8),
            (Bool, F32, F32),
        ];
        for (a, b, want) in cases {
            assert_eq!(result_type(a, b), want, "{a} {b}");
            assert_eq!(result_type(b, a), want, "{b} {a}");
        }
    }

    #[test]
    fn casts_are_lazy_conversions() {
        let x = AnyArray::from(crate::array::arange(0i16, 4, 1, 3).unwrap());
        let y = cast(&x, F64).unwrap();
        assert_eq!(y.dtype(), VarDType::Plain(F64));
        let v = y.typed::<f64>().unwrap().compute().unwrap();
        assert_eq!(v.as_slice().unwrap(), &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(cast(&x, I16).unwrap().name(), x.name());
        let t = AnyArray::datetime(crate::array::arange(0i64, 2, 1, 2).unwrap());
        assert!(cast(&t, F64).is_err());
    }
}
