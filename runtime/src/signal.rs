//! Signal names and numbers as `kill` takes them (`KILL`, `SIGKILL`, `9`).

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

pub fn parse(s: &str) -> Result<Signal> {
    let bad = || Error::Usage(format!("invalid signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
