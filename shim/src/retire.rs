//! ttrpc clients are retired, not dropped, when done with.
//!
//! ttrpc's sync client closes its socket on drop while its reader thread,
//! woken by the peer's close, may be about to read that fd number once more.
//! The number is the lowest free one, so the next socket or file the process
//! opens takes it, and the dead reader eats what arrives there: in the shim,
//! the next accepted connection's request (an `rbox` waiting for its
//! container hung); in rbox, the reply on its next shim connection. A retired
//! client keeps its socket open until the reader has seen the end; the oldest
//! one goes once [`KEPT`] newer ones are kept, its reader long gone.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Retired clients kept open at most (a few fds each).
pub const KEPT: usize = 16;

static RETIRED: Mutex<VecDeque<Box<dyn Send>>> = Mutex::new(VecDeque::new());

/// Keeps `client` (anything that holds a ttrpc client) open for a while
/// instead of dropping it.
pub fn retire(client: impl Send + 'static) {
    let oldest = {
        let mut kept = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
        kept.push_back(Box::new(client));
        if kept.len() > KEPT {
            kept.pop_front()
        } else {
            None
        }
    };
    // closed outside the lock
    drop(oldest);
}

/// How many retired clients are kept now.
#[cfg(test)]
fn kept() -> usize {
    RETIRED.lock().unwrap_or_else(|e| e.into_inner()).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn retired_clients_stay_until_newer_ones_push_them_out() {
        let dropped = Arc::new(AtomicUsize::new(0));
        for _ in 0..KEPT {
            retire(Counted(dropped.clone()));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(kept(), KEPT);
        retire(Counted(dropped.clone()));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(kept(), KEPT);
    }
}
