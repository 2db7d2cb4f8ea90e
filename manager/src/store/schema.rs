//! The database's tables, all of them, and how a store made by an older
//! rbox is brought up to date: one migration a schema version, applied in
//! order; `PRAGMA user_version` counts those applied. A store made before
//! the versioning (version 0) has some of the tables already: the first
//! migration only makes what is missing.

use rusqlite::Connection;

/// Migration N (1-based) takes a store from version N-1 to N.
const MIGRATIONS: &[&str] = &[
    // 1: images and their layers, the containers' bundles and records, user networks
    "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- sha256 of the config blob
    manifest_digest TEXT NOT NULL,
    created TEXT NOT NULL,            -- the config's created, RFC 3339
    size INTEGER NOT NULL             -- unpacked bytes of all layers
);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,            -- docker.io/library/busybox:latest or repo@sha256:…
    repository TEXT NOT NULL,
    tag TEXT,
    digest TEXT,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,         -- sha256 of the uncompressed tar; snapshots/<hex>
    size INTEGER NOT NULL,            -- unpacked bytes
    refcount INTEGER NOT NULL         -- images using the layer
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id),
    idx INTEGER NOT NULL,             -- 0 = bottom
    diff_id TEXT NOT NULL REFERENCES layers(diff_id),
    blob_digest TEXT NOT NULL,        -- the (compressed) layer blob of the manifest
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob_digest);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    bundle TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS container_meta (
    id TEXT PRIMARY KEY REFERENCES containers(id),
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,               -- what was asked (container::RunSpec), JSON
    state TEXT NOT NULL               -- what happened (container::RunState), JSON
);
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    subnet TEXT NOT NULL,             -- IPv4 CIDR
    gateway TEXT NOT NULL,
    bridge TEXT NOT NULL UNIQUE,      -- the Linux bridge, rbox-<10 hex>
    created TEXT NOT NULL
);
",
    // 2: the build cache (rbox build)
    "
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,             -- sha256 of the parent's key, the step as planned, its inputs
    image_id TEXT NOT NULL REFERENCES images(id), -- the stage's image after the step
    created TEXT NOT NULL,
    last_used TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
",
];

/// The schema version this rbox writes.
pub const VERSION: usize = MIGRATIONS.len();

fn version(db: &Connection) -> rusqlite::Result<usize> {
    db.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Applies the migrations `db` has not had, under the write lock (another
/// rbox opening the same store meanwhile waits, then finds it done). A
/// store of a newer rbox is left as it is.
pub(super) fn migrate(db: &Connection) -> rusqlite::Result<()> {
    if version(db)? >= VERSION {
        return Ok(());
    }
    db.execute_batch("BEGIN IMMEDIATE")?;
    let applied = (|| {
        for (done, m) in MIGRATIONS.iter().enumerate().skip(version(db)?) {
            db.execute_batch(m)?;
            db.pragma_update(None, "user_version", done + 1)?;
        }
        Ok(())
    })();
    match applied {
        Ok(()) => db.execute_batch("COMMIT"),
        Err(e) => {
            let _ = db.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(db: &Connection) -> Vec<String> {
        let mut s = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_new_store_gets_every_table_and_the_version() {
        let db = Connection::open_in_memory().unwrap();
        migrate(&db).unwrap();
        assert_eq!(
            tables(&db),
            [
                "build_cache",
                "container_meta",
                "containers",
                "image_layers",
                "images",
                "layers",
                "networks",
                "refs"
            ]
        );
        assert_eq!(version(&db).unwrap(), VERSION);
        // again: nothing to do
        migrate(&db).unwrap();
        assert_eq!(version(&db).unwrap(), VERSION);
    }

    #[test]
    fn a_store_of_before_the_versioning_keeps_its_rows() {
        let db = Connection::open_in_memory().unwrap();
        // what rbox made before: the image tables at open, no version
        db.execute_batch(
            "CREATE TABLE images (id TEXT PRIMARY KEY, manifest_digest TEXT NOT NULL,
                                  created TEXT NOT NULL, size INTEGER NOT NULL);
             INSERT INTO images VALUES ('sha256:a', 'sha256:m', 'now', 1);",
        )
        .unwrap();
        assert_eq!(version(&db).unwrap(), 0);
        migrate(&db).unwrap();
        assert_eq!(version(&db).unwrap(), VERSION);
        let n: i64 = db
            .query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(tables(&db).contains(&"networks".to_string()));
    }
}
