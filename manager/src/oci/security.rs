//! `--security-opt` (seccomp=unconfined|PROFILE, no-new-privileges),
//! parsed once and kept in the record as given (inspect shows it so).

use serde::{Deserialize, Serialize};

use crate::seccomp::{self, SeccompError, SecurityOpts};

/// The `--security-opt` values and what they ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct SecurityOptions {
    given: Vec<String>,
    pub asked: SecurityOpts,
}

impl SecurityOptions {
    pub fn parse(opts: &[String]) -> Result<SecurityOptions, SeccompError> {
        Ok(SecurityOptions {
            given: opts.to_vec(),
            asked: seccomp::parse_opts(opts)?,
        })
    }

    /// The values as the command line gave them.
    pub fn given(&self) -> &[String] {
        &self.given
    }
}

impl TryFrom<Vec<String>> for SecurityOptions {
    type Error = SeccompError;
    fn try_from(v: Vec<String>) -> Result<SecurityOptions, SeccompError> {
        SecurityOptions::parse(&v)
    }
}

impl From<SecurityOptions> for Vec<String> {
    fn from(o: SecurityOptions) -> Vec<String> {
        o.given
    }
}
