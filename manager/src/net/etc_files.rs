//! The container's /etc/hosts, /etc/hostname and /etc/resolv.conf, as
//! Docker writes them: rbox keeps them in the container's directory and
//! bind-mounts them, so the image's files stay untouched.

use std::net::IpAddr;

/// `--add-host NAME:IP` (Docker also accepts `NAME=IP`).
pub fn parse_add_host(spec: &str) -> Result<(String, IpAddr), String> {
    let (name, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(|| format!("--add-host {spec:?}: expected HOST:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("--add-host {spec:?}: {ip:?} is not an IP address"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("--add-host {spec:?}: {name:?} is not a host name"));
    }
    Ok((name.to_string(), ip))
}

/// /etc/hosts: loopback names, the container's own address with its
/// hostname (and name), `--add-host` entries, other containers of the
/// network by name.
pub fn hosts(
    hostname: &str,
    own: Option<IpAddr>,
    aliases: &[&str],
    extra: &[(String, IpAddr)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = own {
        let mut names = vec![hostname];
        names.extend(aliases.iter().filter(|a| **a != hostname));
        s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    s
}

/// The lines naming the other containers of a user network, sorted by
/// name: `IP\tNAME SHORTID`.
pub fn peers(peers: &[(IpAddr, &str, &str)]) -> String {
    let mut sorted = peers.to_vec();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    sorted
        .iter()
        .map(|(ip, name, id)| format!("{ip}\t{name} {id}\n"))
        .collect()
}

/// /etc/resolv.conf from the host's: `dns` replaces the nameservers;
/// loopback nameservers (a local stub resolver such as systemd-resolved's
/// 127.0.0.53) cannot be reached from another network namespace and are
/// dropped; with none left, Google's public servers, like Docker. The
/// host network (`host_net`) keeps the host's file as it is.
pub fn resolv_conf(host: &str, dns: &[IpAddr], host_net: bool) -> String {
    if host_net && dns.is_empty() {
        return host.to_string();
    }
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let ip = words.next().and_then(|w| w.parse::<IpAddr>().ok());
                if dns.is_empty() && ip.is_some_and(|ip| !ip.is_loopback() || host_net) {
                    out.push_str(line);
                    out.push('\n');
                    servers += 1;
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for ip in dns {
        out.push_str(&format!("nameserver {ip}\n"));
        servers += 1;
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_loopback_own_address_and_extras() {
        let h = hosts(
            "abc123",
            Some("10.88.0.2".parse().unwrap()),
            &["web"],
            &[("db".into(), "10.88.0.9".parse().unwrap())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.88.0.2\tabc123 web\n"), "{h}");
        assert!(h.contains("10.88.0.9\tdb\n"), "{h}");
        assert!(!hosts("x", None, &[], &[]).contains("\tx"));
    }

    #[test]
    fn peers_by_name_and_short_id() {
        let a = "10.89.128.3".parse().unwrap();
        let b = "10.89.128.2".parse().unwrap();
        assert_eq!(
            peers(&[(a, "web", "0123456789ab"), (b, "db", "ba9876543210")]),
            "10.89.128.2\tdb ba9876543210\n10.89.128.3\tweb 0123456789ab\n"
        );
        assert_eq!(peers(&[]), "");
    }

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "# generated\nnameserver 127.0.0.53\nsearch example.org\noptions edns0\n";
        let r = resolv_conf(host, &[], false);
        assert!(!r.contains("127.0.0.53"), "{r}");
        assert!(r.contains("search example.org") && r.contains("options edns0"));
        assert!(r.contains("nameserver 8.8.8.8"), "{r}");
        let r = resolv_conf("nameserver 192.0.2.53\n", &[], false);
        assert_eq!(r, "nameserver 192.0.2.53\n");
        let r = resolv_conf(
            "nameserver 192.0.2.53\n",
            &["1.1.1.1".parse().unwrap()],
            false,
        );
        assert_eq!(r, "nameserver 1.1.1.1\n");
        assert_eq!(resolv_conf(host, &[], true), host);
    }

    #[test]
    fn add_host_forms() {
        assert_eq!(
            parse_add_host("db:10.88.0.9").unwrap(),
            ("db".into(), "10.88.0.9".parse().unwrap())
        );
        assert_eq!(
            parse_add_host("v6=[::1]").unwrap().1,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host("db:notanip")
            .unwrap_err()
            .contains("notanip"));
    }
}
