//! The `host-local` CNI plugin (the logic is the library's `plugins::host_local`).

fn main() {
    rcni::skel::run(&rcni::plugins::host_local::HostLocal)
}
