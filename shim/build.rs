//! Link flags of the shim binary. One shim runs per container, so every
//! page it touches counts: on musl (a static PIE that relocates itself at
//! start-up) relative relocations are packed (DT_RELR), so start-up reads
//! about 4 kB of relocation table instead of about 300 kB.
//! (build-support/relr.rs says from which compiler on).
#[path = "../build-support/relr.rs"]
mod relr;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build-support/relr.rs");
    relr::pack_relative_relocs();
}
