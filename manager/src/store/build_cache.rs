//! Rows of the build cache (build/cache.rs gives them meaning): a step's
//! key and the image of its stage after it.

use rusqlite::{params, OptionalExtension};

use super::db::Store;
use super::error::Result;

/// A cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    pub key: String,
    pub image_id: String,
    pub created: String,
    pub last_used: String,
}

impl Store {
    /// The image a step with this key made, when it is still stored (its
    /// use is recorded).
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        let id: Option<String> = self
            .db
            .query_row(
                "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id \
                 WHERE c.key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err())?;
        if id.is_some() {
            self.db
                .execute(
                    "UPDATE build_cache SET last_used = ?2 WHERE key = ?1",
                    params![key, chrono::Utc::now().to_rfc3339()],
                )
                .map_err(self.db_err())?;
        }
        Ok(id)
    }

    /// Records that the step `key` made `image_id` (under the write lock).
    pub fn cache_put(&self, key: &str, image_id: &str) -> Result<()> {
        let now = chrono::Utc::now().to_rfc3339();
        self.db
            .execute(
                "INSERT INTO build_cache (key, image_id, created, last_used) \
                 VALUES (?1, ?2, ?3, ?3) \
                 ON CONFLICT(key) DO UPDATE SET image_id = ?2, last_used = ?3",
                params![key, image_id, now],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// Every cache entry, oldest use first.
    pub fn cache_rows(&self) -> Result<Vec<CacheRow>> {
        let mut stmt = self
            .db
            .prepare("SELECT key, image_id, created, last_used FROM build_cache ORDER BY last_used")
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CacheRow {
                    key: r.get(0)?,
                    image_id: r.get(1)?,
                    created: r.get(2)?,
                    last_used: r.get(3)?,
                })
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.db_err())?;
        Ok(rows)
    }

    /// Forgets the entries of these keys (under the write lock).
    pub fn cache_delete(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            self.db
                .execute("DELETE FROM build_cache WHERE key = ?1", params![k])
                .map_err(self.db_err())?;
        }
        Ok(())
    }

    /// Forgets the entries whose image is `image_id` (under the write lock).
    pub fn cache_forget_image(&self, image_id: &str) -> Result<()> {
        self.db
            .execute(
                "DELETE FROM build_cache WHERE image_id = ?1",
                params![image_id],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// Whether the image is kept by the build cache.
    pub fn cached_image(&self, image_id: &str) -> Result<bool> {
        let n: i64 = self
            .db
            .query_row(
                "SELECT COUNT(*) FROM build_cache WHERE image_id = ?1",
                params![image_id],
                |r| r.get(0),
            )
            .map_err(self.db_err())?;
        Ok(n > 0)
    }
}
