//! `rbox build` (issue 19): the executor's steps for now.

pub mod exec;
