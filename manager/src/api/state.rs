//! What every request shares: the store's root and a pool of open stores,
//! and the way library calls run: on tokio's blocking pool, one thread per
//! call, so a slow verb (a stop's timeout, a wait, a followed log) holds
//! no other request up.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::error::ApiError;
use crate::registry::config::{Config, DEFAULT_CONFIG};
use crate::store::Store;

/// How many open stores are kept for the next requests.
const IDLE_STORES: usize = 4;

pub struct Api {
    root: PathBuf,
    /// rbox.toml (mirrors, insecure registries), read by each pull
    config: Option<PathBuf>,
    idle: Mutex<Vec<Store>>,
}

impl Api {
    pub fn new(root: &Path, config: Option<PathBuf>) -> Api {
        Api {
            root: root.to_path_buf(),
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` with a store on the blocking pool. As every rbox command
    /// does first, containers whose shim was killed are finished.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let api = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = api.take()?;
            if let Err(e) = crate::container::recover_orphans(&store) {
                eprintln!("rbox serve: warning: {e}");
            }
            let out = f(&store);
            api.give_back(store);
            out
        })
        .await?
    }

    /// Starts `f` with a store on the blocking pool and returns at once:
    /// for a streamed response, whose end `f` decides.
    pub fn spawn_blocking<F>(self: &Arc<Self>, f: F)
    where
        F: FnOnce(&Store) + Send + 'static,
    {
        let api = self.clone();
        tokio::task::spawn_blocking(move || match api.take() {
            Ok(store) => {
                f(&store);
                api.give_back(store);
            }
            Err(e) => eprintln!("rbox serve: {e}"),
        });
    }

    /// rbox.toml, as `rbox pull` reads it.
    pub fn registry_config(&self) -> Result<Config, ApiError> {
        Ok(match &self.config {
            Some(p) => Config::load(p, true)?,
            None => Config::load(Path::new(DEFAULT_CONFIG), false)?,
        })
    }

    fn take(&self) -> Result<Store, ApiError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(s) => Ok(s),
            None => Ok(Store::open(&self.root)?),
        }
    }

    fn give_back(&self, store: Store) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_STORES {
            idle.push(store);
        }
    }
}
