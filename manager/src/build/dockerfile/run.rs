//! RUN (with `--mount`, `--network`, `--security`), CMD, ENTRYPOINT and
//! SHELL: exec (JSON) or shell form.

use super::commands::Request;
use super::errors::ParseErrorKind;
use super::flags::{self, spec, Kind, Spec};
use super::instruction::{CommandLine, Instruction, Network, Run, Security};
use super::mount::MountSpec;
use super::words;

type Result<T> = std::result::Result<T, ParseErrorKind>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunFlag {
    Mount,
    Network,
    Security,
    Device,
}

const RUN_FLAGS: &[Spec<RunFlag>] = &[
    spec("mount", RunFlag::Mount, Kind::List),
    spec("network", RunFlag::Network, Kind::Text),
    spec("security", RunFlag::Security, Kind::Text),
    spec("device", RunFlag::Device, Kind::List),
];

pub(super) fn run(req: Request) -> Result<Instruction> {
    let mut run = Run {
        command: command_line(&req.rest)?,
        heredocs: req.heredocs,
        mounts: Vec::new(),
        network: Network::Default,
        security: Security::Sandbox,
    };
    for (flag, value) in flags::parse(&req.flags, RUN_FLAGS)? {
        let value = value.text();
        match flag {
            RunFlag::Mount => run.mounts.push(MountSpec::parse(&value)?),
            RunFlag::Network => run.network = network(&value)?,
            RunFlag::Security => run.security = security(&value)?,
            RunFlag::Device => return Err(ParseErrorKind::Device),
        }
    }
    Ok(Instruction::Run(run))
}

/// CMD and ENTRYPOINT.
pub(super) fn cmd(req: &Request) -> Result<CommandLine> {
    req.no_flags()?;
    command_line(&req.rest)
}

/// `SHELL ["executable", "parameters"]`: JSON only.
pub(super) fn shell(req: &Request) -> Result<Instruction> {
    req.no_flags()?;
    match command_line(&req.rest)? {
        CommandLine::Exec(args) if !args.is_empty() => Ok(Instruction::Shell(args)),
        CommandLine::Shell(s) if !s.is_empty() => Err(ParseErrorKind::NotJson("SHELL")),
        _ => Err(ParseErrorKind::AtLeastOneArgument("SHELL")),
    }
}

/// A JSON array of strings is the exec form, anything else the shell form.
pub(super) fn command_line(rest: &str) -> Result<CommandLine> {
    Ok(match words::json_array(rest)? {
        Some(args) => CommandLine::Exec(args),
        None => CommandLine::Shell(rest.to_string()),
    })
}

fn network(value: &str) -> Result<Network> {
    match value {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        _ => Err(ParseErrorKind::Network(value.to_string())),
    }
}

fn security(value: &str) -> Result<Security> {
    match value {
        "sandbox" => Ok(Security::Sandbox),
        "insecure" => Ok(Security::Insecure),
        _ => Err(ParseErrorKind::Security(value.to_string())),
    }
}
