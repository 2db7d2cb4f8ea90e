//! The content a COPY or ADD step copies, as one digest: the input of its
//! cache key. For every selected path (after `.dockerignore` and
//! `--exclude`): its path relative to the context, its type, its
//! permission bits, and its content's sha256 (a symlink's target); never
//! mtimes or owners, so the same tree anywhere gives the same digest and
//! one changed byte another. Files are hashed by two threads.
//!
//! For `--from`, the layers are content-addressed already: their diff_ids
//! and the sources are the digest.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::build::ignore::Ignore;
use crate::build::plan::{CopyKind, CopySource, CopyStep};

use super::super::error::Result;
use super::error::CopyStepError;
use super::select::{self, Tree};
use super::CopyFrom;

/// `sha256:<hex>` of what `step` would copy from `from`. A source that
/// does not exist is an error, as BuildKit's checksum of it is.
pub fn sources_digest(step: &CopyStep, from: CopyFrom<'_>) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("{:?}\0{:?}\0", step.kind, step.excludes));
    match from {
        CopyFrom::Layers(l) => {
            h.update(b"layers\0");
            for d in &l.diff_ids {
                h.update(d.as_bytes());
                h.update(b"\0");
            }
            h.update(format!("{:?}", step.sources));
        }
        CopyFrom::Context(ctx) => tree_digest(&mut h, step, ctx.tree())?,
    }
    Ok(format!("sha256:{:x}", h.finalize()))
}

/// A line per entry; files' lines get their content digest.
fn tree_digest(h: &mut Sha256, step: &CopyStep, tree: Tree<'_>) -> Result<()> {
    let excludes = Ignore::new(&step.excludes, "--exclude")
        .map_err(|_| CopyStepError::BadPattern(step.excludes.join(" ")))?;
    let parents = matches!(step.kind, CopyKind::Copy { parents: true });
    // (line, the file whose content ends it)
    let mut lines: Vec<(String, Option<PathBuf>)> = Vec::new();
    for s in &step.sources {
        match s {
            CopySource::Path(p) => {
                let p = p.replacen("/./", "/", usize::from(parents));
                lines.push((format!("source {p:?}\n"), None));
                for m in select::select(tree, &p, &excludes)? {
                    let top = tree.root.join(&m.resolved);
                    for e in &m.entries {
                        let path = if e.rel.as_os_str().is_empty() {
                            m.path.clone()
                        } else {
                            format!("{}/{}", m.path, e.rel.display())
                        };
                        let ft = e.md.file_type();
                        let kind = if ft.is_dir() {
                            'd'
                        } else if ft.is_symlink() {
                            'l'
                        } else if ft.is_file() {
                            'f'
                        } else if ft.is_fifo() {
                            'p'
                        } else {
                            'c'
                        };
                        let mut line = format!("{path:?} {kind} {:o}", e.md.mode() & 0o7777);
                        if let Some(l) = &e.link {
                            line.push_str(&format!(" -> {:?}", l));
                        }
                        if ft.is_char_device() || ft.is_block_device() {
                            line.push_str(&format!(" {}", e.md.rdev()));
                        }
                        let file = ft.is_file().then(|| match e.rel.as_os_str().is_empty() {
                            true => top.clone(),
                            false => top.join(&e.rel),
                        });
                        lines.push((line, file));
                    }
                }
            }
            CopySource::Url(u) => lines.push((url_line(step, tree, u)?, None)),
            CopySource::Inline { name, content } => {
                let d = Sha256::digest(content.as_bytes());
                lines.push((format!("inline {name:?} {d:x}\n"), None));
            }
        }
    }
    let files: Vec<&Path> = lines.iter().filter_map(|(_, f)| f.as_deref()).collect();
    let digests = hash_files(&files)?;
    let mut digests = digests.into_iter();
    for (line, file) in &lines {
        h.update(line.as_bytes());
        if file.is_some() {
            h.update(b" ");
            h.update(digests.next().unwrap_or_default());
            h.update(b"\n");
        }
    }
    Ok(())
}

/// An ADD URL's part of the key (BuildKit's http source's): its checksum
/// when given (nothing is fetched: a cached step needs nothing of the
/// server), else the content's digest and `Last-Modified` (the file's
/// mtime in the layer), fetched now.
fn url_line(step: &CopyStep, tree: Tree<'_>, url: &str) -> Result<String> {
    if let CopyKind::Add {
        checksum: Some(sum),
        ..
    } = &step.kind
    {
        return Ok(format!("url {url:?} checksum {sum}\n"));
    }
    let remote = tree.remote.ok_or_else(|| CopyStepError::Url {
        url: url.to_string(),
        why: "no URL can be fetched here".into(),
    })?;
    let f = remote.fetch(url, None)?;
    Ok(format!("url {url:?} {} {:?}\n", f.digest, f.last_modified))
}

/// The sha256 of each file, in order, two threads each taking every
/// other file.
fn hash_files(files: &[&Path]) -> Result<Vec<[u8; 32]>> {
    let half = |start: usize| -> std::result::Result<Vec<[u8; 32]>, CopyStepError> {
        files
            .iter()
            .skip(start)
            .step_by(2)
            .map(|f| hash_file(f))
            .collect()
    };
    let (even, odd) = std::thread::scope(|s| {
        let t = s.spawn(|| half(1));
        let even = half(0);
        (
            even,
            t.join().unwrap_or(Err(CopyStepError::Read {
                path: PathBuf::from("the hashing thread"),
                source: io::Error::other("panicked"),
            })),
        )
    });
    let (even, odd) = (even?, odd?);
    let mut out = Vec::with_capacity(files.len());
    let mut o = odd.into_iter();
    for e in even {
        out.push(e);
        if let Some(x) = o.next() {
            out.push(x);
        }
    }
    Ok(out)
}

fn hash_file(p: &Path) -> std::result::Result<[u8; 32], CopyStepError> {
    let err = |source| CopyStepError::Read {
        path: p.to_path_buf(),
        source,
    };
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(err)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(err)?;
    Ok(h.finalize().into())
}
