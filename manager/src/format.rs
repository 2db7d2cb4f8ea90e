//! Docker's human-readable sizes, durations, tables and strings.

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

/// Columns padded to their widest cell plus three spaces, at least ten
/// wide: Docker's tables (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`).
pub fn table(rows: &[Vec<String>]) -> String {
    let text: String = rows.iter().map(|r| r.join("\t") + "\n").collect();
    tabwrite(&text)
}

/// Align tab-separated cells as Go's tabwriter does for Docker: every
/// tab-terminated cell is padded to its column's widest cell plus three
/// spaces (at least ten); a line's last cell is not padded.
pub fn tabwrite(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        // the last cell ends the line, not a column
        for (c, cell) in cells.iter().enumerate().take(cells.len() - 1) {
            let w = (cell.chars().count() + PADDING).max(MIN_WIDTH);
            match widths.get_mut(c) {
                Some(old) => *old = (*old).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for cells in &lines {
        for (c, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < cells.len() {
                let pad = widths[c] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when
/// cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// Go's `strconv.Quote`: double quotes, with `"`, `\` and control
/// characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Time.String()` of an RFC 3339 time, in UTC:
/// `2024-05-01 10:00:00 +0000 UTC` (Docker's CreatedAt).
pub fn go_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S %z UTC")
                .to_string()
        })
        .unwrap_or_default()
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
    fn table_pads_columns_like_dockers_tabwriter() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["aaaaaaaaaa".into(), "b".into(), "c".into()],
        ]);
        assert_eq!(
            t,
            format!(
                "A{}BB{}C\naaaaaaaaaa   b{}c\n",
                " ".repeat(12),
                " ".repeat(8),
                " ".repeat(9)
            )
        );
        assert_eq!(
            tabwrite("CONTAINER ID\tNAMES\nabc\tweb\n"),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        // no tab: nothing to align
        assert_eq!(tabwrite("a b\n"), "a b\n");
    }

    #[test]
    fn docker_strings() {
        assert_eq!(ellipsis("sleep 300", 20), "sleep 300");
        assert_eq!(
            ellipsis("sh -c 'sleep 300 # a long comment'", 20),
            "sh -c 'sleep 300 # …"
        );
        assert_eq!(go_quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(
            go_time("2024-05-01T12:00:00+02:00"),
            "2024-05-01 10:00:00 +0000 UTC"
        );
    }
}
