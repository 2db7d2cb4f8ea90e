//! `events`: stats (and OOM) events of a container as JSON lines.

use std::path::Path;
use std::time::Duration;

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Print the stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    pub container_id: String,
}

pub fn events(root: &Path, a: &EventsArgs) -> anyhow::Result<()> {
    crate::update::events(root, &a.container_id, a.stats, a.interval)?;
    Ok(())
}

/// "5s", "500ms", "1m", or plain seconds.
fn parse_interval(v: &str) -> Result<Duration, String> {
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let secs: f64 = num
        .parse()
        .map_err(|_| format!("invalid interval {v:?} (e.g. 5s, 500ms)"))?;
    if secs <= 0.0 {
        return Err(format!("interval {v:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs * mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_like_runc() {
        assert_eq!(parse_interval("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0s").unwrap_err().contains("positive"));
        assert!(parse_interval("soon").unwrap_err().contains("soon"));
    }
}
