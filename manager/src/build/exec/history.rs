//! The `created_by` of a step's history entry, as BuildKit's
//! `dockerfile2llb` writes it (dispatch* in convert.go, through Go's fmt
//! verbs): values expanded, `ENV k=v`, `WORKDIR /abs`, `EXPOSE [443/tcp]`,
//! `VOLUME [/a /b]`, `CMD ["a" "b"]` (`%q`), `SHELL [a b]` (`%v`),
//! `HEALTHCHECK {Test:[…] Interval:30s …}` (`%+v`), COPY and ADD with
//! `--chown`/`--chmod` but not `--from`, `# buildkit` after the steps that
//! run (RUN, COPY, ADD); ONBUILD writes no entry.

use std::fmt::Write;
use std::time::Duration;

use crate::build::dockerfile::Healthcheck;
use crate::build::plan::{Op, Step};

/// The text of `step`'s history entry; None for a step that writes none.
pub fn created_by(step: &Step) -> Option<String> {
    Some(match &step.op {
        Op::Run(r) => {
            let args = if r.build_args.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = r
                    .build_args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("|{} {} ", pairs.len(), pairs.join(" "))
            };
            format!("RUN {args}{} # buildkit", r.argv.join(" "))
        }
        Op::Copy(c) => format!("{} # buildkit", c.created_by),
        Op::Workdir(dir) => format!("WORKDIR {dir}"),
        Op::Env(pairs) => format!("ENV{}", key_values(pairs)),
        Op::Label(pairs) => format!("LABEL{}", key_values(pairs)),
        Op::Arg(args) => {
            let args: Vec<String> = args
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            format!("ARG {}", args.join(" "))
        }
        Op::Expose(ports) => {
            let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
            format!("EXPOSE {}", go_list(&ports))
        }
        Op::Volume(paths) => format!("VOLUME {}", go_list(paths)),
        Op::User(u) => format!("USER {u}"),
        Op::StopSignal(s) => format!("STOPSIGNAL {s}"),
        Op::Healthcheck(h) => format!("HEALTHCHECK {}", healthcheck(h)),
        Op::Cmd(argv) => format!("CMD {}", go_quoted_list(argv)),
        Op::Entrypoint { argv, .. } => format!("ENTRYPOINT {}", go_quoted_list(argv)),
        Op::Shell(shell) => format!("SHELL {}", go_list(shell)),
        Op::Maintainer(m) => format!("MAINTAINER {m}"),
        Op::OnBuild(_) => return None,
    })
}

/// ` k=v` for each pair (Go's `KeyValuePair.String()`).
fn key_values(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

/// Go's `%v` of a `[]string`: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of a `[]string`: `["a" "b c"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.Quote`: double-quoted, with Go's escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c == ' ' || !(c.is_control() || c.is_whitespace()) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `%+v` of the image config's HealthcheckConfig.
fn healthcheck(h: &Healthcheck) -> String {
    let zero = Duration::ZERO;
    let (interval, timeout, start_period, start_interval, retries) = match h {
        Healthcheck::None => (zero, zero, zero, zero, 0),
        Healthcheck::Check(c) => (
            c.interval,
            c.timeout,
            c.start_period,
            c.start_interval,
            c.retries,
        ),
    };
    format!(
        "{{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{retries}}}",
        go_list(&h.test()),
        go_duration(interval),
        go_duration(timeout),
        go_duration(start_period),
        go_duration(start_interval),
    )
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `1m30s`, `2h0m0s`,
/// `500ms`, `1.5µs`, `10ns`.
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    if n < 1_000_000_000 {
        let (scale, unit) = match n {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", decimal(n, scale));
    }
    let secs = n / 1_000_000_000;
    let (h, m) = (secs / 3600, secs / 60 % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let s = n - (h * 3600 + m * 60) * 1_000_000_000;
    let _ = write!(out, "{}s", decimal(s, 1_000_000_000));
    out
}

/// `n / scale` with the fraction's trailing zeros dropped.
fn decimal(n: u128, scale: u128) -> String {
    let (whole, rest) = (n / scale, n % scale);
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::dockerfile::{CommandLine, HealthConfig};
    use crate::build::plan::{Port, Protocol};

    fn step(op: Op) -> Step {
        Step {
            line: 1,
            source: String::new(),
            on_build: false,
            op,
        }
    }

    fn text(op: Op) -> String {
        created_by(&step(op)).expect("an entry")
    }

    #[test]
    fn config_steps_read_as_buildkit_writes_them() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            text(Op::Env(vec![kv("PATH", "/bin:/tmp"), kv("G", "a b")])),
            "ENV PATH=/bin:/tmp G=a b"
        );
        assert_eq!(
            text(Op::Label(vec![kv("multi word", "a b")])),
            "LABEL multi word=a b"
        );
        assert_eq!(
            text(Op::Arg(vec![
                ("A".into(), None),
                ("B".into(), Some("1".into()))
            ])),
            "ARG A B=1"
        );
        assert_eq!(text(Op::Workdir("/srv/app".into())), "WORKDIR /srv/app");
        let p = |number, protocol| Port { number, protocol };
        assert_eq!(
            text(Op::Expose(vec![
                p(53, Protocol::Udp),
                p(8080, Protocol::Tcp)
            ])),
            "EXPOSE [53/udp 8080/tcp]"
        );
        assert_eq!(
            text(Op::Volume(s(&["/var/log", "/cache"]))),
            "VOLUME [/var/log /cache]"
        );
        assert_eq!(
            text(Op::Cmd(s(&["/bin/sh", "-c", "echo \"hi\"\tthere"]))),
            r#"CMD ["/bin/sh" "-c" "echo \"hi\"\tthere"]"#
        );
        assert_eq!(
            text(Op::Entrypoint {
                argv: s(&["/bin/echo"]),
                clears_cmd: true
            }),
            r#"ENTRYPOINT ["/bin/echo"]"#
        );
        assert_eq!(
            text(Op::Shell(s(&["/bin/sh", "-e", "-c"]))),
            "SHELL [/bin/sh -e -c]"
        );
        assert_eq!(created_by(&step(Op::OnBuild("RUN x".into()))), None);
    }

    #[test]
    fn healthchecks_are_go_structs() {
        let check = Healthcheck::Check(HealthConfig {
            command: CommandLine::Shell("wget -q -O- http://localhost/ || exit 1".into()),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(3),
            start_period: Duration::from_secs(5),
            start_interval: Duration::ZERO,
            retries: 2,
        });
        assert_eq!(
            text(Op::Healthcheck(check)),
            "HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] \
             Interval:30s Timeout:3s StartPeriod:5s StartInterval:0s Retries:2}"
        );
        assert_eq!(
            text(Op::Healthcheck(Healthcheck::None)),
            "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}"
        );
    }

    #[test]
    fn durations_and_quotes_as_go_prints_them() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(10), "10ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::from_millis(3_723_250), "1h2m3.25s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
        assert_eq!(
            go_quote("a\\b\u{1}\u{7f}é\u{a0}"),
            "\"a\\\\b\\x01\\x7fé\\u00a0\""
        );
    }
}
