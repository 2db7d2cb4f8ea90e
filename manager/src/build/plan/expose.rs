//! EXPOSE's ports as BuildKit reads them (`dispatchExpose`): `80`,
//! `53/udp`, ranges `8000-8002`, and the `[ip:]host:container` forms whose
//! container part alone counts; each becomes `port/protocol`.

use std::fmt;

use super::errors::PlanErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One exposed port, as the image config's `ExposedPorts` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub number: u16,
    pub protocol: Protocol,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        write!(f, "{}/{proto}", self.number)
    }
}

/// The ports one EXPOSE word names.
pub(super) fn ports(spec: &str) -> Result<Vec<Port>, PlanErrorKind> {
    let bad = |why: String| PlanErrorKind::Port {
        port: spec.to_string(),
        why,
    };
    let (ip, host, container) = split_parts(spec);
    let (port, protocol) = split_protocol(container).map_err(bad)?;
    check_ip(ip).map_err(bad)?;
    let (start, end) = range(port).map_err(|_| bad(format!("invalid containerPort: {port}")))?;
    if !host.is_empty() {
        let (hs, he) = range(host).map_err(|_| bad(format!("invalid hostPort: {host}")))?;
        if he - hs != end - start && end != start {
            return Err(bad(format!(
                "invalid ranges specified for container and host Ports: {port} and {host}"
            )));
        }
    }
    Ok((start..=end)
        .map(|number| Port { number, protocol })
        .collect())
}

/// `ip:host:container`, `host:container` or `container`.
fn split_parts(spec: &str) -> (&str, &str, &str) {
    match spec.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
        [c] => ("", "", c),
        [c, h] => ("", h, c),
        [c, h, ip] => (ip, h, c),
        _ => ("", "", spec),
    }
}

fn split_protocol(container: &str) -> Result<(&str, Protocol), String> {
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err("no port specified".to_string());
    }
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(format!("invalid proto: {proto}")),
    };
    Ok((port, protocol))
}

fn check_ip(ip: &str) -> Result<(), String> {
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if ip.is_empty() || bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    Err(format!("invalid IP address: {ip}"))
}

/// `80` or `8000-8010`.
fn range(s: &str) -> Result<(u16, u16), ()> {
    let (start, end) = s.split_once('-').unwrap_or((s, s));
    let start: u16 = start.parse().map_err(|_| ())?;
    let end: u16 = end.parse().map_err(|_| ())?;
    if end < start {
        return Err(());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(spec: &str) -> Vec<String> {
        ports(spec).unwrap().iter().map(Port::to_string).collect()
    }

    #[test]
    fn tutorial_ports() {
        assert_eq!(names("443"), ["443/tcp"]);
        assert_eq!(names("53/udp"), ["53/udp"]);
        assert_eq!(names("53/UDP"), ["53/udp"]);
        assert_eq!(names("132/sctp"), ["132/sctp"]);
    }

    #[test]
    fn ranges_and_host_forms() {
        assert_eq!(names("8000-8002"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(names("8080:80"), ["80/tcp"]);
        assert_eq!(names("127.0.0.1:8080:80/udp"), ["80/udp"]);
        assert_eq!(names("[::1]:8080:80"), ["80/tcp"]);
    }

    #[test]
    fn bad_ports() {
        let err = |s: &str| ports(s).unwrap_err().to_string();
        assert_eq!(
            err("80/http"),
            "invalid port: \"80/http\": invalid proto: http"
        );
        assert_eq!(err("/tcp"), "invalid port: \"/tcp\": no port specified");
        assert_eq!(
            err("http"),
            "invalid port: \"http\": invalid containerPort: http"
        );
        assert_eq!(
            err("70000"),
            "invalid port: \"70000\": invalid containerPort: 70000"
        );
        assert_eq!(
            err("90-80"),
            "invalid port: \"90-80\": invalid containerPort: 90-80"
        );
        assert_eq!(
            err("x:1:80"),
            "invalid port: \"x:1:80\": invalid IP address: x"
        );
    }
}
