//! containerd-shim-rrun-v2: containerd's runtime type `io.containerd.rrun.v2`.

fn main() {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-v" | "--version" | "-version")) {
        println!("containerd-shim-rrun-v2 {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    shim::fds::close_inherited();
    containerd_shim::run::<shim::service::Service>(
        "io.containerd.rrun.v2",
        Some(shim::service::config()),
    );
}
