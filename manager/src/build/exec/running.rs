//! The step containers of a build that runs now, so that a build can stop
//! them all at once: when one stage fails (the others are stopped, not
//! waited for) and when rbox is told to stop (SIGINT, SIGTERM…).
//!
//! A RUN step enters its container between making and starting it; once
//! the build is stopping no container enters (the step fails at once) and
//! a thread kills every container still in, again and again until all
//! have left: a container entered but not yet started when the first kill
//! came is killed once it runs. A killed step fails and removes its
//! container as a failed step does. What a `kill -9` of rbox leaves is
//! for the next build (`remove_dead_builds`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::container;
use crate::store::Store;

/// How often the containers of a stopping build are killed again.
const KILL_AGAIN: Duration = Duration::from_millis(100);

/// Why a build stops before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A step failed: the other stages stop.
    Failed,
    /// rbox got this signal.
    Signal(Signal),
}

#[derive(Debug, Default)]
struct State {
    stop: Option<Stop>,
    containers: BTreeSet<String>,
    killer: bool,
}

/// The step containers of one build (shared by its stage threads).
#[derive(Debug)]
pub struct Running {
    root: PathBuf,
    state: Mutex<State>,
}

/// A container in [`Running`]; it leaves when this is dropped.
pub struct Entered<'a> {
    running: &'a Running,
    id: String,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.running.state().containers.remove(&self.id);
    }
}

impl Running {
    /// The running containers of a build in the store at `root`.
    pub fn new(root: PathBuf) -> Arc<Running> {
        Arc::new(Running {
            root,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the build is stopping, if it is.
    pub fn stopping(&self) -> Option<Stop> {
        self.state().stop
    }

    /// Container `id` (made, not started) is in until the guard is
    /// dropped; None when the build is stopping (do not start it).
    pub fn enter(&self, id: &str) -> Option<Entered<'_>> {
        let mut st = self.state();
        if st.stop.is_some() {
            return None;
        }
        st.containers.insert(id.to_string());
        Some(Entered {
            running: self,
            id: id.to_string(),
        })
    }

    /// Stops the build: no container enters from now on, and those in are
    /// killed until they have left. The first reason is kept.
    pub fn stop(self: &Arc<Self>, why: Stop) {
        let mut st = self.state();
        st.stop.get_or_insert(why);
        if std::mem::replace(&mut st.killer, true) {
            return;
        }
        drop(st);
        let running = self.clone();
        std::thread::spawn(move || running.kill_until_empty());
    }

    fn kill_until_empty(&self) {
        let mut store = None;
        loop {
            let ids: Vec<String> = self.state().containers.iter().cloned().collect();
            if ids.is_empty() {
                return;
            }
            if store.is_none() {
                match Store::open(&self.root) {
                    Ok(s) => store = Some(s),
                    Err(e) => {
                        eprintln!("rbox: warning: stop the build's containers: {e}");
                        return;
                    }
                }
            }
            let Some(store) = &store else { return };
            for id in ids {
                // not running yet, or gone already: tried again (or left)
                let _ = container::kill(store, &id, "KILL");
            }
            std::thread::sleep(KILL_AGAIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_enters_a_stopping_build_and_the_first_reason_stays() {
        let r = Running::new(PathBuf::from("/nonexistent"));
        assert_eq!(r.stopping(), None);
        let a = r.enter("a").expect("not stopping");
        assert!(r.state().containers.contains("a"));
        drop(a);
        assert!(r.state().containers.is_empty(), "left on drop");
        r.stop(Stop::Signal(Signal::SIGINT));
        r.stop(Stop::Failed);
        assert_eq!(r.stopping(), Some(Stop::Signal(Signal::SIGINT)));
        assert!(r.enter("b").is_none());
        assert!(r.state().containers.is_empty());
    }
}
