//! Label lookups in one loaded 1-D index coordinate, with pandas' `Index` semantics: exact
//! matches (`get_loc`), methods with tolerance (`get_indexer(method=...)`), inclusive label
//! slices in the index's direction (`slice_indexer`), and datetime text standing for a whole
//! period when coarser than the index (partial string indexing). The rules are listed in
//! `labels.rs`; this file turns one [`Selector`] into one [`Indexer`].
//!
//! Must not: select data, or compute anything but the one index coordinate it is given.

use super::any_array::{AnyNdArray, VarDType};
use super::error::{DatasetError, DatasetResult};
use super::labels::{Label, Method, SelOptions, Selector};
use super::select::{Indexer, Slice};
use super::time::{days_from_civil, format_datetime, parse_datetime};
use super::variable::Variable;
use crate::collection::Collection;

/// Whether the index is sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Increasing,
    Decreasing,
    Unsorted,
}

/// Datetime text and index resolutions, coarse to fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resolution {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Exact,
}

const NS_HOUR: i64 = 3_600_000_000_000;
const NS_DAY: i64 = 24 * NS_HOUR;

/// An index key: `f64` for numbers, `i64` nanoseconds for datetimes.
trait Key: Copy + PartialOrd {
    fn distance(self, other: Self) -> f64;
    fn show(self) -> String;
    fn is_missing(self) -> bool;
}

impl Key for f64 {
    fn distance(self, other: f64) -> f64 {
        (self - other).abs()
    }
    fn show(self) -> String {
        format!("{self}")
    }
    fn is_missing(self) -> bool {
        self.is_nan()
    }
}

impl Key for i64 {
    fn distance(self, other: i64) -> f64 {
        (i128::from(self) - i128::from(other)).unsigned_abs() as f64
    }
    fn show(self) -> String {
        format_datetime(self)
    }
    fn is_missing(self) -> bool {
        self == super::time::NAT
    }
}

/// What one label stands for: one key, or every key of a period (inclusive).
#[derive(Clone, Copy, Debug)]
enum Target<K> {
    Point(K),
    Period(K, K),
}

impl<K: Key> Target<K> {
    fn low(self) -> K {
        match self {
            Target::Point(k) | Target::Period(k, _) => k,
        }
    }
    fn high(self) -> K {
        match self {
            Target::Point(k) | Target::Period(_, k) => k,
        }
    }
}

/// How a label is used, which decides what datetime text stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Usage {
    /// A lone label with exact matching: a period when coarser than the index.
    Scalar,
    /// A slice bound: always its whole period.
    Bound,
    /// In a list, points, or with a method: the instant it starts at.
    Instant,
}

/// A loaded index coordinate.
struct Index<'a, K> {
    name: &'a str,
    dtype: VarDType,
    values: Vec<K>,
    order: Order,
}

impl<K: Key> Index<'_, K> {
    fn new(name: &str, dtype: VarDType, values: Vec<K>) -> Index<'_, K> {
        let order = if values.iter().any(|v| v.is_missing()) {
            Order::Unsorted
        } else if values.windows(2).all(|w| w[0] <= w[1]) {
            Order::Increasing
        } else if values.windows(2).all(|w| w[0] >= w[1]) {
            Order::Decreasing
        } else {
            Order::Unsorted
        };
        Index {
            name,
            dtype,
            values,
            order,
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// `float64, 180 values from -89.5 to 89.5`.
    fn describe(&self) -> String {
        let sorted = match self.order {
            Order::Increasing => ", ascending",
            Order::Decreasing => ", descending",
            Order::Unsorted => ", unsorted",
        };
        match (self.values.first(), self.values.last()) {
            (Some(a), Some(b)) => format!(
                "{}, {} values from {} to {}{sorted}",
                self.dtype,
                self.len(),
                a.show(),
                b.show()
            ),
            _ => format!("{}, empty", self.dtype),
        }
    }

    fn not_found(&self, label: &Label, hint: String) -> DatasetError {
        DatasetError::LabelNotFound {
            coord: self.name.to_string(),
            label: format!("label {label}"),
            range: self.describe(),
            hint,
        }
    }

    fn invalid(&self, reason: String) -> DatasetError {
        DatasetError::InvalidSelection {
            dim: self.name.to_string(),
            reason,
        }
    }

    /// The first position not "before" `k` in the index's direction (`strict`: not "at or
    /// before"). Sorted indexes only.
    fn bound(&self, k: K, strict: bool) -> usize {
        match (self.order, strict) {
            (Order::Decreasing, false) => self.values.partition_point(|v| *v > k),
            (Order::Decreasing, true) => self.values.partition_point(|v| *v >= k),
            (_, false) => self.values.partition_point(|v| *v < k),
            (_, true) => self.values.partition_point(|v| *v <= k),
        }
    }

    /// Every position holding a key in `lo..=hi`, ascending.
    fn matches(&self, lo: K, hi: K) -> Vec<usize> {
        match self.order {
            Order::Increasing => (self.bound(lo, false)..self.bound(hi, true)).collect(),
            Order::Decreasing => (self.bound(hi, false)..self.bound(lo, true)).collect(),
            Order::Unsorted => (0..self.len())
                .filter(|&i| self.values[i] >= lo && self.values[i] <= hi)
                .collect(),
        }
    }

    /// The position a [`Method`] finds for `k`, within the tolerance.
    fn find(&self, label: &Label, k: K, options: &SelOptions) -> DatasetResult<usize> {
        let n = self.len();
        let sorted = self.order != Order::Unsorted;
        let found = match options.method {
            Method::Exact => unreachable!("exact lookups go through matches()"),
            Method::Nearest if sorted => {
                // In the index's direction: j is the first position at or past k.
                let j = self.bound(k, false);
                let before = j.checked_sub(1);
                let at = (j < n).then_some(j);
                match (before, at) {
                    (Some(b), Some(a)) => {
                        let (db, da) = (self.values[b].distance(k), self.values[a].distance(k));
                        Some(if db < da { b } else { a })
                    }
                    (b, a) => a.or(b),
                }
            }
            Method::Nearest => {
                let mut best: Option<(usize, f64)> = None;
                for (i, v) in self.values.iter().enumerate() {
                    if v.is_missing() {
                        continue;
                    }
                    let d = v.distance(k);
                    if best.is_none_or(|(_, bd)| d <= bd) {
                        best = Some((i, d));
                    }
                }
                best.map(|(i, _)| i)
            }
            Method::Pad | Method::Backfill if !sorted => {
                return Err(self.invalid(format!(
                    "method {:?} needs a sorted index, and {:?} is not sorted ({}); sort it \
                     first, or use Method::Nearest",
                    options.method,
                    self.name,
                    self.describe()
                )));
            }
            // Increasing: the last position at or below k, the first at or above it.
            // Decreasing: the first at or below, the last at or above.
            Method::Pad => match self.order {
                Order::Increasing => self.bound(k, true).checked_sub(1),
                _ => Some(self.bound(k, false)).filter(|&j| j < n),
            },
            Method::Backfill => match self.order {
                Order::Increasing => Some(self.bound(k, false)).filter(|&j| j < n),
                _ => self.bound(k, true).checked_sub(1),
            },
        };
        let Some(i) = found else {
            let side = match options.method {
                Method::Pad => "at or below",
                Method::Backfill => "at or above",
                _ => "near",
            };
            return Err(self.not_found(label, format!("; no label {side} it")));
        };
        if let Some(tol) = options.tolerance {
            let d = self.values[i].distance(k);
            if d > tol {
                return Err(self.not_found(
                    label,
                    format!(
                        " within tolerance {tol}: the closest match ({:?}) is {} at distance {d}",
                        options.method,
                        self.values[i].show()
                    ),
                ));
            }
        }
        Ok(i)
    }

    /// The positions of one label: `Index` when exactly one, `Slice`/`List` for a period or
    /// repeated label.
    fn label(
        &self,
        label: &Label,
        target: Target<K>,
        options: &SelOptions,
    ) -> DatasetResult<Indexer> {
        if options.method != Method::Exact {
            return Ok(Indexer::Index(
                self.find(label, target.low(), options)? as i64
            ));
        }
        let pos = self.matches(target.low(), target.high());
        match (pos.as_slice(), target) {
            ([], _) => Err(self.not_found(
                label,
                "; use SelOptions::nearest() (or pad/backfill) for the closest label".into(),
            )),
            ([one], Target::Point(_)) => Ok(Indexer::Index(*one as i64)),
            _ => Ok(match self.order {
                Order::Unsorted => Indexer::List(pos.iter().map(|&p| p as i64).collect()),
                _ => Indexer::Slice(Slice::new(
                    Some(pos[0] as i64),
                    Some(pos[pos.len() - 1] as i64 + 1),
                    None,
                )),
            }),
        }
    }

    /// One position per label, for lists and points: the single match (or the first of a
    /// repeated label's, for points) or the method's.
    fn one(
        &self,
        label: &Label,
        k: K,
        options: &SelOptions,
        all: bool,
    ) -> DatasetResult<Vec<usize>> {
        if options.method != Method::Exact {
            return Ok(vec![self.find(label, k, options)?]);
        }
        let pos = self.matches(k, k);
        if pos.is_empty() {
            return Err(self.not_found(
                label,
                "; use SelOptions::nearest() (or pad/backfill) for the closest label".into(),
            ));
        }
        Ok(if all { pos } else { vec![pos[0]] })
    }

    /// The position of a slice bound: `left` bounds are the first position in the slice,
    /// right bounds one past the last (pandas' `get_slice_bound`).
    fn slice_bound(&self, label: &Label, target: Target<K>, left: bool) -> DatasetResult<usize> {
        match self.order {
            Order::Increasing => Ok(if left {
                self.bound(target.low(), false)
            } else {
                self.bound(target.high(), true)
            }),
            Order::Decreasing => Ok(if left {
                self.bound(target.high(), false)
            } else {
                self.bound(target.low(), true)
            }),
            Order::Unsorted => {
                let pos = self.matches(target.low(), target.high());
                match pos.as_slice() {
                    [one] => Ok(if left { *one } else { one + 1 }),
                    [] => Err(self.not_found(
                        label,
                        format!(
                            "; {:?} is not sorted, so slice bounds must be labels in it",
                            self.name
                        ),
                    )),
                    _ => Err(self.invalid(format!(
                        "slice bound {label} appears {} times in the unsorted index {:?}; a \
                         bound must be unique there",
                        pos.len(),
                        self.name
                    ))),
                }
            }
        }
    }

    /// Applies one selector; `target` turns a label into keys for a [`Usage`].
    fn select(
        &self,
        selector: &Selector,
        options: &SelOptions,
        target: impl Fn(&Label, Usage) -> DatasetResult<Target<K>>,
    ) -> DatasetResult<Indexer> {
        match selector {
            Selector::Label(l) => {
                let usage = if options.method == Method::Exact {
                    Usage::Scalar
                } else {
                    Usage::Instant
                };
                self.label(l, target(l, usage)?, options)
            }
            Selector::Slice { start, stop, step } => {
                if options.method != Method::Exact {
                    return Err(self.invalid(format!(
                        "method {:?} cannot be used with a slice of labels (xarray raises \
                         too); select the slice, or look up its bounds with the method first",
                        options.method
                    )));
                }
                let step = step.unwrap_or(1);
                if step == 0 {
                    return Err(self.invalid("slice step cannot be zero".into()));
                }
                let bound = |l: &Option<Label>, left: bool| -> DatasetResult<usize> {
                    match l {
                        None if left => Ok(0),
                        None => Ok(self.len()),
                        Some(l) => self.slice_bound(l, target(l, Usage::Bound)?, left),
                    }
                };
                let s = if step > 0 {
                    let (a, b) = (bound(start, true)?, bound(stop, false)?);
                    Slice::new(Some(a as i64), Some(b.max(a) as i64), Some(step))
                } else {
                    // pandas: swap the bounds, then walk back from the last position.
                    let (a, b) = (bound(stop, true)?, bound(start, false)?);
                    if b <= a {
                        Slice::new(Some(0), Some(0), None)
                    } else {
                        let end = (a > 0).then(|| a as i64 - 1);
                        Slice::new(Some(b as i64 - 1), end, Some(step))
                    }
                };
                Ok(Indexer::Slice(s))
            }
            Selector::List(labels) => {
                let mut pos = Vec::with_capacity(labels.len());
                for l in labels {
                    pos.extend(self.one(l, target(l, Usage::Instant)?.low(), options, true)?);
                }
                Ok(Indexer::List(pos.into_iter().map(|p| p as i64).collect()))
            }
            Selector::Points { dim, labels } => {
                let mut pos = Vec::with_capacity(labels.len());
                for l in labels {
                    pos.extend(self.one(l, target(l, Usage::Instant)?.low(), options, false)?);
                }
                Ok(Indexer::points(
                    dim.clone(),
                    pos.into_iter().map(|p| p as i64),
                ))
            }
        }
    }
}

/// The finest resolution the values need (pandas' `DatetimeIndex.resolution`, day at most).
fn index_resolution(values: &[i64]) -> Resolution {
    let whole = |unit: i64| {
        values
            .iter()
            .filter(|v| !v.is_missing())
            .all(|v| v.rem_euclid(unit) == 0)
    };
    if whole(NS_DAY) {
        Resolution::Day
    } else if whole(NS_HOUR) {
        Resolution::Hour
    } else if whole(60_000_000_000) {
        Resolution::Minute
    } else if whole(1_000_000_000) {
        Resolution::Second
    } else {
        Resolution::Exact
    }
}

/// Parses datetime text with its resolution: the first and last nanosecond of the period it
/// names (`"2000-01"`: all of January 2000).
fn parse_period(text: &str) -> Result<(i64, i64, Resolution), String> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text, ""),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let bad = || {
        format!(
            "{text:?} is not a date (YYYY, YYYY-MM, YYYY-MM-DD, then optionally THH[:MM[:SS[.f]]])"
        )
    };
    let year: i64 = parts.first().and_then(|y| y.parse().ok()).ok_or_else(bad)?;
    let month: u32 = match parts.get(1) {
        Some(m) => m.parse().map_err(|_| bad())?,
        None => 1,
    };
    if parts.len() > 3 || (parts.len() < 3 && !rest.is_empty()) || !(1..=12).contains(&month) {
        return Err(bad());
    }
    let clock_end = rest
        .find(|c: char| c == 'Z' || c == '+' || c == '-' || c.is_ascii_alphabetic() || c == ' ')
        .unwrap_or(rest.len());
    let clock = rest[..clock_end].trim();
    let (resolution, full) = match parts.len() {
        1 => (Resolution::Year, format!("{date}-01-01")),
        2 => (Resolution::Month, format!("{date}-01")),
        _ => {
            let fields = if clock.is_empty() {
                0
            } else {
                clock.split(':').count()
            };
            let res = match fields {
                0 => Resolution::Day,
                1 => Resolution::Hour,
                2 => Resolution::Minute,
                _ if clock.contains('.') => Resolution::Exact,
                _ => Resolution::Second,
            };
            (res, text.to_string())
        }
    };
    let lo = parse_datetime(&full).map_err(|e| format!("{text:?}: {e}"))?;
    let span: i128 = match resolution {
        Resolution::Year => {
            i128::from(days_from_civil(year + 1, 1, 1) - days_from_civil(year, 1, 1))
                * i128::from(NS_DAY)
        }
        Resolution::Month => {
            let (y, m) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            i128::from(days_from_civil(y, m, 1) - days_from_civil(year, month, 1))
                * i128::from(NS_DAY)
        }
        Resolution::Day => i128::from(NS_DAY),
        Resolution::Hour => i128::from(NS_HOUR),
        Resolution::Minute => 60_000_000_000,
        Resolution::Second => 1_000_000_000,
        Resolution::Exact => 1,
    };
    let hi = lo + span - 1;
    let fit = |v: i128| {
        i64::try_from(v)
            .ok()
            .filter(|&v| v != super::time::NAT)
            .ok_or_else(|| format!("{text:?} is outside the range of datetime64[ns]"))
    };
    Ok((fit(lo)?, fit(hi)?, resolution))
}

/// The positions `selector` picks in the index coordinate `coord` (named `name`).
pub(super) fn indexer_for(
    name: &str,
    coord: &Variable,
    selector: &Selector,
    options: &SelOptions,
) -> DatasetResult<Indexer> {
    let values = coord.data().compute()?;
    let dtype = coord.dtype();
    let wrong = |label: &Label, holds: &str| DatasetError::InvalidSelection {
        dim: name.to_string(),
        reason: format!("label {label} does not fit the index coordinate, which holds {holds}"),
    };
    match values {
        AnyNdArray::Datetime(ns) => {
            let index = Index::new(name, dtype, ns.iter().copied().collect());
            let resolution = index_resolution(&index.values);
            index.select(selector, options, |label, usage| match label {
                Label::Int(ns) | Label::Datetime(ns) => Ok(Target::Point(*ns)),
                Label::Str(text) => {
                    let (lo, hi, res) =
                        parse_period(text).map_err(|e| DatasetError::InvalidSelection {
                            dim: name.to_string(),
                            reason: e,
                        })?;
                    Ok(match usage {
                        // Coarser than the index: the whole period (pandas' partial strings).
                        Usage::Scalar if res < resolution => Target::Period(lo, hi),
                        Usage::Bound => Target::Period(lo, hi),
                        _ => Target::Point(lo),
                    })
                }
                Label::Float(_) => Err(wrong(
                    label,
                    "datetimes (give ISO text or nanoseconds as an integer)",
                )),
            })
        }
        other => {
            let Some(v) = other.to_f64_vec() else {
                unreachable!("only datetimes have no f64 values")
            };
            let index = Index::new(name, dtype, v);
            index.select(selector, options, |label, _usage| match label {
                Label::Int(i) => Ok(Target::Point(*i as f64)),
                Label::Float(x) => Ok(Target::Point(*x)),
                Label::Str(_) | Label::Datetime(_) => {
                    Err(wrong(label, &format!("{} numbers", index.dtype)))
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_their_resolution() {
        let day = 946_684_800_000_000_000i64; // 2000-01-01
        let (lo, hi, r) = parse_period("2000-01-01").unwrap();
        assert_eq!((lo, hi - lo + 1, r), (day, NS_DAY, Resolution::Day));
        let (lo, hi, r) = parse_period("2000-02").unwrap();
        assert_eq!(format_datetime(lo), "2000-02-01T00:00:00");
        assert_eq!(format_datetime(hi + 1), "2000-03-01T00:00:00"); // a leap year
        assert_eq!(r, Resolution::Month);
        let (lo, hi, r) = parse_period("2000").unwrap();
        assert_eq!(
            (lo, format_datetime(hi + 1), r),
            (day, "2001-01-01T00:00:00".into(), Resolution::Year)
        );
        let (lo, hi, r) = parse_period("2000-01-01T06").unwrap();
        assert_eq!(
            (lo - day, hi - lo + 1, r),
            (6 * NS_HOUR, NS_HOUR, Resolution::Hour)
        );
        let (_, _, r) = parse_period("2000-01-01 06:30").unwrap();
        assert_eq!(r, Resolution::Minute);
        let (_, _, r) = parse_period("2000-01-01T06:30:00").unwrap();
        assert_eq!(r, Resolution::Second);
        let (lo, hi, r) = parse_period("2000-01-01T06:30:00.5").unwrap();
        assert_eq!((hi, r), (lo, Resolution::Exact));
        let (lo, _, _) = parse_period("2000-01-01T07+01:00").unwrap();
        assert_eq!(lo - day, 6 * NS_HOUR);
        let (_, hi, _) = parse_period("2000-12").unwrap();
        assert_eq!(format_datetime(hi + 1), "2001-01-01T00:00:00");
        for bad in [
            "",
            "x",
            "2000-13",
            "2000-01T06",
            "2000-01-01-01",
            "2000-02-30",
        ] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_resolution_is_pandas() {
        assert_eq!(index_resolution(&[0, NS_DAY]), Resolution::Day);
        assert_eq!(index_resolution(&[0, 6 * NS_HOUR]), Resolution::Hour);
        assert_eq!(index_resolution(&[0, 60_000_000_000]), Resolution::Minute);
        assert_eq!(index_resolution(&[0, 1]), Resolution::Exact);
        assert_eq!(
            index_resolution(&[super::super::time::NAT, 0]),
            Resolution::Day
        );
    }

    fn index(values: &[f64]) -> Index<'static, f64> {
        Index::new(
            "x",
            VarDType::Plain(crate::array::DType::F64),
            values.to_vec(),
        )
    }

    #[test]
    fn methods_find_like_pandas() {
        let label = Label::Float(0.0);
        let up = index(&[0.0, 10.0, 20.0, 30.0]);
        let down = index(&[30.0, 20.0, 10.0, 0.0]);
        let o = |m| SelOptions {
            method: m,
            tolerance: None,
        };
        for (k, near_up, pad_up, back_up) in [
            (12.0, 1, Some(1), Some(2)),
            (15.0, 2, Some(1), Some(2)), // a tie goes to the later position
            (-5.0, 0, None, Some(0)),
            (35.0, 3, Some(3), None),
            (20.0, 2, Some(2), Some(2)),
        ] {
            assert_eq!(
                up.find(&label, k, &o(Method::Nearest)).unwrap(),
                near_up,
                "{k}"
            );
            assert_eq!(up.find(&label, k, &o(Method::Pad)).ok(), pad_up, "{k}");
            assert_eq!(
                up.find(&label, k, &o(Method::Backfill)).ok(),
                back_up,
                "{k}"
            );
            // The same labels on the reversed index.
            let flip = |i: usize| 3 - i;
            assert_eq!(
                down.find(&label, k, &o(Method::Pad)).ok(),
                pad_up.map(flip),
                "{k}"
            );
            assert_eq!(
                down.find(&label, k, &o(Method::Backfill)).ok(),
                back_up.map(flip),
                "{k}"
            );
        }
        // Ties on a descending index also go to the later position (the smaller label).
        assert_eq!(down.find(&label, 15.0, &o(Method::Nearest)).unwrap(), 2);
        let unsorted = index(&[10.0, 0.0, 30.0, 20.0]);
        assert_eq!(unsorted.find(&label, 24.0, &o(Method::Nearest)).unwrap(), 3);
        assert!(unsorted.find(&label, 24.0, &o(Method::Pad)).is_err());
        let tol = SelOptions::nearest().with_tolerance(1.0);
        assert!(up.find(&label, 12.0, &tol).is_err());
        assert_eq!(up.find(&label, 10.5, &tol).unwrap(), 1);
    }

    #[test]
    fn label_slices_follow_the_index_direction() {
        let up = index(&[0.0, 10.0, 20.0, 30.0, 40.0]);
        let down = index(&[40.0, 30.0, 20.0, 10.0, 0.0]);
        let o = SelOptions::default();
        let t = |l: &Label, _: Usage| match l {
            Label::Float(x) => Ok(Target::Point(*x)),
            _ => unreachable!(),
        };
        let sl = |a: f64, b: f64, step: Option<i64>| Selector::Slice {
            start: Some(Label::Float(a)),
            stop: Some(Label::Float(b)),
            step,
        };
        let pos = |ix: &Index<'_, f64>, s: Selector| match ix.select(&s, &o, t).unwrap() {
            Indexer::Slice(s) => {
                let (first, step, count) = s.resolve(ix.len()).unwrap();
                (0..count)
                    .map(|k| ix.values[(first as i64 + k as i64 * step) as usize])
                    .collect::<Vec<f64>>()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(pos(&up, sl(5.0, 30.0, None)), [10.0, 20.0, 30.0]);
        assert_eq!(pos(&up, sl(30.0, 5.0, None)), Vec::<f64>::new());
        assert_eq!(pos(&up, sl(30.0, 5.0, Some(-1))), [30.0, 20.0, 10.0]);
        assert_eq!(pos(&up, sl(40.0, 0.0, Some(-2))), [40.0, 20.0, 0.0]);
        assert_eq!(pos(&down, sl(35.0, 10.0, None)), [30.0, 20.0, 10.0]);
        assert_eq!(pos(&down, sl(10.0, 35.0, None)), Vec::<f64>::new());
        assert_eq!(pos(&down, sl(0.0, 30.0, Some(-1))), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(pos(&up, sl(-100.0, 100.0, Some(2))), [0.0, 20.0, 40.0]);
        let unsorted = index(&[10.0, 0.0, 30.0, 20.0]);
        assert_eq!(pos(&unsorted, sl(0.0, 20.0, None)), [0.0, 30.0, 20.0]);
        assert!(unsorted.select(&sl(5.0, 20.0, None), &o, t).is_err());
    }
}
