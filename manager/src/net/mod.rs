//! Container networking: CNI plugins driven the way a CNI runtime drives
//! them (cni.rs: namespaces, conflists, ADD and DEL), the host ports
//! published (ports.rs), user-defined networks (usernet.rs), the files
//! /etc/hosts, /etc/hostname and /etc/resolv.conf (etc_files.rs), and what
//! a start and an exit do with them (plan.rs, teardown.rs).

pub mod cni;
pub mod etc_files;
pub mod plan;
pub mod ports;
pub mod teardown;
pub mod usernet;
