//! The `portmap` CNI plugin (the logic is the library's `plugins::portmap`).

fn main() {
    rcni::skel::run(&rcni::plugins::portmap::Portmap)
}
