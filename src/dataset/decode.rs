//! CF decoding of one variable read from Zarr, the way xarray's `decode_cf_variable` does it:
//! fill-value masking, then `scale_factor`/`add_offset`, then CF times. Lazy: the decoding is
//! one element-wise task per chunk, added after the read tasks (and fused with them).
//!
//! The rules (xarray 2026.9, `coding/variables.py`, `coding/times.py`, `backends/zarr.py`):
//! - **Which values are missing.** Zarr v2: the array's `fill_value` is the CF `_FillValue`
//!   (`null`, which xarray writes for integers without one, masks nothing). Zarr v3: the
//!   `_FillValue` attribute, base64 of a little-endian float64 for float arrays and a plain JSON
//!   number for integers; the array's own `fill_value` is not a mask. `missing_value`, when
//!   present, masks too. A NaN fill value masks nothing (NaN is already missing) but is still
//!   recorded in the encoding.
//! - **Masked types.** Masked values become NaN, so integers become floats: `int8`/`int16`/
//!   `uint8`/`uint16` → `float32`, wider integers → `float64`; floats keep their type. A value
//!   is masked when it equals a fill value in that float type (numpy's comparison). For times
//!   stored as integers, masked values become NaT instead and the comparison is exact.
//! - **Packed data.** With `scale_factor` and/or `add_offset` (JSON numbers, so float64), the
//!   result is `float64`: `x * scale_factor + add_offset`, masked values NaN.
//! - **Times.** A variable whose `units` contain `since` (`"hours since 2000-01-01"`) in a
//!   standard calendar (`standard`, `gregorian`, `proleptic_gregorian`, or none) decodes to
//!   `datetime64[ns]` ([`AnyArray::Datetime`]). A stored value that lands outside
//!   `datetime64[ns]`'s range (1677–2262) fails its chunk's task with a message naming it.
//!   Other calendars, month/year units and `standard` dates before 1582-10-15 need cftime,
//!   which chunkflow does not have: per [`UndecodableTimes`] the numbers are kept with their
//!   `units`/`calendar` attributes (and a note in the encoding and the dataset's warnings), or
//!   opening fails.
//! - What decoding consumed moves from the attributes to the [`Encoding`]: `_FillValue`,
//!   `missing_value`, `scale_factor`, `add_offset`, and a decoded time's `units`/`calendar`.
//!
//! Not done (documented deviations): `_Unsigned`, timedelta decoding (`units: "hours"` stays
//! numbers), masking boolean arrays, and a lone integer `scale_factor` keeping integers
//! (xarray's corner case): packed data always decodes to `float64` here.
//!
//! Must not: read from the store (the data comes in as a lazy array).

use std::sync::Arc;

use ndarray::ArrayD;
use num_traits::ToPrimitive;
use serde_json::{Map, Value};

use super::any_array::AnyArray;
use super::error::{DatasetError, DatasetResult};
use super::time::{GREGORIAN_REFORM_NS, NAT, TimeUnits, format_datetime, is_standard_calendar};
use super::variable::Encoding;
use crate::array::{Array, DType, Element};
use crate::graph::token::{TokenHasher, key_name};
use crate::graph::{Task, value};
use crate::store::{FillValue, ZarrFormat};

/// What to do with times that cannot be decoded to `datetime64[ns]` (non-standard calendars,
/// month or year units, `standard` dates before the Gregorian reform).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UndecodableTimes {
    /// Keep the stored numbers and their `units`/`calendar` attributes; say why in the
    /// variable's [`Encoding::not_decoded`] and in the dataset's warnings.
    #[default]
    KeepRaw,
    /// Fail to open, naming the variable ([`DatasetError::UndecodableTimes`]).
    Error,
}

/// How one variable is decoded.
#[derive(Clone, Copy, Debug)]
pub(super) struct DecodeOptions {
    pub mask_and_scale: bool,
    pub times: bool,
    pub undecodable_times: UndecodableTimes,
}

/// A decoded variable's data, user attributes and encoding.
pub(super) struct Decoded {
    pub data: AnyArray,
    pub attrs: Map<String, Value>,
    pub encoding: Encoding,
    /// A line for the dataset's warnings, if something was left undecoded.
    pub warning: Option<String>,
}

/// One fill value, for comparisons: as `f64` and, when integral, exactly.
#[derive(Clone, Copy, Debug)]
struct Fill {
    float: f64,
    int: Option<i128>,
}

impl Fill {
    /// `None` for fill values that mask nothing (NaN).
    fn of(v: FillValue) -> Option<Fill> {
        let (float, int) = match v {
            FillValue::Null | FillValue::NaN | FillValue::Bool(_) => return None,
            FillValue::Zero => (0.0, Some(0)),
            FillValue::Int(i) => (i as f64, Some(i128::from(i))),
            FillValue::UInt(u) => (u as f64, Some(i128::from(u))),
            FillValue::Float(x) if x.is_nan() => return None,
            FillValue::Float(x) => (
                x,
                (x.is_finite() && x.fract() == 0.0 && x.abs() < 1e38).then_some(x as i128),
            ),
        };
        Some(Fill { float, int })
    }
}

/// What the decoded elements are.
#[derive(Clone, Copy, Debug)]
enum Output {
    /// Masked to NaN in float32.
    F32,
    /// Masked and/or unpacked in float64.
    F64,
    /// Datetimes.
    Time(TimeUnits),
}

/// The element-wise decoding of one variable: plain data, so it can be hashed into keys.
#[derive(Clone, Debug)]
struct Plan {
    fills: Vec<Fill>,
    scale: Option<f64>,
    offset: Option<f64>,
    output: Output,
    /// The variable's `units`, for error messages.
    units: String,
}

impl Plan {
    fn token(&self) -> u64 {
        let mut h = TokenHasher::new();
        h.tag("cf-decode");
        h.write(format!("{self:?}").as_bytes());
        h.finish()
    }
}

/// Decodes `data` (read from a Zarr array of format `format` whose own fill value is
/// `zarr_fill`) with its raw attributes `attrs`.
pub(super) fn decode_variable(
    name: &str,
    data: AnyArray,
    mut attrs: Map<String, Value>,
    format: ZarrFormat,
    zarr_fill: FillValue,
    options: DecodeOptions,
) -> DatasetResult<Decoded> {
    let mut encoding = Encoding {
        dtype: Some(data.storage_dtype()),
        zarr_fill_value: Some(zarr_fill),
        ..Encoding::default()
    };
    let dtype = data.storage_dtype();
    let invalid = |attribute: &str, reason: String| DatasetError::InvalidEncoding {
        variable: name.to_string(),
        attribute: attribute.to_string(),
        reason,
    };

    // 1. Fill values (moved to the encoding).
    if !options.mask_and_scale {
        // As xarray with mask_and_scale=False: the CF fill value stays an attribute, as a
        // number (v2: the array's fill value; v3: the attribute, base64 decoded).
        let fill = match format {
            ZarrFormat::V2 if zarr_fill != FillValue::Null => Some(zarr_fill),
            _ => match attrs.get("_FillValue") {
                Some(v) if format == ZarrFormat::V3 => {
                    Some(v3_fill(v, dtype).map_err(|e| invalid("_FillValue", e))?)
                }
                _ => None,
            },
        };
        if let Some(fill) = fill {
            attrs.insert("_FillValue".into(), fill_json(fill));
        }
    } else {
        let fill = match format {
            ZarrFormat::V2 if zarr_fill != FillValue::Null => {
                attrs.remove("_FillValue");
                Some(zarr_fill)
            }
            ZarrFormat::V2 => attrs
                .remove("_FillValue")
                .map(|v| plain_fill(&v, dtype))
                .transpose()
                .map_err(|e| invalid("_FillValue", e))?,
            ZarrFormat::V3 => attrs
                .remove("_FillValue")
                .map(|v| v3_fill(&v, dtype))
                .transpose()
                .map_err(|e| invalid("_FillValue", e))?,
        };
        encoding.fill_value = fill;
        encoding.missing_value = attrs
            .remove("missing_value")
            .map(|v| plain_fill(&v, dtype))
            .transpose()
            .map_err(|e| invalid("missing_value", e))?;
        encoding.scale_factor =
            take_number(&mut attrs, "scale_factor").map_err(|e| invalid("scale_factor", e))?;
        encoding.add_offset =
            take_number(&mut attrs, "add_offset").map_err(|e| invalid("add_offset", e))?;
    }

    // 2. Times.
    let mut warning = None;
    let mut time = None;
    if options.times
        && let Some(units) = attrs.get("units").and_then(Value::as_str)
        && units.contains("since")
    {
        match time_units(units, attrs.get("calendar"), dtype) {
            Ok(parsed) => {
                time = Some(parsed);
                encoding.units = attrs
                    .remove("units")
                    .and_then(|v| v.as_str().map(str::to_string));
                encoding.calendar = attrs
                    .remove("calendar")
                    .and_then(|v| v.as_str().map(str::to_string));
            }
            Err(reason) => match options.undecodable_times {
                UndecodableTimes::Error => {
                    return Err(DatasetError::UndecodableTimes {
                        variable: name.to_string(),
                        reason,
                    });
                }
                UndecodableTimes::KeepRaw => {
                    warning = Some(format!(
                        "variable {name:?}: times left as stored numbers: {reason}"
                    ));
                    encoding.not_decoded = Some(reason);
                }
            },
        }
    }

    // 3. The element-wise plan.
    let fills: Vec<Fill> = [encoding.fill_value, encoding.missing_value]
        .into_iter()
        .flatten()
        .filter_map(Fill::of)
        .collect();
    let (scale, offset) = (encoding.scale_factor, encoding.add_offset);
    let packed = scale.is_some() || offset.is_some();
    if dtype == DType::Bool {
        if !fills.is_empty() || packed {
            let reason = "boolean data is not masked or unpacked".to_string();
            warning = Some(format!("variable {name:?}: {reason}"));
            encoding.not_decoded = Some(reason);
        }
        return Ok(Decoded {
            data,
            attrs,
            encoding,
            warning,
        });
    }
    let output = match time {
        Some(units) => Output::Time(units),
        None if packed => Output::F64,
        None if fills.is_empty() => {
            return Ok(Decoded {
                data,
                attrs,
                encoding,
                warning,
            });
        }
        None => match dtype {
            DType::F32 | DType::I8 | DType::I16 | DType::U8 | DType::U16 => Output::F32,
            _ => Output::F64,
        },
    };
    let plan = Plan {
        fills,
        scale,
        offset,
        output,
        units: encoding.units.clone().unwrap_or_default(),
    };
    let data = match &data {
        AnyArray::I8(a) => apply(a, &plan),
        AnyArray::I16(a) => apply(a, &plan),
        AnyArray::I32(a) => apply(a, &plan),
        AnyArray::I64(a) => apply(a, &plan),
        AnyArray::U8(a) => apply(a, &plan),
        AnyArray::U16(a) => apply(a, &plan),
        AnyArray::U32(a) => apply(a, &plan),
        AnyArray::U64(a) => apply(a, &plan),
        AnyArray::F32(a) => apply(a, &plan),
        AnyArray::F64(a) => apply(a, &plan),
        AnyArray::Bool(_) | AnyArray::Datetime(_) => unreachable!("handled above"),
    };
    Ok(Decoded {
        data,
        attrs,
        encoding,
        warning,
    })
}

/// Parses time units and checks the calendar; the error is why the times stay numbers.
fn time_units(units: &str, calendar: Option<&Value>, dtype: DType) -> Result<TimeUnits, String> {
    if dtype == DType::Bool {
        return Err("boolean data cannot hold times".into());
    }
    let calendar = match calendar {
        None => "standard".to_string(),
        Some(Value::String(c)) => c.clone(),
        Some(other) => return Err(format!("its calendar attribute {other} is not a string")),
    };
    if !is_standard_calendar(&calendar) {
        return Err(format!(
            "calendar {calendar:?} needs cftime (only standard, gregorian and \
             proleptic_gregorian decode to datetime64[ns])"
        ));
    }
    let parsed = TimeUnits::parse(units)?;
    if calendar != "proleptic_gregorian" && parsed.reference_ns < GREGORIAN_REFORM_NS {
        return Err(format!(
            "the reference date of {units:?} is before 1582-10-15, where the {calendar:?} \
             calendar is Julian (needs cftime)"
        ));
    }
    Ok(parsed)
}

/// Applies `plan` to every element of `a`.
fn apply<T: Element + ToPrimitive>(a: &Array<T>, plan: &Plan) -> AnyArray {
    let p = plan.clone();
    let token = plan.token();
    match plan.output {
        Output::F32 => {
            let fills: Vec<f32> = p.fills.iter().map(|f| f.float as f32).collect();
            AnyArray::F32(try_map(a, "cf-mask", &token.to_le_bytes(), move |x: T| {
                let v = x.to_f32().unwrap_or(f32::NAN);
                Ok(if fills.contains(&v) { f32::NAN } else { v })
            }))
        }
        Output::F64 => AnyArray::F64(try_map(
            a,
            "cf-decode",
            &token.to_le_bytes(),
            move |x: T| Ok(unpack(&p, x)),
        )),
        Output::Time(units) => {
            let integer = !matches!(T::DTYPE, DType::F32 | DType::F64);
            let packed = p.scale.is_some() || p.offset.is_some();
            AnyArray::Datetime(try_map(a, "cf-time", &token.to_le_bytes(), move |x: T| {
                if integer && !packed {
                    let Some(v) = x.to_i128() else {
                        return Err(format!("time value {x:?} does not fit an integer"));
                    };
                    if v == i128::from(NAT) || p.fills.iter().any(|f| f.int == Some(v)) {
                        return Ok(NAT);
                    }
                    return units.decode_int(v).ok_or_else(|| out_of_range(&p, &x));
                }
                let v = if packed {
                    unpack(&p, x)
                } else if T::DTYPE == DType::F32 {
                    let v = x.to_f32().unwrap_or(f32::NAN);
                    if p.fills.iter().any(|f| f.float as f32 == v) {
                        f64::NAN
                    } else {
                        f64::from(v)
                    }
                } else {
                    let v = x.to_f64().unwrap_or(f64::NAN);
                    if p.fills.iter().any(|f| f.float == v) {
                        f64::NAN
                    } else {
                        v
                    }
                };
                if v.is_nan() {
                    return Ok(NAT);
                }
                units.decode_float(v).ok_or_else(|| out_of_range(&p, &x))
            }))
        }
    }
}

/// Masks (in float64) then unpacks one element.
fn unpack<T: ToPrimitive>(p: &Plan, x: T) -> f64 {
    let mut v = x.to_f64().unwrap_or(f64::NAN);
    if p.fills.iter().any(|f| f.float == v) {
        return f64::NAN;
    }
    if let Some(s) = p.scale {
        v *= s;
    }
    if let Some(o) = p.offset {
        v += o;
    }
    v
}

fn out_of_range<T: std::fmt::Debug>(p: &Plan, x: &T) -> String {
    format!(
        "time value {x:?} ({}) is outside datetime64[ns]'s range {} to {}",
        p.units,
        format_datetime(NAT + 1),
        format_datetime(i64::MAX)
    )
}

/// An element-wise map whose function may fail (the chunk's task then fails with the message).
/// The key hashes the operation, the input's name, `token` (what else decides the function,
/// e.g. its CF parameters) and the output type, so it is deterministic. Encoding uses it too.
pub(super) fn try_map<T, U, F>(a: &Array<T>, op: &str, token: &[u8], f: F) -> Array<U>
where
    T: Element,
    U: Element,
    F: Fn(T) -> Result<U, String> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let mut h = TokenHasher::new();
    h.tag(op);
    h.write(a.name().as_bytes());
    h.write(token);
    h.write(U::DTYPE.name().as_bytes());
    let name = key_name(op, h.finish());
    Array::from_block_tasks(
        name,
        a.chunks().clone(),
        vec![a.layer().clone()],
        |idx, key| {
            let f = f.clone();
            Task::call(key, [a.block_key(idx)], move |inputs| {
                let block = inputs[0]
                    .downcast_ref::<ArrayD<T>>()
                    .ok_or_else(|| format!("input is not an array of {}", T::DTYPE))?;
                let mut out = Vec::with_capacity(block.len());
                for &x in block.iter() {
                    out.push(f(x)?);
                }
                Ok(value(ArrayD::from_shape_vec(block.raw_dim(), out)?))
            })
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Fill values in attributes
// ---------------------------------------------------------------------------------------------

/// A fill value written as a plain JSON number (v2 attributes, `missing_value`), or one of
/// Zarr's special strings.
fn plain_fill(v: &Value, dtype: DType) -> Result<FillValue, String> {
    let fill = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                FillValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                FillValue::UInt(u)
            } else {
                FillValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => special_float(s).ok_or_else(|| format!("{v} is not a number"))?,
        Value::Bool(b) => FillValue::Bool(*b),
        other => return Err(format!("{other} is not a number")),
    };
    fill.resolve(dtype)
}

/// xarray's v3 `_FillValue` attribute (`FillValueCoder.decode`): for floats, base64 of a
/// little-endian float64; for integers and booleans, plain JSON. Plain numbers and `"NaN"` are
/// also accepted for floats (other writers use them).
fn v3_fill(v: &Value, dtype: DType) -> Result<FillValue, String> {
    if dtype.is_float()
        && let Value::String(s) = v
    {
        if let Some(special) = special_float(s) {
            return special.resolve(dtype);
        }
        let bytes =
            base64_decode(s).ok_or_else(|| format!("{s:?} is neither base64 nor NaN/Infinity"))?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "{s:?} decodes to {} bytes, expected the 8 of a little-endian float64",
                b.len()
            )
        })?;
        return FillValue::Float(f64::from_le_bytes(bytes)).resolve(dtype);
    }
    plain_fill(v, dtype)
}

/// A fill value as an attribute: a JSON number, or Zarr's `"NaN"`/`"Infinity"` strings (also
/// what encoding writes as `missing_value` and v3 integer `_FillValue`s).
pub(super) fn fill_json(fill: FillValue) -> Value {
    match fill {
        FillValue::Null => Value::Null,
        FillValue::Zero => Value::from(0),
        FillValue::NaN => Value::from("NaN"),
        FillValue::Bool(b) => Value::from(b),
        FillValue::Int(i) => Value::from(i),
        FillValue::UInt(u) => Value::from(u),
        FillValue::Float(x) if x.is_nan() => Value::from("NaN"),
        FillValue::Float(x) if x == f64::INFINITY => Value::from("Infinity"),
        FillValue::Float(x) if x == f64::NEG_INFINITY => Value::from("-Infinity"),
        FillValue::Float(x) => Value::from(x),
    }
}

fn special_float(s: &str) -> Option<FillValue> {
    match s {
        "NaN" => Some(FillValue::NaN),
        "Infinity" => Some(FillValue::Float(f64::INFINITY)),
        "-Infinity" => Some(FillValue::Float(f64::NEG_INFINITY)),
        _ => None,
    }
}

fn take_number(attrs: &mut Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match attrs.remove(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        // A one-element list (netCDF heritage).
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_number() => {
            Ok(items[0].as_f64())
        }
        Some(other) => Err(format!("{other} is not a number")),
    }
}

/// Standard base64 (RFC 4648, `+/`, optional `=` padding).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for group in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for &c in group {
            acc = (acc << 6) | sextet(c)?;
        }
        acc <<= 6 * (4 - group.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;
    use crate::collection::Collection;
    use serde_json::json;

    const OPTS: DecodeOptions = DecodeOptions {
        mask_and_scale: true,
        times: true,
        undecodable_times: UndecodableTimes::KeepRaw,
    };

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn base64_matches_xarray() {
        // xarray's encoding of NaN and of -9999.0 (struct.pack("<d", x), base64).
        let nan = base64_decode("AAAAAAAA+H8=").unwrap();
        assert!(f64::from_le_bytes(nan.try_into().unwrap()).is_nan());
        let v = base64_decode("AAAAAICHw8A=").unwrap();
        assert_eq!(f64::from_le_bytes(v.try_into().unwrap()), -9999.0);
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(base64_decode("a").is_none() && base64_decode("a$==").is_none());
        assert_eq!(
            v3_fill(&json!("AAAAAICHw8A="), DType::F32),
            Ok(FillValue::Float(-9999.0))
        );
        assert_eq!(
            v3_fill(&json!(-32768), DType::I16),
            Ok(FillValue::Int(-32768))
        );
        assert!(v3_fill(&json!("AAAA"), DType::F64).is_err());
        assert!(v3_fill(&json!(70000), DType::I16).is_err());
    }

    #[test]
    fn packed_int16_decodes_to_float64() {
        let raw =
            array::from_ndarray(ndarray::arr1(&[-32768i16, 0, 100, -100]).into_dyn(), 2).unwrap();
        let d = decode_variable(
            "t",
            raw.into(),
            attrs(json!({"_FillValue": -32768, "scale_factor": 0.01, "add_offset": 280.0, "units": "K"})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        let values = d.data.compute().unwrap().to_f64_vec().unwrap();
        assert!(values[0].is_nan());
        assert_eq!(
            &values[1..],
            &[280.0, 100.0 * 0.01 + 280.0, -100.0 * 0.01 + 280.0]
        );
        assert_eq!(d.data.dtype().name(), "float64");
        assert_eq!(d.attrs, attrs(json!({"units": "K"})));
        assert_eq!(d.encoding.dtype, Some(DType::I16));
        assert_eq!(d.encoding.fill_value, Some(FillValue::Int(-32768)));
        assert_eq!(d.encoding.scale_factor, Some(0.01));
    }

    #[test]
    fn masks_follow_the_format() {
        let ints = || {
            AnyArray::from(
                array::from_ndarray(ndarray::arr1(&[-1i32, 0, 5]).into_dyn(), 3).unwrap(),
            )
        };
        // v2: the array fill value masks; int32 → float64.
        let d = decode_variable(
            "n",
            ints(),
            Map::new(),
            ZarrFormat::V2,
            FillValue::Int(-1),
            OPTS,
        )
        .unwrap();
        let v = d.data.compute().unwrap();
        assert_eq!(v.dtype().name(), "float64");
        assert!(v.to_f64_vec().unwrap()[0].is_nan());
        // v2 null fill value: nothing masked, type kept, no new layer.
        let d = decode_variable(
            "n",
            ints(),
            Map::new(),
            ZarrFormat::V2,
            FillValue::Null,
            OPTS,
        )
        .unwrap();
        assert_eq!(d.data.dtype().name(), "int32");
        // v3: the zarr fill value is not a mask, the attribute is.
        let d = decode_variable(
            "n",
            ints(),
            Map::new(),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        assert_eq!(d.data.dtype().name(), "int32");
        let d = decode_variable(
            "n",
            ints(),
            attrs(json!({"_FillValue": 5})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        let v = d.data.compute().unwrap().to_f64_vec().unwrap();
        assert_eq!(&v[..2], &[-1.0, 0.0]);
        assert!(v[2].is_nan());
        // int16 masks to float32.
        let small =
            AnyArray::from(array::from_ndarray(ndarray::arr1(&[7i16, 9]).into_dyn(), 2).unwrap());
        let d = decode_variable(
            "s",
            small,
            attrs(json!({"_FillValue": 9})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        assert_eq!(d.data.dtype().name(), "float32");
        // A malformed fill value names the variable and attribute.
        let err = decode_variable(
            "s",
            ints(),
            attrs(json!({"_FillValue": "x"})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("\"s\"") && err.contains("_FillValue"), "{err}");
    }

    #[test]
    fn times_decode_or_say_why_not() {
        let hours = || {
            AnyArray::from(
                array::from_ndarray(ndarray::arr1(&[0i64, 6, 30]).into_dyn(), 2).unwrap(),
            )
        };
        let d = decode_variable(
            "time",
            hours(),
            attrs(json!({"units": "hours since 2000-01-01", "calendar": "standard", "long_name": "time"})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        let v = d.data.compute().unwrap();
        let text: Vec<String> = v
            .as_datetime()
            .unwrap()
            .iter()
            .map(|&t| format_datetime(t))
            .collect();
        assert_eq!(
            text,
            [
                "2000-01-01T00:00:00",
                "2000-01-01T06:00:00",
                "2000-01-02T06:00:00"
            ]
        );
        assert_eq!(d.encoding.units.as_deref(), Some("hours since 2000-01-01"));
        assert_eq!(d.encoding.calendar.as_deref(), Some("standard"));
        assert_eq!(d.attrs, attrs(json!({"long_name": "time"})));

        let noleap = attrs(json!({"units": "days since 2000-01-01", "calendar": "noleap"}));
        let d = decode_variable(
            "time",
            hours(),
            noleap.clone(),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        assert_eq!(d.data.dtype().name(), "int64");
        assert_eq!(d.attrs, noleap);
        assert!(
            d.encoding
                .not_decoded
                .as_deref()
                .unwrap()
                .contains("noleap")
        );
        assert!(d.warning.unwrap().contains("\"time\""));
        let strict = DecodeOptions {
            undecodable_times: UndecodableTimes::Error,
            ..OPTS
        };
        let err = decode_variable(
            "time",
            hours(),
            noleap,
            ZarrFormat::V3,
            FillValue::Int(0),
            strict,
        )
        .err()
        .unwrap();
        assert!(matches!(err, DatasetError::UndecodableTimes { .. }));

        // Out of range: the task fails with the value and units.
        let far = AnyArray::from(
            array::from_ndarray(ndarray::arr1(&[0i64, 1_000_000]).into_dyn(), 2).unwrap(),
        );
        let d = decode_variable(
            "t",
            far,
            attrs(json!({"units": "days since 2000-01-01"})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        let err = d.data.compute().unwrap_err().to_string();
        assert!(err.contains("1000000") && err.contains("outside"), "{err}");

        // Masked integer times are NaT; float times with NaN too.
        let d = decode_variable(
            "t",
            hours(),
            attrs(json!({"units": "hours since 2000-01-01", "_FillValue": 6})),
            ZarrFormat::V3,
            FillValue::Int(0),
            OPTS,
        )
        .unwrap();
        assert_eq!(d.data.compute().unwrap().as_datetime().unwrap()[1], NAT);
        let floats = AnyArray::from(
            array::from_ndarray(ndarray::arr1(&[0.5f64, f64::NAN]).into_dyn(), 2).unwrap(),
        );
        let d = decode_variable(
            "t",
            floats,
            attrs(json!({"units": "days since 2000-01-01"})),
            ZarrFormat::V2,
            FillValue::NaN,
            OPTS,
        )
        .unwrap();
        let v = d.data.compute().unwrap();
        assert_eq!(
            format_datetime(v.as_datetime().unwrap()[0]),
            "2000-01-01T12:00:00"
        );
        assert_eq!(v.as_datetime().unwrap()[1], NAT);
    }
}
