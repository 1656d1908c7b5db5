//! Solar Hijri (Jalali) and Gregorian dates. All calendar arithmetic
//! (month lengths, leap years, conversion) is done by ICU4X `icu_calendar`.

use std::fmt;
use std::str::FromStr;

use icu_calendar::cal::Persian;
use icu_calendar::{Date, Gregorian};

use super::normalize::normalize_digits;

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the form `YYYY/MM/DD`.
    #[error("expected a date written YYYY/MM/DD (4-digit year, 1-2 digit month and day)")]
    Format,
    /// Year outside `1..=9999`.
    #[error("year {0} is out of range 1..=9999")]
    Year(i32),
    /// Month outside `1..=12`.
    #[error("month {0} does not exist; months are 1..=12")]
    Month(u8),
    /// Day outside the month's length.
    #[error("{year:04}/{month:02}/{day:02} does not exist: {month_name} {year} has {days} days{leap_note}")]
    Day {
        /// year
        year: i32,
        /// month
        month: u8,
        /// day
        day: u8,
        /// days in that month
        days: u8,
        /// Latin month name
        month_name: &'static str,
        /// extra note for Esfand of a common year
        leap_note: &'static str,
    },
}

const MONTHS_FA: [&str; 12] = [
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
];

/// The name of month 1..=12 (months are checked when a date is made).
fn month_name(names: &'static [&'static str; 12], month: u8) -> &'static str {
    usize::from(month)
        .checked_sub(1)
        .and_then(|i| names.get(i))
        .copied()
        .unwrap_or("?")
}

const MONTHS_LATIN: [&str; 12] = [
    "Farvardin",
    "Ordibehesht",
    "Khordad",
    "Tir",
    "Mordad",
    "Shahrivar",
    "Mehr",
    "Aban",
    "Azar",
    "Dey",
    "Bahman",
    "Esfand",
];

/// A valid date of the Solar Hijri calendar, as written on Iranian
/// documents. Displays as `1380/07/15`. Ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JalaliDate {
    year: i32,
    month: u8,
    day: u8,
}

/// A proleptic Gregorian date, displayed as ISO 8601 `2024-03-20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GregorianDate {
    year: i32,
    month: u8,
    day: u8,
}

impl JalaliDate {
    /// Builds a date if it exists in the Solar Hijri calendar (years
    /// `1..=9999`; month lengths and leap years as ICU computes them).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        if !(1..=9999).contains(&year) {
            return Err(DateError::Year(year));
        }
        if !(1..=12).contains(&month) {
            return Err(DateError::Month(month));
        }
        let days = Self::days_in_month(year, month).ok_or(DateError::Year(year))?;
        if day == 0 || day > days {
            let leap_note = if month == 12 && day == 30 {
                " (not a leap year)"
            } else {
                ""
            };
            return Err(DateError::Day {
                year,
                month,
                day,
                days,
                month_name: month_name(&MONTHS_LATIN, month),
                leap_note,
            });
        }
        // ICU has the final word on existence.
        Date::try_new_persian(year, month, day).map_err(|_| DateError::Format)?;
        Ok(JalaliDate { year, month, day })
    }

    /// Number of days of a Solar Hijri month according to ICU, or `None`
    /// for an out-of-range year or month.
    pub fn days_in_month(year: i32, month: u8) -> Option<u8> {
        if !(1..=12).contains(&month) {
            return None;
        }
        Date::try_new_persian(year, month, 1)
            .ok()
            .map(|d| d.days_in_month())
    }

    /// Whether `year` is a Solar Hijri leap year (Esfand has 30 days).
    pub fn is_leap_year(year: i32) -> bool {
        Date::try_new_persian(year, 1, 1).is_ok_and(|d| d.is_in_leap_year())
    }

    /// Parses `YYYY/MM/DD`; Persian and Arabic-Indic digits are accepted.
    /// Month and day may have one or two digits.
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let s = normalize_digits(s);
        let mut parts = s.split('/');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DateError::Format);
        };
        let all_digits = |p: &str, min: usize, max: usize| {
            (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
        };
        if !all_digits(y, 4, 4) || !all_digits(m, 1, 2) || !all_digits(d, 1, 2) {
            return Err(DateError::Format);
        }
        let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
            return Err(DateError::Format);
        };
        Self::new(y, m, d)
    }

    /// Year.
    pub fn year(&self) -> i32 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month, 1..=31.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Persian month name, e.g. `مهر`.
    pub fn month_name_fa(&self) -> &'static str {
        month_name(&MONTHS_FA, self.month)
    }

    /// Latin month name, e.g. `Mehr`.
    pub fn month_name_latin(&self) -> &'static str {
        month_name(&MONTHS_LATIN, self.month)
    }

    #[allow(
        clippy::expect_used,
        reason = "every JalaliDate is checked by ICU when it is made"
    )]
    fn icu(&self) -> Date<Persian> {
        Date::try_new_persian(self.year, self.month, self.day)
            .expect("JalaliDate is validated on construction")
    }

    /// The same day in the proleptic Gregorian calendar (via ICU).
    pub fn to_gregorian(&self) -> GregorianDate {
        let g = self.icu().to_calendar(Gregorian);
        GregorianDate {
            year: g.year().extended_year(),
            month: g.month().ordinal,
            day: g.day_of_month().0,
        }
    }

    /// The Solar Hijri date of a Gregorian day (via ICU). `None` if the
    /// result falls outside years `1..=9999`.
    pub fn from_gregorian(g: GregorianDate) -> Option<Self> {
        let p = g.icu().to_calendar(Persian::new());
        JalaliDate::new(
            p.year().extended_year(),
            p.month().ordinal,
            p.day_of_month().0,
        )
        .ok()
    }

    /// Age in completed Jalali years on `on`, or `None` if `on` is before
    /// `self`. The n-th birthday is the same month/day n Jalali years later.
    /// Someone born on 30 Esfand has no such day in a common year; there the
    /// birthday is taken to fall on the next day, 1 Farvardin (the person is
    /// not yet a year older on 29 Esfand).
    pub fn age_on(&self, on: JalaliDate) -> Option<u32> {
        if on < *self {
            return None;
        }
        let mut years = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            years -= 1;
        }
        u32::try_from(years).ok()
    }
}

impl fmt::Display for JalaliDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for JalaliDate {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, DateError> {
        Self::parse(s)
    }
}

impl GregorianDate {
    /// Builds a Gregorian date if it exists (checked by ICU).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        if !(1..=12).contains(&month) {
            return Err(DateError::Month(month));
        }
        Date::try_new_gregorian(year, month, day).map_err(|_| DateError::Format)?;
        Ok(GregorianDate { year, month, day })
    }

    #[allow(
        clippy::expect_used,
        reason = "every GregorianDate is checked by ICU when it is made"
    )]
    fn icu(&self) -> Date<Gregorian> {
        Date::try_new_gregorian(self.year, self.month, self.day)
            .expect("GregorianDate is validated on construction")
    }

    /// Year (proleptic, astronomical numbering).
    pub fn year(&self) -> i32 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), the form the register
    /// stores dates in.
    pub fn day_number(&self) -> i64 {
        // A GregorianDate is checked when it is made, so it has a number.
        crate::utc::day_number(self.year, self.month, self.day).unwrap_or_default()
    }

    /// The date `days` after 1970-01-01; `None` outside years
    /// -9999..=9999.
    pub fn from_day_number(days: i64) -> Option<Self> {
        let (y, m, d) = crate::utc::from_day_number(days)?;
        GregorianDate::new(y, m, d).ok()
    }

    /// Parses ISO `YYYY-MM-DD` (ASCII or Persian/Arabic-Indic digits).
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let ascii = normalize_digits(s.trim());
        let parts: Vec<&str> = ascii.split('-').collect();
        let [y, m, d] = parts.as_slice() else {
            return Err(DateError::Format);
        };
        if y.len() != 4
            || m.len() != 2
            || d.len() != 2
            || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DateError::Format);
        }
        let n = |p: &str| p.parse::<i32>().map_err(|_| DateError::Format);
        GregorianDate::new(n(y)?, n(m)? as u8, n(d)? as u8)
    }
}

impl fmt::Display for GregorianDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
