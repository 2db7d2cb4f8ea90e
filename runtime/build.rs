//! Link flags of the runtime's binaries. `rrun create`, `run` and `exec`
//! start rrun twice (the CVE-2019-5736 re-exec, seal.rs), and a static PIE
//! relocates itself at each start: on musl relative relocations are packed
//! (DT_RELR), so a start-up reads about 3 kB of relocation table instead of
//! about 230 kB (9,700 entries), keeping the PIE (ASLR).
//! (build-support/relr.rs says from which compiler on).
//!
//! On x86_64 musl, rrun's entry point is `rrun_entry` (src/entry.rs): the
//! re-exec happens there, before the binary relocates itself at all.
#[path = "../build-support/relr.rs"]
mod relr;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build-support/relr.rs");
    relr::pack_relative_relocs();
    if std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-musl") {
        println!("cargo:rustc-link-arg-bin=rrun=-Wl,-e,rrun_entry");
    }
}
