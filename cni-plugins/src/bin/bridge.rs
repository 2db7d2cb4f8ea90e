//! The `bridge` CNI plugin (the logic is the library's `plugins::bridge`).

fn main() {
    rcni::skel::run(&rcni::plugins::bridge::Bridge)
}
