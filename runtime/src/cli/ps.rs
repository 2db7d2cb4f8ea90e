//! `ps`: the container's processes, as pids (JSON) or ps(1)'s lines.

use std::path::Path;

use anyhow::{bail, Context};

use super::ListFormat;
use crate::container;

#[derive(clap::Args)]
pub struct PsArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ListFormat,
    pub container_id: String,
    /// Options passed to ps(1) (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn ps(root: &Path, a: &PsArgs) -> anyhow::Result<()> {
    let pids = container::pids(root, &a.container_id)?;
    if a.format == ListFormat::Json {
        if !a.ps_args.is_empty() {
            bail!("ps: options cannot be combined with --format json");
        }
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("{}", only(&String::from_utf8_lossy(&out.stdout), &pids)?);
    Ok(())
}

/// ps(1)'s header and the lines of the processes in `pids` (found by its
/// PID column).
fn only(ps_output: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps output has no PID column")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_processes_are_kept() {
        let text = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 9\nroot   43    42 sh\n";
        assert_eq!(
            only(text, &[42]).unwrap(),
            "UID   PID  PPID CMD\nroot   42     1 sleep 9\n"
        );
        assert!(only("UID CMD\nroot x\n", &[1])
            .unwrap_err()
            .to_string()
            .contains("PID column"));
    }
}
