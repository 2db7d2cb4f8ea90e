//! Link flags of the runtime's binaries. `rrun create`, `run` and `exec`
//! start rrun twice (the CVE-2019-5736 re-exec, seal.rs), and a static PIE
//! relocates itself at each start: on musl relative relocations are packed
//! (DT_RELR), so a start-up reads about 3 kB of relocation table instead of
//! about 230 kB (9,700 entries), keeping the PIE (ASLR). musl handles
//! DT_RELR from 1.2.4; Rust bundles musl 1.2.5 from 1.93 on (1.2.3 before,
//! where such a binary would not start), so older compilers link as before.
//!
//! On x86_64 musl, rrun's entry point is `rrun_entry` (src/entry.rs): the
//! re-exec happens there, before the binary relocates itself at all.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-musl") && rustc_minor() >= Some(93) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if target == "x86_64-unknown-linux-musl" {
        println!("cargo:rustc-link-arg-bin=rrun=-Wl,-e,rrun_entry");
    }
}

/// The minor version of the compiler building us (`rustc 1.95.0 (…)`).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
