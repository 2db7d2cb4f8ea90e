//! `HEALTHCHECK NONE` and `HEALTHCHECK [--interval=D] [--timeout=D]
//! [--start-period=D] [--start-interval=D] [--retries=N] CMD command`, with
//! Go's duration syntax (`30s`, `1m30s`, `1.5h`, `500ms`).

use std::time::Duration;

use super::commands::Request;
use super::errors::ParseErrorKind;
use super::flags::{self, spec, Kind, Spec};
use super::instruction::{CommandLine, HealthConfig, Healthcheck, Instruction};
use super::run::command_line;

type Result<T> = std::result::Result<T, ParseErrorKind>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HealthFlag {
    Interval,
    Timeout,
    StartPeriod,
    StartInterval,
    Retries,
}

const HEALTH_FLAGS: &[Spec<HealthFlag>] = &[
    spec("interval", HealthFlag::Interval, Kind::Text),
    spec("timeout", HealthFlag::Timeout, Kind::Text),
    spec("start-period", HealthFlag::StartPeriod, Kind::Text),
    spec("start-interval", HealthFlag::StartInterval, Kind::Text),
    spec("retries", HealthFlag::Retries, Kind::Text),
];

pub(super) fn parse(req: &Request) -> Result<Instruction> {
    let rest = req.rest.as_str();
    let (kind, command) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim_start()),
        None => (rest, ""),
    };
    if kind.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument("HEALTHCHECK"));
    }
    let command = command_line(command)?;
    match kind.to_ascii_uppercase().as_str() {
        // as in BuildKit, the flags of NONE are not looked at
        "NONE" if is_empty(&command) => Ok(Instruction::Healthcheck(Healthcheck::None)),
        "NONE" => Err(ParseErrorKind::HealthcheckNoneArguments),
        upper => check(req, upper, command),
    }
}

fn is_empty(command: &CommandLine) -> bool {
    match command {
        CommandLine::Exec(args) => args.is_empty(),
        CommandLine::Shell(s) => s.is_empty(),
    }
}

fn check(req: &Request, kind: &str, command: CommandLine) -> Result<Instruction> {
    let flags = flags::parse(&req.flags, HEALTH_FLAGS)?;
    if kind != "CMD" {
        return Err(ParseErrorKind::HealthcheckType(kind.to_string()));
    }
    if is_empty(&command) {
        return Err(ParseErrorKind::HealthcheckCommand);
    }
    let mut config = HealthConfig {
        command,
        interval: Duration::ZERO,
        timeout: Duration::ZERO,
        start_period: Duration::ZERO,
        start_interval: Duration::ZERO,
        retries: 0,
    };
    for (flag, value) in flags {
        let value = value.text();
        match flag {
            HealthFlag::Interval => config.interval = interval("interval", &value)?,
            HealthFlag::Timeout => config.timeout = interval("timeout", &value)?,
            HealthFlag::StartPeriod => config.start_period = interval("start-period", &value)?,
            HealthFlag::StartInterval => {
                config.start_interval = interval("start-interval", &value)?
            }
            HealthFlag::Retries => config.retries = retries(&value)?,
        }
    }
    Ok(Instruction::Healthcheck(Healthcheck::Check(config)))
}

/// Empty or zero is the default; otherwise at least a millisecond.
fn interval(flag: &'static str, value: &str) -> Result<Duration> {
    if value.is_empty() {
        return Ok(Duration::ZERO);
    }
    let nanos = go_duration(value).ok_or_else(|| ParseErrorKind::Duration(value.to_string()))?;
    match nanos {
        0 => Ok(Duration::ZERO),
        n if n < 1_000_000 => Err(ParseErrorKind::IntervalTooShort(flag)),
        n => Ok(Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))),
    }
}

fn retries(value: &str) -> Result<u32> {
    let n: i32 = value
        .parse()
        .map_err(|_| ParseErrorKind::Retries(value.to_string()))?;
    u32::try_from(n).map_err(|_| ParseErrorKind::NegativeRetries(n.into()))
}

/// Go's `time.ParseDuration` in nanoseconds: an optional sign, then
/// decimal numbers each with a unit (ns, us, µs, ms, s, m, h); `0` alone.
fn go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = duration_term(rest)?;
        total = total.checked_add(nanos)?;
        rest = after;
    }
    Some(if negative { -total } else { total })
}

/// One `<number><unit>` term and what follows it.
fn duration_term(s: &str) -> Option<(i128, &str)> {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, after) = s.split_at(int_end);
    let (frac, after) = match after.strip_prefix('.') {
        Some(a) => {
            let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            a.split_at(end)
        }
        None => ("", after),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let unit_end = after
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(after.len());
    let (unit, rest) = after.split_at(unit_end);
    let scale = unit_nanos(unit)?;
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    if !frac.is_empty() {
        let digits = frac.len().min(30) as u32;
        let f: i128 = frac[..digits as usize].parse().ok()?;
        nanos += f * scale / 10i128.pow(digits);
    }
    Some((nanos, rest))
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("0", Some(0)),
            ("30s", Some(30_000_000_000)),
            ("1m30s", Some(90_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("500ms", Some(500_000_000)),
            (".5s", Some(500_000_000)),
            ("2us", Some(2_000)),
            ("-1s", Some(-1_000_000_000)),
            ("1", None),
            ("s", None),
            ("1d", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(go_duration(s), want, "{s:?}");
        }
    }

    #[test]
    fn intervals_below_a_millisecond_are_refused() {
        assert_eq!(interval("interval", "0s"), Ok(Duration::ZERO));
        assert_eq!(interval("interval", "1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(
            interval("interval", "10us").unwrap_err().to_string(),
            "Interval \"interval\" cannot be less than 1ms"
        );
        assert_eq!(
            interval("timeout", "x").unwrap_err().to_string(),
            "time: invalid duration \"x\""
        );
    }

    #[test]
    fn retries_are_whole_and_not_negative() {
        assert_eq!(retries("3"), Ok(3));
        assert_eq!(
            retries("-1").unwrap_err().to_string(),
            "--retries cannot be negative (-1)"
        );
        assert!(retries("three").is_err());
    }
}
