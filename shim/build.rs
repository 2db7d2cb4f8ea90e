//! Link flags of the shim binary. One shim runs per container, so every
//! page it touches counts: on musl (a static PIE that relocates itself at
//! start-up) relative relocations are packed (DT_RELR), so start-up reads
//! about 4 kB of relocation table instead of about 300 kB. musl handles
//! DT_RELR from 1.2.4; Rust bundles musl 1.2.5 from 1.93 on (1.2.3 before,
//! where such a binary would not start), so older compilers link as before.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-musl") && rustc_minor() >= Some(93) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
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
