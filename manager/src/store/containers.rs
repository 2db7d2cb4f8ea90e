//! Rows of containers: the bundle made from an image (`containers`) and
//! the container's record (`container_meta`: its name, what was asked and
//! what happened, as JSON that container::record reads).

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::db::Store;
use super::error::Result;

/// A container's rows as stored; `spec` and `state` are JSON.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub bundle: PathBuf,
    pub spec: String,
    pub state: String,
}

impl Store {
    /// Every container with a record, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT c.id, m.name, c.image_id, c.created, c.bundle, m.spec, m.state \
                 FROM containers c JOIN container_meta m ON m.id = c.id \
                 ORDER BY c.created DESC",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ContainerRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    image_id: r.get(2)?,
                    created: r.get(3)?,
                    bundle: PathBuf::from(r.get::<_, String>(4)?),
                    spec: r.get(5)?,
                    state: r.get(6)?,
                })
            })
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// Containers (bundles) made from an image.
    pub fn containers_of(&self, image_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare("SELECT id FROM containers WHERE image_id = ?1 ORDER BY id")
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The bundle of container `id` made from image `image_id` (a
    /// constraint error if the id is taken: `StoreError::is_constraint`).
    pub fn insert_bundle(
        &self,
        id: &str,
        image_id: &str,
        bundle: &Path,
        created: &str,
    ) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO containers (id, image_id, bundle, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, image_id, bundle.to_string_lossy(), created],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// Where the bundle of container `id` is, if it has one.
    pub fn bundle_of(&self, id: &str) -> Result<Option<PathBuf>> {
        self.db
            .query_row("SELECT bundle FROM containers WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|b| b.map(PathBuf::from))
            .map_err(self.db_err())
    }

    pub fn delete_bundle(&self, id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(self.db_err())?;
        Ok(())
    }

    /// The record of the container of bundle `id` (a constraint error if
    /// the name is taken: `StoreError::is_constraint`).
    pub fn insert_record(&self, id: &str, name: &str, spec: &str, state: &str) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO container_meta (id, name, spec, state) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, spec, state],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    pub fn save_state(&self, id: &str, state: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE container_meta SET state = ?1 WHERE id = ?2",
                params![state, id],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// Replaces the state of container `id` only if it is still recorded
    /// as running under the shim `shim_pid`: whether it did (of several
    /// rbox processes, one wins).
    pub fn replace_running_state(
        &self,
        id: &str,
        state: &str,
        shim_pid: Option<i32>,
    ) -> Result<bool> {
        let changed = self
            .db
            .execute(
                "UPDATE container_meta SET state = ?1 WHERE id = ?2 \
                 AND json_extract(state, '$.status') = 'running' \
                 AND json_extract(state, '$.shim.pid') IS ?3",
                params![state, id, shim_pid],
            )
            .map_err(self.db_err())?;
        Ok(changed == 1)
    }

    /// A new name (a constraint error if it is taken).
    pub fn rename_record(&self, id: &str, name: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE container_meta SET name = ?1 WHERE id = ?2",
                params![name, id],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    pub fn delete_record(&self, id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM container_meta WHERE id = ?1", [id])
            .map_err(self.db_err())?;
        Ok(())
    }
}
