//! Reading a container's json-file log (written by its shim, see
//! shim::jsonlog): `rbox logs`, and the output of attached runs.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// One line of output.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn read_file(path: &Path, out: &mut Vec<Entry>) -> u64 {
    let Ok(f) = File::open(path) else { return 0 };
    let mut r = BufReader::new(f);
    let mut line = String::new();
    let mut pos = 0;
    while r.read_line(&mut line).unwrap_or(0) > 0 {
        if !line.ends_with('\n') {
            break; // an entry being written: the follower takes it later
        }
        pos += line.len() as u64;
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
        line.clear();
    }
    pos
}

/// Everything logged so far, oldest first (rotated files too), and where
/// the current file ends.
pub fn read_all(path: &Path) -> (Vec<Entry>, u64) {
    let mut out = Vec::new();
    let rotated = (1..).take_while(|&n| numbered(path, n).exists()).count() as u32;
    for n in (1..=rotated).rev() {
        read_file(&numbered(path, n), &mut out);
    }
    let end = read_file(path, &mut out);
    (out, end)
}

/// Follows the log from byte `offset` of the current file, handing each
/// new entry to `sink`. Between reads `wait(POLL)` waits (for up to that
/// long) and says whether the container may still write; once it says no,
/// what is left is read and the follow ends. A rotation (a new file) is
/// followed from its start, once the rest of the file it replaced is read
/// through the descriptor held on it: the writer rotates right after the
/// write that fills a file, so the last lines of a run may be there.
pub fn follow(
    path: &Path,
    mut offset: u64,
    mut wait: impl FnMut(Duration) -> bool,
    mut sink: impl FnMut(&Entry),
) {
    let mut held: Option<(File, u64)> = File::open(path)
        .ok()
        .and_then(|f| f.metadata().ok().map(|m| (f, m.ino())));
    let mut alive = true;
    loop {
        loop {
            if let Some((f, _)) = held.as_mut() {
                offset = read_from(f, offset, &mut sink);
            }
            // the path names another file: a rotation (or the first file)
            let now = std::fs::metadata(path).map(|m| m.ino()).ok();
            if now.is_none() || now == held.as_ref().map(|h| h.1) {
                break;
            }
            match File::open(path)
                .ok()
                .and_then(|f| f.metadata().ok().map(|m| (f, m.ino())))
            {
                Some(h) => {
                    held = Some(h);
                    offset = 0;
                }
                None => break,
            }
        }
        if !alive {
            return;
        }
        alive = wait(POLL);
    }
}

/// Hands the whole lines of `f` from `offset` on to `sink`; the offset
/// after the last of them (a file truncated below it is read from its
/// start).
fn read_from(f: &mut File, mut offset: u64, sink: &mut impl FnMut(&Entry)) -> u64 {
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < offset {
        offset = 0;
    }
    if len == offset || f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut r = BufReader::new(f);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => {
                offset += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    sink(&e);
                }
            }
            _ => return offset,
        }
    }
}

/// How often a followed log is read again.
pub const POLL: Duration = Duration::from_millis(10);

/// `--since`: an RFC 3339 time, a Unix time, or a duration ago (`10m`).
pub fn parse_since(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return chrono::DateTime::from_timestamp(secs as i64, 0);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(chrono::Utc::now() - chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> String {
        format!(
            "{}\n",
            serde_json::json!({"log": format!("{s}\n"), "stream": "stdout", "time": "2026-12-07T00:00:00Z"})
        )
    }

    #[test]
    fn a_rotation_right_after_the_last_write_loses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("c-json.log");
        std::fs::write(&log, entry("one")).unwrap();
        let mut got = Vec::new();
        let mut calls = 0;
        follow(
            &log,
            0,
            |_| {
                calls += 1;
                // the writer fills the file, rotates it, starts a new one
                let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
                std::io::Write::write_all(&mut f, entry("two").as_bytes()).unwrap();
                std::fs::rename(&log, d.path().join("c-json.log.1")).unwrap();
                std::fs::write(&log, entry("three")).unwrap();
                false
            },
            |e| got.push(e.log.trim().to_string()),
        );
        assert_eq!(calls, 1);
        assert_eq!(got, ["one", "two", "three"]);
    }

    #[test]
    fn since_forms() {
        let t = parse_since("2026-11-30T13:00:00Z").unwrap();
        assert_eq!(t.timestamp(), 1_796_043_600);
        assert_eq!(
            parse_since("1796043600").unwrap().timestamp(),
            1_796_043_600
        );
        let ago = parse_since("10m").unwrap();
        let d = chrono::Utc::now() - ago;
        assert!((599..=601).contains(&d.num_seconds()));
        assert!(parse_since("yesterday").is_none());
    }
}
