//! A typed client for rrun's runc-compatible command line.
//!
//! Every command runs through the [`Reaper`], never `Command::status()`.
//! Errors carry rrun's own message, read from its `--log` file (JSON lines,
//! as runc writes them) or its stderr.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::reaper::Reaper;

#[derive(Debug, thiserror::Error)]
pub enum RrunError {
    #[error("runtime binary {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{binary} {verb} {id}: {msg}")]
    Failed {
        binary: PathBuf,
        verb: &'static str,
        id: String,
        msg: String,
    },
    #[error("{binary} {verb} {id}: unreadable output: {source}")]
    Output {
        binary: PathBuf,
        verb: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, RrunError>;

/// The standard streams given to a process that rrun starts.
#[derive(Default)]
pub struct ProcStdio {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

/// Where rrun runs and keeps its state.
#[derive(Debug, Clone)]
pub struct Rrun {
    pub binary: PathBuf,
    pub root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Start,
    Kill,
    Delete,
    Exec,
    Ps,
    Pause,
    Resume,
    Update,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Start => "start",
            Verb::Kill => "kill",
            Verb::Delete => "delete",
            Verb::Exec => "exec",
            Verb::Ps => "ps",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Update => "update",
        }
    }
}

/// Options of `create` and `exec` beyond the container id.
pub struct Launch<'a> {
    /// The bundle (create) or the process JSON file (exec).
    pub spec: &'a Path,
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
    /// rrun's log file, read back for the error message.
    pub log: &'a Path,
    pub stdio: ProcStdio,
}

impl Rrun {
    fn command(&self, log: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        if let Some(log) = log {
            cmd.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        cmd
    }

    fn failed(&self, verb: Verb, id: &str, msg: String) -> RrunError {
        RrunError::Failed {
            binary: self.binary.clone(),
            verb: verb.name(),
            id: id.to_string(),
            msg,
        }
    }

    /// Runs a command to completion, returning its stdout.
    fn run(&self, verb: Verb, id: &str, mut cmd: Command) -> Result<Vec<u8>> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (mut child, exited) =
            Reaper::get()
                .spawn(&mut cmd)
                .map_err(|source| RrunError::Spawn {
                    binary: self.binary.clone(),
                    source,
                })?;
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            buf
        });
        let mut out = Vec::new();
        let _ = child
            .stdout
            .take()
            .expect("piped stdout")
            .read_to_end(&mut out);
        let err = stderr.join().unwrap_or_default();
        let exit = exited.recv().expect("the reaper reports every child");
        if exit.code != 0 {
            return Err(self.failed(verb, id, message(&err, None, exit.code)));
        }
        Ok(out)
    }

    /// Runs `create` or `exec`, whose stdio are the process's own.
    fn launch(&self, verb: Verb, id: &str, mut cmd: Command, l: Launch) -> Result<()> {
        let stdio = |f: Option<File>| f.map(Stdio::from).unwrap_or_else(Stdio::null);
        cmd.stdin(stdio(l.stdio.stdin))
            .stdout(stdio(l.stdio.stdout))
            .stderr(stdio(l.stdio.stderr));
        let (child, exited) = Reaper::get()
            .spawn(&mut cmd)
            .map_err(|source| RrunError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        // the stdio ends the command holds are closed here, with the Command
        drop(cmd);
        drop(child);
        let exit = exited.recv().expect("the reaper reports every child");
        if exit.code != 0 {
            return Err(self.failed(verb, id, message(&[], Some(l.log), exit.code)));
        }
        Ok(())
    }

    pub fn create(&self, id: &str, l: Launch) -> Result<()> {
        let mut cmd = self.command(Some(l.log));
        cmd.arg("create").arg("--bundle").arg(l.spec);
        cmd.arg("--pid-file").arg(l.pid_file);
        if let Some(s) = l.console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        cmd.arg(id);
        self.launch(Verb::Create, id, cmd, l)
    }

    pub fn exec(&self, id: &str, l: Launch) -> Result<()> {
        let mut cmd = self.command(Some(l.log));
        cmd.arg("exec").arg("--detach").arg("--process").arg(l.spec);
        cmd.arg("--pid-file").arg(l.pid_file);
        if let Some(s) = l.console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        cmd.arg(id);
        self.launch(Verb::Exec, id, cmd, l)
    }

    pub fn start(&self, id: &str) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.args(["start", id]);
        self.run(Verb::Start, id, cmd).map(drop)
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal.to_string());
        self.run(Verb::Kill, id, cmd).map(drop)
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        self.run(Verb::Delete, id, cmd).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.args(["pause", id]);
        self.run(Verb::Pause, id, cmd).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.args(["resume", id]);
        self.run(Verb::Resume, id, cmd).map(drop)
    }

    /// `update --resources FILE`: FILE holds OCI `linux.resources` JSON.
    pub fn update(&self, id: &str, resources: &Path) -> Result<()> {
        let mut cmd = self.command(None);
        cmd.arg("update").arg("--resources").arg(resources).arg(id);
        self.run(Verb::Update, id, cmd).map(drop)
    }

    /// The pids of every process in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let mut cmd = self.command(None);
        cmd.args(["ps", "--format", "json", id]);
        let out = self.run(Verb::Ps, id, cmd)?;
        serde_json::from_slice(&out).map_err(|source| RrunError::Output {
            binary: self.binary.clone(),
            verb: "ps",
            id: id.to_string(),
            source,
        })
    }
}

/// The error rrun reported: the last error line of its JSON log, else its
/// stderr, else the exit status.
fn message(stderr: &[u8], log: Option<&Path>, code: i32) -> String {
    if let Some(msg) = log.and_then(last_logged_error) {
        return msg;
    }
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if !text.is_empty() {
        return text.lines().last().unwrap_or(text).to_string();
    }
    format!("exited with status {code}")
}

fn last_logged_error(log: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter(|l| l.level == "error" || l.level == "fatal")
        .map(|l| l.msg)
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrun(binary: &str) -> Rrun {
        Rrun {
            binary: binary.into(),
            root: "/nonexistent".into(),
        }
    }

    #[test]
    fn a_failing_command_names_binary_verb_and_id() {
        let err = rrun("/bin/false").start("c1").unwrap_err().to_string();
        assert_eq!(err, "/bin/false start c1: exited with status 1");
    }

    #[test]
    fn a_succeeding_command_is_ok() {
        rrun("/bin/true").pause("c1").unwrap();
    }

    #[test]
    fn a_missing_binary_is_named() {
        let err = rrun("/nonexistent/rrun")
            .start("c1")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("runtime binary /nonexistent/rrun: "),
            "{err}"
        );
    }

    #[test]
    fn the_logged_error_wins() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        std::fs::write(
            &log,
            "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"no such bundle\"}\n",
        )
        .unwrap();
        assert_eq!(message(b"ignored", Some(&log), 1), "no such bundle");
        assert_eq!(message(b"rrun: bad\n", None, 1), "rrun: bad");
    }
}
