//! The per-container state directory `<root>/<id>/`:
//!
//! - `state.json`: what later commands need (init pid and start time,
//!   bundle, the spec, the cgroup), written atomically;
//! - `exec.fifo`: exists while the container is `created`; `start` opens it
//!   to release the init, like runc.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::sys::signal::kill;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/PID/stat), to tell a
    /// recycled pid from our init.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub cgroup: Option<Cgroup>,
    /// Without a mount namespace: the mount id of the rootfs bind in the
    /// runtime's mount namespace, detached by delete (sharedmount.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_mount: Option<u64>,
    pub spec: Spec,
    /// Set by `start`, so a created container whose fifo is gone is running.
    #[serde(default)]
    pub started: bool,
}

/// A state file being written: see [`State::begin_save`].
pub struct PendingSave {
    file: fs::File,
    tmp: PathBuf,
}

impl PendingSave {
    /// Write `st` and put it in place of state.json.
    pub fn finish(self, st: &State) -> Result<()> {
        self.write(st)?.commit()
    }

    /// Write `st` into the temporary file; [`WrittenSave::commit`] puts it
    /// in place.
    pub fn write(mut self, st: &State) -> Result<WrittenSave> {
        let data = serde_json::to_vec(st).map_err(|e| Error::Config {
            path: self.tmp.clone(),
            msg: e.to_string(),
        })?;
        self.file
            .write_all(&data)
            .map_err(|e| Error::io(&self.tmp, e))?;
        Ok(WrittenSave { tmp: self.tmp })
    }
}

/// A state file written, not yet in place.
pub struct WrittenSave {
    tmp: PathBuf,
}

impl WrittenSave {
    /// Rename it over state.json.
    pub fn commit(self) -> Result<()> {
        let dest = self.tmp.with_file_name(STATE_FILE);
        fs::rename(&self.tmp, dest).map_err(|e| Error::io(&self.tmp, e))
    }
}

/// runc's `state` JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: String,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Start time of `pid`, or None if it is gone or a zombie (a zombie init is
/// a stopped container even if nobody reaped it).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = crate::fsutil::read_generated(format!("/proc/{pid}/stat"), 1024).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // after ')' the fields start at #3 (state); starttime is #22.
    fields.nth(18)?.parse().ok()
}

impl State {
    pub fn load(root: &Path, id: &str) -> Result<State> {
        validate_id(id)?;
        let path = container_dir(root, id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Config {
            path,
            msg: format!("corrupt state: {e}"),
        })
    }

    /// Load a container that has not stopped, with its status; a stopped
    /// one is refused with `msg`.
    pub fn load_live(root: &Path, id: &str, msg: &'static str) -> Result<(State, Status)> {
        let st = State::load(root, id)?;
        let status = st.status(root);
        if status == Status::Stopped {
            return Err(Error::BadStatus {
                id: id.into(),
                status: status.to_string(),
                msg,
            });
        }
        Ok((st, status))
    }

    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, root: &Path) -> Result<()> {
        State::begin_save(root, &self.id)?.finish(self)
    }

    /// The first half of [`State::save`]: create the temp file. Creating a
    /// file is most of a save's time on some filesystems (ext4 without a
    /// journal looks at every recently freed inode of the group first:
    /// about 0.8 ms here), so `create` does it while the init sets the
    /// container up, and writes the state once it is known.
    pub fn begin_save(root: &Path, id: &str) -> Result<PendingSave> {
        let tmp = container_dir(root, id).join(".state.json.tmp");
        let file = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(PendingSave { file, tmp })
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        container_dir(root, &self.id)
    }

    /// Remove the state directory. What it usually holds is removed by
    /// name (`remove_dir_all` lists it and looks at every entry first).
    pub fn remove_dir(&self, root: &Path) -> Result<()> {
        let dir = self.dir(root);
        let _ = fs::remove_file(dir.join(STATE_FILE));
        if !self.started {
            // `start` removes it
            let _ = fs::remove_file(dir.join(EXEC_FIFO));
        }
        match fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e)),
        }
    }

    pub fn init_alive(&self) -> bool {
        self.pid > 0 && process_start_time(self.pid) == Some(self.pid_start)
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.started && self.dir(root).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    pub fn oci(&self, root: &Path) -> OciState<'_> {
        let status = self.status(root);
        OciState {
            oci_version: self.spec.version(),
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.to_string(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: self.spec.annotations().as_ref().filter(|a| !a.is_empty()),
        }
    }

    /// Send `sig` to the init if it is still ours.
    pub fn signal_init(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        if !self.init_alive() {
            return Err(Error::BadStatus {
                id: self.id.clone(),
                status: Status::Stopped.to_string(),
                msg: "container not running",
            });
        }
        kill(Pid::from_raw(self.pid), sig)
            .map_err(|e| Error::sys(format!("kill {} {sig}", self.pid), e))
    }
}

/// RFC 3339 with nanoseconds in UTC, like runc's `created`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_like_runc() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("..").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("a b").is_err());
    }

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id() as i32;
        let a = process_start_time(me).unwrap();
        assert_eq!(Some(a), process_start_time(me));
        assert_eq!(process_start_time(i32::MAX), None);
    }
}
