//! The shim binary's side of containerd's runtime v2 protocol: `start`
//! (spawn the long-lived shim, print its address), `delete` (clean up after
//! a shim that is gone), and the task service of the long-lived shim.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};

use crate::rrun::Rrun;
use crate::task::{self, RuntimeFile, TaskService};

/// The sandbox a Kubernetes container belongs to: its containers share one shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub struct Service {
    namespace: String,
    id: String,
    shutdown: Arc<ExitSignal>,
}

/// The framework's settings: the shim reaps its children itself (see `reaper`).
pub fn config() -> Config {
    Config {
        no_reaper: true,
        ..Config::default()
    }
}

impl containerd_shim::Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            shutdown: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let grouping = sandbox_id(Path::new("config.json")).unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // the working directory is the bundle
        let saved: Option<RuntimeFile> = std::fs::read(task::RUNTIME_FILE)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let rrun = match saved {
            Some(f) => Rrun {
                binary: f.binary,
                root: f.root,
            },
            None => Rrun {
                binary: task::resolve_binary("").unwrap_or_else(|_| "rrun".into()),
                root: task::runtime_root("", &self.namespace),
            },
        };
        if let Err(e) = rrun.delete(&self.id, true) {
            // already gone is fine: delete is idempotent
            log::warn!("{e}");
        }
        if let Ok(cwd) = std::env::current_dir() {
            task::unmount_rootfs(&cwd.join("rootfs"));
        }
        let mut r = DeleteResponse::new();
        r.exit_status = 128 + libc::SIGKILL as u32;
        let d = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut ts =
            containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp::new();
        ts.seconds = d.as_secs() as i64;
        ts.nanos = d.subsec_nanos() as i32;
        r.exited_at = Some(ts).into();
        Ok(r)
    }

    fn wait(&mut self) {
        self.shutdown.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        TaskService::new(&self.namespace, publisher, self.shutdown.clone())
    }
}

fn sandbox_id(config: &Path) -> Option<String> {
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(config).ok()?).ok()?;
    spec.get("annotations")?
        .get(SANDBOX_ID)?
        .as_str()
        .map(String::from)
}
