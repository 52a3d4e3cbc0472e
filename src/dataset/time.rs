//! CF time: parsing `"<unit> since <date>"` units, the proleptic Gregorian calendar, and ISO 8601
//! text for datetimes held as nanoseconds since 1970-01-01T00:00:00 (numpy's `datetime64[ns]`).
//!
//! Pure functions, no arrays: `decode.rs` applies them element-wise to chunks.
//!
//! Invariants:
//! - A datetime is an `i64` count of nanoseconds since the Unix epoch, UTC, in the proleptic
//!   Gregorian calendar; `i64::MIN` is NaT ("not a time"), as in numpy.
//! - [`TimeUnits::parse`] accepts what xarray hands to pandas for the standard calendars: the
//!   units `nanoseconds` … `days` (singular or plural, any case), a reference date `Y-M-D` with
//!   an optional time `H:M[:S[.fraction]]` after `T` or a space, and an optional zone (`Z`,
//!   `UTC`, `GMT`, `±HH[:MM]`), converted to UTC as xarray does. Years without four digits are
//!   padded (`"1-1-1"` is year 1), like xarray's `_ensure_padded_year`.
//!
//! Must not: know about arrays, stores or attributes.

use std::fmt;

/// NaT, numpy's "not a time": the smallest `i64`.
pub const NAT: i64 = i64::MIN;

/// Nanoseconds per day.
const NS_PER_DAY: i128 = 86_400_000_000_000;

/// A CF time unit (the part before `since`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeUnit {
    /// `nanoseconds`
    Nanoseconds,
    /// `microseconds`
    Microseconds,
    /// `milliseconds`
    Milliseconds,
    /// `seconds`
    Seconds,
    /// `minutes`
    Minutes,
    /// `hours`
    Hours,
    /// `days`
    Days,
}

impl TimeUnit {
    /// Nanoseconds in one unit.
    pub fn nanoseconds(self) -> i64 {
        match self {
            TimeUnit::Nanoseconds => 1,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Milliseconds => 1_000_000,
            TimeUnit::Seconds => 1_000_000_000,
            TimeUnit::Minutes => 60_000_000_000,
            TimeUnit::Hours => 3_600_000_000_000,
            TimeUnit::Days => 86_400_000_000_000,
        }
    }

    /// The CF name: `"hours"`.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Nanoseconds => "nanoseconds",
            TimeUnit::Microseconds => "microseconds",
            TimeUnit::Milliseconds => "milliseconds",
            TimeUnit::Seconds => "seconds",
            TimeUnit::Minutes => "minutes",
            TimeUnit::Hours => "hours",
            TimeUnit::Days => "days",
        }
    }

    /// Parses a CF unit name as xarray does (`_netcdf_to_numpy_timeunit`): case-insensitive,
    /// singular or plural.
    pub fn parse(text: &str) -> Option<TimeUnit> {
        let mut t = text.trim().to_ascii_lowercase();
        if !t.ends_with('s') {
            t.push('s');
        }
        Some(match t.as_str() {
            "nanoseconds" => TimeUnit::Nanoseconds,
            "microseconds" => TimeUnit::Microseconds,
            "milliseconds" => TimeUnit::Milliseconds,
            "seconds" => TimeUnit::Seconds,
            "minutes" => TimeUnit::Minutes,
            "hours" => TimeUnit::Hours,
            "days" => TimeUnit::Days,
            _ => return None,
        })
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parsed CF time units: `"hours since 2000-01-01 00:00:00"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeUnits {
    /// The unit of the stored numbers.
    pub unit: TimeUnit,
    /// The reference date in nanoseconds since 1970-01-01 (UTC). Wider than `i64` so that a
    /// reference outside `datetime64[ns]`'s range still decodes values that land inside it.
    pub reference_ns: i128,
}

/// The calendars decoded to datetimes (xarray decodes these with pandas; others need cftime).
pub const STANDARD_CALENDARS: [&str; 3] = ["standard", "gregorian", "proleptic_gregorian"];

/// Whether `calendar` (any case) is one of [`STANDARD_CALENDARS`].
pub fn is_standard_calendar(calendar: &str) -> bool {
    STANDARD_CALENDARS.contains(&calendar.to_ascii_lowercase().as_str())
}

impl TimeUnits {
    /// Parses `"<unit> since <date>"`; the error says what is wrong.
    ///
    /// ```
    /// use chunkflow::dataset::time::{TimeUnit, TimeUnits, format_datetime};
    /// let u = TimeUnits::parse("hours since 2000-01-01 00:00:00")?;
    /// assert_eq!(u.unit, TimeUnit::Hours);
    /// assert_eq!(format_datetime(u.reference_ns as i64), "2000-01-01T00:00:00");
    /// assert!(TimeUnits::parse("months since 2000-01-01").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(units: &str) -> Result<TimeUnits, String> {
        // xarray's regex `(.+) since (.+)` is greedy: the last " since " splits.
        let Some(at) = units.rfind(" since ") else {
            return Err(format!(
                "time units {units:?} are not of the form \"<unit> since <date>\""
            ));
        };
        let (unit_text, date_text) = (&units[..at], &units[at + " since ".len()..]);
        let unit = TimeUnit::parse(unit_text).ok_or_else(|| {
            format!(
                "time unit {:?} in {units:?} is not one of nanoseconds, microseconds, \
                 milliseconds, seconds, minutes, hours, days (months and years need cftime)",
                unit_text.trim()
            )
        })?;
        let reference_ns = parse_datetime(date_text.trim())
            .map_err(|e| format!("reference date {:?} in {units:?}: {e}", date_text.trim()))?;
        Ok(TimeUnits { unit, reference_ns })
    }

    /// The datetime `value` units after the reference, or `None` outside `datetime64[ns]`'s
    /// range (NaT itself is outside it).
    pub fn decode_int(&self, value: i128) -> Option<i64> {
        let ns = self.reference_ns + value * i128::from(self.unit.nanoseconds());
        i64::try_from(ns).ok().filter(|&ns| ns != NAT)
    }

    /// As [`TimeUnits::decode_int`] for a float count, rounded to the nearest nanosecond;
    /// `None` for NaN, infinities and values outside the range.
    pub fn decode_float(&self, value: f64) -> Option<i64> {
        if !value.is_finite() {
            return None;
        }
        let offset = (value * self.unit.nanoseconds() as f64).round();
        // i64's range, in f64: anything outside cannot be a datetime64[ns] offset.
        if offset.abs() >= 9.2e18 {
            return None;
        }
        let ns = self.reference_ns + offset as i128;
        i64::try_from(ns).ok().filter(|&ns| ns != NAT)
    }
}

/// The date of the Gregorian calendar reform (1582-10-15) in ns since 1970: before it, the
/// `standard` calendar is Julian, which only cftime decodes.
pub const GREGORIAN_REFORM_NS: i128 = -12_219_292_800 * 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{what} {text:?} is out of range"))
}

/// Parses an ISO-like datetime (`"2000-01-01"`, `"2000-01-01T06:00:00.5Z"`,
/// `"1970-01-01 00:00:00 +01:00"`) to nanoseconds since 1970-01-01 UTC.
pub fn parse_datetime(text: &str) -> Result<i128, String> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text, ""),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(format!("date {date:?} is not year-month-day"));
    };
    let year: i64 = number(y, "year")?;
    let month: u32 = number(m, "month")?;
    let day: u32 = number(d, "day")?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("{date:?} is not a valid date"));
    }

    // The time of day, then an optional zone (attached or after a space).
    let split = rest
        .find(|c: char| c == 'Z' || c == '+' || c == '-' || c.is_ascii_alphabetic() || c == ' ')
        .unwrap_or(rest.len());
    let (clock, zone) = (rest[..split].trim(), rest[split..].trim());
    let mut ns: i128 = 0;
    if !clock.is_empty() {
        let fields: Vec<&str> = clock.split(':').collect();
        if fields.len() > 3 {
            return Err(format!("time {clock:?} is not hours:minutes:seconds"));
        }
        let hours: i128 = number(fields[0], "hour")?;
        let minutes: i128 = fields.get(1).map_or(Ok(0), |f| number(f, "minute"))?;
        let (whole, fraction) = match fields.get(2) {
            Some(s) => s.split_once('.').unwrap_or((s, "")),
            None => ("0", ""),
        };
        let seconds: i128 = number(whole, "second")?;
        if hours > 24 || minutes > 59 || seconds > 60 {
            return Err(format!("time {clock:?} is out of range"));
        }
        let mut frac_ns: i128 = 0;
        if !fraction.is_empty() {
            let digits: String = fraction.chars().take(9).collect();
            frac_ns = number::<i128>(&digits, "fraction of a second")?
                * 10i128.pow(9 - digits.len() as u32);
        }
        ns = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + frac_ns;
    }
    let offset_ns = parse_zone(zone)?;
    Ok(i128::from(days_from_civil(year, month, day)) * NS_PER_DAY + ns - offset_ns)
}

/// A zone suffix's offset from UTC in nanoseconds.
fn parse_zone(zone: &str) -> Result<i128, String> {
    let upper = zone.to_ascii_uppercase();
    if matches!(upper.as_str(), "" | "Z" | "UTC" | "GMT") {
        return Ok(0);
    }
    let (sign, body) = match zone.as_bytes()[0] {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return Err(format!("time zone {zone:?} is not Z, UTC or ±HH:MM")),
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 => (&body[..2], &body[2..]),
        None => (body, "0"),
    };
    let hours: i128 = number(h, "zone hour")?;
    let minutes: i128 = number(m, "zone minute")?;
    Ok(sign * (hours * 60 + minutes) * 60 * 1_000_000_000)
}

/// ISO 8601 text of a datetime (ns since 1970): `"2000-01-01T06:00:00"`, with nine fraction
/// digits only when the second is not whole (`"…T06:00:00.500000000"`), `"NaT"` for [`NAT`].
///
/// ```
/// use chunkflow::dataset::time::{NAT, format_datetime};
/// assert_eq!(format_datetime(0), "1970-01-01T00:00:00");
/// assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.999999999");
/// assert_eq!(format_datetime(NAT), "NaT");
/// ```
pub fn format_datetime(ns: i64) -> String {
    if ns == NAT {
        return "NaT".into();
    }
    let ns = i128::from(ns);
    let days = ns.div_euclid(NS_PER_DAY);
    let within = ns.rem_euclid(NS_PER_DAY);
    let (y, m, d) = civil_from_days(days as i64);
    let secs = within / 1_000_000_000;
    let frac = within % 1_000_000_000;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let date = if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{y}-{m:02}-{d:02}")
    };
    if frac == 0 {
        format!("{date}T{hh:02}:{mm:02}:{ss:02}")
    } else {
        format!("{date}T{hh:02}:{mm:02}:{ss:02}.{frac:09}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            i128::from(days_from_civil(1582, 10, 15)) * NS_PER_DAY,
            GREGORIAN_REFORM_NS
        );
    }

    #[test]
    fn parses_units_like_xarray() {
        let u = TimeUnits::parse("hours since 2000-01-01").unwrap();
        assert_eq!(u.unit, TimeUnit::Hours);
        assert_eq!(u.reference_ns, 10_957 * NS_PER_DAY);
        assert_eq!(
            format_datetime(u.decode_int(30).unwrap()),
            "2000-01-02T06:00:00"
        );
        for text in [
            "Hour since 2000-01-01T00:00:00",
            "hours since 2000-1-1 0:0:0",
            "hours since 2000-01-01 00:00:00.000",
            "hours since 2000-01-01T00:00:00Z",
            "hours since 2000-01-01 00:00:00 UTC",
            "hours since 2000-01-01 01:00:00+01:00",
            "hours since 1999-12-31T23:00:00-0100",
        ] {
            assert_eq!(TimeUnits::parse(text).unwrap(), u, "{text}");
        }
        let s = TimeUnits::parse("seconds since 1970-01-01 00:00:00.25").unwrap();
        assert_eq!(s.reference_ns, 250_000_000);
        assert_eq!(s.decode_float(0.5), Some(750_000_000));
        assert_eq!(s.decode_float(f64::NAN), None);
        // A padded year, as xarray reads "1-1-1".
        let old = TimeUnits::parse("days since 1-1-1").unwrap();
        assert_eq!(
            old.reference_ns,
            i128::from(days_from_civil(1, 1, 1)) * NS_PER_DAY
        );
        assert!(
            old.decode_int(0).is_none(),
            "year 1 is outside datetime64[ns]"
        );
        assert!(old.decode_int(730_119).is_some(), "2000 is inside");

        for bad in [
            "hours",
            "hours after 2000-01-01",
            "months since 2000-01-01",
            "fortnights since 2000-01-01",
            "hours since 2000-13-01",
            "hours since 2001-02-29",
            "hours since yesterday",
            "hours since 2000-01-01 25:00",
            "hours since 2000-01-01 00:00 CET",
        ] {
            assert!(TimeUnits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_numpy() {
        assert_eq!(
            format_datetime(946_684_800_000_000_000),
            "2000-01-01T00:00:00"
        );
        assert_eq!(
            format_datetime(946_684_800_500_000_000),
            "2000-01-01T00:00:00.500000000"
        );
        assert_eq!(format_datetime(i64::MAX), "2262-04-11T23:47:16.854775807");
        assert_eq!(format_datetime(NAT + 1), "1677-09-21T00:12:43.145224193");
        assert_eq!(
            parse_datetime("2262-04-11T23:47:16.854775807"),
            Ok(i128::from(i64::MAX))
        );
    }

    #[test]
    fn calendars() {
        assert!(is_standard_calendar("Gregorian"));
        assert!(is_standard_calendar("proleptic_gregorian"));
        assert!(!is_standard_calendar("noleap"));
        assert!(!is_standard_calendar("360_day"));
    }
}
