//! What can be wrong in a Dockerfile before anything is planned; the
//! messages are BuildKit's where it has one.

use super::flags::FlagError;
use super::mount::MountError;

/// A Dockerfile that cannot be read: `Dockerfile:LINE: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ParseError {
    pub file: String,
    /// 1-based line where the instruction (or the problem) starts
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("the Dockerfile cannot be empty")]
    Empty,
    #[error("file with no instructions")]
    NoInstructions,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    BadEscape(String),
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("{0}")]
    Heredoc(crate::build::expand::ExpandError),
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// An instruction other than ARG before the first FROM.
    #[error("no build stage in current context")]
    NoStage,
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{0}")]
    Flag(#[from] FlagError),
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    StageName(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnBuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnBuildTrigger(String),
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckCommand,
    #[error("time: invalid duration {0:?}")]
    Duration(String),
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(&'static str),
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    Retries(String),
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("invalid network mode {0:?}")]
    Network(String),
    #[error("security {0:?} is not valid")]
    Security(String),
    #[error("{0}")]
    Mount(#[from] MountError),
    #[error("onbuild trigger should be a single expression")]
    TriggerNotSingle,
    /// BuildKit keeps `.git` of git sources; rbox build has no git sources.
    #[error("ADD --keep-git-dir is not supported: rbox build does not fetch git sources")]
    KeepGitDir,
    /// BuildKit's CDI devices; rbox build has none.
    #[error("RUN --device is not supported by rbox build")]
    Device,
}

/// Something BuildKit accepts but warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}
