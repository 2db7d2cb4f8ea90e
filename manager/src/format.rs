//! Docker's human-readable sizes and durations.

/// `4.26MB`, `977kB`, `0B`: decimal units, three significant digits
/// (Docker's `units.HumanSizeWithPrecision(size, 3)`).
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// `2 minutes ago` (Docker's `units.HumanDuration` + " ago").
pub fn human_since(secs: i64) -> String {
    let s = secs.max(0);
    let d = if s < 1 {
        return "Less than a second ago".into();
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / (24 * 3600))
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 24 * 3600))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 24 * 3600))
    } else {
        format!("{} years", s / (365 * 24 * 3600))
    };
    format!("{d} ago")
}

/// Seconds since an RFC 3339 time (0 when unparsable).
pub fn seconds_since(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0)
}

/// Columns padded to their widest cell, three spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(4_261_135), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_since(0), "Less than a second ago");
        assert_eq!(human_since(5), "5 seconds ago");
        assert_eq!(human_since(70), "About a minute ago");
        assert_eq!(human_since(600), "10 minutes ago");
        assert_eq!(human_since(3600), "About an hour ago");
        assert_eq!(human_since(5 * 3600), "5 hours ago");
        assert_eq!(human_since(3 * 86400), "3 days ago");
        assert_eq!(human_since(30 * 86400), "4 weeks ago");
    }

    #[test]
    fn table_pads_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["aaaa".into(), "b".into(), "c".into()],
        ]);
        assert_eq!(t, "A      BB   C\naaaa   b    c\n");
    }
}
