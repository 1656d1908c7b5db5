//! UTC calendar time, on the `time` crate: certificate and CRL times, the
//! journal's timestamps, the card's Gregorian dates. (Solar Hijri dates are
//! ICU4X's, in `record::date`.) Times are seconds (or milliseconds) since
//! the Unix epoch; years outside what `time` represents (±9999) are clamped.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Seconds since the Unix epoch (negative before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The UTC date and time of `t` seconds since the epoch.
pub fn from_unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(if t < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

/// Seconds since the epoch of a UTC date and time; `None` if there is no
/// such date or time.
pub fn unix_of(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<i64> {
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Midnight UTC of a date, in seconds since the epoch; `None` if there is
/// no such date.
pub fn unix_of_date(year: i32, month: u8, day: u8) -> Option<i64> {
    unix_of(year, month, day, 0, 0, 0)
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Days since 1970-01-01 (negative before) of a date; `None` if there is
/// no such date.
pub fn day_number(year: i32, month: u8, day: u8) -> Option<i64> {
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// The date (year, month, day) `days` after 1970-01-01; `None` outside
/// the years `time` represents (±9999).
pub fn from_day_number(days: i64) -> Option<(i32, u8, u8)> {
    let jd = i32::try_from(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
    let d = Date::from_julian_day(jd).ok()?;
    Some((d.year(), u8::from(d.month()), d.day()))
}

/// The same date and time `years` later (29 February becomes 28 February).
pub fn add_years(t: i64, years: i32) -> i64 {
    let dt = from_unix(t);
    let year = dt.year().saturating_add(years);
    let day = dt.day().min(time::util::days_in_month(dt.month(), year));
    Date::from_calendar_date(year, dt.month(), day)
        .map(|d| d.with_time(dt.time()).assume_utc().unix_timestamp())
        .unwrap_or(t)
}

/// Today's UTC date as (year, month, day).
pub fn today() -> (i32, u8, u8) {
    let d = from_unix(unix_secs(SystemTime::now())).date();
    (d.year(), u8::from(d.month()), d.day())
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_unix(t: i64) -> String {
    let dt = from_unix(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Milliseconds since the Unix epoch (UTC): the register's clock.
pub type Millis = i64;

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso_millis(ms: Millis) -> String {
    let dt = from_unix(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_unix_time() {
        for t in [
            0i64,
            951_782_400,
            1_700_000_000,
            2_524_608_000,
            -86_400,
            4_102_444_800,
        ] {
            let dt = from_unix(t);
            let back = unix_of(
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
            );
            assert_eq!(back, Some(t));
        }
        assert_eq!(unix_of_date(2000, 2, 29), Some(951_782_400));
        assert_eq!(unix_of_date(2024, 3, 20), Some(19_802 * 86_400));
        assert_eq!(unix_of_date(1969, 12, 31), Some(-86_400));
        assert_eq!(unix_of_date(2001, 2, 29), None);
        assert_eq!(unix_of_date(2024, 13, 1), None);
        assert_eq!(unix_of(2024, 1, 1, 24, 0, 0), None);
    }

    #[test]
    fn day_numbers() {
        assert_eq!(day_number(1970, 1, 1), Some(0));
        assert_eq!(day_number(2024, 3, 20), Some(19_802));
        assert_eq!(day_number(1969, 12, 31), Some(-1));
        assert_eq!(day_number(2023, 2, 29), None);
        assert_eq!(from_day_number(11_016), Some((2000, 2, 29)));
        assert_eq!(from_day_number(-1), Some((1969, 12, 31)));
        assert_eq!(from_day_number(i64::MAX), None);
        assert_eq!(from_day_number(i64::MIN), None);
        for n in [-800_000, -1, 0, 1, 19_802, 2_000_000] {
            let (y, m, d) = from_day_number(n).unwrap();
            assert_eq!(day_number(y, m, d), Some(n));
        }
    }

    #[test]
    fn a_leap_day_plus_a_year_is_the_28th() {
        let t = add_years(951_782_400, 1); // 2000-02-29
        assert_eq!(format_unix(t), "2001-02-28 00:00:00 UTC");
        assert_eq!(
            format_unix(add_years(951_782_400, 4)),
            "2004-02-29 00:00:00 UTC"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_733_350_802_118), "2024-12-04T22:20:02.118Z");
        assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
        // Clamped, never a panic.
        assert!(format_unix(i64::MAX).starts_with("9999-12-31"));
        assert!(format_unix(i64::MIN).starts_with("-9999-01-01"));
    }
}
