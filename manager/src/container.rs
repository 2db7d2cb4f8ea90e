//! Containers: what `rbox create/run/start/stop/kill/rm/ps/inspect` do.
//!
//! A container is a bundle made from its image (bundle.rs: overlay rootfs
//! and config.json), adjusted for the command line (command, env, user,
//! mounts, network namespace, resources), a row in the store's database
//! (`container_meta`: name, what was asked, what happened), and, while it
//! runs, a network namespace with the CNI chain's attachment. The runtime
//! is rrun, through its runc CLI, with its state under ROOT/runtime.
//!
//! Every start goes through the container's own shim (supervisor.rs), so
//! rbox may exit while it runs; the shim calls back `rbox __exited ID` when
//! the init exits, which tears the network down, records the exit status
//! and applies `--rm` or the restart policy. Attached runs follow the
//! container's json-file log.

use std::collections::HashSet;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{
    Capability, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Spec, UserBuilder,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::bundle::{self, BundleError};
use crate::claim;
use crate::devices;
use crate::etcfiles;
use crate::hostports;
use crate::image::short_id;
use crate::mounts::{MountSpec, Source};
use crate::network::{self, Cni, NetNs, Network};
use crate::seccomp;
use crate::store::{Store, StoreError};
use crate::supervisor;
use crate::user;
use crate::usernet;
use cni_types::{NetConfList, PortMapping};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Net(#[from] network::NetError),
    #[error(transparent)]
    UserNet(#[from] usernet::UserNetError),
    #[error(transparent)]
    Device(#[from] devices::DeviceError),
    #[error("no such container: {0}")]
    NoSuch(String),
    #[error("{0} is ambiguous: several containers match")]
    Ambiguous(String),
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    BadName(String),
    #[error("container {0} is running: stop it first, or use -f")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{0}")]
    Invalid(String),
    #[error("exec failed: {0}")]
    ExecStart(String),
    #[error(transparent)]
    NotInstalled(#[from] crate::locate::NotInstalled),
    #[error("runtime {bin}: {what}")]
    Runtime { bin: String, what: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ContainerError>;

fn invalid_opt(e: seccomp::SeccompError) -> ContainerError {
    ContainerError::Invalid(e.to_string())
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io { op, path, source }
}

/// `--net`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetMode {
    Bridge,
    Host,
    None,
    /// A user-defined network (usernet.rs), by name.
    User(String),
    /// Another container's network namespace, by id (`container:NAME|ID`).
    Container(String),
}

impl NetMode {
    pub fn parse(s: &str) -> Result<NetMode> {
        match s {
            "bridge" | "default" | "rbox" => Ok(NetMode::Bridge),
            "host" => Ok(NetMode::Host),
            "none" => Ok(NetMode::None),
            other if other.starts_with("container:") => match &other["container:".len()..] {
                "" => Err(ContainerError::Invalid(format!(
                    "--net {other}: name the container, container:NAME|ID"
                ))),
                c => Ok(NetMode::Container(c.to_string())),
            },
            other if valid_name(other) || other.len() == 1 => Ok(NetMode::User(other.into())),
            other => Err(ContainerError::Invalid(format!(
                "--net {other:?}: not bridge, host, none, container:NAME or a network name"
            ))),
        }
    }

    /// Docker's `HostConfig.NetworkMode`.
    pub fn name(&self) -> String {
        match self {
            NetMode::Bridge => "bridge".into(),
            NetMode::Host => "host".into(),
            NetMode::None => "none".into(),
            NetMode::User(n) => n.clone(),
            NetMode::Container(id) => format!("container:{id}"),
        }
    }
}

/// What the command line asked for (kept with the container).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    pub image: String,
    pub name: Option<String>,
    /// Replaces the image's Cmd when not empty.
    pub cmd: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<MountSpec>,
    pub net: Option<NetMode>,
    pub rm: bool,
    pub read_only: bool,
    pub add_hosts: Vec<(String, IpAddr)>,
    pub dns: Vec<IpAddr>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--device HOST[:CTR[:PERMS]]`
    pub devices: Vec<devices::DeviceMapping>,
    /// `--device-cgroup-rule 'TYPE MAJOR:MINOR PERMS'`
    pub device_cgroup_rules: Vec<devices::CgroupRule>,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    /// no, always, unless-stopped, on-failure[:N] (empty: no)
    pub restart: String,
    /// `--log-opt`: max-size=…, max-file=…
    pub log_opts: Vec<String>,
    /// `-P`: the image's exposed ports on random host ports
    pub publish_all: bool,
    /// `--ulimit NAME=SOFT[:HARD]`
    pub ulimits: Vec<String>,
    /// `--security-opt`: seccomp=unconfined|PROFILE, no-new-privileges
    pub security_opt: Vec<String>,
    /// `--init`: rbox-init as PID 1
    pub init: bool,
    /// `--cgroup-parent` (or `RBOX_CGROUP_PARENT`), checked; `None`:
    /// bundle::DEFAULT_CGROUP_PARENT
    pub cgroup_parent: Option<String>,
    /// `--label KEY=VALUE`
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--group-add`: supplementary groups (names or numbers) of every
    /// process of the container
    pub group_add: Vec<String>,
    /// The image's command and labels with this spec's applied, set by
    /// `create` (none for containers made before it was kept)
    pub config: Option<crate::runconfig::RunConfig>,
}

impl RunSpec {
    /// The container's `linux.cgroupsPath` (absolute).
    pub fn cgroups_path(&self, id: &str) -> String {
        let parent = self.cgroup_parent.as_deref();
        bundle::cgroups_path(parent.unwrap_or(bundle::DEFAULT_CGROUP_PARENT), id)
    }
}

/// What happened to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    /// created, running, exited
    pub status: String,
    pub pid: i64,
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub netns: Option<PathBuf>,
    pub ip: Option<String>,
    pub prefix_len: Option<u8>,
    pub gateway: Option<String>,
    pub mac: Option<String>,
    /// The CNI result, for DEL.
    pub cni_result: Option<Value>,
    /// Published ports with their host ports resolved.
    pub ports: Vec<PortMapping>,
    /// Restarts by the restart policy so far.
    pub restart_count: u32,
    /// Stopped by the user (`stop`, `rm -f`): the restart policy does not apply.
    pub stopping: bool,
    /// The `rbox run` (or `start -a`) in the foreground, which removes a
    /// `--rm` container itself once it has its exit code.
    pub attached_pid: Option<i32>,
    /// The shim serving the running container: its pid and start time
    /// (/proc/PID/stat), so a killed shim is noticed ([`recover`]).
    pub shim: Option<supervisor::ShimPid>,
}

/// A container as the store knows it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub bundle: PathBuf,
    pub spec: RunSpec,
    pub state: RunState,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS container_meta (
    id TEXT PRIMARY KEY REFERENCES containers(id),
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,               -- RunSpec, JSON
    state TEXT NOT NULL               -- RunState, JSON
);
";

fn ensure_schema(store: &Store) -> Result<()> {
    store
        .db
        .execute_batch(SCHEMA)
        .map_err(|e| StoreError::from_db(store, e).into())
}

fn db_err(store: &Store) -> impl Fn(rusqlite::Error) -> ContainerError + '_ {
    move |e| StoreError::from_db(store, e).into()
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A Docker-like `adjective_scientist` name.
fn random_name() -> String {
    const A: [&str; 16] = [
        "brave",
        "calm",
        "eager",
        "fervent",
        "gallant",
        "happy",
        "jolly",
        "keen",
        "lucid",
        "modest",
        "nifty",
        "optimistic",
        "quirky",
        "serene",
        "tender",
        "vibrant",
    ];
    const B: [&str; 16] = [
        "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler", "lovelace", "meitner",
        "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
    ];
    let r = random_hex(2);
    let n = u16::from_str_radix(&r, 16).unwrap_or(0) as usize;
    format!("{}_{}", A[n % 16], B[(n / 16) % 16])
}

fn row_to_container(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, String, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

const SELECT: &str = "SELECT c.id, m.name, c.image_id, c.created, c.bundle, m.spec, m.state \
                      FROM containers c JOIN container_meta m ON m.id = c.id";

fn parse_row(
    (id, name, image_id, created, bundle, spec, state): (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    ),
) -> Container {
    Container {
        id,
        name,
        image_id,
        created,
        bundle: PathBuf::from(bundle),
        spec: serde_json::from_str(&spec).unwrap_or_default(),
        state: serde_json::from_str(&state).unwrap_or_default(),
    }
}

/// Every container, newest first.
pub fn list(store: &Store) -> Result<Vec<Container>> {
    ensure_schema(store)?;
    let mut stmt = store
        .db
        .prepare(&format!("{SELECT} ORDER BY c.created DESC"))
        .map_err(db_err(store))?;
    let rows = stmt
        .query_map([], row_to_container)
        .map_err(db_err(store))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err(store))?;
    Ok(rows.into_iter().map(parse_row).collect())
}

/// By name, full id or unique id prefix.
pub fn find(store: &Store, what: &str) -> Result<Container> {
    let all = list(store)?;
    let what_name = what.trim_start_matches('/');
    if let Some(c) = all.iter().find(|c| c.name == what_name || c.id == what) {
        return Ok(c.clone());
    }
    let by_prefix: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(what)).collect();
    match by_prefix.as_slice() {
        [c] if !what.is_empty() => Ok((*c).clone()),
        [] | [_] => Err(ContainerError::NoSuch(what.to_string())),
        _ => Err(ContainerError::Ambiguous(what.to_string())),
    }
}

fn save_state(store: &Store, id: &str, state: &RunState) -> Result<()> {
    let json = serde_json::to_string(state).expect("plain data");
    store
        .db
        .execute(
            "UPDATE container_meta SET state = ?1 WHERE id = ?2",
            rusqlite::params![json, id],
        )
        .map_err(db_err(store))?;
    Ok(())
}

/// The runtime binary: `$RBOX_RUNTIME`, else `rrun` next to rbox, else in PATH.
pub fn runtime_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RBOX_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join("rrun");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("rrun")
}

/// Where `--init` puts rbox-init in the container.
const INIT_PATH: &str = "/sbin/rbox-init";

/// `--init`'s binary: `$RBOX_INIT`, else `rbox-init` next to rbox, next to
/// the runtime, or in PATH (an absolute path: it is bind-mounted).
pub fn init_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RBOX_INIT") {
        return Ok(PathBuf::from(p));
    }
    let name = "rbox-init";
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let runtime_dir = fs::canonicalize(runtime_bin())
        .ok()
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(runtime_bin()))
                    .find(|p| p.is_file())
            })
        })
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    exe_dir
        .into_iter()
        .chain(runtime_dir)
        .chain(path_dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ContainerError::Invalid(format!(
                "--init: {name} not found next to rbox, next to the runtime, nor in PATH (or set RBOX_INIT)"
            ))
        })
}

/// rrun's state root: ROOT/runtime/<namespace>, where the shim (given
/// ROOT/runtime) puts it, like containerd's runc shim.
fn runtime(store: &Store) -> Command {
    let mut c = Command::new(runtime_bin());
    c.arg("--root")
        .arg(store.root().join("runtime").join(supervisor::NAMESPACE));
    c
}

/// The container's task deleted and its shim let go: by the shim, or, when
/// the shim cannot (killed after the init exited), through the runtime,
/// with whatever still works on the container killed first.
fn release_task(store: &Store, c: &Container) {
    if !supervisor::release(store, c) {
        supervisor::kill_workers_of(store, &c.id);
        delete_task(store, &c.id);
    }
}

/// `delete --force` through the runtime: the task killed and its state, its
/// cgroups and its mounts gone. A container being let go has no one left to
/// retry it, so a failure is said (with the runtime's words), not dropped.
fn delete_task(store: &Store, id: &str) {
    if let Err(e) = runtime_output(store, &["delete", "--force", id]) {
        eprintln!("rbox: warning: deleting the task of container {id}: {e}");
    }
}

/// Runs the runtime with `args`: its stdout, or its stderr as the error when
/// it fails.
fn runtime_output(store: &Store, args: &[&str]) -> Result<Vec<u8>> {
    let out = runtime(store)
        .args(args)
        .output()
        .map_err(io_err("run", &runtime_bin()))?;
    if !out.status.success() {
        return Err(ContainerError::Runtime {
            bin: runtime_bin().display().to_string(),
            what: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The runtime's view: `running`, `paused`, `stopped`, `created`, or None.
pub(crate) fn runtime_status(store: &Store, id: &str) -> Option<(String, i64)> {
    let out = runtime(store).args(["state", id]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["status"].as_str()?.to_string(),
        v["pid"].as_i64().unwrap_or(0),
    ))
}

/// The status shown to users: the stored one, corrected by the runtime
/// (a container whose rbox was killed is not "running" forever).
pub fn live_status(store: &Store, c: &Container) -> String {
    if c.state.status == "exiting" {
        return "exited".into();
    }
    if c.state.status == "running" {
        match runtime_status(store, &c.id) {
            Some((s, _)) if s == "running" || s == "paused" => return s,
            _ => return "exited".into(),
        }
    }
    c.state.status.clone()
}

/// What `--cap-add` names (`ALL`: every capability rbox may pass on).
fn added_caps(names: &[String]) -> Result<HashSet<Capability>> {
    let mut out = HashSet::new();
    for a in names {
        if a.eq_ignore_ascii_case("ALL") {
            out.extend(all_caps());
        } else {
            out.insert(cap(a)?);
        }
    }
    Ok(out)
}

fn cap(name: &str) -> Result<Capability> {
    let n = name.to_ascii_uppercase();
    let n = if n.starts_with("CAP_") {
        n
    } else {
        format!("CAP_{n}")
    };
    serde_json::from_value(json!(n))
        .map_err(|_| ContainerError::Invalid(format!("unknown capability {name:?}")))
}

/// The host's hard limit for open files: Docker's default of 1048576 is
/// clamped to it (raising a hard limit needs CAP_SYS_RESOURCE).
fn nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1024)
}

/// What `run` and `exec` may change of a process: `-e` (KEY=VALUE, or
/// KEY taken from rbox's environment), `-t` (and TERM), `-w`, `-u`
/// (names resolved in the container's /etc/passwd and /etc/group).
/// `group_add`: `--group-add`, applied to `-u`'s user, else to the
/// process's own.
fn override_process(
    process: &mut oci_spec::runtime::Process,
    vars: &[String],
    tty: bool,
    workdir: Option<&str>,
    usr: Option<&str>,
    group_add: &[String],
    rootfs: &Path,
) -> Result<()> {
    let mut env = process.env().clone().unwrap_or_default();
    for e in vars {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    process.set_env(Some(env));
    process.set_terminal(Some(tty));
    if let Some(w) = workdir {
        if !w.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "-w {w:?}: not an absolute path"
            )));
        }
        process.set_cwd(PathBuf::from(w));
    }
    if usr.is_none() && group_add.is_empty() {
        return Ok(());
    }
    // HOME is left to the runtime, which takes it from the container's
    // /etc/passwd for the process's uid (runc's rule, which Docker relies on)
    let group = bundle::read_in_root(rootfs, "etc/group")?;
    let mut eu = match usr {
        Some(u) => {
            let passwd = bundle::read_in_root(rootfs, "etc/passwd")?;
            user::resolve(u, passwd.as_deref(), group.as_deref())
                .map_err(|e| ContainerError::Invalid(format!("-u {u:?}: {e}")))?
        }
        None => user::ExecUser {
            uid: process.user().uid(),
            gid: process.user().gid(),
            additional_gids: process.user().additional_gids().clone().unwrap_or_default(),
            home: String::new(),
        },
    };
    eu.add_groups(group_add, group.as_deref())
        .map_err(|e| ContainerError::Invalid(e.to_string()))?;
    process.set_user(
        UserBuilder::default()
            .uid(eu.uid)
            .gid(eu.gid)
            .additional_gids(eu.additional_gids)
            .build()
            .map_err(|e| ContainerError::Invalid(format!("process.user: {e}")))?,
    );
    Ok(())
}

/// `--ulimit nofile=1024:2048` (Docker's names); a limit above the host's
/// hard limit is refused (raising it needs CAP_SYS_RESOURCE).
pub fn parse_ulimit(u: &str) -> Result<(PosixRlimitType, u64, u64)> {
    use nix::sys::resource::Resource;
    let bad = |why: &str| ContainerError::Invalid(format!("--ulimit {u:?}: {why}"));
    let (name, vals) = u
        .split_once('=')
        .ok_or_else(|| bad("not NAME=SOFT[:HARD]"))?;
    let (typ, res) = match name {
        "core" => (PosixRlimitType::RlimitCore, Resource::RLIMIT_CORE),
        "cpu" => (PosixRlimitType::RlimitCpu, Resource::RLIMIT_CPU),
        "data" => (PosixRlimitType::RlimitData, Resource::RLIMIT_DATA),
        "fsize" => (PosixRlimitType::RlimitFsize, Resource::RLIMIT_FSIZE),
        "locks" => (PosixRlimitType::RlimitLocks, Resource::RLIMIT_LOCKS),
        "memlock" => (PosixRlimitType::RlimitMemlock, Resource::RLIMIT_MEMLOCK),
        "msgqueue" => (PosixRlimitType::RlimitMsgqueue, Resource::RLIMIT_MSGQUEUE),
        "nice" => (PosixRlimitType::RlimitNice, Resource::RLIMIT_NICE),
        "nofile" => (PosixRlimitType::RlimitNofile, Resource::RLIMIT_NOFILE),
        "nproc" => (PosixRlimitType::RlimitNproc, Resource::RLIMIT_NPROC),
        "rss" => (PosixRlimitType::RlimitRss, Resource::RLIMIT_RSS),
        "rtprio" => (PosixRlimitType::RlimitRtprio, Resource::RLIMIT_RTPRIO),
        "sigpending" => (
            PosixRlimitType::RlimitSigpending,
            Resource::RLIMIT_SIGPENDING,
        ),
        "stack" => (PosixRlimitType::RlimitStack, Resource::RLIMIT_STACK),
        _ => return Err(bad("unknown limit name")),
    };
    let num = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            Ok(u64::MAX)
        } else {
            v.parse().map_err(|_| bad("not a number"))
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard limit"));
    }
    let host_hard = nix::sys::resource::getrlimit(res)
        .map(|(_, h)| h)
        .unwrap_or(u64::MAX);
    if hard > host_hard {
        return Err(bad(&format!(
            "the hard limit {hard} is above this host's {host_hard} (raising it needs CAP_SYS_RESOURCE)"
        )));
    }
    Ok((typ, soft, hard))
}

/// Adjust the image's config.json for what the command line asked.
fn adjust_spec(spec: &mut Spec, rs: &RunSpec, id: &str, cdir: &Path, rootfs: &Path) -> Result<()> {
    let invalid = |e: oci_spec::OciSpecError| ContainerError::Invalid(format!("config.json: {e}"));
    let mut process = spec.process().clone().unwrap_or_default();
    if let Some(ep) = &rs.entrypoint {
        let mut args = vec![ep.clone()];
        args.extend(rs.cmd.iter().cloned());
        process.set_args(Some(args));
    }
    let hostname = rs
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let mut env = process.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with("HOSTNAME="));
    env.insert(0, format!("HOSTNAME={hostname}"));
    process.set_env(Some(env));
    override_process(
        &mut process,
        &rs.env,
        rs.tty,
        rs.workdir.as_deref(),
        rs.user.as_deref(),
        &rs.group_add,
        rootfs,
    )?;
    // capabilities: the bounding set from the image's defaults and the
    // flags, the others by user (bundle::process_caps)
    if let Some(caps) = process.capabilities().clone() {
        let mut set: HashSet<Capability> = caps.bounding().clone().unwrap_or_default();
        if rs.privileged {
            set = all_caps();
        }
        let added = added_caps(&rs.cap_add)?;
        set.extend(added.iter().copied());
        for d in &rs.cap_drop {
            if d.eq_ignore_ascii_case("ALL") {
                set.clear();
            } else {
                set.remove(&cap(d)?);
            }
        }
        let uid = process.user().uid();
        process.set_capabilities(Some(
            bundle::process_caps(set, uid, &added).map_err(invalid)?,
        ));
    }
    let security = seccomp::parse_opts(&rs.security_opt).map_err(invalid_opt)?;
    // Docker's default: setuid programs work unless asked otherwise
    process.set_no_new_privileges(Some(security.no_new_privileges));
    let cap_names: HashSet<String> = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
        .collect();
    let seccomp_profile = match &security.seccomp {
        _ if rs.privileged => None,
        seccomp::Seccomp::Unconfined => None,
        seccomp::Seccomp::Default => Some(seccomp::default_profile(&cap_names)),
        seccomp::Seccomp::Profile(p) => {
            Some(seccomp::load_profile(p, &cap_names).map_err(invalid_opt)?)
        }
    };
    let hard = nofile_hard();
    let mut rlimits = vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(hard.min(1_048_576))
        .hard(hard.min(1_048_576))
        .build()
        .map_err(invalid)?];
    for u in &rs.ulimits {
        let (typ, soft, hard) = parse_ulimit(u)?;
        rlimits.retain(|r| r.typ() != typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(invalid)?,
        );
    }
    process.set_rlimits(Some(rlimits));
    let init_mount = if rs.init {
        let bin = init_bin()?;
        let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
        args.extend(process.args().clone().unwrap_or_default());
        process.set_args(Some(args));
        Some(
            MountBuilder::default()
                .destination(INIT_PATH)
                .typ("bind")
                .source(bin)
                .options(vec![
                    "bind".into(),
                    "ro".into(),
                    "nosuid".into(),
                    "nodev".into(),
                ])
                .build()
                .map_err(invalid)?,
        )
    } else {
        None
    };
    spec.set_process(Some(process));

    let host_net = rs.net == Some(NetMode::Host);
    spec.set_hostname(if host_net {
        None
    } else {
        Some(hostname.clone())
    });
    if let Some(root) = spec.root().clone() {
        let mut root = root;
        root.set_readonly(Some(rs.read_only));
        spec.set_root(Some(root));
    }

    // mounts: the image's defaults, then the user's, then the /etc files
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &rs.mounts {
        let mut options = vec!["rbind".to_string()];
        let (typ, source) = match &m.source {
            Source::Bind(p) => {
                // -v makes a missing host directory, like Docker; what
                // exists (a directory, a file, a device) is bound as it is
                if fs::metadata(p).is_err() {
                    fs::create_dir_all(p).map_err(io_err("create host directory", p))?;
                }
                ("bind", p.clone())
            }
            Source::Volume(name) => {
                let name = name.clone().unwrap_or_else(|| random_hex(32));
                let dir = volume_dir(cdir, &name);
                fs::create_dir_all(&dir).map_err(io_err("create volume", &dir))?;
                // Docker's copy-up: an empty volume gets what the image
                // has at the mount path
                let empty = fs::read_dir(&dir)
                    .map_err(io_err("read volume", &dir))?
                    .next()
                    .is_none();
                if empty {
                    crate::cp::copy_up(rootfs, &m.target, &dir)?;
                }
                ("bind", dir)
            }
            Source::Tmpfs { size, mode } => {
                options = vec!["nosuid".into(), "nodev".into()];
                if let Some(s) = size {
                    options.push(format!("size={s}"));
                }
                if let Some(md) = mode {
                    options.push(format!("mode={md:o}"));
                }
                ("tmpfs", PathBuf::from("tmpfs"))
            }
        };
        if m.readonly {
            options.push("ro".into());
        }
        if typ == "bind" {
            options.push(m.propagation.clone().unwrap_or_else(|| "rprivate".into()));
        }
        mounts.retain(|x| x.destination() != &m.target);
        mounts.push(
            MountBuilder::default()
                .destination(&m.target)
                .typ(typ)
                .source(source)
                .options(options)
                .build()
                .map_err(invalid)?,
        );
    }
    mounts.extend(init_mount);
    // --net container:ID shares that container's files
    let etc_dir = match &rs.net {
        Some(NetMode::Container(target)) => cdir.with_file_name(target),
        _ => cdir.to_path_buf(),
    };
    for f in ["hosts", "hostname", "resolv.conf"] {
        let dest = PathBuf::from("/etc").join(f);
        if rs.mounts.iter().any(|m| m.target == dest) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(etc_dir.join(f))
                .options(vec!["rbind".into(), "rprivate".into()])
                .build()
                .map_err(invalid)?,
        );
    }
    spec.set_mounts(Some(mounts));

    if let Some(mut linux) = spec.linux().clone() {
        let mut ns = linux.namespaces().clone().unwrap_or_default();
        if host_net {
            ns.retain(|n| {
                n.typ() != LinuxNamespaceType::Network && n.typ() != LinuxNamespaceType::Uts
            });
        }
        linux.set_namespaces(Some(ns));
        if rs.privileged {
            linux.set_masked_paths(None);
            linux.set_readonly_paths(None);
        }
        linux.set_seccomp(seccomp_profile);
        linux.set_cgroups_path(Some(rs.cgroups_path(id).into()));
        let mut res = linux.resources().clone().unwrap_or_default();
        if let Some(m) = rs.memory {
            res.set_memory(Some(
                LinuxMemoryBuilder::default()
                    .limit(m)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        if let Some(p) = rs.pids_limit {
            res.set_pids(Some(
                LinuxPidsBuilder::default()
                    .limit(p)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        if let Some(c) = rs.cpus {
            res.set_cpu(Some(
                LinuxCpuBuilder::default()
                    .quota((c * 100_000.0) as i64)
                    .period(100_000u64)
                    .build()
                    .map_err(invalid)?,
            ));
        }
        // devices: Docker's rules (bundle.rs), then what the flags add
        let mut rules = res.devices().clone().unwrap_or_else(devices::default_rules);
        let mut nodes = linux.devices().clone().unwrap_or_default();
        if rs.privileged {
            nodes.extend(devices::host_devices()?);
            rules.push(devices::allow_all());
        }
        for m in &rs.devices {
            let (d, r) = m.resolve()?;
            nodes.extend(d);
            rules.extend(r);
        }
        rules.extend(
            rs.device_cgroup_rules
                .iter()
                .map(devices::CgroupRule::to_oci),
        );
        // one node per path: the last one asked for
        let mut seen = HashSet::new();
        nodes.reverse();
        nodes.retain(|d| seen.insert(d.path().clone()));
        nodes.reverse();
        res.set_devices(Some(rules));
        linux.set_resources(Some(res));
        linux.set_devices((!nodes.is_empty()).then_some(nodes));
        spec.set_linux(Some(linux));
    }
    Ok(())
}

/// Named volumes live under ROOT/volumes/NAME/_data (like Docker's).
pub(crate) fn volume_dir(cdir: &Path, name: &str) -> PathBuf {
    // cdir is ROOT/containers/<id>
    let root = cdir.parent().and_then(Path::parent).unwrap_or(cdir);
    root.join("volumes").join(name).join("_data")
}

pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability rbox itself may pass on (ALL_CAPS is in the kernel's
/// numbering; one outside rbox's bounding set would make capset fail).
fn all_caps() -> HashSet<Capability> {
    let bounding = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .filter_map(|(_, c)| serde_json::from_value(json!(c)).ok())
        .collect()
}

fn write_config(path: &Path, spec: &Spec) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(spec).expect("a spec serializes");
    fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// `rbox create`: bundle, adjusted config.json and records; nothing runs
/// yet. On error nothing is left.
pub fn create(store: &Store, rs: &RunSpec) -> Result<Container> {
    check_before_create(rs)?;
    ensure_schema(store)?;
    // what a killed rbox left (it may hold the name asked for)
    reconcile(store)?;
    if rs.net == Some(NetMode::Host) || rs.net == Some(NetMode::None) {
        if let Some(p) = rs.ports.first() {
            return Err(ContainerError::Invalid(format!(
                "-p {}: published ports need the bridge network, not --net {}",
                p,
                rs.net.as_ref().map_or(String::new(), NetMode::name)
            )));
        }
    }
    let mut rs = rs.clone();
    match rs.net.clone() {
        Some(NetMode::User(n)) => {
            rs.net = Some(NetMode::User(usernet::find(store, &n)?.name));
        }
        Some(NetMode::Container(t)) => {
            let conflict = |what: &str| {
                Err(ContainerError::Invalid(format!(
                    "conflicting options: {what} and the container type network mode (--net container:{t})"
                )))
            };
            if !rs.ports.is_empty() || rs.publish_all {
                return conflict("port publishing");
            }
            if rs.hostname.is_some() {
                return conflict("hostname");
            }
            if !rs.dns.is_empty() {
                return conflict("dns");
            }
            if !rs.add_hosts.is_empty() {
                return conflict("custom host-to-IP mapping (--add-host)");
            }
            let target = find(store, &t).map_err(|e| match e {
                ContainerError::NoSuch(_) => {
                    ContainerError::Invalid(format!("--net container:{t}: no such container"))
                }
                e => e,
            })?;
            if let Some(NetMode::Container(_)) = target.spec.net {
                return Err(ContainerError::Invalid(format!(
                    "--net container:{t}: {} shares another container's network itself",
                    target.name
                )));
            }
            // the target's hostname, like Docker (none for --net host)
            let h = bundle::container_dir(store, &target.id).join("hostname");
            let hostname = fs::read_to_string(&h).map_err(io_err("read", &h))?;
            rs.hostname = Some(hostname.trim().to_string()).filter(|h| !h.is_empty());
            rs.net = Some(NetMode::Container(target.id));
        }
        _ => {}
    }
    let missing = crate::host::missing_controllers(
        Path::new(crate::host::CGROUP_ROOT),
        rs.memory.is_some(),
        rs.cpus.is_some(),
        rs.pids_limit.is_some(),
    );
    if let Some((controller, flag)) = missing.first() {
        return Err(ContainerError::Invalid(format!(
            "{flag} needs the cgroup {controller} controller, which this host does not have (see rbox info)"
        )));
    }
    if matches!(
        rs.net,
        None | Some(NetMode::Bridge) | Some(NetMode::User(_))
    ) {
        Cni::new(network::plugin_dirs()).check_installed()?;
    }
    let name = match &rs.name {
        Some(n) if !valid_name(n) => return Err(ContainerError::BadName(n.clone())),
        Some(n) => n.clone(),
        None => loop {
            let n = random_name();
            if find(store, &n).is_err() {
                break n;
            }
        },
    };
    if list(store)?.iter().any(|c| c.name == name) {
        return Err(ContainerError::NameInUse(name));
    }
    if rs.publish_all {
        for p in exposed_ports(store, &rs.image)? {
            if !rs
                .ports
                .iter()
                .any(|q| q.container_port == p.container_port && q.protocol == p.protocol)
            {
                rs.ports.push(p);
            }
        }
    }
    // Docker's Config.Entrypoint/Cmd/Labels (inspect, ps), from the image
    let image_config = crate::image::inspect(store, &rs.image).map_err(BundleError::from)?;
    rs.config = Some(crate::runconfig::RunConfig::new(
        &image_config["Config"],
        rs.entrypoint.as_deref(),
        &rs.cmd,
        &rs.labels,
    ));
    // anonymous volumes are named now and kept with the container
    for m in &mut rs.mounts {
        if m.source == Source::Volume(None) {
            m.source = Source::Volume(Some(random_hex(32)));
            m.anonymous = true;
        }
    }
    let id = random_hex(32);
    let cdir = bundle::container_dir(store, &id);
    let bdir = cdir.join("bundle");
    // held until the container is started (or `settle`d by `rbox create`)
    let held = claim::take(store, &id).map_err(io_err("claim", &claim_dir(store)))?;
    claim::hold(&id, held);
    let args = if rs.entrypoint.is_some() {
        Vec::new()
    } else {
        rs.cmd.clone()
    };
    match bundle::create(store, &rs.image, &id, &bdir, &args, rs.rm) {
        Ok(image_volumes) => add_image_volumes(&mut rs, image_volumes),
        Err(e) => {
            claim::release(&id);
            return Err(e.into());
        }
    }
    let rs = &rs;
    let made = (|| -> Result<Container> {
        let config = bdir.join("config.json");
        let text = fs::read(&config).map_err(io_err("read", &config))?;
        let mut spec: Spec = serde_json::from_slice(&text)
            .map_err(|e| ContainerError::Invalid(format!("{}: {e}", config.display())))?;
        adjust_spec(&mut spec, rs, &id, &cdir, &bdir.join("rootfs"))?;
        let hostname = spec.hostname().clone().unwrap_or_default();
        fs::write(cdir.join("hostname"), format!("{hostname}\n"))
            .map_err(io_err("write", &cdir.join("hostname")))?;
        for f in ["hosts", "resolv.conf"] {
            fs::write(cdir.join(f), "").map_err(io_err("write", &cdir.join(f)))?;
        }
        write_config(&config, &spec)?;
        let state = RunState {
            status: "created".into(),
            ..Default::default()
        };
        let inserted = store.db.execute(
            "INSERT INTO container_meta (id, name, spec, state) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                id,
                name,
                serde_json::to_string(rs).expect("plain data"),
                serde_json::to_string(&state).expect("plain data")
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(ContainerError::NameInUse(name.clone()));
            }
            Err(e) => return Err(db_err(store)(e)),
        }
        find(store, &id)
    })();
    if made.is_err() {
        let _ = bundle::remove(store, &id);
        remove_anonymous_volumes(store, rs);
        claim::release(&id);
    }
    made
}

/// Docker's smallest memory limit: less cannot even start a process.
pub const MIN_MEMORY: i64 = 6 << 20;

/// What can be refused before anything is made: a memory limit below
/// Docker's minimum, a `--mount type=bind` source that does not exist.
fn check_before_create(rs: &RunSpec) -> Result<()> {
    if let Some(m) = rs.memory {
        if m < MIN_MEMORY {
            return Err(ContainerError::Invalid(format!(
                "--memory {m}: Minimum memory limit allowed is 6MB"
            )));
        }
    }
    for m in &rs.mounts {
        if let Source::Bind(p) = &m.source {
            if m.must_exist && fs::metadata(p).is_err() {
                return Err(ContainerError::Invalid(format!(
                    "--mount type=bind,source={},target={}: invalid mount config for type \"bind\": bind source path does not exist: {}",
                    p.display(),
                    m.target.display(),
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// Docker's image volumes: each VOLUME path no mount of the user's has as
/// its destination gets an anonymous volume, mounted before the mounts
/// below it.
fn add_image_volumes(rs: &mut RunSpec, paths: Vec<PathBuf>) {
    for target in paths {
        if rs.mounts.iter().any(|m| m.target == target) {
            continue;
        }
        let below = rs.mounts.iter().position(|m| m.target.starts_with(&target));
        let m = MountSpec {
            source: Source::Volume(Some(random_hex(32))),
            target,
            readonly: false,
            propagation: None,
            anonymous: true,
            must_exist: false,
        };
        rs.mounts.insert(below.unwrap_or(rs.mounts.len()), m);
    }
}

/// The container's anonymous volumes (`rm -v`, `--rm`, a failed create).
pub fn remove_anonymous_volumes(store: &Store, rs: &RunSpec) {
    for m in rs.mounts.iter().filter(|m| m.anonymous) {
        if let Source::Volume(Some(name)) = &m.source {
            let _ = volume_remove(store, name, true);
        }
    }
}

fn claim_dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

/// A created container is complete: `rbox create` is done with it.
pub fn settle(id: &str) {
    claim::release(id);
}

/// Finishes what killed rbox processes left half-done: a container being
/// made (bundle, network, shim) or removed goes, with whatever of it
/// exists. Images, volumes and the other containers are not touched.
pub fn reconcile(store: &Store) -> Result<()> {
    for (id, held) in claim::abandoned(store) {
        let Some(id) = id else {
            drop(held);
            continue;
        };
        let done = match find(store, &id) {
            Ok(c) if c.id == id => {
                if c.state.status == "created" {
                    // a start under way when its rbox died: the shim (its
                    // Create perhaps still waiting on the runtime, which
                    // would hold up a Delete) goes first
                    supervisor::kill_workers_of(store, &id);
                }
                remove(store, &id, true)
            }
            Ok(_) | Err(ContainerError::NoSuch(_)) => {
                // the bundle without its record: no network or task yet
                supervisor::kill_workers_of(store, &id);
                match bundle::remove(store, &id) {
                    Ok(()) | Err(BundleError::NoSuchContainer(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        // what is left of it stays listed for `rm -f`
        if let Err(e) = done {
            eprintln!("rbox: warning: cleaning up container {id}: {e}");
        }
        drop(held);
    }
    Ok(())
}

/// `-P`: the image's `ExposedPorts` (`80/tcp`), each on a random host port.
fn exposed_ports(store: &Store, image: &str) -> Result<Vec<PortMapping>> {
    let cfg = crate::image::inspect(store, image)
        .map_err(|e| ContainerError::Invalid(format!("image {image}: {e}")))?;
    let mut out = Vec::new();
    if let Some(ports) = cfg["Config"]["ExposedPorts"].as_object() {
        for key in ports.keys() {
            let p = network::parse_port(key).map_err(|e| {
                ContainerError::Invalid(format!("image {image}: ExposedPorts {key:?}: {e}"))
            })?;
            out.push(p);
        }
    }
    Ok(out)
}

/// A start's network, prepared (namespace made with `lo` up, host ports
/// reserved, config.json pointing at the namespace); the CNI ADD, which
/// needs no store, can then run while the shim creates the container.
struct NetPlan {
    mode: NetMode,
    /// the CNI chain to ADD, if any (bridge and user networks)
    add: Option<(Cni, NetConfList, NetNs)>,
    ports: Vec<PortMapping>,
}

impl NetPlan {
    /// The CNI ADD (none for --net none/host/container:).
    fn attach(&self, id: &str) -> Option<network::Result<network::Attachment>> {
        self.add
            .as_ref()
            .map(|(cni, conflist, ns)| cni.attach(conflist, id, ns, &self.ports))
    }
}

/// The network for a start, before the CNI ADD: the namespace (recorded
/// in `state`, so a failure tears it down), the host ports taken.
fn plan_network(store: &Store, c: &Container, state: &mut RunState) -> Result<NetPlan> {
    let mode = c.spec.net.clone().unwrap_or(NetMode::Bridge);
    let mut plan = NetPlan {
        mode: mode.clone(),
        add: None,
        ports: Vec::new(),
    };
    match &mode {
        NetMode::Host => return Ok(plan),
        NetMode::Container(target) => {
            join_network_of(store, c, target)?;
            return Ok(plan);
        }
        _ => {}
    }
    let conflist = match &mode {
        NetMode::User(n) => Some(usernet::find(store, n)?.conflist(store)),
        NetMode::Bridge => Some(default_conflist()),
        _ => None,
    };
    let mut ports = c.spec.ports.clone();
    // taken host ports: by a socket of the host (port 0 picks a free one)
    network::reserve_host_ports(&mut ports)?;
    let cni = Cni::new(network::plugin_dirs());
    if conflist.is_some() {
        cni.check_installed()?;
    }
    // or by another container: checked and claimed under one host-wide
    // lock, so of concurrent starts publishing a port exactly one wins
    let claims = if ports.is_empty() {
        None
    } else {
        let lock = hostports::lock()?;
        lock.check(&ports, &c.id, &c.name)?;
        Some(lock)
    };
    let ns = NetNs::create(&format!("rbox-{}", short_id(&c.id)))?;
    state.netns = Some(ns.path.clone());
    if let Some(lock) = claims {
        lock.claim(&ports, &c.id, &ns.path)?;
    }
    set_netns_path(c, &ns.path)?;
    plan.ports = ports;
    plan.add = conflist.map(|conflist| (cni, conflist, ns));
    Ok(plan)
}

/// After the ADD: the attachment recorded, the container's /etc files.
fn finish_network(
    store: &Store,
    c: &Container,
    state: &mut RunState,
    plan: NetPlan,
    attached: Option<network::Attachment>,
) -> Result<()> {
    let cdir = bundle::container_dir(store, &c.id);
    if let NetMode::Container(_) = &plan.mode {
        // its /etc files are the target's
        return Ok(());
    }
    let own_ip = attached.as_ref().map(|a| a.ip.addr());
    if let Some(a) = attached {
        state.ip = Some(a.ip.addr().to_string());
        state.prefix_len = Some(a.ip.prefix_len());
        state.gateway = a.gateway.map(|g| g.to_string());
        state.mac = Some(a.mac.clone());
        state.cni_result = Some(a.result);
        state.ports = plan.ports;
    }
    let hostname = fs::read_to_string(cdir.join("hostname")).unwrap_or_default();
    let hosts = etcfiles::hosts(
        hostname.trim(),
        own_ip,
        &[c.name.as_str()],
        &c.spec.add_hosts,
    );
    fs::write(cdir.join("hosts"), hosts).map_err(io_err("write", &cdir.join("hosts")))?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = etcfiles::resolv_conf(&host_resolv, &c.spec.dns, plan.mode == NetMode::Host);
    fs::write(cdir.join("resolv.conf"), resolv)
        .map_err(io_err("write", &cdir.join("resolv.conf")))?;
    Ok(())
}

/// The network namespace path goes into config.json.
fn set_netns_path(c: &Container, path: &Path) -> Result<()> {
    let config = c.bundle.join("config.json");
    let text = fs::read(&config).map_err(io_err("read", &config))?;
    let mut spec: Spec = serde_json::from_slice(&text)
        .map_err(|e| ContainerError::Invalid(format!("{}: {e}", config.display())))?;
    if let Some(mut linux) = spec.linux().clone() {
        let mut nss = linux.namespaces().clone().unwrap_or_default();
        for n in nss.iter_mut() {
            if n.typ() == LinuxNamespaceType::Network {
                n.set_path(Some(path.to_path_buf()));
            }
        }
        linux.set_namespaces(Some(nss));
        spec.set_linux(Some(linux));
    }
    write_config(&config, &spec)
}

/// `--net container:ID`: the running target's network namespace (its
/// /run/netns file, or its init's for `--net host`); the container keeps
/// no namespace of its own to tear down, and shares the target's /etc
/// files (bind-mounted from the target's directory).
fn join_network_of(store: &Store, c: &Container, target: &str) -> Result<()> {
    let t = find(store, target).map_err(|e| match e {
        ContainerError::NoSuch(_) => ContainerError::Invalid(format!(
            "cannot join the network of container {target}: it was removed"
        )),
        e => e,
    })?;
    let pid = match runtime_status(store, &t.id) {
        Some((s, pid)) if s == "running" && t.state.status == "running" => pid,
        _ => {
            return Err(ContainerError::Invalid(format!(
                "cannot join the network of container {}: it is not running",
                t.name
            )))
        }
    };
    let path = t
        .state
        .netns
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/net")));
    set_netns_path(c, &path)
}

/// Rewrites (in place: they are bind-mounted) the /etc/hosts of every
/// running container of user network `name`: each names the others by
/// container name and short id. One rewrite at a time (the network's
/// lock), from the records as they are once the lock is held, so the last
/// one sees every container that joined or left before it.
fn refresh_network_hosts(store: &Store, name: &str) -> Result<()> {
    let net = match usernet::find(store, name) {
        Ok(n) => n,
        Err(usernet::UserNetError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let _lock = usernet::hosts_lock(store, &net)?;
    let members: Vec<(Container, IpAddr)> = list(store)?
        .into_iter()
        .filter(|c| c.state.status == "running" && usernet::uses(c, &net.name))
        .filter_map(|c| {
            let ip = c.state.ip.as_deref()?.parse().ok()?;
            Some((c, ip))
        })
        .collect();
    for (c, ip) in &members {
        let cdir = bundle::container_dir(store, &c.id);
        let hostname = fs::read_to_string(cdir.join("hostname")).unwrap_or_default();
        let mut hosts = etcfiles::hosts(hostname.trim(), Some(*ip), &[&c.name], &c.spec.add_hosts);
        let peers: Vec<(IpAddr, &str, &str)> = members
            .iter()
            .filter(|(o, _)| o.id != c.id)
            .map(|(o, oip)| (*oip, o.name.as_str(), short_id(&o.id)))
            .collect();
        hosts.push_str(&etcfiles::peers(&peers));
        let path = cdir.join("hosts");
        fs::write(&path, hosts).map_err(io_err("write", &path))?;
    }
    Ok(())
}

/// After a container of a user network started or stopped.
fn refresh_hosts_of(store: &Store, c: &Container) -> Result<()> {
    match &c.spec.net {
        Some(NetMode::User(n)) => refresh_network_hosts(store, n),
        _ => Ok(()),
    }
}

/// The default bridge network's conflist. host-local keeps its leases in
/// its default data dir, shared by every rbox root on the host: the
/// bridge and its subnet are the host's, not the store's.
pub fn default_conflist() -> NetConfList {
    Network::default_bridge().conflist(Path::new("/var/lib/cni/networks"))
}

/// The part of a network teardown that needs no store (CNI DEL, the
/// namespace removed), so it can run on a thread of its own.
struct NetTeardown {
    ns: NetNs,
    /// the chain to DEL: none for --net none, or when no ADD ran
    del: Option<NetConfList>,
    id: String,
    ports: Vec<PortMapping>,
    prev: Option<Value>,
}

impl NetTeardown {
    fn run(self) -> Result<()> {
        let mut result = Ok(());
        // the namespace takes the container's veth end, and so the pair,
        // with it (our bridge plugin leaves it): gone when we return
        let veths = self
            .prev
            .as_ref()
            .map(network::host_veths)
            .unwrap_or_default();
        // with our plugins the namespace goes first: the kernel starts
        // destroying it (and the veth pair in it) at once, while the
        // plugins run; they find it gone and leave the veth to the kernel.
        // Others (the reference bridge) need it for their DEL.
        let cni = Cni::new(network::plugin_dirs());
        let ns_first = self
            .del
            .as_ref()
            .is_none_or(|conflist| cni.deletes_without_netns(conflist));
        let removed = if ns_first {
            Some(self.ns.remove())
        } else {
            None
        };
        if let Some(conflist) = &self.del {
            result = cni.detach(
                conflist,
                &self.id,
                &self.ns,
                &self.ports,
                self.prev.as_ref(),
                matches!(removed, Some(Ok(()))),
            );
        }
        removed.unwrap_or_else(|| self.ns.remove())?;
        // its host ports are free for others now
        hostports::release(&self.id)?;
        network::wait_gone(&veths, std::time::Duration::from_secs(2));
        result.map_err(Into::into)
    }
}

/// What undoing a start's network takes (None: nothing to undo); the
/// namespace is forgotten in `state`.
fn net_teardown(store: &Store, c: &Container, state: &mut RunState) -> Option<NetTeardown> {
    // a namespace not recorded: the rbox that made it was killed
    let made = NetNs::path_for(&format!("rbox-{}", short_id(&c.id)));
    let path = state
        .netns
        .take()
        .or_else(|| made.exists().then_some(made))?;
    let conflist = match c.spec.net.clone().unwrap_or(NetMode::Bridge) {
        NetMode::Bridge => Some(default_conflist()),
        NetMode::User(n) => usernet::find(store, &n).ok().map(|n| n.conflist(store)),
        _ => None,
    };
    // an ADD was run if it was recorded, or if the namespace is mounted
    // (rbox killed during the ADD); not if it was killed before the mount
    // (a teardown removes the namespace before its DEL)
    let added = state.cni_result.is_some()
        || nix::sys::statfs::statfs(&path)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    Some(NetTeardown {
        ns: NetNs { path },
        del: conflist.filter(|_| added),
        id: c.id.clone(),
        ports: state.ports.clone(),
        prev: state.cni_result.clone(),
    })
}

/// Undo a start's network (idempotent): CNI DEL, namespace removed.
fn teardown_network(store: &Store, c: &Container, state: &mut RunState) -> Result<()> {
    net_teardown(store, c, state).map_or(Ok(()), NetTeardown::run)
}

/// Whether a container is to run again after its init exited with `code`.
fn restarts(rs: &RunSpec, state: &RunState, code: i32) -> bool {
    if state.stopping {
        return false;
    }
    match rs
        .restart
        .split_once(':')
        .unwrap_or((rs.restart.as_str(), ""))
    {
        ("always" | "unless-stopped", _) => true,
        ("on-failure", max) => {
            code != 0 && max.parse::<u32>().map_or(true, |m| state.restart_count < m)
        }
        _ => false,
    }
}

/// Checks a `--restart` value: no, always, unless-stopped, on-failure[:N].
pub fn parse_restart(s: &str) -> Result<String> {
    let ok = match s.split_once(':') {
        None => matches!(s, "no" | "always" | "unless-stopped" | "on-failure"),
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        _ => false,
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(ContainerError::Invalid(format!(
            "--restart {s:?}: not no, always, unless-stopped or on-failure[:N]"
        )))
    }
}

/// `rbox start` (and `run`): the network, then the container under its
/// own shim; rbox can exit while it runs.
pub fn start(store: &Store, what: &str) -> Result<Container> {
    start_inner(store, what, false)
}

fn start_inner(store: &Store, what: &str, attached: bool) -> Result<Container> {
    let c = find(store, what)?;
    let status = live_status(store, &c);
    if status == "running" || status == "paused" {
        return Err(ContainerError::Invalid(format!(
            "container {} is already running",
            c.name
        )));
    }
    let mut state = c.state.clone();
    if state.netns.is_some() || state.status == "running" || state.status == "exiting" {
        // what an earlier run left (its rbox or shim killed)
        let _ = supervisor::release(store, &c);
        delete_task(store, &c.id);
        let _ = teardown_network(store, &c, &mut state);
    }
    let started = start_task(store, &c, &mut state, attached);
    if let Err(e) = started {
        // a runtime left at work by a killed shim would make the
        // container after the delete below
        supervisor::kill_workers_of(store, &c.id);
        let _ = teardown_network(store, &c, &mut state);
        // what a runtime killed half-way through its create left: its
        // state dir, and the cgroups, perhaps with processes in them
        delete_task(store, &c.id);
        crate::cgroups::remove(&c.spec.cgroups_path(&c.id));
        state.status = "created".into();
        let _ = save_state(store, &c.id, &state);
        let _ = refresh_hosts_of(store, &c);
        // back to what `create` made, as Docker leaves the container of a
        // failed `run` created (--rm: removed)
        if c.spec.rm {
            let _ = remove(store, &c.id, true);
        }
        claim::release(&c.id);
        return Err(e);
    }
    claim::release(&c.id);
    Ok(c)
}

/// The network and the task: the CNI ADD runs while the shim creates the
/// container (the network is there before its process starts). On error
/// the shim is gone; the network is the caller's to tear down.
fn start_task(store: &Store, c: &Container, state: &mut RunState, attached: bool) -> Result<()> {
    let plan = plan_network(store, c, state)?;
    let (attachment, shim) = std::thread::scope(|s| {
        let add = s.spawn(|| plan.attach(&c.id));
        let shim = supervisor::create(store, c, attached);
        (add.join().expect("the CNI thread does not panic"), shim)
    });
    let shim = shim?;
    state.shim = supervisor::ShimPid::of_client(&shim);
    let started = attachment
        .transpose()
        .map_err(ContainerError::from)
        .and_then(|a| finish_network(store, c, state, plan, a))
        .and_then(|()| {
            state.status = "running".into();
            state.started_at = Some(chrono::Utc::now().to_rfc3339());
            state.finished_at = None;
            state.stopping = false;
            state.attached_pid = attached.then(|| std::process::id() as i32);
            save_state(store, &c.id, state)
        })
        .and_then(|()| refresh_hosts_of(store, c))
        // from here on the shim's exit hook (`exited`) owns the state
        .and_then(|()| supervisor::start(&shim).map(drop));
    if started.is_err() {
        supervisor::abandon(shim);
    }
    started
}

/// The shim's exit hook (`rbox __exited ID`, run once the init exited):
/// the task and the shim go, the network is torn down, the exit status
/// recorded; then the restart policy or `--rm`.
pub fn exited(store: &Store, id: &str, code: i32) -> Result<()> {
    let c = match find(store, id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    // an attached `run --rm` tears it down and removes it itself: wait
    // until it has (or has gone without: killed, or its stdout closed)
    let me = std::process::id() as i32;
    let (c, _owner) = if c.spec.rm && c.state.attached_pid.is_some_and(|p| p != me) {
        let Some(owner) = await_attached_run(store.root(), id) else {
            return Ok(());
        };
        match find(store, id) {
            Ok(c) => (c, Some(owner)),
            Err(ContainerError::NoSuch(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    } else {
        (c, None)
    };
    let mut state = c.state.clone();
    let was_running = state.status == "running" || state.status == "exiting";
    if state.status == "running" {
        // whoever waits for the exit (stop, rm -f) now waits for the hook
        state.status = "exiting".into();
        save_state(store, &c.id, &state)?;
    }
    release_task(store, &c);
    let net = teardown_network(store, &c, &mut state);
    // `rbox stop` may have marked it meanwhile
    state.stopping |= find(store, id).is_ok_and(|now| now.state.stopping);
    if was_running {
        state.status = "exited".into();
        state.exit_code = code;
        state.finished_at = Some(chrono::Utc::now().to_rfc3339());
    }
    save_state(store, &c.id, &state)?;
    // the others of its network forget it (best effort: the exit is recorded)
    let _ = refresh_hosts_of(store, &c);
    if restarts(&c.spec, &state, code) {
        state.restart_count += 1;
        save_state(store, &c.id, &state)?;
        // Docker's back-off: 100 ms, doubling, at most a minute
        let delay = 100u64 << state.restart_count.min(10);
        std::thread::sleep(std::time::Duration::from_millis(delay.min(60_000)));
        // `rbox stop` or `rm` may have come meanwhile
        match find(store, id) {
            Ok(now) if !now.state.stopping && now.state.status == "exited" => {
                start(store, id)?;
            }
            _ => {}
        }
        return net;
    }
    if c.spec.rm {
        remove(store, &c.id, true)?;
    }
    net
}

/// Whether another rbox process runs the container in the foreground.
fn attached_elsewhere(state: &RunState) -> bool {
    state.attached_pid.is_some_and(|pid| {
        pid != std::process::id() as i32
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    })
}

/// The lock an attached `run --rm` holds on its container's directory
/// (ROOT/containers/ID) for as long as it answers for the container: from
/// before the start until the container is removed, or until it leaves
/// (killed, or its stdout's reader gone). None: the directory is gone.
fn attached_run_lock(root: &Path, id: &str) -> Option<fs::File> {
    let dir = root.join("containers").join(id);
    let f = fs::File::open(dir).ok()?;
    claim::lock(&f, true).ok()?;
    Some(f)
}

/// For the exit hook of a container an attached `run --rm` answers for:
/// waits until that rbox is done. Some (the lock, to hold while finishing
/// the container) if the container is still there: the rbox left it.
pub fn await_attached_run(root: &Path, id: &str) -> Option<fs::File> {
    let lock = attached_run_lock(root, id)?;
    // removed meanwhile: the directory went with it
    root.join("containers").join(id).exists().then_some(lock)
}

/// A container recorded as running whose shim is gone (killed): what
/// containerd does when a shim dies. The container is killed and deleted
/// through the runtime, its exit recorded as 137 (SIGKILL), its network torn
/// down, and its restart policy (or `--rm`) applied, as the exit hook would
/// have. Only one rbox does it (the one whose `running` to `exiting` change
/// lands); the exit code, if this one did.
fn recover(store: &Store, c: &Container) -> Result<Option<i32>> {
    let mut exiting = c.state.clone();
    exiting.status = "exiting".into();
    let json = serde_json::to_string(&exiting).expect("plain data");
    let shim_pid = c.state.shim.map(|s| s.pid);
    let changed = store
        .db
        .execute(
            "UPDATE container_meta SET state = ?1 WHERE id = ?2 \
             AND json_extract(state, '$.status') = 'running' \
             AND json_extract(state, '$.shim.pid') IS ?3",
            rusqlite::params![json, c.id, shim_pid],
        )
        .map_err(db_err(store))?;
    if changed != 1 {
        return Ok(None);
    }
    let code = 128 + libc::SIGKILL;
    let _ = runtime(store).args(["kill", &c.id, "KILL"]).output();
    delete_task(store, &c.id);
    exited(store, &c.id, code)?;
    Ok(Some(code))
}

/// Finds the containers whose shim was killed and does what their exit hook
/// would have done ([`recover`]): run by every rbox command. Containers
/// another rbox is at work on (a claim) are left to it, and so is one an
/// attached `run --rm` follows (its wait on the shim fails, and it recovers
/// the container itself).
pub fn recover_orphans(store: &Store) -> Result<()> {
    ensure_schema(store)?;
    for c in list(store)? {
        if c.state.status != "running"
            || claim::exists(store, &c.id)
            || (c.spec.rm && attached_elsewhere(&c.state))
            || !supervisor::shim_gone(store, &c)
        {
            continue;
        }
        if let Err(e) = recover(store, &c) {
            eprintln!("rbox: warning: container {} lost its shim: {e}", c.name);
        }
    }
    Ok(())
}

/// Waits until the exit hook has recorded the exit (or `--rm` removed the
/// container); if the shim is gone (killed), does the hook's work itself
/// ([`recover`]) and returns the exit code it recorded.
fn wait_exited(store: &Store, id: &str, limit: std::time::Duration) -> Result<Option<i32>> {
    let begin = std::time::Instant::now();
    loop {
        let c = match find(store, id) {
            Ok(c) => c,
            Err(ContainerError::NoSuch(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match c.state.status.as_str() {
            // nobody will run the hook: the shim was killed
            "running" if supervisor::shim_gone(store, &c) => {
                if let Some(code) = recover(store, &c)? {
                    return Ok(Some(code));
                }
            }
            "running" => {}
            // another rbox recovers it and waits for us, the attached run
            // --rm that answers for it (see `exited`): we finish it
            "exiting"
                if c.spec.rm
                    && c.state.attached_pid == Some(std::process::id() as i32)
                    && supervisor::shim_gone(store, &c) =>
            {
                return exited(store, id, 128 + libc::SIGKILL).map(|()| Some(128 + libc::SIGKILL));
            }
            // the hook is at work; should it have been killed, finish its work
            "exiting" if begin.elapsed() > std::time::Duration::from_secs(20) => {
                return exited(store, id, c.state.exit_code).map(|()| None);
            }
            "exiting" => {}
            _ => return Ok(None),
        }
        if begin.elapsed() >= limit && c.state.status == "running" {
            return Err(ContainerError::Invalid(format!(
                "container {} did not stop",
                c.name
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Puts the terminal in raw mode while it lives.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn new(on: bool) -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !on || !nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false) {
            return RawTerminal(None);
        }
        let Ok(old) = tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = old.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        // also restored should rbox end on a closed stdout
        crate::stdio::restore_terminal_on_exit(Some(old.clone()));
        RawTerminal(Some(old))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            crate::stdio::restore_terminal_on_exit(None);
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &old,
            );
        }
    }
}

/// The size of rbox's terminal, if stdin is one.
fn terminal_size() -> Option<(u32, u32)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer.
    let rc = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some((ws.ws_col.into(), ws.ws_row.into()))
}

/// Copies rbox's stdin into a process's stdin FIFO until EOF (then the
/// process reads EOF too). Not joined: stdin may never end.
fn copy_stdin_to(fifo: PathBuf) {
    std::thread::spawn(move || {
        if let Ok(mut w) = fs::OpenOptions::new().write(true).open(&fifo) {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        }
    });
}

/// A signal for a process: forwarded (INT, TERM, …) unless it has a
/// terminal, where ^C is a byte on stdin; a terminal's resizes follow.
fn forward_signals(
    client: &shim::client::ShimClient,
    exec_id: &str,
    tty: bool,
    s: nix::sys::signal::Signal,
) {
    if s == nix::sys::signal::Signal::SIGWINCH {
        if let Some((w, h)) = terminal_size() {
            let _ = client.resize_pty(exec_id, w, h);
        }
    } else if !tty {
        let _ = client.kill(exec_id, s as u32, false);
    }
}

/// The signals an attached process takes from rbox: INT, TERM, HUP and
/// QUIT with `proxy` (Docker's `--sig-proxy`), WINCH with a terminal.
fn handled_signals(tty: bool, proxy: bool) -> Vec<nix::sys::signal::Signal> {
    let mut v = Vec::new();
    if proxy {
        v.extend(crate::signals::FORWARDED);
    }
    if tty {
        v.push(nix::sys::signal::Signal::SIGWINCH);
    }
    v
}

/// Run a created (or exited) container in the foreground: its output (the
/// log, as it grows) on rbox's stdout and stderr, rbox's stdin into its
/// stdin with `-i`, signals forwarded with `sig_proxy` (Ctrl-C stops the
/// container, not rbox). Returns the exit code once the container is
/// cleaned up (and removed, with `--rm`).
pub fn run_attached(store: &Store, what: &str, sig_proxy: bool) -> Result<i32> {
    let c = find(store, what)?;
    // from now on, before any thread starts: a signal waits for the
    // forwarder (it goes to the container once it runs)
    crate::signals::block(&handled_signals(c.spec.tty, sig_proxy));
    // the exit hook of a --rm container waits for us (see `exited`)
    let owner = if c.spec.rm {
        let dir = bundle::container_dir(store, &c.id);
        Some(
            attached_run_lock(store.root(), &c.id).ok_or_else(|| ContainerError::Io {
                op: "lock",
                path: dir.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?,
        )
    } else {
        None
    };
    let offset = log_end(store, &c);
    let raw = RawTerminal::new(c.spec.tty);
    let c = start_inner(store, &c.id, true)?;
    let code = follow_until_exit(store, &c, offset, c.spec.rm, sig_proxy);
    drop(raw);
    drop(owner);
    code
}

/// `rbox attach`: the running container's output from now on (and its
/// stdin with `-i`), signals forwarded, until it exits; its exit code.
pub fn attach(store: &Store, what: &str) -> Result<i32> {
    let c = find(store, what)?;
    crate::signals::block(&handled_signals(c.spec.tty, true));
    let status = live_status(store, &c);
    if status != "running" && status != "paused" {
        return Err(ContainerError::Invalid(format!(
            "cannot attach to container {}: it is {status}, start it first",
            c.name
        )));
    }
    let offset = log_end(store, &c);
    let raw = RawTerminal::new(c.spec.tty);
    let code = follow_until_exit(store, &c, offset, false, true);
    drop(raw);
    code
}

/// Where the container's log ends now: output after it is new.
fn log_end(store: &Store, c: &Container) -> u64 {
    let log = supervisor::log_path(store, &c.id);
    fs::metadata(&log).map(|m| m.len()).unwrap_or(0)
}

/// The output of an attached run once its stdout's reader has gone (`rbox
/// run … | head -1`). Until the container's exit is in hand rbox ends at
/// once, quietly, as Docker's CLI does: the container runs on and its exit
/// hook records the exit (and, for `--rm`, removes it: the hook waits for
/// this process, see `exited`). After that rbox finishes the container
/// first, and then ends the same way.
#[derive(Default)]
struct Output {
    /// the exit is in hand: no leaving half-way from here
    finishing: std::sync::Mutex<bool>,
    /// stdout's reader has gone
    closed: std::sync::atomic::AtomicBool,
}

impl Output {
    /// Called by the follower when stdout turns out to be closed.
    fn closed(&self) {
        let finishing = self.finishing.lock().unwrap_or_else(|e| e.into_inner());
        if !*finishing {
            // with the lock held: the waiting thread cannot start finishing
            crate::stdio::exit_closed();
        }
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Called once the exit is in hand.
    fn finish(&self) {
        *self.finishing.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Prints the log from `offset` (stdin copied in with `-i`, the terminal
/// size passed on with `-t`, signals to rbox forwarded with `proxy`) until
/// the container's init exits and its exit hook has run; the exit code.
fn follow_until_exit(
    store: &Store,
    c: &Container,
    offset: u64,
    remove_after: bool,
    proxy: bool,
) -> Result<i32> {
    let log = supervisor::log_path(store, &c.id);
    let waiter = supervisor::connect(store, c);
    if let Some(client) = &waiter {
        if c.spec.tty {
            if let Some((w, h)) = terminal_size() {
                let _ = client.resize_pty("", w, h);
            }
        }
        if c.spec.interactive {
            copy_stdin_to(supervisor::stdin_fifo(store, &c.id));
        }
    }
    let output = std::sync::Arc::new(Output::default());
    // dropped when the init has exited: the follower reads the rest at once
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let out = output.clone();
    let follower = std::thread::spawn(move || {
        follow_to_end(
            &log,
            offset,
            |poll| {
                matches!(
                    stopped.recv_timeout(poll),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                )
            },
            &out,
        )
    });
    let mut waited_code = None;
    if let Some(client) = waiter {
        // the same connection: the wait blocks this thread only
        let signaller = client.share();
        let tty = c.spec.tty;
        waited_code = crate::signals::forwarding(
            &handled_signals(tty, proxy),
            move |s| forward_signals(&signaller, "", tty, s),
            // ends when the init exits, or fails if the hook was quicker
            // (or the shim was killed)
            || client.wait(""),
        )
        .ok();
    }
    output.finish();
    let drain = move || {
        drop(stop);
        let _ = follower.join();
    };
    let mut recovered = None;
    let claim = match waited_code {
        // the exit hook leaves an attached `run --rm` to us
        Some(code) if remove_after => finish_attached_rm(store, &c.id, code as i32, drain)?,
        // the hook has recorded the exit code (and torn the network down),
        // or, its shim killed, the container is recovered here
        _ => {
            let waited = wait_exited(store, &c.id, std::time::Duration::from_secs(30));
            drain();
            recovered = waited?;
            None
        }
    };
    // the record, unless the hook removed the container (--rm)
    let code = find(store, &c.id).map_or(
        recovered.unwrap_or(waited_code.map_or(0, |c| c as i32)),
        |c| c.state.exit_code,
    );
    if remove_after {
        match claim {
            Some((_claim, net)) => discard(store, &c.id).and(net)?,
            None => match remove(store, &c.id, true) {
                Ok(()) | Err(ContainerError::NoSuch(_)) => {}
                Err(e) => return Err(e),
            },
        }
    }
    if output.is_closed() {
        crate::stdio::exit_closed();
    }
    Ok(code)
}

/// The exit of an attached `run --rm` container, handled by its own rbox
/// instead of the exit hook: claimed (a killed rbox leaves the rest to the
/// next one), marked exiting (others wait), then at once the network torn
/// down, the task deleted with its shim (whose Delete returns once the
/// output is copied out), the output `drain`ed and the bundle's files
/// removed. The records stay for [`discard`]; returns the claim and how the
/// network teardown went.
fn finish_attached_rm(
    store: &Store,
    id: &str,
    code: i32,
    drain: impl FnOnce(),
) -> Result<Option<(claim::Claim, Result<()>)>> {
    let held = claim::take(store, id).map_err(io_err("claim", &claim_dir(store)))?;
    let c = find(store, id)?;
    let mut state = c.state.clone();
    state.status = "exiting".into();
    state.exit_code = code;
    state.finished_at = Some(chrono::Utc::now().to_rfc3339());
    // saved with the network still in it (a killed rbox leaves the next one
    // something to tear down), while the teardown already runs: the claim
    // keeps every other rbox away meanwhile
    let exiting = state.clone();
    let teardown = net_teardown(store, &c, &mut state);
    let net = std::thread::scope(|s| {
        let t = s.spawn(|| teardown.map_or(Ok(()), NetTeardown::run));
        if let Err(e) = save_state(store, id, &exiting) {
            let _ = t.join();
            return Err(e);
        }
        release_task(store, &c);
        drain();
        // an error is found again (and reported) by `discard`
        let _ = bundle::remove_files(store, id);
        Ok(t.join().expect("the teardown thread does not panic"))
    })?;
    save_state(store, id, &state)?;
    Ok(Some((held, net)))
}

/// Prints log entries from `offset` as they come, raw, to stdout/stderr;
/// a closed stdout is handed to `output` (nothing is printed after it).
fn follow_to_end(
    log: &Path,
    offset: u64,
    wait: impl FnMut(std::time::Duration) -> bool,
    output: &Output,
) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    crate::logs::follow(log, offset, wait, |e| {
        if output.is_closed() {
            return;
        }
        if e.stream == "stderr" {
            let _ = err.write_all(e.log.as_bytes());
        } else if let Err(e) = out.write_all(e.log.as_bytes()).and_then(|()| out.flush()) {
            if crate::stdio::closed(&e) {
                output.closed();
            }
        }
    });
}

/// What `rbox exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// `rbox exec`: a process in a running container, with the container's
/// environment, user, capabilities and limits unless overridden. Returns
/// its exit code (0 at once with `-d`).
pub fn exec(store: &Store, what: &str, es: &ExecSpec) -> Result<i32> {
    if !es.detach {
        // before any thread starts: signals wait for the forwarder
        crate::signals::block(&handled_signals(es.tty, true));
    }
    let c = find(store, what)?;
    // a record that says running is trusted here (asking the runtime costs
    // a process per exec): if the exec fails, the runtime is asked why
    if c.state.status != "running" {
        return Err(exec_refused(store, &c).unwrap_or(ContainerError::NotRunning(c.name)));
    }
    let config = c.bundle.join("config.json");
    let text = fs::read(&config).map_err(io_err("read", &config))?;
    let spec: Spec = serde_json::from_slice(&text)
        .map_err(|e| ContainerError::Invalid(format!("{}: {e}", config.display())))?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(es.cmd.clone()));
    override_process(
        &mut process,
        &es.env,
        es.tty,
        es.workdir.as_deref(),
        es.user.as_deref(),
        // the container's --group-add, for -u's user (config.json's process has them)
        if es.user.is_some() {
            &c.spec.group_add
        } else {
            &[]
        },
        &c.bundle.join("rootfs"),
    )?;
    // the sets follow the exec's user (root gets the bounding set, another
    // user only what --cap-add asked), --privileged widens the bounding set
    if let Some(caps) = process.capabilities().clone() {
        let bounding = match es.privileged {
            true => all_caps(),
            false => caps.bounding().clone().unwrap_or_default(),
        };
        let added = added_caps(&c.spec.cap_add)?;
        let uid = process.user().uid();
        process.set_capabilities(Some(
            bundle::process_caps(bounding, uid, &added)
                .map_err(|e| ContainerError::Invalid(format!("config.json: {e}")))?,
        ));
    }
    let exec_id = format!("exec-{}", random_hex(8));
    let cdir = bundle::container_dir(store, &c.id);
    let fifo = |s: &str| cdir.join(format!("{exec_id}.{s}"));
    let mut io = shim::client::ProcessIo {
        terminal: es.tty,
        ..Default::default()
    };
    let mut made = Vec::new();
    if !es.detach {
        io.stdout = Some(fifo("out"));
        if !es.tty {
            io.stderr = Some(fifo("err"));
        }
        if es.interactive {
            io.stdin = Some(fifo("in"));
        }
        for p in [&io.stdin, &io.stdout, &io.stderr].into_iter().flatten() {
            supervisor::mkfifo(p)?;
            made.push(p.clone());
        }
    }
    let cleanup = |made: &[PathBuf]| made.iter().for_each(|p| drop(fs::remove_file(p)));
    // the readers first: open non-blocking, so without waiting for the shim
    let open_reader = |p: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)
            .map_err(io_err("open", p))
    };
    let readers = (|| -> Result<Vec<(fs::File, bool)>> {
        let mut v = Vec::new();
        if let Some(p) = &io.stdout {
            v.push((open_reader(p)?, false));
        }
        if let Some(p) = &io.stderr {
            v.push((open_reader(p)?, true));
        }
        Ok(v)
    })();
    let readers = match readers {
        Ok(r) => r,
        Err(e) => {
            cleanup(&made);
            return Err(e);
        }
    };
    let client = match supervisor::exec(store, &c, &exec_id, &process, &io) {
        Ok(client) => client,
        Err(e) => {
            cleanup(&made);
            return Err(exec_refused(store, &c).unwrap_or(e));
        }
    };
    if let Err(e) = client.start_process(&exec_id) {
        let _ = client.delete(&exec_id);
        cleanup(&made);
        let msg = match e {
            shim::client::ClientError::Rpc { msg, .. } => msg,
            e => e.to_string(),
        };
        return Err(exec_refused(store, &c).unwrap_or(ContainerError::ExecStart(msg)));
    }
    if es.detach {
        return Ok(0);
    }
    let raw = RawTerminal::new(es.tty);
    if es.tty {
        if let Some((w, h)) = terminal_size() {
            let _ = client.resize_pty(&exec_id, w, h);
        }
    }
    if let Some(p) = io.stdin.clone() {
        copy_stdin_to(p);
    }
    // the shim has the FIFOs open now: blocking reads until it closes them
    let copies: Vec<_> = readers
        .into_iter()
        .map(|(f, is_err)| {
            let _ = nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            );
            let fifos = made.clone();
            std::thread::spawn(move || {
                let mut f = f;
                if is_err {
                    let _ = std::io::copy(&mut f, &mut std::io::stderr());
                } else {
                    let mut out = std::io::stdout();
                    let mut buf = [0u8; 32 * 1024];
                    loop {
                        match std::io::Read::read(&mut f, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                use std::io::Write;
                                match out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                                    Ok(()) => {}
                                    // the reader went away (`exec … | head -1`):
                                    // like Docker's CLI, rbox ends; the process
                                    // runs on, its output to a FIFO nobody reads
                                    Err(e) if crate::stdio::closed(&e) => {
                                        fifos.iter().for_each(|p| drop(fs::remove_file(p)));
                                        crate::stdio::exit_closed();
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // one connection: the wait blocks this thread, signals go from another
    let waiter = client.share();
    let (eid, tty) = (exec_id.clone(), es.tty);
    let status = crate::signals::forwarding(
        &handled_signals(es.tty, true),
        move |s| forward_signals(&client, &eid, tty, s),
        || waiter.wait(&exec_id),
    );
    for t in copies {
        let _ = t.join();
    }
    drop(raw);
    let _ = waiter.delete(&exec_id);
    cleanup(&made);
    match status {
        Ok(code) => Ok(code as i32),
        Err(e) => Err(supervisor::map_err(e)),
    }
}

/// Why an exec into `c` cannot run, asked of the runtime: paused, or not
/// running at all; `None` if it is running (the failure was the exec's own).
fn exec_refused(store: &Store, c: &Container) -> Option<ContainerError> {
    match live_status(store, c).as_str() {
        "running" => None,
        "paused" => Some(ContainerError::Invalid(format!(
            "container {} is paused, unpause it first",
            c.name
        ))),
        _ => Some(ContainerError::NotRunning(c.name.clone())),
    }
}

/// `rbox kill`: a signal to a running container.
pub fn kill(store: &Store, what: &str, signal: &str) -> Result<()> {
    let c = find(store, what)?;
    if live_status(store, &c) != "running" {
        return Err(ContainerError::NotRunning(c.name));
    }
    runtime_output(store, &["kill", &c.id, signal])?;
    Ok(())
}

/// Marks a container as stopped by the user: no restart policy applies.
fn mark_stopping(store: &Store, c: &Container) -> Result<()> {
    let mut state = c.state.clone();
    state.stopping = true;
    save_state(store, &c.id, &state)
}

/// `rbox stop [-t N]`: SIGTERM, then SIGKILL after `timeout`; returns once
/// it has stopped and its exit is recorded (network gone, `--rm` done).
pub fn stop(store: &Store, what: &str, timeout: std::time::Duration) -> Result<()> {
    let c = find(store, what)?;
    if !c.spec.restart.is_empty() && c.spec.restart != "no" {
        // also between two runs of a restart policy
        mark_stopping(store, &c)?;
    }
    if live_status(store, &c) != "running" {
        if c.state.status == "running" {
            // the shim was killed: finish what its hook would have done
            return wait_exited(store, &c.id, std::time::Duration::from_secs(10)).map(drop);
        }
        return Ok(());
    }
    mark_stopping(store, &c)?;
    let _ = kill(store, &c.id, "TERM");
    match wait_exited(store, &c.id, timeout) {
        Ok(_) => Ok(()),
        Err(_) => {
            let _ = kill(store, &c.id, "KILL");
            wait_exited(store, &c.id, std::time::Duration::from_secs(10)).map(drop)
        }
    }
}

/// `rbox restart`: stop, then start again.
pub fn restart(store: &Store, what: &str, timeout: std::time::Duration) -> Result<()> {
    stop(store, what, timeout)?;
    start(store, what).map(drop)
}

/// `rbox wait`: blocks until the container stops; its exit code.
pub fn wait(store: &Store, what: &str) -> Result<i32> {
    let c = find(store, what)?;
    loop {
        match find(store, &c.id) {
            Ok(now) if now.state.status == "running" => {
                let status = live_status(store, &now);
                // stopped, or its shim killed meanwhile (then recovered)
                if (status != "running" && status != "paused") || supervisor::shim_gone(store, &now)
                {
                    wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
                }
            }
            Ok(now) => return Ok(now.state.exit_code),
            Err(ContainerError::NoSuch(_)) => return Ok(0),
            Err(e) => return Err(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `rbox rm [-f]`: everything of the container goes (bundle, network,
/// records, anonymous volumes).
pub fn remove(store: &Store, what: &str, force: bool) -> Result<()> {
    let c = find(store, what)?;
    // should this rbox be killed half-way, the next one finishes
    let _claim = if claim::held(&c.id) {
        None
    } else {
        let claim = claim::take(store, &c.id).map_err(io_err("claim", &claim_dir(store)))?;
        Some(claim::hold_scoped(&c.id, claim))
    };
    if c.state.status == "exiting" {
        // the exit hook is tearing it down: not twice at once
        wait_exited(store, &c.id, std::time::Duration::from_secs(30))?;
    }
    let c = match find(store, &c.id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let status = live_status(store, &c);
    if status == "running" || status == "paused" {
        if !force {
            return Err(ContainerError::Running(c.name));
        }
        mark_stopping(store, &c)?;
        let _ = runtime(store).args(["kill", &c.id, "KILL"]).output();
        // the exit hook records the exit (and with --rm removes it)
        wait_exited(store, &c.id, std::time::Duration::from_secs(10))?;
    }
    let c = match find(store, &c.id) {
        Ok(c) => c,
        Err(ContainerError::NoSuch(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let _ = supervisor::release(store, &c);
    // a shim left by a run killed during its Create, a runtime left by a
    // killed shim
    supervisor::kill_workers_of(store, &c.id);
    delete_task(store, &c.id);
    discard(store, &c.id)
}

/// Removes a container whose task and shim are gone: its network, record,
/// bundle and (with `--rm`) anonymous volumes.
fn discard(store: &Store, id: &str) -> Result<()> {
    let c = find(store, id)?;
    let mut state = c.state.clone();
    let net = teardown_network(store, &c, &mut state);
    // left only by a runtime killed during its create (rrun delete removes it)
    crate::cgroups::remove(&c.spec.cgroups_path(&c.id));
    // the row that references the bundle's first
    store
        .db
        .execute("DELETE FROM container_meta WHERE id = ?1", [&c.id])
        .map_err(db_err(store))?;
    bundle::remove(store, &c.id)?;
    if c.spec.rm {
        // like Docker's --rm: the anonymous volumes go with the container
        remove_anonymous_volumes(store, &c.spec);
    }
    net
}

/// `docker inspect`'s shape for a container.
pub fn inspect(store: &Store, c: &Container) -> Value {
    let status = live_status(store, c);
    let ports: serde_json::Map<String, Value> = c
        .state
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol.as_str()),
                json!([{"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                        "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    let ip = c.state.ip.clone().unwrap_or_default();
    let mode = c.spec.net.clone().unwrap_or(NetMode::Bridge);
    let mut networks = serde_json::Map::new();
    let network_id = match &mode {
        NetMode::User(n) => usernet::find(store, n).map(|n| n.id).unwrap_or_default(),
        m => usernet::predefined_id(&m.name()),
    };
    if !matches!(mode, NetMode::Container(_)) {
        networks.insert(
            mode.name(),
            json!({"NetworkID": network_id, "IPAddress": ip,
                   "IPPrefixLen": c.state.prefix_len.unwrap_or(0),
                   "Gateway": c.state.gateway.clone().unwrap_or_default(),
                   "MacAddress": c.state.mac.clone().unwrap_or_default()}),
        );
    }
    // like Docker, the top-level address is the default network's only
    let (ip, prefix_len, gateway, mac) = if mode == NetMode::Bridge {
        (
            ip,
            c.state.prefix_len.unwrap_or(0),
            c.state.gateway.clone().unwrap_or_default(),
            c.state.mac.clone().unwrap_or_default(),
        )
    } else {
        (String::new(), 0, String::new(), String::new())
    };
    let config = c
        .spec
        .config
        .clone()
        .unwrap_or_else(|| crate::runconfig::RunConfig {
            entrypoint: c.spec.entrypoint.iter().cloned().collect(),
            cmd: c.spec.cmd.clone(),
            labels: c.spec.labels.clone(),
        });
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": config.path(),
        "Args": config.args(),
        "Name": format!("/{}", c.name),
        "RestartCount": c.state.restart_count,
        "LogPath": supervisor::log_path(store, &c.id),
        "Image": format!("sha256:{}", crate::store::hex(&c.image_id)),
        "State": {
            "Status": status,
            "Running": status == "running",
            "Paused": status == "paused",
            "Pid": if status == "running" { runtime_status(store, &c.id).map_or(0, |s| s.1) } else { 0 },
            "ExitCode": c.state.exit_code,
            "StartedAt": c.state.started_at.clone().unwrap_or_default(),
            "FinishedAt": c.state.finished_at.clone().unwrap_or_default(),
        },
        "Config": {
            "Image": c.spec.image,
            "Cmd": if config.cmd.is_empty() { Value::Null } else { json!(config.cmd) },
            "Entrypoint": if config.entrypoint.is_empty() { Value::Null } else { json!(config.entrypoint) },
            "Labels": config.labels,
            "Env": c.spec.env,
            "Tty": c.spec.tty,
            "OpenStdin": c.spec.interactive,
            "WorkingDir": c.spec.workdir.clone().unwrap_or_default(),
            "User": c.spec.user.clone().unwrap_or_default(),
            "Hostname": c.spec.hostname.clone().unwrap_or_else(|| c.id.chars().take(12).collect()),
        },
        "HostConfig": {
            "NetworkMode": mode.name(),
            "AutoRemove": c.spec.rm,
            "RestartPolicy": {"Name": if c.spec.restart.is_empty() { "no" } else { c.spec.restart.split(':').next().unwrap_or("no") },
                              "MaximumRetryCount": c.spec.restart.split_once(':').and_then(|(_, n)| n.parse::<u32>().ok()).unwrap_or(0)},
            "LogConfig": {"Type": "json-file", "Config": c.spec.log_opts.iter().filter_map(|o| o.split_once('=')).collect::<std::collections::BTreeMap<_, _>>()},
            "ReadonlyRootfs": c.spec.read_only,
            "Privileged": c.spec.privileged,
            "CapAdd": c.spec.cap_add,
            "CapDrop": c.spec.cap_drop,
            "Devices": c.spec.devices.iter().map(|d| json!({
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.cgroup_permissions,
            })).collect::<Vec<_>>(),
            "DeviceCgroupRules": if c.spec.device_cgroup_rules.is_empty() { Value::Null } else { json!(c.spec.device_cgroup_rules.iter().map(ToString::to_string).collect::<Vec<_>>()) },
            "Memory": c.spec.memory.unwrap_or(0),
            "PidsLimit": c.spec.pids_limit.unwrap_or(0),
            "Init": c.spec.init,
            "CgroupParent": c.spec.cgroup_parent.clone().unwrap_or_default(),
            "GroupAdd": if c.spec.group_add.is_empty() { Value::Null } else { json!(c.spec.group_add) },
            "SecurityOpt": if c.spec.security_opt.is_empty() { Value::Null } else { json!(c.spec.security_opt) },
        },
        "Mounts": c.spec.mounts.iter().map(|m| {
            let (typ, src, name) = match &m.source {
                Source::Bind(p) => ("bind", p.display().to_string(), None),
                Source::Volume(n) => ("volume", String::new(), n.clone()),
                Source::Tmpfs { .. } => ("tmpfs", String::new(), None),
            };
            json!({"Type": typ, "Source": src, "Name": name, "Destination": m.target, "RW": !m.readonly})
        }).collect::<Vec<_>>(),
        "NetworkSettings": {
            "IPAddress": ip,
            "IPPrefixLen": prefix_len,
            "Gateway": gateway,
            "MacAddress": mac,
            "Ports": ports,
            "Networks": networks,
            "SandboxKey": c.state.netns.clone().map(|p| p.display().to_string()).unwrap_or_default(),
        },
    })
}

/// `rbox pause` / `unpause`: the cgroup freezer, through rrun.
pub fn pause(store: &Store, what: &str, pause: bool) -> Result<()> {
    let c = find(store, what)?;
    let status = live_status(store, &c);
    match (pause, status.as_str()) {
        (true, "running") | (false, "paused") => {}
        (true, "paused") => {
            return Err(ContainerError::Invalid(format!(
                "container {} is already paused",
                c.name
            )))
        }
        (false, "running") => {
            return Err(ContainerError::Invalid(format!(
                "container {} is not paused",
                c.name
            )))
        }
        _ => return Err(ContainerError::NotRunning(c.name)),
    }
    runtime_output(store, &[if pause { "pause" } else { "resume" }, &c.id])?;
    Ok(())
}

/// `rbox rename OLD NEW`.
pub fn rename(store: &Store, what: &str, new: &str) -> Result<()> {
    let c = find(store, what)?;
    if !valid_name(new) {
        return Err(ContainerError::BadName(new.to_string()));
    }
    match store.db.execute(
        "UPDATE container_meta SET name = ?1 WHERE id = ?2",
        rusqlite::params![new, c.id],
    ) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(ContainerError::NameInUse(new.to_string()))
        }
        Err(e) => Err(db_err(store)(e)),
    }
}

/// The processes of a running container: (pid, user id, command line).
pub fn top(store: &Store, what: &str) -> Result<Vec<(i32, u32, String)>> {
    let c = find(store, what)?;
    if live_status(store, &c) != "running" && live_status(store, &c) != "paused" {
        return Err(ContainerError::NotRunning(c.name));
    }
    let out = runtime_output(store, &["ps", "--format", "json", &c.id])?;
    let pids: Vec<i32> = serde_json::from_slice(&out).unwrap_or_default();
    Ok(pids
        .into_iter()
        .map(|pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|&x| x == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let uid = fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|l| l.split_whitespace().next().and_then(|u| u.parse().ok()))
                })
                .unwrap_or(0);
            (pid, uid, cmd)
        })
        .collect())
}

/// `rbox container prune`: every stopped container; their names.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    reconcile(store)?;
    let mut removed = Vec::new();
    for c in list(store)? {
        let status = live_status(store, &c);
        if status == "exited" || status == "created" {
            remove(store, &c.id, false)?;
            removed.push(c.id);
        }
    }
    Ok(removed)
}

/// Named volumes (ROOT/volumes/NAME/_data): name and where the data is.
pub fn volumes(store: &Store) -> Result<Vec<(String, PathBuf)>> {
    let dir = store.root().join("volumes");
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.path().join("_data")));
        }
    }
    out.sort();
    Ok(out)
}

fn volume_path(store: &Store, name: &str) -> PathBuf {
    store.root().join("volumes").join(name).join("_data")
}

/// `rbox volume create [NAME]`: the name (random if none).
pub fn volume_create(store: &Store, name: Option<&str>) -> Result<String> {
    let name = name.map(String::from).unwrap_or_else(|| random_hex(32));
    if !valid_name(&name) {
        return Err(ContainerError::Invalid(format!(
            "invalid volume name {name:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+"
        )));
    }
    let p = volume_path(store, &name);
    fs::create_dir_all(&p).map_err(io_err("create volume", &p))?;
    Ok(name)
}

/// The containers that use volume `name`.
fn volume_users(store: &Store, name: &str) -> Result<Vec<String>> {
    Ok(list(store)?
        .into_iter()
        .filter(|c| {
            c.spec
                .mounts
                .iter()
                .any(|m| matches!(&m.source, Source::Volume(Some(n)) if n == name))
        })
        .map(|c| c.name)
        .collect())
}

/// `rbox volume rm NAME`: refused while a container uses it.
pub fn volume_remove(store: &Store, name: &str, force: bool) -> Result<()> {
    let p = volume_path(store, name);
    let dir = p.parent().expect("ROOT/volumes/NAME").to_path_buf();
    if !dir.is_dir() || !valid_name(name) {
        return Err(ContainerError::Invalid(format!("no such volume: {name}")));
    }
    let users = volume_users(store, name)?;
    if !users.is_empty() && !force {
        return Err(ContainerError::Invalid(format!(
            "volume {name} is in use by {}",
            users.join(", ")
        )));
    }
    fs::remove_dir_all(&dir).map_err(io_err("remove volume", &dir))
}

/// `rbox volume prune`: every volume no container uses; their names.
pub fn volume_prune(store: &Store) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, _) in volumes(store)? {
        if volume_users(store, &name)?.is_empty() {
            volume_remove(store, &name, false)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// `rbox volume inspect NAME`, Docker's shape.
pub fn volume_inspect(store: &Store, name: &str) -> Result<Value> {
    let p = volume_path(store, name);
    if !p.is_dir() || !valid_name(name) {
        return Err(ContainerError::Invalid(format!("no such volume: {name}")));
    }
    Ok(json!({"Name": name, "Driver": "local", "Mountpoint": p, "Scope": "local"}))
}
