//! Docker-style rendering: aligned tables, decimal sizes (`4.26MB`),
//! humanised ages (`2 weeks ago`).

use std::io::Write;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Prints rows as Docker's tabwriter does (min width 10, padding 3, the
/// last column unpadded: an empty last cell leaves the padding of the one
/// before, as `docker history` does).
pub(crate) fn table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    let all = std::iter::once(header.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>();
    for row in &all {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max((cell.chars().count() + 3).max(10));
        }
    }
    for row in &all {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(cols) {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = width[i]));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// [`table`] of JSON records: the columns `cols` (keys of each record and
/// of `header`, which holds the column titles); a missing or non-string
/// value prints empty.
pub(crate) fn record_table(
    out: &mut dyn Write,
    header: &serde_json::Value,
    records: &[serde_json::Value],
    cols: &[&str],
) -> std::io::Result<()> {
    let head: Vec<&str> = cols
        .iter()
        .map(|c| header[*c].as_str().unwrap_or(""))
        .collect();
    let cells: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| r[*c].as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    table(out, &head, &cells)
}

/// Docker's `units.HumanSizeWithPrecision(n, 3)`: decimal units, three
/// significant digits (`4.26MB`, `999B`, `1.23kB`).
pub(crate) fn human_size(n: u64) -> String {
    human_size_prec(n, 3)
}

/// Docker's `units.HumanSizeWithPrecision(n, prec)` (`VirtualSize` in
/// `image ls --format json` uses 4: `1.983MB`).
pub(crate) fn human_size_prec(n: u64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, prec), UNITS[i])
}

/// Go's `%.{prec}g` for 0 <= v < 1000.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.log10().floor() as i32;
    let decimals = (prec as i32 - 1 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding can carry into one more digit (999.7 -> "1000"): Go prints 1e+03.
    if s.parse::<f64>().is_ok_and(|r| r >= 10f64.powi(prec as i32)) && prec == 3 {
        return "1e+03".into();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's `units.HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = ((s as f64) / 3600.0 + 0.5) as i64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// Parses an RFC 3339 creation time (`None` when empty or malformed).
pub(crate) fn parse_time(created: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(created, &Rfc3339).ok()
}

/// `2 weeks ago`, or `N/A` when the time is unknown.
pub(crate) fn since(created: &str) -> String {
    match parse_time(created) {
        Some(t) => {
            let age = (OffsetDateTime::now_utc() - t).whole_seconds();
            format!("{} ago", human_duration(age))
        }
        None => "N/A".into(),
    }
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 15:04:05 +0000 UTC`.
pub(crate) fn go_time(created: &str) -> String {
    match parse_time(created) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => String::new(),
    }
}

/// Docker's `stringutils.Ellipsis`: at most `max` chars, `…` when cut.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Docker's confirmation prompt: `WARNING! ...` then `Are you sure you
/// want to continue? [y/N]` on a terminal. Without a terminal on stdin
/// nobody can answer: refused, as Docker refuses, pointing at `-f`.
pub(crate) fn confirm(warning: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{warning}\nrefusing to continue without confirmation: stdin is not a terminal (use -f/--force to skip the prompt)"
        );
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(100_000), "100kB");
        assert_eq!(human_size(12_300_000), "12.3MB");
        assert_eq!(human_size(460_000_000), "460MB");
        assert_eq!(human_size(999_700), "1e+03kB");
        assert_eq!(human_size_prec(1_983_147, 4), "1.983MB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(14 * 24 * 3600), "2 weeks");
        assert_eq!(human_duration(3 * 365 * 24 * 3600), "3 years");
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["A", "LONGER HEADER", "Z"],
            &[vec!["x".into(), "y".into(), "z".into()]],
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "A         LONGER HEADER   Z\nx         y               z\n"
        );
    }
}
