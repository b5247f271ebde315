//! Time as the refresh decisions see it: one instant, given with `--now` or read once from the
//! system clock, so cadence logic is testable and a run with `--now` is reproducible.

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(pub(crate) i64);

impl Instant {
    pub(crate) fn system() -> Instant {
        Instant(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        )
    }

    /// `--now`'s time, or the system clock without it.
    pub(crate) fn from_arg(text: Option<&str>) -> anyhow::Result<Instant> {
        match text {
            Some(text) => Instant::parse(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "--now {text:?}: give an RFC 3339 time such as 2026-11-25T02:00:00Z"
                )
            }),
            None => Ok(Instant::system()),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub(crate) fn rfc3339(self) -> String {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// `HH:MM:SS`, the prefix of dbt-style log lines.
    pub(crate) fn time_of_day(self) -> String {
        let rem = self.0.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Parses RFC 3339 (`2026-11-24T02:00:00Z`, fractions and `+01:00` offsets allowed).
    ///
    /// Text from outside (`--now`, SQLite, a BI tool's API) may hold anything, so this reads the bytes
    /// one by one through `Digits` and never slices the string: a multi-byte character where a
    /// digit belongs is a refusal, not a panic on a char boundary.
    pub(crate) fn parse(text: &str) -> Option<Instant> {
        let mut r = Reader(text.trim().as_bytes());
        let y = r.digits(4)?;
        r.byte(b'-')?;
        let mo = r.digits(2)?;
        r.byte(b'-')?;
        let d = r.digits(2)?;
        r.one_of(b"Tt ")?;
        let h = r.digits(2)?;
        r.byte(b':')?;
        let mi = r.digits(2)?;
        r.byte(b':')?;
        let s = r.digits(2)?;
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 60
        {
            return None;
        }
        if r.byte(b'.').is_some() {
            let n = r.0.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            r.0 = &r.0[n..];
        }
        let offset = match r.0 {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), ..] => {
                r.0 = &r.0[1..];
                let oh = r.digits(2)?;
                r.byte(b':')?;
                let om = r.digits(2)?;
                if oh > 23 || om > 59 || !r.0.is_empty() {
                    return None;
                }
                (if *sign == b'-' { -1 } else { 1 }) * (oh * 3600 + om * 60)
            }
            _ => return None,
        };
        // Four-digit years and two-digit fields: nothing here can overflow an i64.
        Some(Instant(
            days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s - offset,
        ))
    }
}

/// The unread rest of an RFC 3339 text, as bytes (every byte of a valid one is ASCII).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, rest) = (self.0.get(..n)?, &self.0[n..]);
        let mut v = 0i64;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(b - b'0');
        }
        self.0 = rest;
        Some(v)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        self.one_of(&[want])
    }

    fn one_of(&mut self, set: &[u8]) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        set.contains(&first).then(|| self.0 = rest)
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// "3h ago", "25m ago", "2d 4h ago": for log lines.
pub(crate) fn ago(seconds: i64) -> String {
    let m = seconds.max(0) / 60;
    match m {
        0 => "just now".into(),
        1..=59 => format!("{m}m ago"),
        60..=1439 => format!(
            "{}h{} ago",
            m / 60,
            if m % 60 == 0 {
                String::new()
            } else {
                format!(" {}m", m % 60)
            }
        ),
        _ => format!("{}d {}h ago", m / 1440, m % 1440 / 60),
    }
}

// Howard Hinnant's civil-from-days and days-from-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:34:56Z",
            "2026-11-29T02:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(Instant::parse(s).unwrap().rfc3339(), s);
        }
        assert_eq!(
            Instant::parse("2026-11-29T02:00:00Z").unwrap().0,
            1_795_917_600
        );
    }

    #[test]
    fn offsets_and_fractions() {
        assert_eq!(
            Instant::parse("2026-11-24T03:00:00+01:00"),
            Instant::parse("2026-11-24T02:00:00Z")
        );
        assert_eq!(
            Instant::parse("2026-11-24T02:00:00.123456Z"),
            Instant::parse("2026-11-24T02:00:00Z")
        );
        assert_eq!(
            Instant::parse("2024-02-29t01:30:00-01:30"),
            Instant::parse("2024-02-29T03:00:00Z")
        );
        for bad in [
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T02:00:00",
            "yesterday",
            "2026-11-24T02:00:00+0100",
            "2026-02-29T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-24T02:00:00+01:00Z",
            "2026-11-24T02:00:00+24:00",
            // Multi-byte characters where digits or separators belong (issue 10: this panicked).
            "2026-11-24T02:00:00+1é00",
            "2026-11-24T02:00:00+é:00",
            "2026-11-24T02:00:0é",
            "2026-11-24T02:00:00.é",
            "2026-11-24T02:00:00éZ",
            "é026-11-24T02:00:00Z",
            "2026-11-24T02:00:00+01:0é",
        ] {
            assert_eq!(Instant::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ago_reads_well() {
        assert_eq!(ago(30), "just now");
        assert_eq!(ago(25 * 60), "25m ago");
        assert_eq!(ago(3 * 3600), "3h ago");
        assert_eq!(ago(3 * 3600 + 600), "3h 10m ago");
        assert_eq!(ago(2 * 86_400 + 4 * 3600), "2d 4h ago");
    }
}
