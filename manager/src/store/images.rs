//! Rows of images, their names (refs) and their layers.

use rusqlite::{params, OptionalExtension};

use super::db::Store;
use super::error::{Result, StoreError};
use crate::reference::Reference;

/// An image row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub manifest_digest: String,
    pub created: String,
    pub size: u64,
}

/// A reference row: `repo:tag` or `repo@digest` naming an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRow {
    pub name: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub image_id: String,
}

/// A layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub diff_id: String,
    pub blob_digest: String,
    pub size: u64,
}

/// A new image's row (its layers: `insert_image`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage<'a> {
    pub id: &'a str,
    pub manifest_digest: &'a str,
    pub created: &'a str,
    pub size: u64,
}

impl Store {
    /// Resolve what the user typed: a reference (`busybox`, `app:1`,
    /// `repo@sha256:…`), a full image id (`sha256:…`) or an id prefix.
    pub fn resolve(&self, what: &str) -> Result<ImageRow> {
        let not_found = || StoreError::NoSuchImage(what.to_string());
        if let Some(h) = what.strip_prefix("sha256:") {
            return self.by_id_prefix(h, what)?.ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse(what) {
            if let Some(id) = self.ref_image(&r.to_string())? {
                return self.image(&id)?.ok_or_else(not_found);
            }
        }
        let is_hex = !what.is_empty() && what.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            if let Some(img) = self.by_id_prefix(&what.to_ascii_lowercase(), what)? {
                return Ok(img);
            }
        }
        Err(not_found())
    }

    fn by_id_prefix(&self, hex_prefix: &str, what: &str) -> Result<Option<ImageRow>> {
        let mut stmt = self
            .db
            .prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1 LIMIT 2")
            .map_err(self.db_err())?;
        let ids: Vec<String> = stmt
            .query_map(params![hex_prefix, hex_prefix.len()], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.db_err())?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => self.image(id),
            _ => Err(StoreError::Ambiguous(what.to_string())),
        }
    }

    pub fn ref_image(&self, name: &str) -> Result<Option<String>> {
        self.db
            .query_row("SELECT image_id FROM refs WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.db_err())
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        self.db
            .query_row(
                "SELECT id, manifest_digest, created, size FROM images WHERE id = ?1",
                [id],
                image_row,
            )
            .optional()
            .map_err(self.db_err())
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, manifest_digest, created, size FROM images ORDER BY created DESC, id",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([], image_row)
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The references of one image, tags first.
    pub fn refs(&self, image_id: &str) -> Result<Vec<RefRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT name, repository, tag, digest, image_id FROM refs WHERE image_id = ?1
                 ORDER BY tag IS NULL, name",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| {
                Ok(RefRow {
                    name: r.get(0)?,
                    repository: r.get(1)?,
                    tag: r.get(2)?,
                    digest: r.get(3)?,
                    image_id: r.get(4)?,
                })
            })
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The layers of one image, bottom first.
    pub fn layers(&self, image_id: &str) -> Result<Vec<LayerRow>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT il.diff_id, il.blob_digest, l.size FROM image_layers il
                 JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id = ?1 ORDER BY il.idx",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([image_id], |r| {
                Ok(LayerRow {
                    diff_id: r.get(0)?,
                    blob_digest: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The unpacked size of a layer the store has.
    pub fn layer_size(&self, diff_id: &str) -> Result<Option<u64>> {
        self.db
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|s| s as u64))
            .map_err(self.db_err())
    }

    pub fn has_layer(&self, diff_id: &str) -> Result<bool> {
        self.db
            .query_row("SELECT 1 FROM layers WHERE diff_id = ?1", [diff_id], |_| {
                Ok(())
            })
            .optional()
            .map(|o| o.is_some())
            .map_err(self.db_err())
    }

    /// Another image uses the layer `diff_id` the store has.
    pub fn add_layer_user(&self, diff_id: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE layers SET refcount = refcount + 1 WHERE diff_id = ?1",
                [diff_id],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// A layer new to the store, used by one image (its snapshot is in
    /// place).
    pub fn insert_layer(&self, diff_id: &str, size: u64) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO layers (diff_id, size, refcount) VALUES (?1, ?2, 1)",
                params![diff_id, size as i64],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    /// An image and its layers, bottom first: (diff_id, blob digest)
    /// pairs, each layer already a row.
    pub fn insert_image(&self, image: &NewImage<'_>, layers: &[(&str, &str)]) -> Result<()> {
        let db_err = self.db_err();
        self.db
            .execute(
                "INSERT INTO images (id, manifest_digest, created, size) VALUES (?1, ?2, ?3, ?4)",
                params![
                    image.id,
                    image.manifest_digest,
                    image.created,
                    image.size as i64
                ],
            )
            .map_err(&db_err)?;
        for (i, (diff_id, blob_digest)) in layers.iter().enumerate() {
            self.db
                .execute(
                    "INSERT INTO image_layers (image_id, idx, diff_id, blob_digest) VALUES (?1, ?2, ?3, ?4)",
                    params![image.id, i as i64, diff_id, blob_digest],
                )
                .map_err(&db_err)?;
        }
        Ok(())
    }

    /// `r` names `image_id` (instead of what it named before).
    pub fn put_ref(&self, r: &Reference, image_id: &str) -> Result<()> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO refs (name, repository, tag, digest, image_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.to_string(), r.repository(), r.tag(), r.digest(), image_id],
            )
            .map_err(self.db_err())?;
        Ok(())
    }

    pub fn delete_ref(&self, name: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM refs WHERE name = ?1", [name])
            .map_err(self.db_err())?;
        Ok(())
    }

    /// The image's row and its layer list go (its layers' refcounts are
    /// the caller's: `drop_layer_user`).
    pub fn delete_image(&self, image_id: &str) -> Result<()> {
        let db_err = self.db_err();
        self.db
            .execute("DELETE FROM image_layers WHERE image_id = ?1", [image_id])
            .map_err(&db_err)?;
        self.db
            .execute("DELETE FROM images WHERE id = ?1", [image_id])
            .map_err(&db_err)?;
        Ok(())
    }

    /// One image fewer uses the layer: how many still do.
    pub fn drop_layer_user(&self, diff_id: &str) -> Result<i64> {
        self.db
            .query_row(
                "UPDATE layers SET refcount = refcount - 1 WHERE diff_id = ?1 RETURNING refcount",
                [diff_id],
                |r| r.get(0),
            )
            .map_err(self.db_err())
    }

    pub fn delete_layer(&self, diff_id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM layers WHERE diff_id = ?1", [diff_id])
            .map_err(self.db_err())?;
        Ok(())
    }

    /// How many image layers are the blob `blob_digest`.
    pub fn blob_users(&self, blob_digest: &str) -> Result<i64> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM image_layers WHERE blob_digest = ?1",
                [blob_digest],
                |r| r.get(0),
            )
            .map_err(self.db_err())
    }

    /// Every blob recorded for the layer `diff_id` (images may have it
    /// compressed differently).
    pub fn layer_blobs(&self, diff_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare("SELECT DISTINCT blob_digest FROM image_layers WHERE diff_id = ?1")
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([diff_id], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(self.db_err());
        rows
    }

    /// The repositories of the images that hold the blob `digest` (as a
    /// layer, or as their config), by name.
    pub fn repositories_with_blob(&self, digest: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT DISTINCT rf.repository FROM refs rf WHERE rf.image_id IN (
                     SELECT image_id FROM image_layers WHERE blob_digest = ?1
                     UNION SELECT id FROM images WHERE id = ?1)
                 ORDER BY rf.repository",
            )
            .map_err(self.db_err())?;
        let rows = stmt
            .query_map([digest], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.db_err());
        rows
    }
}

fn image_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        manifest_digest: r.get(1)?,
        created: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
    })
}
