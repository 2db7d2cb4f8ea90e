//! Docker's json-file log format, written by the shim: one JSON object per
//! line of output, `{"log":"hello\n","stream":"stdout","time":"…"}`, into
//! one file shared by stdout and stderr, rotated at `max-size` keeping
//! `max-file` files (`<log>.1` is the newest rotated one).
//!
//! A process's stream asks for it with the URI
//! `jsonfile:///abs/path.log?max-size=10m&max-file=3` (rbox does).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crate::error::{Result, ShimError};

pub const SCHEME: &str = "jsonfile://";

/// Longer lines are written as several entries (Docker's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// One log file with its rotation.
struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
}

impl JsonLog {
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file > 1 {
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1));
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }

    fn entry(&mut self, stream: &str, line: &[u8], at: SystemTime) -> io::Result<()> {
        let mut out = Vec::with_capacity(line.len() + 80);
        out.extend_from_slice(b"{\"log\":");
        serde_json::to_writer(&mut out, &String::from_utf8_lossy(line))?;
        out.extend_from_slice(b",\"stream\":\"");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(rfc3339_nanos(at).as_bytes());
        out.extend_from_slice(b"\"}\n");
        if self.max_size > 0 && self.size > 0 && self.size + out.len() as u64 > self.max_size {
            self.rotate()?;
        }
        // one write per entry: readers never see half an entry
        self.file.write_all(&out)?;
        self.size += out.len() as u64;
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Sizes like Docker's `--log-opt max-size`: bytes or k/m/g suffixed.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1u64 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Logs by path: stdout and stderr of a process (and of later processes of
/// the same container) share one writer, so entries never interleave.
fn logs() -> &'static Mutex<HashMap<PathBuf, Arc<Mutex<JsonLog>>>> {
    static LOGS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<JsonLog>>>>> = OnceLock::new();
    LOGS.get_or_init(Default::default)
}

/// Opens (or joins) the log a `jsonfile://` URI names.
fn open(uri: &str) -> Result<Arc<Mutex<JsonLog>>> {
    let rest = &uri[SCHEME.len()..];
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bad = |msg: String| ShimError::Invalid {
        what: "log URI",
        msg: format!("{uri:?}: {msg}"),
    };
    if !path.starts_with('/') {
        return Err(bad("the path must be absolute".into()));
    }
    let (mut max_size, mut max_file) = (0, 1);
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("max-size", v)) => {
                max_size = parse_size(v).ok_or_else(|| bad(format!("max-size {v:?}")))?
            }
            Some(("max-file", v)) => {
                max_file = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| bad(format!("max-file {v:?}")))?
            }
            _ => return Err(bad(format!("unknown option {kv:?}"))),
        }
    }
    let path = PathBuf::from(path);
    let mut all = logs().lock().unwrap();
    if let Some(l) = all.get(&path) {
        return Ok(l.clone());
    }
    let file = open_append(&path).map_err(ShimError::io("open log", &path))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let log = Arc::new(Mutex::new(JsonLog {
        path: path.clone(),
        file,
        size,
        max_size,
        max_file,
    }));
    all.insert(path, log.clone());
    Ok(log)
}

/// The writer one stream's copy thread writes into: cuts what it gets into
/// lines, each an entry; a last line without newline is written at drop.
pub struct JsonStream {
    log: Arc<Mutex<JsonLog>>,
    stream: &'static str,
    partial: Vec<u8>,
}

impl JsonStream {
    pub fn open(uri: &str, stream: &'static str) -> Result<JsonStream> {
        Ok(JsonStream {
            log: open(uri)?,
            stream,
            partial: Vec::new(),
        })
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        self.log
            .lock()
            .unwrap()
            .entry(self.stream, line, SystemTime::now())
    }
}

impl Write for JsonStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            if self.partial.is_empty() {
                self.emit(line)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.emit(&whole)?;
            }
            rest = tail;
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() >= MAX_LINE {
            let whole = std::mem::take(&mut self.partial);
            self.emit(&whole)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for JsonStream {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            let whole = std::mem::take(&mut self.partial);
            let _ = self.emit(&whole);
        }
    }
}

/// `2026-11-30T13:29:31.123456789Z` (UTC, nanoseconds, like Docker's).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil date from days since 1970-01-01 (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_utc_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_796_045_371, 5);
        assert_eq!(rfc3339_nanos(t), "2026-11-30T13:29:31.000000005Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn lines_rotation_and_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let uri = format!("{SCHEME}{}?max-size=300&max-file=3", path.display());
        {
            let mut out = JsonStream::open(&uri, "stdout").unwrap();
            let mut err = JsonStream::open(&uri, "stderr").unwrap();
            out.write_all(b"one\ntw").unwrap();
            err.write_all(b"oops\n").unwrap();
            out.write_all(b"o\nlast").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let entries: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e["stream"].as_str().unwrap(), e["log"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stderr", "oops\n"),
                ("stdout", "two\n"),
                ("stdout", "last")
            ]
        );
        // past 300 bytes: rotated into .1, then .2; never more than 3 files
        let mut out = JsonStream::open(&uri, "stdout").unwrap();
        for i in 0..20 {
            out.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(numbered(&path, 1).exists() && numbered(&path, 2).exists());
        assert!(!numbered(&path, 3).exists());
        for p in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 300, "{p:?}");
        }
        let newest = std::fs::read_to_string(&path).unwrap();
        assert!(newest.contains("line 19\\n"), "{newest}");
    }

    #[test]
    fn bad_uris_are_refused() {
        for uri in [
            "jsonfile://relative.log",
            "jsonfile:///tmp/x.log?max-size=lots",
            "jsonfile:///tmp/x.log?max-file=0",
            "jsonfile:///tmp/x.log?color=red",
        ] {
            assert!(JsonStream::open(uri, "stdout").is_err(), "{uri}");
        }
    }
}
