//! CF encoding of one variable for Zarr, the exact inverse of `decode.rs` and what xarray's
//! `encode_cf_variable` plus its Zarr backend write (xarray 2026.9, zarr-python 3.1):
//!
//! - **Times** (`datetime64[ns]`) become integers `(t - reference) / unit` with `units` and
//!   `calendar` attributes: the encoding's `units`/`calendar`/`dtype` when recorded (or given),
//!   else xarray's choice, which depends on whether xarray would hold the values in memory.
//!   Index coordinates (in memory in xarray) get the coarsest unit that divides every step
//!   since the first time (`"hours since 2000-01-01 00:00:00"`, `int64`,
//!   `proleptic_gregorian`); other (chunked) times get `"nanoseconds since 1970-01-01"`, as
//!   xarray's lazy encoder does. Integer times must be whole numbers of the unit (a chunk with
//!   a finer time fails naming the value; xarray raises too for chunked data); NaT is
//!   `i64::MIN` in `int64` (or the `_FillValue`, when there is one).
//! - **Packing**: with `scale_factor`/`add_offset`, `(x - add_offset) / scale_factor`.
//! - **Masking**: NaN becomes the CF `_FillValue` (else `missing_value`); floats without one get
//!   NaN as their `_FillValue` (xarray's `DefaultFillvalueCoder`).
//! - **Casting** to the encoding's `dtype`: floats to integers round half to even (numpy's
//!   `around`); a value that does not fit, or a NaN with no fill value for an integer type,
//!   fails its chunk's task with a message naming the variable.
//! - **Where the fill value goes**: Zarr v2 stores the CF `_FillValue` as the array's
//!   `fill_value` (`null` when there is none) and not as an attribute; v3 writes it as the
//!   `_FillValue` attribute (base64 of a little-endian float64 for float types, a plain number
//!   for integers) and gives the array its own `fill_value`: the one recorded when a v3 store
//!   was opened, else NaN for floats and zero for the rest.
//!
//! Attributes: the user's, plus the CF ones above (and `coordinates`, decided by the dataset
//! writer). A CF key both in the attributes and in the encoding is an error, as in xarray; in
//! the attributes only (a variable opened with `decode: false`), it is used as stored.
//!
//! Must not: touch a store (the result is lazy data plus metadata for the writer).

use num_traits::ToPrimitive;
use serde_json::{Map, Value};

use super::any_array::AnyArray;
use super::decode::{fill_json, try_map};
use super::error::{DatasetError, DatasetResult};
use super::time::{NAT, TimeUnits, civil_from_days, is_standard_calendar};
use super::variable::{Encoding, Variable};
use crate::array::{Array, DType, Element};
use crate::store::{FillValue, ZarrFormat};

/// A variable as it goes to disk.
#[derive(Clone, Debug)]
pub(crate) struct Encoded {
    /// The values in the stored element type (lazy).
    pub data: AnyArray,
    /// The on-disk attributes (user attributes plus CF ones).
    pub attrs: Map<String, Value>,
    /// The Zarr array's `fill_value`.
    pub fill_value: FillValue,
}

/// The CF attributes that come from the encoding (an error when also in the attributes).
const CF_KEYS: [&str; 4] = ["_FillValue", "missing_value", "scale_factor", "add_offset"];

/// Encodes `var` (named `name`) with `encoding` for a Zarr array of `format`. `coordinates` is
/// the CF `coordinates` attribute to write, if any; `in_memory` says whether xarray would hold
/// the values in memory (index coordinates), which decides the default time units.
pub(crate) fn encode_variable(
    name: &str,
    var: &Variable,
    encoding: &Encoding,
    format: ZarrFormat,
    coordinates: Option<&str>,
    in_memory: bool,
) -> DatasetResult<Encoded> {
    let bad = |reason: String| DatasetError::Unencodable {
        variable: name.to_string(),
        reason,
    };
    let mut attrs = var.attrs().clone();
    let mut enc = encoding.clone();

    // CF keys: from the encoding, or (not both) from the attributes.
    for key in CF_KEYS {
        let in_enc = match key {
            "_FillValue" => enc.fill_value.is_some(),
            "missing_value" => enc.missing_value.is_some(),
            "scale_factor" => enc.scale_factor.is_some(),
            _ => enc.add_offset.is_some(),
        };
        let Some(v) = attrs.remove(key) else {
            continue;
        };
        if in_enc {
            return Err(bad(format!(
                "{key:?} is both an attribute and in the encoding; keep one (the encoding is \
                 what decoding filled)"
            )));
        }
        match key {
            "scale_factor" | "add_offset" => {
                let x = v
                    .as_f64()
                    .ok_or_else(|| bad(format!("its {key:?} attribute {v} is not a number")))?;
                if key == "scale_factor" {
                    enc.scale_factor = Some(x);
                } else {
                    enc.add_offset = Some(x);
                }
            }
            _ => {
                let fill = fill_from_json(&v, var.data().storage_dtype(), format)
                    .map_err(|e| bad(format!("its {key:?} attribute: {e}")))?;
                if key == "_FillValue" {
                    enc.fill_value = Some(fill);
                } else {
                    enc.missing_value = Some(fill);
                }
            }
        }
    }
    if let Some(c) = coordinates {
        attrs.insert("coordinates".into(), Value::from(c));
    }

    let (data, target) = match var.data() {
        AnyArray::Datetime(ns) => {
            for key in ["units", "calendar"] {
                if attrs.contains_key(key) {
                    return Err(bad(format!(
                        "datetimes get their {key:?} from the encoding, but it is also an \
                         attribute; move it to the encoding (encoding_mut().{key})"
                    )));
                }
            }
            if enc.scale_factor.is_some() || enc.add_offset.is_some() {
                return Err(bad(
                    "packing datetimes with scale_factor/add_offset is not supported; remove \
                     them from the encoding"
                        .into(),
                ));
            }
            let calendar = enc
                .calendar
                .clone()
                .unwrap_or_else(|| "proleptic_gregorian".into());
            if !is_standard_calendar(&calendar) {
                return Err(bad(format!(
                    "calendar {calendar:?} needs cftime; datetime64 values are written in the \
                     standard, gregorian or proleptic_gregorian calendar"
                )));
            }
            let units = match &enc.units {
                // xarray cleans given units up for times it holds in memory.
                Some(u) if in_memory => cleanup_time_units(u),
                Some(u) => u.clone(),
                None if in_memory => {
                    let values = ns.compute().map_err(DatasetError::from)?;
                    infer_time_units(&values.iter().copied().collect::<Vec<_>>())
                }
                None => "nanoseconds since 1970-01-01".to_string(),
            };
            let parsed = TimeUnits::parse(&units).map_err(bad)?;
            let target = enc.dtype.unwrap_or(DType::I64);
            if target == DType::Bool {
                return Err(bad("datetimes cannot be stored as bool".into()));
            }
            let fill = enc
                .fill_value
                .map(|f| f.resolve(target))
                .transpose()
                .map_err(|e| bad(format!("_FillValue: {e}")))?;
            attrs.insert("units".into(), Value::from(units.clone()));
            attrs.insert("calendar".into(), Value::from(calendar));
            let plan = TimePlan {
                variable: name.to_string(),
                units: parsed,
                units_text: units,
                fill,
            };
            (encode_times(ns, target, plan), target)
        }
        data => {
            let source = data.storage_dtype();
            let target = enc.dtype.unwrap_or(source);
            let packed = enc.scale_factor.is_some() || enc.add_offset.is_some();
            if (source == DType::Bool || target == DType::Bool) && (source != target || packed) {
                return Err(bad(format!(
                    "cannot store {source} values as {target}{}",
                    if packed {
                        " with scale_factor/add_offset"
                    } else {
                        ""
                    }
                )));
            }
            if enc.scale_factor == Some(0.0) {
                return Err(bad("scale_factor 0 cannot be inverted".into()));
            }
            let fill = [enc.fill_value, enc.missing_value]
                .into_iter()
                .flatten()
                .find(|f| *f != FillValue::Null)
                .map(|f| f.resolve(target))
                .transpose()
                .map_err(|e| bad(format!("_FillValue: {e}")))?;
            // xarray's DefaultFillvalueCoder (after masking): floats get NaN as their
            // `_FillValue` unless one is set (`FillValue::Null` in the encoding: none).
            if enc.fill_value.is_none() && target.is_float() {
                enc.fill_value = Some(FillValue::NaN);
            }
            if let Some(s) = enc.scale_factor {
                attrs.insert("scale_factor".into(), Value::from(s));
            }
            if let Some(o) = enc.add_offset {
                attrs.insert("add_offset".into(), Value::from(o));
            }
            let plan = NumPlan {
                variable: name.to_string(),
                scale: enc.scale_factor,
                offset: enc.add_offset,
                fill: fill.map(FillValue::as_f64),
            };
            let same = source == target && !packed && (!source.is_float() || fill_is_nan(fill));
            let data = if same {
                data.clone()
            } else {
                encode_numbers(data, target, plan)?
            };
            (data, target)
        }
    };

    // Where the CF fill value goes.
    let cf_fill = enc
        .fill_value
        .filter(|f| *f != FillValue::Null)
        .map(|f| f.resolve(target))
        .transpose()
        .map_err(|e| bad(format!("_FillValue: {e}")))?;
    if let Some(missing) = enc.missing_value.filter(|f| *f != FillValue::Null) {
        let missing = missing
            .resolve(target)
            .map_err(|e| bad(format!("missing_value: {e}")))?;
        attrs.insert("missing_value".into(), fill_json(missing));
    }
    let fill_value = match format {
        ZarrFormat::V2 => cf_fill.unwrap_or(FillValue::Null),
        ZarrFormat::V3 => {
            if let Some(f) = cf_fill {
                attrs.insert("_FillValue".into(), v3_fill_json(f, target));
            }
            let recorded = match encoding.format {
                Some(ZarrFormat::V3) => encoding
                    .zarr_fill_value
                    .and_then(|f| f.resolve(target).ok()),
                _ => None,
            };
            recorded.unwrap_or(if target.is_float() {
                FillValue::NaN
            } else {
                FillValue::Zero
            })
        }
    };
    Ok(Encoded {
        data,
        attrs,
        fill_value,
    })
}

fn fill_is_nan(fill: Option<FillValue>) -> bool {
    matches!(fill, None | Some(FillValue::NaN))
        || matches!(fill, Some(FillValue::Float(x)) if x.is_nan())
}

/// A fill value given as an attribute: a plain number (or `"NaN"`), or for v3 floats xarray's
/// base64 form.
fn fill_from_json(v: &Value, dtype: DType, format: ZarrFormat) -> Result<FillValue, String> {
    let fill = match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => FillValue::Int(i),
            (None, Some(u)) => FillValue::UInt(u),
            _ => FillValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Bool(b) => FillValue::Bool(*b),
        Value::String(s) => match s.as_str() {
            "NaN" => FillValue::NaN,
            "Infinity" => FillValue::Float(f64::INFINITY),
            "-Infinity" => FillValue::Float(f64::NEG_INFINITY),
            text if format == ZarrFormat::V3 => {
                let bytes: [u8; 8] = base64_decode(text)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| format!("{text:?} is neither a number nor base64 float64"))?;
                FillValue::Float(f64::from_le_bytes(bytes))
            }
            text => return Err(format!("{text:?} is not a number")),
        },
        other => return Err(format!("{other} is not a number")),
    };
    fill.resolve(dtype)
}

/// xarray's v3 `_FillValue` attribute (`FillValueCoder.encode`): base64 of the little-endian
/// float64 for float types, a plain number for integers, a boolean for booleans.
pub(crate) fn v3_fill_json(fill: FillValue, dtype: DType) -> Value {
    if dtype.is_float() {
        Value::from(base64_encode(&fill.as_f64().to_le_bytes()))
    } else if dtype == DType::Bool {
        Value::from(fill.as_f64() != 0.0)
    } else {
        fill_json(fill)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (Python's `base64.standard_b64encode`).
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let mut acc = 0u32;
        for (i, &b) in group.iter().enumerate() {
            acc |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= group.len() {
                out.push(BASE64[((acc >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for group in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for &c in group {
            let v = BASE64.iter().position(|&x| x == c)? as u32;
            acc = (acc << 6) | v;
        }
        acc <<= 6 * (4 - group.len() as u32);
        out.extend_from_slice(&acc.to_be_bytes()[1..group.len()]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------------

/// xarray's default units for times it holds in memory (`infer_datetime_units`): the coarsest
/// of days … nanoseconds dividing every step between consecutive non-NaT times, since the first
/// non-NaT time, written as pandas prints a `Timestamp`.
pub(crate) fn infer_time_units(ns: &[i64]) -> String {
    let times: Vec<i64> = ns.iter().copied().filter(|&t| t != NAT).collect();
    let reference = times.first().copied().unwrap_or(0);
    let steps: Vec<i128> = times
        .windows(2)
        .map(|w| i128::from(w[1]) - i128::from(w[0]))
        .collect();
    const UNITS: [(&str, i128); 7] = [
        ("days", 86_400_000_000_000),
        ("hours", 3_600_000_000_000),
        ("minutes", 60_000_000_000),
        ("seconds", 1_000_000_000),
        ("milliseconds", 1_000_000),
        ("microseconds", 1_000),
        ("nanoseconds", 1),
    ];
    let unit = UNITS
        .iter()
        .find(|(_, n)| steps.iter().all(|s| s % n == 0))
        .map_or("seconds", |(u, _)| u);
    format!("{unit} since {}", pandas_timestamp(reference))
}

/// xarray's `_cleanup_netcdf_time_units`, applied to units given for times it encodes in
/// memory: the unit lower-case and plural, the reference date as `format_timestamp` prints it
/// (`"hours since 2000-01-01 00:00:00"` → `"hours since 2000-01-01"`, a time of day after
/// `T`). Units with a time zone, or that do not parse, are kept as given.
pub(crate) fn cleanup_time_units(units: &str) -> String {
    let Ok(parsed) = TimeUnits::parse(units) else {
        return units.to_string();
    };
    let date = units[units.rfind(" since ").map_or(0, |i| i + 7)..].trim();
    let zoned = date.contains(['Z', '+'])
        || date.contains("UTC")
        || date.contains("GMT")
        || date.get(10..).is_some_and(|rest| rest.contains('-'));
    let Ok(ns) = i64::try_from(parsed.reference_ns) else {
        return units.to_string();
    };
    if zoned || ns == NAT {
        return units.to_string();
    }
    let stamp = pandas_timestamp(ns);
    let stamp = match stamp.split_once(' ') {
        Some((date, "00:00:00")) => date.to_string(),
        Some((date, time)) => format!("{date}T{time}"),
        None => stamp,
    };
    format!("{} since {stamp}", parsed.unit.name())
}

/// `str(pd.Timestamp(ns))`: `2000-01-01 00:00:00`, with `.ffffff` or `.fffffffff` when the
/// time has a fraction of a second.
fn pandas_timestamp(ns: i64) -> String {
    let days = ns.div_euclid(86_400_000_000_000);
    let rest = ns.rem_euclid(86_400_000_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rest / 1_000_000_000;
    let frac = rest % 1_000_000_000;
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        if frac % 1000 == 0 {
            out.push_str(&format!(".{:06}", frac / 1000));
        } else {
            out.push_str(&format!(".{frac:09}"));
        }
    }
    out
}

#[derive(Clone, Debug)]
struct TimePlan {
    variable: String,
    units: TimeUnits,
    units_text: String,
    fill: Option<FillValue>,
}

fn encode_times(ns: &Array<i64>, target: DType, plan: TimePlan) -> AnyArray {
    macro_rules! to {
        ($t:ty, $v:ident) => {{
            let p = plan.clone();
            AnyArray::$v(try_map(
                ns,
                "cf-encode-time",
                format!("{plan:?}").as_bytes(),
                move |t: i64| time_value::<$t>(&p, t),
            ))
        }};
    }
    match target {
        DType::I8 => to!(i8, I8),
        DType::I16 => to!(i16, I16),
        DType::I32 => to!(i32, I32),
        DType::I64 => to!(i64, I64),
        DType::U8 => to!(u8, U8),
        DType::U16 => to!(u16, U16),
        DType::U32 => to!(u32, U32),
        DType::U64 => to!(u64, U64),
        DType::F32 => to!(f32, F32),
        DType::F64 => to!(f64, F64),
        DType::Bool => unreachable!("rejected before"),
    }
}

fn time_value<U: Element + num_traits::NumCast>(p: &TimePlan, t: i64) -> Result<U, String> {
    let float = U::DTYPE.is_float();
    if t == NAT {
        return match p.fill {
            Some(f) => cast_fill::<U>(f, &p.variable),
            None if float => U::from(f64::NAN).ok_or_else(|| "NaN".to_string()),
            None if U::DTYPE == DType::I64 => U::from(i64::MIN).ok_or_else(|| "NaT".to_string()),
            None => Err(format!(
                "variable {:?}: NaT cannot be stored as {} without a _FillValue; set the \
                 encoding's fill_value or store the times as int64",
                p.variable,
                U::DTYPE
            )),
        };
    }
    let delta = i128::from(t) - p.units.reference_ns;
    let unit = i128::from(p.units.unit.nanoseconds());
    if float {
        return U::from(delta as f64 / unit as f64).ok_or_else(|| "overflow".to_string());
    }
    if delta % unit != 0 {
        return Err(format!(
            "variable {:?}: time {} is not a whole number of {:?}; encode it with finer units \
             (encoding units such as \"nanoseconds since 1970-01-01\") or a float dtype",
            p.variable,
            super::time::format_datetime(t),
            p.units_text
        ));
    }
    U::from(delta / unit).ok_or_else(|| {
        format!(
            "variable {:?}: time {} is {} {:?}, which does not fit {}",
            p.variable,
            super::time::format_datetime(t),
            delta / unit,
            p.units_text,
            U::DTYPE
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct NumPlan {
    variable: String,
    scale: Option<f64>,
    offset: Option<f64>,
    /// The fill value NaN becomes (NaN itself when it is NaN).
    fill: Option<f64>,
}

fn encode_numbers(data: &AnyArray, target: DType, plan: NumPlan) -> DatasetResult<AnyArray> {
    macro_rules! from_source {
        ($a:expr, $s:ty) => {{
            let a: &Array<$s> = $a;
            Ok(match target {
                DType::I8 => AnyArray::I8(convert::<$s, i8>(a, &plan)),
                DType::I16 => AnyArray::I16(convert::<$s, i16>(a, &plan)),
                DType::I32 => AnyArray::I32(convert::<$s, i32>(a, &plan)),
                DType::I64 => AnyArray::I64(convert::<$s, i64>(a, &plan)),
                DType::U8 => AnyArray::U8(convert::<$s, u8>(a, &plan)),
                DType::U16 => AnyArray::U16(convert::<$s, u16>(a, &plan)),
                DType::U32 => AnyArray::U32(convert::<$s, u32>(a, &plan)),
                DType::U64 => AnyArray::U64(convert::<$s, u64>(a, &plan)),
                DType::F32 => AnyArray::F32(convert::<$s, f32>(a, &plan)),
                DType::F64 => AnyArray::F64(convert::<$s, f64>(a, &plan)),
                DType::Bool => unreachable!("rejected before"),
            })
        }};
    }
    match data {
        AnyArray::I8(a) => from_source!(a, i8),
        AnyArray::I16(a) => from_source!(a, i16),
        AnyArray::I32(a) => from_source!(a, i32),
        AnyArray::I64(a) => from_source!(a, i64),
        AnyArray::U8(a) => from_source!(a, u8),
        AnyArray::U16(a) => from_source!(a, u16),
        AnyArray::U32(a) => from_source!(a, u32),
        AnyArray::U64(a) => from_source!(a, u64),
        AnyArray::F32(a) => from_source!(a, f32),
        AnyArray::F64(a) => from_source!(a, f64),
        AnyArray::Bool(_) | AnyArray::Datetime(_) => unreachable!("handled by the caller"),
    }
}

fn convert<T, U>(a: &Array<T>, plan: &NumPlan) -> Array<U>
where
    T: Element + ToPrimitive,
    U: Element + num_traits::NumCast,
{
    let p = plan.clone();
    try_map(
        a,
        "cf-encode",
        format!("{plan:?}").as_bytes(),
        move |x: T| number::<T, U>(&p, x),
    )
}

fn number<T: Element + ToPrimitive, U: Element + num_traits::NumCast>(
    p: &NumPlan,
    x: T,
) -> Result<U, String> {
    let packed = p.scale.is_some() || p.offset.is_some();
    if !packed && !T::DTYPE.is_float() {
        // Integers to another type: exact.
        return U::from(x).ok_or_else(|| does_not_fit(p, &x));
    }
    let mut v = x.to_f64().unwrap_or(f64::NAN);
    if packed {
        v = (v - p.offset.unwrap_or(0.0)) / p.scale.unwrap_or(1.0);
    }
    if v.is_nan() {
        return match p.fill {
            Some(f) => U::from(f).ok_or_else(|| does_not_fit(p, &f)),
            None if U::DTYPE.is_float() => U::from(f64::NAN).ok_or_else(|| "NaN".to_string()),
            None => Err(format!(
                "variable {:?}: a missing value (NaN) cannot be stored as {} without a \
                 _FillValue; set the encoding's fill_value",
                p.variable,
                U::DTYPE
            )),
        };
    }
    if !U::DTYPE.is_float() {
        v = v.round_ties_even();
    }
    U::from(v).ok_or_else(|| does_not_fit(p, &x))
}

fn does_not_fit<X: std::fmt::Debug>(p: &NumPlan, x: &X) -> String {
    let packing = match (p.scale, p.offset) {
        (None, None) => String::new(),
        (s, o) => format!(
            " after packing with scale_factor {} and add_offset {}",
            s.unwrap_or(1.0),
            o.unwrap_or(0.0)
        ),
    };
    format!(
        "variable {:?}: value {x:?} does not fit the stored type{packing}; choose a wider \
         encoding dtype or other packing",
        p.variable
    )
}

fn cast_fill<U: Element + num_traits::NumCast>(f: FillValue, variable: &str) -> Result<U, String> {
    let v = match f {
        FillValue::Int(i) => U::from(i),
        FillValue::UInt(u) => U::from(u),
        other => U::from(other.as_f64()),
    };
    v.ok_or_else(|| {
        format!(
            "variable {variable:?}: fill value {f:?} does not fit {}",
            U::DTYPE
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array;
    use crate::collection::Collection;

    #[test]
    fn base64_is_pythons() {
        assert_eq!(
            v3_fill_json(FillValue::NaN, DType::F32),
            Value::from("AAAAAAAA+H8=")
        );
        assert_eq!(
            v3_fill_json(FillValue::Float(-9999.0), DType::F64),
            Value::from("AAAAAICHw8A=")
        );
        assert_eq!(base64_encode(b"hi"), "aGk=");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(
            v3_fill_json(FillValue::Int(-32768), DType::I16),
            Value::from(-32768)
        );
    }

    #[test]
    fn time_units_like_xarray() {
        let hour = 3_600_000_000_000i64;
        let t0 = 946_684_800_000_000_000i64; // 2000-01-01
        let nd = |v: Vec<i64>| v;
        assert_eq!(
            infer_time_units(&nd(vec![t0, t0 + 6 * hour, t0 + 12 * hour])),
            "hours since 2000-01-01 00:00:00"
        );
        assert_eq!(
            infer_time_units(&nd(vec![NAT, t0 + 24 * hour, t0 + 72 * hour])),
            "days since 2000-01-02 00:00:00"
        );
        assert_eq!(
            infer_time_units(&nd(vec![t0 + 500_000_000])),
            "days since 2000-01-01 00:00:00.500000"
        );
        assert_eq!(
            infer_time_units(&nd(vec![])),
            "days since 1970-01-01 00:00:00"
        );
    }

    #[test]
    fn given_units_are_cleaned_up_like_xarray() {
        // Outputs of xarray's _cleanup_netcdf_time_units.
        for (given, cleaned) in [
            ("hours since 2000-01-01 00:00:00", "hours since 2000-01-01"),
            ("hours since 2000-01-01", "hours since 2000-01-01"),
            (
                "Hour since 2000-01-01 06:00",
                "hours since 2000-01-01T06:00:00",
            ),
            (
                "days since 2000-1-1 00:00:00.5",
                "days since 2000-01-01T00:00:00.500000",
            ),
            (
                "days since 2000-01-01T00:00:00Z",
                "days since 2000-01-01T00:00:00Z",
            ),
        ] {
            assert_eq!(cleanup_time_units(given), cleaned, "{given}");
        }
    }

    #[test]
    fn packing_rounds_and_masks() {
        let x = array::from_ndarray(
            ndarray::arr1(&[280.0f64, f64::NAN, 281.005, 279.0]).into_dyn(),
            2,
        )
        .unwrap();
        let var = Variable::new(["t"], x).unwrap();
        let enc = Encoding {
            dtype: Some(DType::I16),
            scale_factor: Some(0.01),
            add_offset: Some(280.0),
            fill_value: Some(FillValue::Int(-32768)),
            ..Encoding::default()
        };
        let e = encode_variable("t", &var, &enc, ZarrFormat::V3, None, false).unwrap();
        let v = e.data.compute().unwrap();
        assert_eq!(
            v.typed::<i16>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, -32768, 100, -100]
        );
        assert_eq!(e.attrs["_FillValue"], Value::from(-32768));
        assert_eq!(e.fill_value, FillValue::Zero);
        let e = encode_variable("t", &var, &enc, ZarrFormat::V2, None, false).unwrap();
        assert_eq!(e.fill_value, FillValue::Int(-32768));
        assert!(!e.attrs.contains_key("_FillValue"));
        // NaN without a fill value cannot become an integer.
        let enc = Encoding {
            dtype: Some(DType::I32),
            ..Encoding::default()
        };
        let e = encode_variable("t", &var, &enc, ZarrFormat::V3, None, false).unwrap();
        let err = e.data.compute().unwrap_err().to_string();
        assert!(err.contains("\"t\"") && err.contains("_FillValue"), "{err}");
    }
}
