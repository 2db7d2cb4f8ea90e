//! The exit status of a failed rbox command, as Docker's CLI has it: usage
//! errors (an unknown flag, a bad value) are 125; `run`/`create` exit 125
//! when rbox or the runtime fails and 126/127 when the container's command
//! cannot be invoked or is not found; `exec` uses 126/127 the same way;
//! everything else exits 1.

use std::process::ExitCode;

use rbox::container::ContainerError;
use rbox::exitcode::{command_failure, CANNOT_INVOKE, FAILED};

/// What kind of verb failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// run, create: 125 unless the command could not start
    Run,
    /// exec: 1 unless the command could not start
    Exec,
    Other,
}

impl Verb {
    pub fn status(self, e: &anyhow::Error) -> ExitCode {
        // 126/127: the runtime could not start the command
        let command = match e.downcast_ref::<ContainerError>() {
            Some(c @ ContainerError::Runtime { .. }) => {
                command_failure(&c.to_string()).map(|f| f.status())
            }
            // an exec the runtime refused is the command's failure
            Some(ContainerError::ExecStart(msg)) => {
                Some(command_failure(msg).map_or(CANNOT_INVOKE, |f| f.status()))
            }
            _ => None,
        };
        ExitCode::from(match (self, command) {
            (Verb::Run | Verb::Exec, Some(code)) => code,
            (Verb::Run, None) => FAILED,
            _ => 1,
        })
    }
}

/// Parse the command line; on a usage error print clap's message and exit
/// with Docker's status (125 for a bad flag or value, 1 for a missing
/// argument or an unknown verb, 0 for help and --version).
pub fn parse<P: clap::Parser>(args: Vec<std::ffi::OsString>) -> P {
    use clap::error::ErrorKind::*;
    match P::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            let code = match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => 0,
                MissingRequiredArgument | MissingSubcommand | InvalidSubcommand => 1,
                _ => FAILED as i32,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}
