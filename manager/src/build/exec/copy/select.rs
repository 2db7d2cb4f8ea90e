//! Which files a COPY source names in a tree (the build context, or the
//! rootfs of a stage or image), as BuildKit's file backend finds them:
//! the source cleaned against the tree's root (`../x` is `/x`), wildcards
//! matched one component at a time with Go's `filepath.Match`, a symlink
//! the source itself names followed inside the tree, a directory taken
//! with everything below it (symlinks in it kept as symlinks), and what
//! `.dockerignore` and `--exclude` leave out invisible.
//!
//! Pure reading: no root needed, testable on plain directories.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::build::ignore::{DirMatch, Ignore, Verdict};
use crate::build::path;
use crate::rootfs::resolve_in_root;

use super::error::CopyStepError;
use super::glob;

type Result<T> = std::result::Result<T, CopyStepError>;

/// A tree sources are read from.
#[derive(Clone, Copy)]
pub struct Tree<'a> {
    pub root: &'a Path,
    /// the build context's `.dockerignore`; None for a stage's rootfs
    pub ignore: Option<&'a Ignore>,
    /// where ADD's URLs are fetched (the build context's); None for a
    /// stage's rootfs
    pub remote: Option<&'a super::remote::Remote>,
}

/// One path a source matched.
#[derive(Debug)]
pub struct Match {
    /// the path as matched, relative to the root (`/`-separated, "" for
    /// the root): its base name names a copied file
    pub path: String,
    /// where it leads, symlinks followed inside the tree
    pub resolved: PathBuf,
    /// the top entry (rel "") and, for a directory, all that is copied
    /// below it in walk order (a directory before its entries)
    pub entries: Vec<Entry>,
}

impl Match {
    pub fn is_dir(&self) -> bool {
        self.entries[0].md.is_dir()
    }

    /// The base name of the matched path (`.` for the root).
    pub fn name(&self) -> &str {
        match self.path.rsplit_once('/') {
            Some((_, n)) => n,
            None if self.path.is_empty() => ".",
            None => &self.path,
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    /// relative to the match ("" for the match itself)
    pub rel: PathBuf,
    pub md: Metadata,
    /// a symlink's target
    pub link: Option<PathBuf>,
}

/// The paths `source` matches in `tree`, with what is copied of each.
/// `excludes` are `--exclude`'s patterns. A source without wildcards must
/// exist; one with wildcards may match nothing (BuildKit's
/// `AllowEmptyWildcard`), but the directories before its first wildcard
/// must exist.
pub fn select(tree: Tree<'_>, source: &str, excludes: &Ignore) -> Result<Vec<Match>> {
    let clean = path::clean(&format!("/{source}"));
    let rel = clean.trim_start_matches('/');
    let wild = glob::has_wildcards(rel);
    let not_found = || CopyStepError::NotFound {
        written: source.to_string(),
        path: clean.clone(),
    };
    let mut out = Vec::new();
    for p in expand(tree, rel, &not_found)? {
        let Some(m) = matched(tree, &p, excludes, wild)? else {
            if wild {
                continue;
            }
            return Err(not_found());
        };
        out.push(m);
    }
    Ok(out)
}

/// The paths a source with wildcards names, in name order; a source
/// without them names itself.
fn expand(tree: Tree<'_>, rel: &str, not_found: &dyn Fn() -> CopyStepError) -> Result<Vec<String>> {
    let mut paths = vec![String::new()];
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        if !glob::has_wildcards(comp) {
            let lit = glob::unescape(comp);
            for p in &mut paths {
                *p = join(p, &lit);
            }
            continue;
        }
        let mut next = Vec::new();
        for p in &paths {
            let Some(dir) = follow(tree.root, p) else {
                return Err(not_found());
            };
            let mut names = match read_names(&tree.root.join(&dir)) {
                Ok(n) => n,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR)) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
                Err(source) => {
                    return Err(CopyStepError::Read {
                        path: tree.root.join(&dir),
                        source,
                    })
                }
            };
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for n in names {
                let name = n.to_string_lossy();
                match glob::matches(comp, &name) {
                    None => return Err(CopyStepError::BadPattern(rel.to_string())),
                    Some(true) => next.push(join(p, &name)),
                    Some(false) => {}
                }
            }
        }
        paths = next;
    }
    Ok(paths)
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

fn read_names(dir: &Path) -> io::Result<Vec<OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Where `rel` leads inside `root` (relative to it), if it exists.
pub fn follow(root: &Path, rel: &str) -> Option<PathBuf> {
    let resolved = resolve_in_root(root, Path::new(rel)).ok()?;
    let resolved = resolved.strip_prefix("/").ok()?.to_path_buf();
    let md = fs::symlink_metadata(root.join(&resolved)).ok()?;
    (!md.file_type().is_symlink()).then_some(resolved)
}

/// The match of path `p`: None when it does not exist or is hidden.
fn matched(tree: Tree<'_>, p: &str, excludes: &Ignore, wild: bool) -> Result<Option<Match>> {
    let Some(resolved) = follow(tree.root, p) else {
        return Ok(None);
    };
    let abs = tree.root.join(&resolved);
    let md = fs::symlink_metadata(&abs).map_err(|source| CopyStepError::Read {
        path: abs.clone(),
        source,
    })?;
    let resolved_s = resolved.to_string_lossy().into_owned();
    if let Some(ig) = tree.ignore {
        // the name as written and where it leads are both in the context
        if ig.excluded(p) && !md.is_dir() || ig.excluded(&resolved_s) && !md.is_dir() {
            return Ok(None);
        }
    }
    let name = p.rsplit('/').next().unwrap_or(p);
    if (wild || !md.is_dir()) && !name.is_empty() && excludes.excluded(name) {
        return Ok(None);
    }
    let mut entries = vec![Entry {
        rel: PathBuf::new(),
        link: None,
        md,
    }];
    if entries[0].md.is_dir() {
        let hidden = tree.ignore.is_some_and(|ig| ig.excluded(&resolved_s));
        let dm = match tree.ignore {
            Some(ig) if !resolved_s.is_empty() => {
                ig.check_in(&resolved_s, true, &DirMatch::default()).1
            }
            _ => DirMatch::default(),
        };
        let mut w = Walk {
            root: tree.root,
            ignore: tree.ignore,
            excludes,
            out: &mut entries,
        };
        w.dir(&resolved, Path::new(""), &dm, &DirMatch::default())?;
        // an excluded directory is there only for what is included below it
        if hidden && entries.len() == 1 {
            return Ok(None);
        }
    }
    Ok(Some(Match {
        path: p.to_string(),
        resolved,
        entries,
    }))
}

struct Walk<'a> {
    root: &'a Path,
    ignore: Option<&'a Ignore>,
    excludes: &'a Ignore,
    out: &'a mut Vec<Entry>,
}

impl Walk<'_> {
    /// The entries below `top/rel`, in name order, each directory before
    /// its own; `ig` and `ex` are the matches of `.dockerignore` and
    /// `--exclude` for the directory.
    fn dir(&mut self, top: &Path, rel: &Path, ig: &DirMatch, ex: &DirMatch) -> Result<()> {
        let abs = self.root.join(top).join(rel);
        let mut names = read_names(&abs).map_err(|source| CopyStepError::Read {
            path: abs.clone(),
            source,
        })?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let child = rel.join(&n);
            let p = abs.join(&n);
            let md = fs::symlink_metadata(&p).map_err(|source| CopyStepError::Read {
                path: p.clone(),
                source,
            })?;
            let is_dir = md.is_dir();
            let (v1, ig_child) = match self.ignore {
                Some(i) => i.check_in(&top.join(&child).to_string_lossy(), is_dir, ig),
                None => (Verdict::Include, DirMatch::default()),
            };
            let (v2, ex_child) = if self.excludes.is_empty() {
                (Verdict::Include, DirMatch::default())
            } else {
                self.excludes.check_in(&child.to_string_lossy(), is_dir, ex)
            };
            if v1 == Verdict::SkipTree || v2 == Verdict::SkipTree {
                continue;
            }
            let included = v1 == Verdict::Include && v2 == Verdict::Include;
            if !included && !is_dir {
                continue;
            }
            let link = if md.file_type().is_symlink() {
                Some(fs::read_link(&p).map_err(|source| CopyStepError::Read {
                    path: p.clone(),
                    source,
                })?)
            } else {
                None
            };
            let at = self.out.len();
            self.out.push(Entry {
                rel: child.clone(),
                md,
                link,
            });
            if is_dir {
                self.dir(top, &child, &ig_child, &ex_child)?;
                // an excluded directory is kept only as the parent of
                // something included
                if !included && self.out.len() == at + 1 {
                    self.out.pop();
                }
            }
        }
        Ok(())
    }
}
