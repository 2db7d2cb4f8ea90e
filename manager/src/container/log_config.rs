//! `--log-opt`: the json-file log's rotation (written by the shim,
//! shim/src/jsonlog.rs), checked once as the shim and Docker's json-file
//! driver read them, and kept in the record as given.

use serde::{Deserialize, Serialize};

/// A `--log-opt` rbox does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--log-opt {opt:?}: {why}")]
pub struct BadLogOpt {
    pub opt: String,
    pub why: String,
}

/// One `--log-opt`, its value as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LogOpt {
    /// rotate at this size: a positive number of bytes, or with k, m or g
    MaxSize(String),
    /// keep this many files: 1 or more
    MaxFile(String),
}

impl LogOpt {
    pub fn parse(o: &str) -> Result<LogOpt, BadLogOpt> {
        let bad = |why: &str| BadLogOpt {
            opt: o.to_string(),
            why: why.to_string(),
        };
        match o.split_once('=') {
            Some(("max-size", v)) => match log_size(v) {
                Some(n) if n > 0 => Ok(LogOpt::MaxSize(v.to_string())),
                Some(_) => Err(bad("max-size must be a positive number")),
                None => Err(bad(&format!(
                    "invalid size: '{v}' (a number of bytes, or with k, m or g)"
                ))),
            },
            Some(("max-file", v)) => match v.parse::<i64>() {
                Ok(n) if n >= 1 && n <= u32::MAX as i64 => Ok(LogOpt::MaxFile(v.to_string())),
                Ok(n) if n < 1 => Err(bad("max-file cannot be less than 1")),
                _ => Err(bad(&format!("max-file {v:?} is not a number"))),
            },
            _ => Err(bad("only max-size=SIZE and max-file=N are known")),
        }
    }

    /// `(key, value)` as Docker's `HostConfig.LogConfig.Config` has it.
    pub fn pair(&self) -> (&'static str, String) {
        match self {
            LogOpt::MaxSize(v) => ("max-size", v.clone()),
            LogOpt::MaxFile(n) => ("max-file", n.clone()),
        }
    }
}

impl TryFrom<String> for LogOpt {
    type Error = BadLogOpt;
    fn try_from(s: String) -> Result<LogOpt, BadLogOpt> {
        LogOpt::parse(&s)
    }
}

impl From<LogOpt> for String {
    fn from(o: LogOpt) -> String {
        let (k, v) = o.pair();
        format!("{k}={v}")
    }
}

/// The options as the shim's `jsonfile://` URI takes them: a query
/// (`?max-size=10m&max-file=3`), empty when there are none.
pub fn query(opts: &[LogOpt]) -> String {
    if opts.is_empty() {
        return String::new();
    }
    let q: Vec<String> = opts.iter().cloned().map(String::from).collect();
    format!("?{}", q.join("&"))
}

/// A `max-size` value the shim takes (shim/src/jsonlog.rs): digits, then
/// `k`, `m` or `g` and an optional `b`, any case.
fn log_size(v: &str) -> Option<u64> {
    let s = v.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, shift) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 10),
        (i, 'm') => (&s[..i], 20),
        (i, 'g') => (&s[..i], 30),
        _ => (s, 0),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_options_are_checked_like_dockers() {
        let q = |o: &[&str]| -> Result<String, BadLogOpt> {
            let opts = o
                .iter()
                .map(|s| LogOpt::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(query(&opts))
        };
        assert_eq!(q(&[]).unwrap(), "");
        assert_eq!(
            q(&["max-size=10m", "max-file=3"]).unwrap(),
            "?max-size=10m&max-file=3"
        );
        assert_eq!(q(&["max-size=300"]).unwrap(), "?max-size=300");
        assert_eq!(q(&["max-size=1KB"]).unwrap(), "?max-size=1KB");
        for (bad, says) in [
            ("max-size=-5", "invalid size: '-5'"),
            ("max-size=0", "max-size must be a positive number"),
            ("max-size=lots", "invalid size: 'lots'"),
            ("max-size=", "invalid size: ''"),
            ("max-size=1t", "invalid size: '1t'"),
            ("max-file=0", "max-file cannot be less than 1"),
            ("max-file=-1", "max-file cannot be less than 1"),
            ("max-file=x", "not a number"),
            ("mode=blocking", "only max-size=SIZE and max-file=N"),
        ] {
            let e = q(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains(says), "{bad}: {e}");
        }
        // kept in the record as given
        let o = LogOpt::parse("max-size=1KB").unwrap();
        assert_eq!(serde_json::to_string(&o).unwrap(), "\"max-size=1KB\"");
    }
}
