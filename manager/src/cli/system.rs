//! The verbs about the whole host and store: `inspect` (of containers or
//! images), `info`, `version`, `system df`, `system prune`.

use std::process::ExitCode;

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
    let v = rbox::info::versions();
    let json = serde_json::json!({
        "Client": {
            "Version": v.rbox,
            "Os": v.os,
            "Arch": v.arch,
        },
        "Runtime": {
            "Path": v.runtime.display().to_string(),
            "Version": v.runtime_version,
        },
        "Shim": v.shim.display().to_string(),
        "CniPath": v.cni_dirs,
    });
    match a.format.as_deref() {
        Some("json") => println!("{json}"),
        Some(t) => println!("{}", Template::parse(t)?.render(&json)),
        None => {
            println!("Client: rbox");
            println!(" Version:      {}", v.rbox);
            println!(" OS/Arch:      {}/{}", v.os, v.arch);
            println!(
                " Runtime:      {} ({})",
                v.runtime.display(),
                v.runtime_version.as_deref().unwrap_or("missing")
            );
            println!(" Shim:         {}", v.shim.display());
            println!(" CNI plugins:  {}", paths(&v.cni_dirs));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Paths joined as PATH is.
fn paths(dirs: &[std::path::PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// `rbox info`: what this host has for containers.
pub fn info(ctx: &Ctx) -> Result<ExitCode> {
    let i = rbox::info::host_info(&ctx.store)?;
    let cgroup = match i.cgroup_version {
        "v2" => "v2 (unified)",
        "hybrid" => "hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified)",
        _ => "v1",
    };
    let found = |p: &rbox::info::Program| {
        format!(
            "{}{}",
            p.path.display(),
            if p.found { "" } else { " (missing)" }
        )
    };
    println!("Containers: {} (running: {})", i.containers, i.running);
    println!("Images: {}", i.images);
    println!("Root: {}", i.root.display());
    println!("Runtime: {}", found(&i.runtime));
    println!("Shim: {}", found(&i.shim));
    println!(
        "Storage: overlay ({})",
        if i.overlay {
            "available"
        } else {
            "MISSING: modprobe overlay"
        }
    );
    println!("Cgroups: {cgroup}");
    println!("Cgroup controllers: {}", i.cgroup_controllers.join(" "));
    println!(
        "Seccomp: {}",
        if i.seccomp {
            "available"
        } else {
            "MISSING (kernel without CONFIG_SECCOMP)"
        }
    );
    println!("Open files hard limit: {}", i.nofile);
    println!("CNI plugin dirs: {}", paths(&i.cni_dirs));
    for (name, at) in &i.cni_plugins {
        println!(
            "CNI {name}: {}",
            at.as_ref()
                .map_or_else(|| "missing".to_string(), |p| p.display().to_string())
        );
    }
    println!("Kernel: {}", i.kernel);
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
