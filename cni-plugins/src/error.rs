//! CNI errors: a code from the spec, a message, optional details; printed
//! as JSON on stdout with a non-zero exit status.

use serde::Serialize;

/// Error codes of the CNI spec (1-99 reserved), and one for everything
/// plugin-specific.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// Plugin-specific (the reference plugins use 999 too).
    pub const INTERNAL: u32 = 999;
}

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl std::fmt::Display) -> Self {
        self.details = details.to_string();
        self
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }

    pub fn io(msg: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Self::new(code::IO_FAILURE, msg).with_details(e)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, msg)
    }
}

impl CniError {
    /// The reply on stdout, in the caller's cniVersion.
    pub fn reply(&self, version: &str) -> cni_types::ErrorReply {
        cni_types::ErrorReply {
            cni_version: version.to_string(),
            code: self.code,
            msg: self.msg.clone(),
            details: self.details.clone(),
        }
    }
}

impl From<cni_types::result::UnsupportedVersion> for CniError {
    fn from(e: cni_types::result::UnsupportedVersion) -> Self {
        CniError::new(code::INCOMPATIBLE_VERSION, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, CniError>;
