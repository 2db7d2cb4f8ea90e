//! The build context: the directory `rbox build DIR` names, or a tar sent
//! on stdin (`rbox build - < ctx.tar`) extracted into a temp directory,
//! with the `.dockerignore` rules that hide files from COPY and ADD, and
//! the files ADD fetches from URLs (exec/copy/remote.rs).
//!
//! The Dockerfile is read as Docker's CLI reads it: `Dockerfile` (else
//! `dockerfile`) in the context by default; `-f PATH` relative to the
//! current directory for a directory context (it may be outside the
//! context), relative to the context for a tar; `-f -` (stdin) is the
//! CLI's to read. The Dockerfile and the ignore file are read whatever
//! the ignore patterns say.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::names::random_hex;
use crate::store::TempPath;

use super::exec::copy::{extract_tar_into, CopyStepError, Remote, Tree};
use super::ignore::{Ignore, IgnoreError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("unable to prepare context: path {0:?} not found")]
    NotFound(PathBuf),
    #[error("unable to prepare context: context must be a directory: {0}")]
    NotADirectory(PathBuf),
    #[error("unable to prepare context: {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the build context on stdin: {0}")]
    Tar(#[source] CopyStepError),
    #[error("a temp directory for the build context in {path}: {source}")]
    TempDir { path: PathBuf, source: io::Error },
    #[error("failed to read dockerfile: open {path}: {source}")]
    Dockerfile { path: PathBuf, source: io::Error },
    #[error("the Dockerfile {0} is not UTF-8 text")]
    NotUtf8(PathBuf),
    #[error("the Dockerfile {0} must be inside a context sent as a tar")]
    OutsideTar(PathBuf),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
}

type Result<T> = std::result::Result<T, ContextError>;

pub struct Context {
    root: PathBuf,
    ignore: Ignore,
    /// the temp directory a tar context was extracted into
    tmp: Option<TempPath>,
    /// the files ADD fetches from http(s) URLs for this build: BuildKit's
    /// other kind of source beside the local context
    remote: Remote,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("root", &self.root)
            .field("from_tar", &self.tmp.is_some())
            .finish()
    }
}

impl Context {
    /// The directory `dir`; `dockerfile` (`-f`, relative to the current
    /// directory) may have a `<name>.dockerignore` beside it that wins
    /// over the context's `.dockerignore`.
    pub fn from_dir(dir: &Path, dockerfile: Option<&Path>) -> Result<Context> {
        let md = match fs::metadata(dir) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContextError::NotFound(dir.to_path_buf()))
            }
            Err(source) => {
                return Err(ContextError::Read {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        if !md.is_dir() {
            return Err(ContextError::NotADirectory(dir.to_path_buf()));
        }
        let root = fs::canonicalize(dir).map_err(|source| ContextError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let ignore = Ignore::for_build(&root, dockerfile)?;
        Ok(Context {
            root,
            ignore,
            tmp: None,
            remote: Remote::new(std::env::temp_dir()),
        })
    }

    /// A tar stream (plain, gzip or zstd) extracted into a new directory
    /// in `tmp_parent`, removed when the context is dropped. No entry is
    /// written outside it.
    pub fn from_tar(r: impl Read, tmp_parent: &Path) -> Result<Context> {
        let dir = tmp_parent.join(format!(".rbox-context-{}", random_hex(8)));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| ContextError::TempDir {
                path: tmp_parent.to_path_buf(),
                source,
            })?;
        let tmp = TempPath::new(dir.clone());
        extract_tar_into(&dir, r).map_err(ContextError::Tar)?;
        let ignore = Ignore::for_build(&dir, None)?;
        Ok(Context {
            root: dir,
            ignore,
            tmp: Some(tmp),
            remote: Remote::new(tmp_parent.to_path_buf()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// ADD's fetched files go into a temp dir made in `dir` (the store's
    /// `snapshots`, whose orphan sweep removes what a killed build left);
    /// by default the system's temp dir.
    pub fn fetch_into(mut self, dir: PathBuf) -> Context {
        self.remote = Remote::new(dir);
        self
    }

    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// The context as COPY sees it.
    pub fn tree(&self) -> Tree<'_> {
        Tree {
            root: &self.root,
            ignore: Some(&self.ignore),
            remote: Some(&self.remote),
        }
    }

    /// The Dockerfile's text and its name for messages: `file` (`-f`) or
    /// `Dockerfile` in the context.
    pub fn dockerfile_text(&self, file: Option<&Path>) -> Result<(String, String)> {
        let (path, name) = match file {
            None => {
                let upper = self.root.join("Dockerfile");
                let lower = self.root.join("dockerfile");
                if !upper.exists() && lower.exists() {
                    (lower, "dockerfile".to_string())
                } else {
                    (upper, "Dockerfile".to_string())
                }
            }
            Some(f) if self.tmp.is_some() => {
                let clean = super::path::clean(&format!("/{}", f.display()));
                if f.is_absolute()
                    || clean.trim_start_matches('/') != super::path::clean(&f.display().to_string())
                {
                    return Err(ContextError::OutsideTar(f.to_path_buf()));
                }
                (
                    self.root.join(clean.trim_start_matches('/')),
                    f.display().to_string(),
                )
            }
            Some(f) => (f.to_path_buf(), f.display().to_string()),
        };
        let bytes = fs::read(&path).map_err(|source| ContextError::Dockerfile {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ContextError::NotUtf8(path))?;
        Ok((text, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_directory_with_its_dockerignore_and_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(d.path().join(".dockerignore"), "*.log\n").unwrap();
        let c = Context::from_dir(d.path(), None).unwrap();
        assert!(c.ignore().excluded("x.log"));
        assert!(!c.ignore().excluded("x.txt"));
        let (text, name) = c.dockerfile_text(None).unwrap();
        assert_eq!(
            (text.as_str(), name.as_str()),
            ("FROM scratch\n", "Dockerfile")
        );
    }

    #[test]
    fn a_named_dockerfile_outside_the_context_and_its_own_ignore_file() {
        let ctx = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let df = other.path().join("build.Dockerfile");
        fs::write(&df, "FROM x\n").unwrap();
        fs::write(
            other.path().join("build.Dockerfile.dockerignore"),
            "secret\n",
        )
        .unwrap();
        fs::write(ctx.path().join(".dockerignore"), "other\n").unwrap();
        let c = Context::from_dir(ctx.path(), Some(&df)).unwrap();
        assert!(c.ignore().excluded("secret"));
        assert!(!c.ignore().excluded("other"));
        let (text, name) = c.dockerfile_text(Some(&df)).unwrap();
        assert_eq!(text, "FROM x\n");
        assert_eq!(name, df.display().to_string());
    }

    #[test]
    fn missing_things_are_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let e = Context::from_dir(&missing, None).unwrap_err();
        assert!(
            matches!(&e, ContextError::NotFound(p) if *p == missing),
            "{e}"
        );
        fs::write(d.path().join("file"), "").unwrap();
        let e = Context::from_dir(&d.path().join("file"), None).unwrap_err();
        assert!(matches!(e, ContextError::NotADirectory(_)), "{e}");
        let c = Context::from_dir(d.path(), None).unwrap();
        let e = c.dockerfile_text(None).unwrap_err();
        assert!(e.to_string().contains("Dockerfile: No such file"), "{e}");
    }

    #[test]
    fn a_tar_on_stdin_is_extracted_and_removed_with_the_context() {
        let parent = tempfile::tempdir().unwrap();
        let t = tar_of(&[
            ("Dockerfile", b"FROM scratch\nCOPY a /\n"),
            ("sub/a", b"aaa"),
            (".dockerignore", b"*.tmp\n"),
            ("build/ci.Dockerfile", b"FROM ci\n"),
        ]);
        let c = Context::from_tar(t.as_slice(), parent.path()).unwrap();
        let root = c.root().to_path_buf();
        assert!(root.starts_with(parent.path()));
        assert_eq!(fs::read(root.join("sub/a")).unwrap(), b"aaa");
        assert!(c.ignore().excluded("x.tmp"));
        assert_eq!(
            c.dockerfile_text(None).unwrap().0,
            "FROM scratch\nCOPY a /\n"
        );
        let named = c
            .dockerfile_text(Some(Path::new("build/ci.Dockerfile")))
            .unwrap();
        assert_eq!(
            named,
            ("FROM ci\n".to_string(), "build/ci.Dockerfile".to_string())
        );
        assert!(matches!(
            c.dockerfile_text(Some(Path::new("../x"))),
            Err(ContextError::OutsideTar(_))
        ));
        drop(c);
        assert!(!root.exists());
    }

    #[test]
    fn a_tar_entry_cannot_leave_the_context() {
        let parent = tempfile::tempdir().unwrap();
        // a symlink to / and a file through it: lands inside the context
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "up", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "up/escaped", &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let c = Context::from_tar(t.as_slice(), parent.path()).unwrap();
        assert!(c.root().join("escaped").is_file());
        assert!(!Path::new("/escaped").exists());
        // `..` is refused
        let mut raw = tar_of(&[("placeholder", b"x")]);
        raw[..11].copy_from_slice(b"../escaped\0");
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes()[..512].copy_from_slice(&raw[..512]);
        h.set_cksum();
        raw[..512].copy_from_slice(h.as_bytes());
        let e = Context::from_tar(raw.as_slice(), parent.path()).unwrap_err();
        assert!(e.to_string().contains("`..` is not allowed"), "{e}");
        assert!(!parent.path().join("escaped").exists());
    }
}
