//! Shared by the build scripts of rrun and the shim (`#[path]`-included):
//! packed relative relocations (DT_RELR) for the static musl binaries.
//! musl loads DT_RELR from 1.2.4; Rust bundles musl 1.2.5 from 1.93 on
//! (1.2.3 before, where such a binary would not start), so older compilers
//! link as before.

/// Links the package's binaries with `-z pack-relative-relocs` when the
/// target is musl and the compiler bundles a musl that loads them.
pub fn pack_relative_relocs() {
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
