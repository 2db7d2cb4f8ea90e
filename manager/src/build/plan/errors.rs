//! What can be wrong with a Dockerfile for one build; BuildKit's messages
//! where it has one.

use crate::build::dockerfile::{MountError, ParseErrorKind};
use crate::build::expand::ExpandError;

/// A Dockerfile that cannot be built as asked: `Dockerfile:LINE: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct PlanError {
    pub file: String,
    pub line: usize,
    /// Boxed: the kinds carry the words they are about.
    pub kind: Box<PlanErrorKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanErrorKind {
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// BuildKit only warns (DuplicateStageName) and then uses the last
    /// stage of that name; rbox refuses the ambiguity.
    #[error("duplicate stage name {name:?}, first defined on line {first}")]
    DuplicateStage { name: String, first: usize },
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
    #[error("{0}")]
    Expand(#[from] ExpandError),
    #[error("base name ({0}) should not be blank")]
    BlankBase(String),
    #[error("failed to parse stage name {name:?}: {why}")]
    BadReference { name: String, why: String },
    #[error("empty platform value from expression {0}")]
    EmptyPlatform(String),
    #[error("failed to parse platform {0}")]
    BadPlatform(String),
    /// RUN steps run on the host's CPU: no emulation here
    #[error("platform {platform} cannot be built on this host, which runs {native} natively: rbox build has no emulation")]
    ForeignPlatform { platform: String, native: String },
    #[error(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    FromExpansion,
    #[error("invalid stage index {0}")]
    StageIndex(i64),
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    CopyFromLater { from: String, stage: String },
    #[error("cannot mount from stage {from:?} to {target:?}, stage needs to be defined before current command")]
    MountFromLater { from: String, target: String },
    #[error("circular dependency detected on stage: {0}")]
    Circular(String),
    #[error("{0}")]
    Mount(#[from] MountError),
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Chmod(String),
    #[error("checksum can't be specified for multiple sources")]
    ChecksumSources,
    #[error("checksum requires HTTP(S) or Git sources")]
    ChecksumSource,
    #[error("invalid checksum digest format {0:?}")]
    Checksum(String),
    #[error("source can't be a URL for COPY")]
    CopyUrl,
    #[error("source can't be a git ref for COPY")]
    CopyGit,
    /// BuildKit clones git sources; rbox build has none.
    #[error("ADD of a git repository is not supported by rbox build: {0}")]
    AddGit(String),
    #[error("bad --exclude pattern {0:?}: syntax error in pattern")]
    Exclude(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("invalid port: {port:?}: {why}")]
    Port { port: String, why: String },
    #[error("Invalid signal: {0}")]
    Signal(String),
    #[error("onbuild trigger {trigger:?}: {error}")]
    Trigger {
        trigger: String,
        error: ParseErrorKind,
    },
}
