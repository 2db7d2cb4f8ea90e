//! Resource limits of the container's processes: `--ulimit NAME=SOFT[:HARD]`
//! with Docker's names.

use nix::sys::resource::Resource;
use oci_spec::runtime::PosixRlimitType;
use serde::{Deserialize, Serialize};

use super::error::{Result, SpecError};

/// Docker's limit names, the OCI type and the host's resource of each.
const NAMES: [(&str, PosixRlimitType, Resource); 14] = [
    ("core", PosixRlimitType::RlimitCore, Resource::RLIMIT_CORE),
    ("cpu", PosixRlimitType::RlimitCpu, Resource::RLIMIT_CPU),
    ("data", PosixRlimitType::RlimitData, Resource::RLIMIT_DATA),
    (
        "fsize",
        PosixRlimitType::RlimitFsize,
        Resource::RLIMIT_FSIZE,
    ),
    (
        "locks",
        PosixRlimitType::RlimitLocks,
        Resource::RLIMIT_LOCKS,
    ),
    (
        "memlock",
        PosixRlimitType::RlimitMemlock,
        Resource::RLIMIT_MEMLOCK,
    ),
    (
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        Resource::RLIMIT_MSGQUEUE,
    ),
    ("nice", PosixRlimitType::RlimitNice, Resource::RLIMIT_NICE),
    (
        "nofile",
        PosixRlimitType::RlimitNofile,
        Resource::RLIMIT_NOFILE,
    ),
    (
        "nproc",
        PosixRlimitType::RlimitNproc,
        Resource::RLIMIT_NPROC,
    ),
    ("rss", PosixRlimitType::RlimitRss, Resource::RLIMIT_RSS),
    (
        "rtprio",
        PosixRlimitType::RlimitRtprio,
        Resource::RLIMIT_RTPRIO,
    ),
    (
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        Resource::RLIMIT_SIGPENDING,
    ),
    (
        "stack",
        PosixRlimitType::RlimitStack,
        Resource::RLIMIT_STACK,
    ),
];

/// One `--ulimit`, as given (`text`, what the record keeps) and parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ulimit {
    pub text: String,
    pub typ: PosixRlimitType,
    resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

impl Ulimit {
    /// `nofile=1024:2048`; `-1` and `unlimited` are no limit; a soft limit
    /// above the hard one is refused.
    pub fn parse(u: &str) -> Result<Ulimit> {
        let bad = |why: &str| SpecError::BadUlimit {
            spec: u.to_string(),
            why: why.to_string(),
        };
        let (name, vals) = u
            .split_once('=')
            .ok_or_else(|| bad("not NAME=SOFT[:HARD]"))?;
        let (_, typ, resource) = *NAMES
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| bad("unknown limit name"))?;
        let num = |v: &str| -> Result<u64> {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse().map_err(|_| bad("not a number"))
            }
        };
        let (soft, hard) = match vals.split_once(':') {
            Some((s, h)) => (num(s)?, num(h)?),
            None => (num(vals)?, num(vals)?),
        };
        if soft > hard {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Ulimit {
            text: u.to_string(),
            typ,
            resource,
            soft,
            hard,
        })
    }

    /// Refuses a hard limit above this host's (raising it needs
    /// CAP_SYS_RESOURCE).
    pub fn check_host(&self) -> Result<()> {
        let host_hard = nix::sys::resource::getrlimit(self.resource)
            .map(|(_, h)| h)
            .unwrap_or(u64::MAX);
        if self.hard > host_hard {
            return Err(SpecError::BadUlimit {
                spec: self.text.clone(),
                why: format!(
                    "the hard limit {} is above this host's {host_hard} (raising it needs CAP_SYS_RESOURCE)",
                    self.hard
                ),
            });
        }
        Ok(())
    }
}

impl TryFrom<String> for Ulimit {
    type Error = SpecError;
    fn try_from(s: String) -> Result<Ulimit> {
        Ulimit::parse(&s)
    }
}

impl From<Ulimit> for String {
    fn from(u: Ulimit) -> String {
        u.text
    }
}

/// `--ulimit` as the command line has it: parsed and held against the
/// host's hard limits.
pub fn parse_ulimit(u: &str) -> Result<Ulimit> {
    let l = Ulimit::parse(u)?;
    l.check_host()?;
    Ok(l)
}

/// Docker's default open-files limit, 1048576, within the host's hard
/// limit `host_hard`.
pub fn default_nofile(host_hard: u64) -> u64 {
    host_hard.min(1_048_576)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_parse_like_dockers() {
        let l = Ulimit::parse("nofile=1024:2048").unwrap();
        assert_eq!(
            (l.typ, l.soft, l.hard),
            (PosixRlimitType::RlimitNofile, 1024, 2048)
        );
        let l = Ulimit::parse("core=-1").unwrap();
        assert_eq!((l.soft, l.hard), (u64::MAX, u64::MAX));
        let l = Ulimit::parse("nproc=unlimited:unlimited").unwrap();
        assert_eq!(l.hard, u64::MAX);
        for (bad, says) in [
            ("nofile", "not NAME=SOFT[:HARD]"),
            ("files=1", "unknown limit name"),
            ("nofile=x", "not a number"),
            ("nofile=10:5", "the soft limit is above the hard limit"),
        ] {
            let e = Ulimit::parse(bad).unwrap_err().to_string();
            assert_eq!(e, format!("--ulimit {bad:?}: {says}"));
        }
        assert_eq!(default_nofile(4096), 4096);
        assert_eq!(default_nofile(u64::MAX), 1_048_576);
    }
}
