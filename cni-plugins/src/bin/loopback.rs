//! The `loopback` CNI plugin (the logic is the library's `plugins::loopback`).

fn main() {
    rcni::skel::run(&rcni::plugins::loopback::Loopback)
}
