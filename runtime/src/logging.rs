//! What rrun reports besides its results, the way runc does: an error ends
//! the command and goes to stderr and the `--log` file; a warning (a
//! failing poststart or poststop hook, an ambient capability that cannot be
//! raised) goes to the `--log` file when there is one, else to stderr. Both
//! are written to the log file as JSON lines (`--log-format json`, which
//! containerd reads back) or logfmt text. `--debug` installs tracing's own
//! formatter instead, at debug level.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where errors and warnings go.
#[derive(Debug, Clone)]
pub struct Sink {
    pub log: Option<PathBuf>,
    pub json: bool,
}

impl Sink {
    /// One log-file line as runc (logrus) writes it.
    pub fn line(&self, level: &str, msg: &str) -> String {
        let time = crate::state::now_rfc3339();
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        }
    }

    fn append(&self, path: &Path, level: &str, msg: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = writeln!(f, "{}", self.line(level, msg));
        }
    }

    /// An error: on stderr, and in the log file.
    pub fn error(&self, msg: &str) {
        eprintln!("rrun: {msg}");
        if let Some(path) = &self.log {
            self.append(path, "error", msg);
        }
    }

    /// A warning: in the log file, else on stderr.
    pub fn warning(&self, msg: &str) {
        match &self.log {
            Some(path) => self.append(path, "warning", msg),
            None => eprintln!("rrun: warning: {msg}"),
        }
    }
}

/// A subscriber that writes `warn!` and `error!` events to a [`Sink`] and
/// drops everything else (the default, without `--debug`).
pub struct Warnings(pub Sink);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message(String::new());
        event.record(&mut msg);
        if *event.metadata().level() == Level::ERROR {
            self.0.error(&msg.0);
        } else {
            self.0.warning(&msg.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_runcs() {
        let json = Sink {
            log: None,
            json: true,
        };
        let v: serde_json::Value = serde_json::from_str(&json.line("warning", "a \"b\"")).unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["msg"], "a \"b\"");
        assert!(v["time"].is_string());
        let text = Sink {
            log: None,
            json: false,
        };
        let l = text.line("warning", "a \"b\"");
        assert!(l.ends_with(" level=warning msg=\"a \\\"b\\\"\""), "{l}");
    }

    #[test]
    fn warnings_reach_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let sink = Sink {
            log: Some(path.clone()),
            json: true,
        };
        tracing::subscriber::with_default(Warnings(sink), || {
            tracing::warn!("hook {} failed", 3);
            tracing::info!("not this");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["msg"], "hook 3 failed");
        assert_eq!(v["level"], "warning");
    }
}
