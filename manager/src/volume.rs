//! Named volumes, under ROOT/volumes/NAME/_data like Docker's: `rbox
//! volume create/ls/inspect/rm/prune`, and a container's anonymous ones.

use std::fs;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::container::error::{io_err, ContainerError, Result};
use crate::container::lookup;
use crate::container::record::RunSpec;
use crate::mounts::Source;
use crate::names::{random_hex, valid_name};
use crate::store::{volume_dir, Store};

/// The container's anonymous volumes (`rm -v`, `--rm`, a failed create).
pub fn remove_anonymous(store: &Store, rs: &RunSpec) {
    for m in rs.mounts.iter().filter(|m| m.anonymous) {
        if let Source::Volume(Some(name)) = &m.source {
            let _ = remove(store, name, true);
        }
    }
}

/// Named volumes (ROOT/volumes/NAME/_data): name and where the data is.
pub fn list(store: &Store) -> Result<Vec<(String, PathBuf)>> {
    let dir = store.root().join("volumes");
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.path().join("_data")));
        }
    }
    out.sort();
    Ok(out)
}

fn path(store: &Store, name: &str) -> PathBuf {
    volume_dir(store.root(), name)
}

/// `rbox volume create [NAME]`: the name (random if none).
pub fn create(store: &Store, name: Option<&str>) -> Result<String> {
    let name = name.map(String::from).unwrap_or_else(|| random_hex(32));
    if !valid_name(&name) {
        return Err(ContainerError::BadVolumeName(name));
    }
    let p = path(store, &name);
    fs::create_dir_all(&p).map_err(io_err("create volume", &p))?;
    Ok(name)
}

/// The containers that use volume `name`.
fn users(store: &Store, name: &str) -> Result<Vec<String>> {
    Ok(lookup::list(store)?
        .into_iter()
        .filter(|c| {
            c.spec
                .mounts
                .iter()
                .any(|m| matches!(&m.source, Source::Volume(Some(n)) if n == name))
        })
        .map(|c| c.name)
        .collect())
}

/// `rbox volume rm NAME`: refused while a container uses it.
pub fn remove(store: &Store, name: &str, force: bool) -> Result<()> {
    let p = path(store, name);
    let dir = p.parent().expect("ROOT/volumes/NAME").to_path_buf();
    if !dir.is_dir() || !valid_name(name) {
        return Err(ContainerError::NoSuchVolume(name.to_string()));
    }
    let users = users(store, name)?;
    if !users.is_empty() && !force {
        return Err(ContainerError::VolumeInUse {
            name: name.to_string(),
            users: users.join(", "),
        });
    }
    fs::remove_dir_all(&dir).map_err(io_err("remove volume", &dir))
}

/// `rbox volume prune`: every volume no container uses; their names.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, _) in list(store)? {
        if users(store, &name)?.is_empty() {
            remove(store, &name, false)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// `rbox volume inspect NAME`, Docker's shape.
pub fn inspect(store: &Store, name: &str) -> Result<Value> {
    let p = path(store, name);
    if !p.is_dir() || !valid_name(name) {
        return Err(ContainerError::NoSuchVolume(name.to_string()));
    }
    Ok(json!({"Name": name, "Driver": "local", "Mountpoint": p, "Scope": "local"}))
}
