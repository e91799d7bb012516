//! `java.util.Date` ↔ ISO-8601, the JSON form of dates.
//!
//! Written as `2024-01-02T03:04:05.678Z` (UTC, milliseconds always shown); read from that form
//! with any fraction and any offset (`Z`, `+08:00`, `+0800`), from a date alone (midnight UTC),
//! and with a space instead of `T`. A time without an offset is taken as UTC. Civil-date
//! arithmetic follows Howard Hinnant's algorithms, exact over the whole `i64` millisecond range
//! that Java can hold in practice.

const MS_PER_DAY: i64 = 86_400_000;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats epoch milliseconds as ISO-8601 UTC with milliseconds.
pub fn format_millis(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+07}")
    };
    format!("{year}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Parses an ISO-8601 date or date-time into epoch milliseconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    // Date: YYYY-MM-DD (4-digit year; a sign allows the extended form).
    let (sign, rest) = match b.first()? {
        b'+' => (1, &b[1..]),
        b'-' => (-1, &b[1..]),
        _ => (1, b),
    };
    let dash = rest.iter().position(|&c| c == b'-')?;
    if dash < 4 || rest.len() < dash + 6 || rest[dash + 3] != b'-' {
        return None;
    }
    let year = sign * num(&rest[..dash])?;
    let month = num(&rest[dash + 1..dash + 3])?;
    let day = num(&rest[dash + 4..dash + 6])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day).checked_mul(MS_PER_DAY)?;
    let time = &rest[dash + 6..];
    if time.is_empty() {
        return Some(ms);
    }
    if !matches!(time[0], b'T' | b't' | b' ') || time.len() < 6 || time[3] != b':' {
        return None;
    }
    let (h, min) = (num(&time[1..3])?, num(&time[4..6])?);
    let mut pos = 6;
    let mut sec = 0;
    if time.get(pos) == Some(&b':') {
        sec = num(time.get(pos + 1..pos + 3)?)?;
        pos += 3;
    }
    let mut frac_ms = 0;
    if matches!(time.get(pos), Some(b'.' | b',')) {
        let digits = time[pos + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let first3: Vec<u8> = time[pos + 1..pos + 1 + digits]
            .iter()
            .copied()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .collect();
        frac_ms = num(&first3)?;
        pos += 1 + digits;
    }
    if h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let offset_min = match &time[pos..] {
        [] | [b'Z' | b'z'] => 0,
        [s @ (b'+' | b'-'), zone @ ..] => {
            let (oh, om) = match zone {
                [a, b, b':', c, d] | [a, b, c, d] => (num(&[*a, *b])?, num(&[*c, *d])?),
                [a, b] => (num(&[*a, *b])?, 0),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            (oh * 60 + om) * if *s == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    ms = ms.checked_add(((h * 60 + min - offset_min) * 60 + sec) * 1000 + frac_ms)?;
    Some(ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(894_621_091_000), "1998-05-08T09:51:31.000Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_millis(128_849_018_880_000),
            "6053-01-23T02:08:00.000Z"
        );
        // Outside years 0..=9999, the extended six-digit form, as JavaScript writes it.
        assert_eq!(
            format_millis(253_402_300_800_000),
            "+010000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_the_forms_people_send() {
        let cases = [
            ("1998-05-08T09:51:31Z", 894_621_091_000),
            ("1998-05-08T09:51:31.000Z", 894_621_091_000),
            ("1998-05-08T17:51:31+08:00", 894_621_091_000),
            ("1998-05-08T17:51:31+0800", 894_621_091_000),
            ("1998-05-08T04:51:31.5-05", 894_621_091_500),
            ("1998-05-08 09:51:31.123456", 894_621_091_123),
            ("1998-05-08T09:51", 894_621_060_000),
            ("1970-01-01", 0),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_iso8601(text), Some(ms), "{text}");
        }
        for bad in [
            "",
            "1998",
            "1998-13-01",
            "1999-02-29",
            "1998-05-08T25:00",
            "1998-05-08X09:51",
            "1998-05-08T09:51:31+8",
            "yesterday",
            "1998-05-08T09:51:31.Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_across_the_range() {
        for ms in [
            0,
            1,
            -1,
            86_399_999,
            -86_400_001,
            253_402_300_799_999,
            -62_135_596_800_000,
            1_700_000_000_123,
        ] {
            assert_eq!(parse_iso8601(&format_millis(ms)), Some(ms), "{ms}");
        }
    }
}
