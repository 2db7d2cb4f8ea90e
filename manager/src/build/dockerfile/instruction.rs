//! The typed instructions of a Dockerfile, as written: [`Word`]s are still
//! to be expanded by the planner (in the instructions where BuildKit
//! expands), plain `String`s are taken literally.

use std::time::Duration;

use super::heredoc::Heredoc;
use super::mount::MountSpec;

/// Text as written in the Dockerfile, which the planner expands (quotes,
/// escapes and `$VARIABLES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(pub String);

impl Word {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::convert::From<&str> for Word {
    fn from(s: &str) -> Word {
        Word(s.to_string())
    }
}

/// An instruction (or a FROM) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// First line (1-based) of the instruction.
    pub line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
    /// The instruction as written, continuation lines joined.
    pub source: String,
    pub value: T,
}

/// `FROM [--platform=P] IMAGE [AS NAME]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: Word,
    pub platform: Option<Word>,
    /// Lowercased, as BuildKit keeps stage names.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Add(Add),
    Arg(Vec<ArgDecl>),
    Cmd(CommandLine),
    Copy(Copy),
    Entrypoint(CommandLine),
    Env(Vec<KeyValue>),
    /// Ports, each expanded and split into words later.
    Expose(Vec<Word>),
    Healthcheck(Healthcheck),
    Label(Vec<KeyValue>),
    /// Deprecated: sets the image's author.
    Maintainer(String),
    OnBuild(OnBuild),
    Run(Run),
    /// The shell of shell-form commands; JSON only.
    Shell(Vec<String>),
    StopSignal(Word),
    User(Word),
    Volume(Vec<Word>),
    Workdir(Word),
}

/// `ARG NAME[=default]`; the name is not expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<Word>,
}

/// A pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Word,
    pub value: Word,
    /// Written `ENV KEY value`, without `=` (BuildKit warns about it).
    pub legacy: bool,
}

/// The command of RUN, CMD and ENTRYPOINT: exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    /// Run by the stage's shell (`/bin/sh -c` unless SHELL says otherwise).
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredocs opened on the command line, bodies in order.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<MountSpec>,
    pub network: Network,
    pub security: Security,
}

/// `RUN --network`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The build's network (`rbox build --network`).
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --security`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

/// A source of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path (or pattern) in the context or the `--from` stage; for ADD
    /// also a URL.
    Path(Word),
    /// `COPY <<EOF /dest`: a file named after the heredoc with its body.
    Heredoc(Heredoc),
}

/// `COPY [--from=S] [--chown=U:G] [--chmod=M] [--link] [--parents]
/// [--exclude=P]... SRC... DEST`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// A stage name or index, or an image; not expanded.
    pub from: Option<String>,
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub parents: bool,
    /// Patterns left out of the sources; not expanded.
    pub excludes: Vec<String>,
    pub sources: Vec<Source>,
    pub dest: Word,
}

/// `ADD [--chown] [--chmod] [--link] [--checksum=D] [--unpack] [--exclude]
/// SRC... DEST`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub chown: Option<Word>,
    pub chmod: Option<Word>,
    pub link: bool,
    pub checksum: Option<Word>,
    /// `--unpack`: whether local archives are extracted (default yes) and
    /// remote ones (default no).
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
    pub sources: Vec<Source>,
    pub dest: Word,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [OPTIONS] CMD command`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Turn off a healthcheck inherited from the base image.
    None,
    Check(HealthConfig),
}

/// Zero durations and retries mean the default, as in the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub command: CommandLine,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

impl Healthcheck {
    /// The image config's `Test`: `["NONE"]`, `["CMD", args...]` or
    /// `["CMD-SHELL", command]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".to_string()],
            Healthcheck::Check(c) => match &c.command {
                CommandLine::Exec(args) => std::iter::once("CMD".to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            },
        }
    }
}

/// `ONBUILD INSTRUCTION`: stored in the image, run by builds that use it
/// as their base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBuild {
    /// The trigger as the image config keeps it (heredoc bodies appended).
    pub expression: String,
    pub trigger: Box<Instruction>,
}
