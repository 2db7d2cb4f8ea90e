//! `--change`: Docker's Dockerfile instructions (CMD, ENTRYPOINT, ENV,
//! WORKDIR, USER, EXPOSE, LABEL, VOLUME) applied to an image config, as
//! `rbox import --change` takes them.

use oci_spec::image::Config;

use super::{ImageError, Result};

/// Apply Docker's `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR,
/// USER, EXPOSE, LABEL, VOLUME) to a config.
pub fn apply_changes(cfg: &mut Config, changes: &[String]) -> Result<()> {
    for change in changes {
        let bad = |why| ImageError::Change {
            change: change.clone(),
            why,
        };
        let (instr, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected INSTRUCTION ARGUMENTS"))?;
        let rest = rest.trim();
        let words = || -> Result<Vec<String>> {
            if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))
            } else {
                Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.set_cmd(Some(words()?));
            }
            "ENTRYPOINT" => {
                cfg.set_entrypoint(Some(words()?));
            }
            "WORKDIR" => {
                if !rest.starts_with('/') {
                    return Err(bad("WORKDIR must be an absolute path"));
                }
                cfg.set_working_dir(Some(rest.to_string()));
            }
            "USER" => {
                cfg.set_user(Some(rest.to_string()));
            }
            "EXPOSE" => {
                let mut ports = cfg.exposed_ports().clone().unwrap_or_default();
                for p in rest.split_whitespace() {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp") {
                        return Err(bad("EXPOSE needs PORT[/tcp|udp]"));
                    }
                    let p = format!("{num}/{proto}");
                    if !ports.contains(&p) {
                        ports.push(p);
                    }
                }
                cfg.set_exposed_ports(Some(ports));
            }
            "VOLUME" => {
                let paths: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))?
                } else {
                    rest.split_whitespace().map(String::from).collect()
                };
                if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/') || p == "/") {
                    return Err(bad("VOLUME needs absolute paths other than /"));
                }
                let mut vols = cfg.volumes().clone().unwrap_or_default();
                for p in paths {
                    if !vols.contains(&p) {
                        vols.push(p);
                    }
                }
                cfg.set_volumes(Some(vols));
            }
            "ENV" => {
                let (k, v) = match rest.split_once('=') {
                    Some((k, v)) if !k.contains(char::is_whitespace) => (k, v),
                    _ => rest
                        .split_once(char::is_whitespace)
                        .map(|(k, v)| (k, v.trim()))
                        .ok_or_else(|| bad("ENV needs KEY=VALUE"))?,
                };
                if k.is_empty() {
                    return Err(bad("ENV needs KEY=VALUE"));
                }
                let mut env = cfg.env().clone().unwrap_or_default();
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |p| p.0) != k);
                env.push(format!("{k}={v}"));
                cfg.set_env(Some(env));
            }
            "LABEL" => {
                let mut labels = cfg.labels().clone().unwrap_or_default();
                for pair in rest.split_whitespace() {
                    let (k, v) = pair
                        .split_once('=')
                        .filter(|(k, _)| !k.is_empty())
                        .ok_or_else(|| bad("LABEL needs KEY=VALUE pairs"))?;
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    labels.insert(k.to_string(), v.to_string());
                }
                cfg.set_labels(Some(labels));
            }
            _ => {
                return Err(bad(
                    "supported instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, VOLUME, WORKDIR, USER",
                ))
            }
        }
    }
    Ok(())
}
