//! Go-style durations ("30s", "1m30s", "1.5h", "250ms") parsed into the
//! nanoseconds Docker stores in `Healthcheck` fields, and printed back.

use crate::error::Error;

/// Parses a Go `time.ParseDuration` string into nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<i64, Error> {
    let err = |why| Error::Duration {
        input: input.to_string(),
        why,
    };
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..n];
            s = &rest[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = s
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err("missing unit (one of ns, us, ms, s, m, h)")),
            _ => return Err(err("unknown unit (one of ns, us, ms, s, m, h)")),
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut value = int.checked_mul(scale).ok_or_else(|| err("overflow"))?;
        // Fractions: keep up to 18 digits, enough for nanosecond precision.
        let mut place: i128 = scale;
        for d in frac_part.bytes().take(18) {
            value += i128::from(d - b'0') * place / 10;
            place /= 10;
            if place == 0 {
                break;
            }
        }
        total = total.checked_add(value).ok_or_else(|| err("overflow"))?;
        if total > i64::MAX as i128 + 1 {
            return Err(err("overflow"));
        }
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| err("overflow"))
}

/// Formats nanoseconds as Go's `Duration.String` does ("1m30s", "500ms").
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        let (div, unit) = if u < 1_000 {
            (1, "ns")
        } else if u < 1_000_000 {
            (1_000, "\u{b5}s")
        } else {
            (1_000_000, "ms")
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
        return out;
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s_ns = u % 60_000_000_000;
    if h > 0 {
        out.push_str(&format!("{h}h{m}m"));
    } else if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&frac(s_ns, 1_000_000_000));
    out.push('s');
    out
}

fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let s = 1_000_000_000i64;
        for (text, ns) in [
            ("30s", 30 * s),
            ("1m30s", 90 * s),
            ("1h", 3600 * s),
            ("1.5h", 5400 * s),
            ("250ms", 250_000_000),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("0", 0),
            ("-2s", -2 * s),
            (".5s", 500_000_000),
            ("1h2m3.004005006s", 3723 * s + 4_005_006),
        ] {
            assert_eq!(parse_go_duration(text).unwrap(), ns, "{text}");
        }
        for bad in ["", "s", "10", "1x", "1.s.", "99999999999999999999h", "-"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(90_000_000_000), "1m30s");
        assert_eq!(format_go_duration(30_000_000_000), "30s");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(250_000_000), "250ms");
        assert_eq!(format_go_duration(0), "0s");
    }
}
