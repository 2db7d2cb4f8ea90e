//! Resource limits of the container's processes (`--ulimit`).

use oci_spec::runtime::PosixRlimitType;

use super::error::{Result, SpecError};

/// The host's hard limit for open files: Docker's default of 1048576 is
/// clamped to it (raising a hard limit needs CAP_SYS_RESOURCE).
pub(crate) fn nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1024)
}

/// `--ulimit nofile=1024:2048` (Docker's names); a limit above the host's
/// hard limit is refused (raising it needs CAP_SYS_RESOURCE).
pub fn parse_ulimit(u: &str) -> Result<(PosixRlimitType, u64, u64)> {
    use nix::sys::resource::Resource;
    let bad = |why: &str| SpecError::BadUlimit {
        spec: u.to_string(),
        why: why.to_string(),
    };
    let (name, vals) = u
        .split_once('=')
        .ok_or_else(|| bad("not NAME=SOFT[:HARD]"))?;
    let (typ, res) = match name {
        "core" => (PosixRlimitType::RlimitCore, Resource::RLIMIT_CORE),
        "cpu" => (PosixRlimitType::RlimitCpu, Resource::RLIMIT_CPU),
        "data" => (PosixRlimitType::RlimitData, Resource::RLIMIT_DATA),
        "fsize" => (PosixRlimitType::RlimitFsize, Resource::RLIMIT_FSIZE),
        "locks" => (PosixRlimitType::RlimitLocks, Resource::RLIMIT_LOCKS),
        "memlock" => (PosixRlimitType::RlimitMemlock, Resource::RLIMIT_MEMLOCK),
        "msgqueue" => (PosixRlimitType::RlimitMsgqueue, Resource::RLIMIT_MSGQUEUE),
        "nice" => (PosixRlimitType::RlimitNice, Resource::RLIMIT_NICE),
        "nofile" => (PosixRlimitType::RlimitNofile, Resource::RLIMIT_NOFILE),
        "nproc" => (PosixRlimitType::RlimitNproc, Resource::RLIMIT_NPROC),
        "rss" => (PosixRlimitType::RlimitRss, Resource::RLIMIT_RSS),
        "rtprio" => (PosixRlimitType::RlimitRtprio, Resource::RLIMIT_RTPRIO),
        "sigpending" => (
            PosixRlimitType::RlimitSigpending,
            Resource::RLIMIT_SIGPENDING,
        ),
        "stack" => (PosixRlimitType::RlimitStack, Resource::RLIMIT_STACK),
        _ => return Err(bad("unknown limit name")),
    };
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
    let host_hard = nix::sys::resource::getrlimit(res)
        .map(|(_, h)| h)
        .unwrap_or(u64::MAX);
    if hard > host_hard {
        return Err(bad(&format!(
            "the hard limit {hard} is above this host's {host_hard} (raising it needs CAP_SYS_RESOURCE)"
        )));
    }
    Ok((typ, soft, hard))
}
