//! What a container's spec cannot be made of, naming the option and what
//! is wrong with it.

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("--ulimit {spec:?}: {why}")]
    BadUlimit { spec: String, why: String },
}

pub type Result<T> = std::result::Result<T, SpecError>;
