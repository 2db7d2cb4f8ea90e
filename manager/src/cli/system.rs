//! The verbs about the whole host and store: `inspect` (of containers or
//! images), `info`, `version`, `system df`, `system prune`.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{confirmed, Ctx};
use rbox::container;
use rbox::image;
use rbox::store::Store;
use rbox::template::Template;

#[derive(Args)]
pub struct InspectArgs {
    /// A Go-template subset, like '{{.NetworkSettings.IPAddress}}'
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub targets: Vec<String>,
}

#[derive(Args)]
pub struct VersionArgs {
    /// `json`, or a template over the JSON (`{{.Client.Version}}`)
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Subcommand)]
pub enum SystemVerb {
    /// Disk space used by images, containers, volumes and the build cache
    Df,
    /// Remove stopped containers, unused networks and dangling images
    Prune {
        /// Every image no container uses, not only untagged ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
        /// Also volumes no container uses
        #[arg(long)]
        volumes: bool,
    },
}

/// `rbox inspect`: containers, else images, by name or id.
pub fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<ExitCode> {
    let store = &ctx.store;
    let template = a.format.as_deref().map(Template::parse).transpose()?;
    let mut all = Vec::new();
    for t in &a.targets {
        match container::find(store, t) {
            Ok(c) => all.push(container::inspect(store, &c)),
            Err(container::ContainerError::NoSuch(_)) => all.push(
                image::inspect(store, t)
                    .with_context(|| format!("no such container or image: {t}"))?,
            ),
            Err(e) => return Err(e.into()),
        }
    }
    match template {
        Some(t) => all.iter().for_each(|v| println!("{}", t.render(v))),
        None => println!("{}", serde_json::to_string_pretty(&all)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox version`: rbox's own version and what it runs containers with
/// (no daemon: Docker's Server section has no counterpart).
pub fn version(a: VersionArgs) -> Result<ExitCode> {
    let format = a.format.as_deref();
    let runtime = rbox::locate::runtime_bin();
    let runtime_version = Command::new(&runtime)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(String::from)
        });
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let cni_dirs = rbox::net::cni::plugin_dirs();
    let v = serde_json::json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": arch,
        },
        "Runtime": {
            "Path": runtime.display().to_string(),
            "Version": runtime_version,
        },
        "Shim": rbox::supervisor::shim_bin().display().to_string(),
        "CniPath": cni_dirs,
    });
    match format {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", Template::parse(t)?.render(&v)),
        None => {
            println!("Client: rbox");
            println!(" Version:      {}", env!("CARGO_PKG_VERSION"));
            println!(" OS/Arch:      {}/{arch}", std::env::consts::OS);
            println!(
                " Runtime:      {} ({})",
                runtime.display(),
                v["Runtime"]["Version"].as_str().unwrap_or("missing")
            );
            println!(" Shim:         {}", v["Shim"].as_str().unwrap_or_default());
            let dirs: Vec<String> = cni_dirs.iter().map(|d| d.display().to_string()).collect();
            println!(" CNI plugins:  {}", dirs.join(":"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rbox info`: what this host has for containers.
pub fn info(ctx: &Ctx) -> Result<ExitCode> {
    let store = &ctx.store;
    let cgroot = std::path::Path::new(rbox::host::CGROUP_ROOT);
    let cgroup = match rbox::host::cgroup_version(cgroot) {
        "v2" => "v2 (unified)",
        "hybrid" => "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)",
        _ => "v1",
    };
    let containers = container::list(store)?;
    let running = containers
        .iter()
        .filter(|c| container::live_status(c) == container::LiveStatus::Running)
        .count();
    let cni = rbox::net::cni::plugin_dirs();
    let plugin = |name: &str| {
        cni.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map_or_else(|| "missing".to_string(), |p| p.display().to_string())
    };
    let (_, nofile) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((0, 0));
    let found = |p: std::path::PathBuf| {
        let ok = p.is_file()
            || std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(&p).is_file()));
        format!("{}{}", p.display(), if ok { "" } else { " (missing)" })
    };
    println!("Containers: {} (running: {running})", containers.len());
    println!(
        "Images: {}",
        rbox::image::list(store).map(|l| l.len()).unwrap_or(0)
    );
    println!("Root: {}", store.root().display());
    println!("Runtime: {}", found(rbox::locate::runtime_bin()));
    println!("Shim: {}", found(rbox::supervisor::shim_bin()));
    println!(
        "Storage: overlay ({})",
        if rbox::host::has_filesystem("overlay") {
            "available"
        } else {
            "MISSING: modprobe overlay"
        }
    );
    println!("Cgroups: {cgroup}");
    println!(
        "Cgroup controllers: {}",
        rbox::host::cgroup_controllers(cgroot).join(" ")
    );
    println!(
        "Seccomp: {}",
        if rbox::host::has_seccomp() {
            "available"
        } else {
            "MISSING (kernel without CONFIG_SECCOMP)"
        }
    );
    println!("Open files hard limit: {nofile}");
    println!(
        "CNI plugin dirs: {}",
        cni.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    for name in ["bridge", "host-local", "portmap"] {
        println!("CNI {name}: {}", plugin(name));
    }
    println!(
        "Kernel: {}",
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `rbox system df|prune`.
pub fn system(ctx: &Ctx, v: SystemVerb) -> Result<ExitCode> {
    match v {
        SystemVerb::Df => {
            df(&ctx.store)?;
            Ok(ExitCode::SUCCESS)
        }
        SystemVerb::Prune {
            all,
            force,
            volumes,
        } => prune(&ctx.store, all, force, volumes),
    }
}

/// `rbox system df`: Docker's table.
fn df(store: &Store) -> Result<()> {
    use rbox::format::human_size;
    println!(
        "{:<16}{:<10}{:<10}{:<10}RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for r in rbox::system::df(store)? {
        let share = (r.reclaimable * 100)
            .checked_div(r.size)
            .map(|p| format!(" ({p}%)"))
            .unwrap_or_default();
        println!(
            "{:<16}{:<10}{:<10}{:<10}{}{share}",
            r.kind,
            r.total,
            r.active,
            human_size(r.size),
            human_size(r.reclaimable)
        );
    }
    Ok(())
}

/// `rbox system prune`: asks first (a `y` on stdin) unless `-f`.
fn prune(store: &Store, all: bool, force: bool, volumes: bool) -> Result<ExitCode> {
    if !force {
        eprintln!("WARNING! This will remove:");
        eprintln!("  - all stopped containers");
        eprintln!("  - all networks not used by at least one container");
        if volumes {
            eprintln!("  - all volumes not used by at least one container");
        }
        eprintln!(
            "  - all {}",
            if all {
                "images without at least one container associated to them"
            } else {
                "dangling images"
            }
        );
        if !confirmed("Are you sure you want to continue?") {
            eprintln!("rbox: system prune: not confirmed, nothing removed (-f skips the question)");
            return Ok(ExitCode::FAILURE);
        }
    }
    let p = rbox::system::prune(store, all, volumes)?;
    for (title, items) in [
        ("Deleted Containers:", &p.containers),
        ("Deleted Networks:", &p.networks),
        ("Deleted Volumes:", &p.volumes),
        ("Deleted Images:", &p.images),
    ] {
        if !items.is_empty() {
            println!("{title}");
            items.iter().for_each(|i| println!("{i}"));
            println!();
        }
    }
    println!(
        "Total reclaimed space: {}",
        rbox::format::human_size(p.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}
