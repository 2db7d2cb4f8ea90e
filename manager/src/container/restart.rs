//! The restart policy: `--restart no|always|unless-stopped|on-failure[:N]`,
//! parsed once and kept in the container's record as Docker spells it.

use serde::{Deserialize, Serialize};

/// A `--restart` value rbox does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--restart {0:?}: not no, always, unless-stopped or on-failure[:N]")]
pub struct BadRestart(pub String);

/// Whether a container runs again when its init exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// after an exit status other than 0, at most N times (None: always)
    OnFailure(Option<u32>),
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy, BadRestart> {
        match s.split_once(':') {
            None => match s {
                // an empty value is what records made before the flag had
                "no" | "" => Ok(RestartPolicy::No),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                "on-failure" => Ok(RestartPolicy::OnFailure(None)),
                _ => Err(BadRestart(s.to_string())),
            },
            Some(("on-failure", n)) => n
                .parse::<u32>()
                .map(|n| RestartPolicy::OnFailure(Some(n)))
                .map_err(|_| BadRestart(s.to_string())),
            _ => Err(BadRestart(s.to_string())),
        }
    }

    /// Docker's `HostConfig.RestartPolicy.Name`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure(_) => "on-failure",
        }
    }

    /// Docker's `HostConfig.RestartPolicy.MaximumRetryCount`.
    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure(Some(n)) => n,
            _ => 0,
        }
    }

    /// Whether a container that has been restarted `count` times runs again
    /// after its init exited with `code` (never once the user stopped it).
    pub fn restarts(self, stopped_by_user: bool, count: u32, code: i32) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && max.is_none_or(|m| count < m),
            RestartPolicy::No => false,
        }
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = BadRestart;
    fn try_from(s: String) -> Result<RestartPolicy, BadRestart> {
        RestartPolicy::parse(&s)
    }
}

impl From<RestartPolicy> for String {
    fn from(p: RestartPolicy) -> String {
        match p {
            RestartPolicy::OnFailure(Some(n)) => format!("on-failure:{n}"),
            p => p.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_round_trip_and_decide_like_dockers() {
        for s in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            assert_eq!(String::from(RestartPolicy::parse(s).unwrap()), s);
        }
        assert_eq!(RestartPolicy::parse("").unwrap(), RestartPolicy::No);
        for bad in ["sometimes", "on-failure:x", "always:3", "on-failure:-1"] {
            assert_eq!(
                RestartPolicy::parse(bad).unwrap_err().to_string(),
                format!("--restart {bad:?}: not no, always, unless-stopped or on-failure[:N]")
            );
        }
        let p = RestartPolicy::parse("on-failure:2").unwrap();
        assert_eq!((p.name(), p.max_retries()), ("on-failure", 2));
        assert!(p.restarts(false, 1, 1));
        assert!(!p.restarts(false, 2, 1), "at most 2 restarts");
        assert!(!p.restarts(false, 0, 0), "not after success");
        assert!(RestartPolicy::OnFailure(None).restarts(false, 1000, 1));
        assert!(RestartPolicy::Always.restarts(false, 9, 0));
        assert!(
            !RestartPolicy::Always.restarts(true, 0, 0),
            "stopped by the user"
        );
        assert!(!RestartPolicy::No.restarts(false, 0, 1));
        // the record keeps Docker's spelling
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"on-failure:2\"");
        assert_eq!(
            serde_json::from_str::<RestartPolicy>("\"\"").unwrap(),
            RestartPolicy::No
        );
    }
}
