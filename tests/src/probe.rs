//! A static program that makes one raw system call, for seccomp and
//! capability checks from inside a container.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Bundle;

/// A static helper that makes one raw system call:
/// `probe NR [ARG...]` prints `ok` or `errno N` (numbers in C syntax).
/// Built once per test process with gcc (installed by `make deps`); put it in
/// a rootfs with [`Bundle::add_probe`].
pub fn probe_binary() -> &'static Path {
    static PROBE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        // under target/, so nothing is left in /tmp
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/rrun-test-probe")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(
            &src,
            r#"#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long a[6] = {0};
    for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], 0, 0);
    long r = syscall(strtol(argv[1], 0, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r < 0) { printf("errno %d\n", errno); return 1; }
    printf("ok\n");
    return 0;
}
"#,
        )
        .unwrap();
        let bin = dir.join("probe");
        let out = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("gcc (make deps installs it)");
        assert!(
            out.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_file(&src).unwrap();
        bin
    })
}

impl Bundle {
    /// Copy [`probe_binary`] to /probe in the rootfs.
    pub fn add_probe(&self) {
        std::fs::copy(probe_binary(), self.rootfs().join("probe")).unwrap();
    }
}
