//! `rbox logs`: a container's json-file log (read by logs.rs), picked by
//! time and by count, then followed while the container runs. The command
//! line prints the entries; `rbox serve` frames them for Docker's clients.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::error::Result;
use super::lookup::find;
use super::record::LiveStatus;
use super::recover::recover_orphans;
use super::task::live_status;
use crate::logs::{follow, read_all, Entry};
use crate::store::Store;
use crate::supervisor;

/// Which entries `logs` hands over.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only entries logged at or after this time (`--since`)
    pub since: Option<DateTime<Utc>>,
    /// Only entries logged before this time (the API's `until`)
    pub until: Option<DateTime<Utc>>,
    /// Only the last N of what is logged so far (`--tail`)
    pub tail: Option<usize>,
    /// Then the new entries, until the container stops (`-f`)
    pub follow: bool,
}

/// Where the entries go.
pub trait LogSink {
    /// Takes one entry; false when its reader is gone (nothing more is read).
    fn entry(&mut self, e: &Entry) -> bool;
    /// No entry is coming for now (asked between reads while following,
    /// and once at the end): a moment to pass on what was gathered; false
    /// when the reader is gone.
    fn idle(&mut self) -> bool {
        true
    }
}

/// How often a follower looks at the container's state.
const STATE_EVERY: Duration = Duration::from_millis(200);

/// `rbox logs`: the container's entries that `o` picks, oldest first, to
/// `sink`; with `o.follow`, then each new one until the container is no
/// longer running (or the sink's reader is gone).
pub fn logs(store: &Store, what: &str, o: &LogOptions, sink: &mut dyn LogSink) -> Result<()> {
    let c = find(store, what)?;
    let path = supervisor::log_path(store, &c.id);
    let (mut entries, end) = read_all(&path);
    let logged = |e: &Entry| DateTime::parse_from_rfc3339(&e.time).ok();
    let in_window = |e: &Entry| match logged(e) {
        Some(t) => o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t < u),
        // a line without a time is only shown when no window is asked for
        None => o.since.is_none() && o.until.is_none(),
    };
    entries.retain(in_window);
    if let Some(n) = o.tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    for e in &entries {
        if !sink.entry(e) {
            return Ok(());
        }
    }
    if !o.follow {
        sink.idle();
        return Ok(());
    }
    let sink = RefCell::new(sink);
    let reading = Cell::new(true);
    let mut last = Instant::now();
    let mut alive = live_status(&c) == LiveStatus::Running;
    follow(
        &path,
        end,
        |poll| {
            if !reading.get() || !sink.borrow_mut().idle() {
                return false;
            }
            std::thread::sleep(poll);
            // the container's state, now and then
            if last.elapsed() > STATE_EVERY {
                last = Instant::now();
                // a container whose shim was killed is ended meanwhile
                let _ = recover_orphans(store);
                alive = find(store, &c.id).is_ok_and(|c| live_status(&c) == LiveStatus::Running);
            }
            alive
        },
        |e| {
            if reading.get() && in_window(e) {
                reading.set(sink.borrow_mut().entry(e));
            }
        },
    );
    sink.into_inner().idle();
    Ok(())
}
