//! Link flags of the shim binary. One shim runs per container, so every
//! page it touches counts: on musl (a static PIE that relocates itself at
//! start-up) relative relocations are packed (DT_RELR, musl >= 1.2.4), so
//! start-up reads a few kB of relocation table instead of about 300 kB.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-linux-musl") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
