//! The binaries under test: rrun, rbox, the shim, the pause program.

use std::path::{Path, PathBuf};

/// The binary under test: `RRUN_BIN`, else the workspace's release or debug build.
pub fn rrun_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RRUN_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let static_build = format!(
        "target/{}-unknown-linux-musl/release/rrun",
        std::env::consts::ARCH
    );
    for p in [
        static_build.as_str(),
        "target/release/rrun",
        "target/debug/rrun",
    ] {
        if ws.join(p).exists() {
            return ws.join(p);
        }
    }
    panic!("no rrun binary: run `cargo build --release` or set RRUN_BIN");
}

/// The manager under test: `RBOX_BIN`, else the workspace's release or debug build.
pub fn rbox_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RBOX_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for p in ["target/release/rbox", "target/debug/rbox"] {
        if ws.join(p).exists() {
            return ws.join(p);
        }
    }
    panic!("no rbox binary: run `cargo build -p rbox` or set RBOX_BIN");
}

/// The containerd shim under test: `SHIM_BIN`, else the workspace's release
/// or debug build of `containerd-shim-rrun-v2`.
pub fn shim_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SHIM_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let static_build = format!(
        "target/{}-unknown-linux-musl/release/containerd-shim-rrun-v2",
        std::env::consts::ARCH
    );
    for p in [
        static_build.as_str(),
        "target/release/containerd-shim-rrun-v2",
        "target/debug/containerd-shim-rrun-v2",
    ] {
        if ws.join(p).exists() {
            return ws.join(p);
        }
    }
    panic!(
        "no shim binary: run `make build` (cargo build --release -p containerd-shim-rrun-v2 \
         --target {}-unknown-linux-musl) or set SHIM_BIN",
        std::env::consts::ARCH
    );
}

/// The sandbox (pause) program for containerd's CRI: `rrun-pause`, a
/// static build of the rrun package (`make build`), next to `RRUN_BIN` or
/// in the workspace's musl release build. Panics when it is not static (it
/// runs alone in the pause image).
pub fn pause_bin() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let static_build = ws.join(format!(
        "target/{}-unknown-linux-musl/release/rrun-pause",
        std::env::consts::ARCH
    ));
    let beside_rrun = rrun_bin().with_file_name("rrun-pause");
    let bin = [beside_rrun, static_build]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "no rrun-pause binary: run `make build` (cargo build --release -p rrun --target \
                 {}-unknown-linux-musl)",
                std::env::consts::ARCH
            )
        });
    let elf = std::fs::read(&bin).unwrap();
    assert!(
        !elf.windows(8).any(|w| w == b"ld-linux"),
        "{} is dynamically linked: the pause image holds nothing else (build it for musl)",
        bin.display()
    );
    bin
}

/// True when the binary under test is runc: a test of rrun's own ways fails
/// saying so, and a few checks expect runc's documented behaviour instead.
pub fn testing_runc() -> bool {
    rrun_bin().file_name().is_some_and(|n| n == "runc")
}

/// The CNI plugins under test: `CNI_BIN_DIR`, else the workspace's build
/// (musl release, release or debug) that has them.
pub fn cni_bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CNI_BIN_DIR") {
        return PathBuf::from(d);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    [
        format!(
            "target/{}-unknown-linux-musl/release",
            std::env::consts::ARCH
        ),
        "target/release".into(),
        "target/debug".into(),
    ]
    .iter()
    .map(|d| ws.join(d))
    .find(|d| {
        ["host-local", "bridge", "portmap"]
            .iter()
            .all(|p| d.join(p).exists())
    })
    .expect("build the CNI plugins first (make build) or set CNI_BIN_DIR")
}

/// Debian's reference CNI plugins (containernetworking-plugins), which
/// several tests hold ours and rbox against.
pub const REFERENCE_CNI_DIR: &str = "/usr/lib/cni";

/// Fails unless the reference plugins and iptables-save (the reference
/// portmap's rules are read with it) are installed.
#[track_caller]
pub fn require_reference_plugins() {
    let dir = Path::new(REFERENCE_CNI_DIR);
    assert!(
        ["host-local", "bridge", "portmap"]
            .iter()
            .all(|p| dir.join(p).exists())
            && std::process::Command::new("sh")
                .args(["-c", "command -v iptables-save"])
                .output()
                .unwrap()
                .status
                .success(),
        "the reference plugins ({REFERENCE_CNI_DIR}) and iptables are needed (make deps)"
    );
}
