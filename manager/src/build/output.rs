//! `rbox build -o`: the target stage's filesystem exported, as BuildKit's
//! `local` and `tar` exporters do: flattened (the layers merged, their
//! whiteouts applied), owners, modes, xattrs, hard links, symlinks and
//! device nodes kept.
//!
//! The values buildx takes: `type=local,dest=DIR`, `type=tar,dest=FILE`
//! (`dest=-`, or no dest with stdout not a terminal: the tar on stdout),
//! and the shorthands `-o DIR` (local) and `-o -` (a tar on stdout).
//!
//! Nothing half-written is left at the destination: the tar goes to a
//! temp file beside it, renamed when complete; the directory is written
//! beside it and renamed into place (into an existing, non-empty
//! directory its entries are moved in one by one, replacing files of the
//! same name, as BuildKit's local exporter writes over what is there).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::image::unpack::{unpack, UnpackError};
use crate::names::random_hex;
use crate::store::{Store, TempPath};

use super::exec::layer::{write_tar, DiffError};
use super::exec::overlay::with_rootfs;
use super::exec::ExecError;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid --output {value:?}: {why}")]
    Spec { value: String, why: String },
    #[error("--output type={kind} is not supported by rbox build: use type=local or type=tar (and -t to name an image)")]
    Unsupported { kind: String },
    #[error(
        "--output {value:?}: the tar would go to the terminal: give dest=FILE or redirect stdout"
    )]
    Terminal { value: String },
    #[error("--output dest {path}: {why}")]
    Dest { path: PathBuf, why: &'static str },
    #[error("export to {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("export to {path}: {source}")]
    Unpack { path: PathBuf, source: UnpackError },
    #[error("export: {0}")]
    Tar(#[from] DiffError),
    #[error("export: {0}")]
    Exec(#[from] Box<ExecError>),
}

type Result<T> = std::result::Result<T, OutputError>;

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `type=local`: the files into this directory
    Local(PathBuf),
    /// `type=tar`: one tar file
    Tar(PathBuf),
    /// `type=tar` to stdout
    TarStdout,
}

impl Output {
    /// One `--output` value, as buildx reads it; `stdout_is_terminal`
    /// refuses a tar that would go to a terminal.
    pub fn parse(value: &str, stdout_is_terminal: bool) -> Result<Output> {
        let spec = |why: &str| OutputError::Spec {
            value: value.to_string(),
            why: why.to_string(),
        };
        let to_stdout = || match stdout_is_terminal {
            true => Err(OutputError::Terminal {
                value: value.to_string(),
            }),
            false => Ok(Output::TarStdout),
        };
        if value.is_empty() {
            return Err(spec("empty"));
        }
        // one field that is not `type=…`: a directory, or - for stdout
        if !value.contains(',') && !value.starts_with("type=") {
            return match value {
                "-" => to_stdout(),
                dir => Ok(Output::Local(PathBuf::from(dir))),
            };
        }
        let (mut kind, mut dest, mut other) = (None, None, None);
        for field in value.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) => dest = Some(v),
                Some((k, _)) if !k.is_empty() => other = other.or(Some(k)),
                _ => return Err(spec(&format!("{field:?} is not KEY=VALUE"))),
            }
        }
        if let (Some("local" | "tar"), Some(k)) = (kind, other) {
            return Err(spec(&format!(
                "unknown key {k:?}: rbox build takes type and dest"
            )));
        }
        match (kind, dest) {
            (None, _) => Err(spec(
                "type is required (type=local,dest=DIR or type=tar,dest=FILE)",
            )),
            (Some("local"), None | Some("")) => Err(spec("type=local needs dest=DIR")),
            (Some("local"), Some("-")) => Err(spec(
                "type=local needs a directory, not -: use type=tar for stdout",
            )),
            (Some("local"), Some(d)) => Ok(Output::Local(PathBuf::from(d))),
            (Some("tar"), None | Some("-")) => to_stdout(),
            (Some("tar"), Some("")) => Err(spec("type=tar needs dest=FILE or dest=-")),
            (Some("tar"), Some(f)) => Ok(Output::Tar(PathBuf::from(f))),
            (Some(other), _) => Err(OutputError::Unsupported {
                kind: other.to_string(),
            }),
        }
    }

    /// Whether it writes to stdout (then nothing else may).
    pub fn is_stdout(&self) -> bool {
        *self == Output::TarStdout
    }

    /// What the destination is now must fit: checked before the build
    /// runs (a file where a directory goes, and the other way round).
    pub fn check(&self) -> Result<()> {
        let (path, want_dir) = match self {
            Output::Local(p) => (p, true),
            Output::Tar(p) => (p, false),
            Output::TarStdout => return Ok(()),
        };
        match fs::metadata(path) {
            Ok(md) if want_dir && !md.is_dir() => Err(OutputError::Dest {
                path: path.clone(),
                why: "is not a directory",
            }),
            Ok(md) if !want_dir && md.is_dir() => Err(OutputError::Dest {
                path: path.clone(),
                why: "is a directory: give the tar file's name",
            }),
            _ => Ok(()),
        }
    }

    /// How the progress names it.
    pub fn describe(&self) -> String {
        match self {
            Output::Local(p) => format!("client directory {}", p.display()),
            Output::Tar(p) => format!("tar file {}", p.display()),
            Output::TarStdout => "a tar on stdout".to_string(),
        }
    }
}

/// Exports the filesystem of `layers` (diff_ids, bottom first) to `out`;
/// with `epoch` (`SOURCE_DATE_EPOCH`) a tar's mtimes are clamped to it.
pub fn export(store: &Store, layers: &[String], out: &Output, epoch: Option<u64>) -> Result<()> {
    match out {
        Output::Local(dest) => {
            let tmp = temp_beside(dest, true)?;
            let tmp_path = tmp.path().to_path_buf();
            in_rootfs(store, layers, |root| copy_tree(root, &tmp_path, epoch))?;
            install_dir(tmp, dest)
        }
        Output::Tar(dest) => {
            let tmp = temp_beside(dest, false)?;
            let tmp_path = tmp.path().to_path_buf();
            in_rootfs(store, layers, |root| {
                let io = |op| {
                    let path = tmp_path.clone();
                    move |source| OutputError::Io { path, op, source }
                };
                let f = File::options()
                    .write(true)
                    .truncate(true)
                    .open(&tmp_path)
                    .map_err(io("open"))?;
                let mut w = BufWriter::new(f);
                write_tar(root, &mut w, epoch, false)?;
                let f = w.into_inner().map_err(|e| io("write")(e.into_error()))?;
                f.sync_all().map_err(io("sync"))
            })?;
            fs::rename(tmp.path(), dest).map_err(|source| OutputError::Io {
                path: dest.clone(),
                op: "rename",
                source,
            })?;
            tmp.keep();
            Ok(())
        }
        Output::TarStdout => in_rootfs(store, layers, |root| {
            let mut w = BufWriter::new(io::stdout().lock());
            write_tar(root, &mut w, epoch, false)?;
            w.flush().map_err(|source| OutputError::Io {
                path: PathBuf::from("stdout"),
                op: "write",
                source,
            })
        }),
    }
}

/// `f` on the mounted rootfs; its errors kept as they are.
fn in_rootfs(
    store: &Store,
    layers: &[String],
    f: impl FnOnce(&Path) -> Result<()> + Send,
) -> Result<()> {
    let mut inner = None;
    let r = with_rootfs(store, layers, |root| {
        inner = Some(f(root));
        Ok(())
    });
    match (r, inner) {
        (Err(e), _) => Err(OutputError::Exec(Box::new(e))),
        (Ok(()), Some(r)) => r,
        (Ok(()), None) => Ok(()),
    }
}

/// A new temp dir (or empty file) beside `dest`, its parents made:
/// `.NAME.rbox-tmp-HEX`, removed unless kept.
fn temp_beside(dest: &Path, dir: bool) -> Result<TempPath> {
    let name = dest
        .file_name()
        .ok_or_else(|| OutputError::Dest {
            path: dest.to_path_buf(),
            why: "names no file or directory",
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, op, source }
    };
    fs::create_dir_all(&parent).map_err(io("create", &parent))?;
    let tmp = parent.join(format!(".{name}.rbox-tmp-{}", random_hex(6)));
    if dir {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .map_err(io("create", &tmp))?;
    } else {
        File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
    }
    Ok(TempPath::new(tmp))
}

/// The tree at `root` copied into the empty directory `dest`: the
/// flattened tar of it (layer.rs's writer) unpacked as it is written
/// (unpack.rs keeps owners, modes, xattrs, hard links and nodes); mtimes
/// later than `epoch` clamped to it.
fn copy_tree(root: &Path, dest: &Path, epoch: Option<u64>) -> Result<()> {
    let io = |op| {
        let path = dest.to_path_buf();
        move |source| OutputError::Io { path, op, source }
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io("pipe")(io::Error::from(e)))?;
    let (read, write) = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let w = BufWriter::with_capacity(256 << 10, File::from(w));
            write_tar(root, w, epoch, false)
        });
        let read = unpack(File::from(r), dest, None);
        (read, writer.join())
    });
    // the reader's error first: the writer's is then a broken pipe
    read.map_err(|source| OutputError::Unpack {
        path: dest.to_path_buf(),
        source,
    })?;
    match write {
        Ok(r) => r.map(|_| ()).map_err(OutputError::from),
        Err(_) => Err(io("write")(io::Error::other("the tar writer panicked"))),
    }
}

/// The complete tree `tmp` put at `dest`: renamed there when `dest` is
/// missing or an empty directory, else its entries moved into `dest`.
fn install_dir(tmp: TempPath, dest: &Path) -> Result<()> {
    let empty = fs::read_dir(dest).map(|mut d| d.next().is_none());
    match empty {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Ok(true) => {}
        Ok(false) => {
            merge(tmp.path(), dest)?;
            return Ok(()); // tmp, emptied, goes on drop
        }
        Err(source) => {
            return Err(OutputError::Io {
                path: dest.to_path_buf(),
                op: "read",
                source,
            })
        }
    }
    fs::rename(tmp.path(), dest).map_err(|source| OutputError::Io {
        path: dest.to_path_buf(),
        op: "rename",
        source,
    })?;
    tmp.keep();
    Ok(())
}

/// Moves the entries of `from` into `into`: a directory onto a directory
/// merges, anything else replaces what has its name.
fn merge(from: &Path, into: &Path) -> Result<()> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, op, source }
    };
    for e in fs::read_dir(from).map_err(io("read", from))? {
        let e = e.map_err(io("read", from))?;
        let src = e.path();
        let dst = into.join(e.file_name());
        let src_dir = e.file_type().map_err(io("stat", &src))?.is_dir();
        match fs::symlink_metadata(&dst) {
            Ok(md) if md.is_dir() && src_dir => {
                merge(&src, &dst)?;
                continue;
            }
            Ok(md) if md.is_dir() => fs::remove_dir_all(&dst).map_err(io("remove", &dst))?,
            Ok(_) if src_dir => fs::remove_file(&dst).map_err(io("remove", &dst))?,
            // a file onto a file: the rename replaces it
            _ => {}
        }
        fs::rename(&src, &dst).map_err(io("rename", &dst))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> Output {
        Output::parse(v, false).unwrap()
    }

    fn err(v: &str) -> String {
        Output::parse(v, false).unwrap_err().to_string()
    }

    #[test]
    fn buildx_forms_and_shorthands() {
        assert_eq!(ok("out"), Output::Local("out".into()));
        assert_eq!(ok("./a=b/c"), Output::Local("./a=b/c".into()));
        assert_eq!(ok("-"), Output::TarStdout);
        assert_eq!(ok("type=local,dest=/x"), Output::Local("/x".into()));
        assert_eq!(ok("dest=/x,type=local"), Output::Local("/x".into()));
        assert_eq!(ok("type=tar,dest=x.tar"), Output::Tar("x.tar".into()));
        assert_eq!(ok("type=tar,dest=-"), Output::TarStdout);
        assert_eq!(ok("type=tar"), Output::TarStdout);
        assert!(ok("type=tar").is_stdout());
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        assert_eq!(
            err("type=local"),
            "invalid --output \"type=local\": type=local needs dest=DIR"
        );
        assert!(err("type=local,dest=-").contains("not -"));
        // one field is a directory, `=` or not (buildx's reading)
        assert_eq!(ok("dest=x"), Output::Local("dest=x".into()));
        assert!(err("dest=x,dest=y").contains("type is required"));
        assert!(err("type=local,dest=x,compression=gzip").contains("unknown key \"compression\""));
        assert!(err("type=local,x").contains("\"x\" is not KEY=VALUE"));
        assert!(err("").contains("empty"));
        assert_eq!(
            err("type=registry,name=x"),
            "--output type=registry is not supported by rbox build: use type=local or type=tar (and -t to name an image)"
        );
        // a tar is never written to a terminal
        for v in ["-", "type=tar", "type=tar,dest=-"] {
            let e = Output::parse(v, true).unwrap_err();
            assert!(matches!(e, OutputError::Terminal { .. }), "{v}: {e}");
        }
        assert_eq!(
            Output::parse("type=tar,dest=f", true).unwrap(),
            Output::Tar("f".into())
        );
    }

    #[test]
    fn the_destination_must_fit_before_the_build() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(Output::Local(d.path().into()).check().is_ok());
        assert!(Output::Local(d.path().join("new")).check().is_ok());
        let e = Output::Local(file.clone()).check().unwrap_err();
        assert!(e.to_string().ends_with("is not a directory"), "{e}");
        assert!(Output::Tar(file).check().is_ok());
        let e = Output::Tar(d.path().into()).check().unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn an_installed_tree_replaces_or_merges() {
        let d = tempfile::tempdir().unwrap();
        let tree = |name: &str| {
            let t = d.path().join(name);
            fs::create_dir_all(t.join("etc/sub")).unwrap();
            fs::write(t.join("etc/new"), "new").unwrap();
            fs::write(t.join("etc/sub/f"), "f").unwrap();
            fs::create_dir(t.join("was-file")).unwrap();
            fs::write(t.join("was-dir"), "now a file").unwrap();
            TempPath::new(t)
        };
        // missing: renamed into place
        let dest = d.path().join("out");
        let t = tree("t1");
        let t_path = t.path().to_path_buf();
        install_dir(t, &dest).unwrap();
        assert!(!t_path.exists());
        assert_eq!(fs::read_to_string(dest.join("etc/sub/f")).unwrap(), "f");
        // an existing tree: merged, other files kept, kinds replaced
        let dest = d.path().join("existing");
        fs::create_dir_all(dest.join("etc")).unwrap();
        fs::create_dir_all(dest.join("was-dir/deep")).unwrap();
        fs::write(dest.join("etc/old"), "old").unwrap();
        fs::write(dest.join("etc/new"), "stale").unwrap();
        fs::write(dest.join("was-file"), "x").unwrap();
        let t = tree("t2");
        let t_path = t.path().to_path_buf();
        install_dir(t, &dest).unwrap();
        assert!(!t_path.exists());
        assert_eq!(fs::read_to_string(dest.join("etc/old")).unwrap(), "old");
        assert_eq!(fs::read_to_string(dest.join("etc/new")).unwrap(), "new");
        assert!(dest.join("was-file").is_dir());
        assert_eq!(
            fs::read_to_string(dest.join("was-dir")).unwrap(),
            "now a file"
        );
    }

    #[test]
    fn a_copied_tree_keeps_modes_links_and_times() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("bin/tool"), src.join("bin/alias")).unwrap();
        std::os::unix::fs::symlink("tool", src.join("bin/link")).unwrap();
        let dest = d.path().join("dest");
        fs::create_dir(&dest).unwrap();
        copy_tree(&src, &dest, None).unwrap();
        let tool = fs::metadata(dest.join("bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o4751);
        assert_eq!(tool.nlink(), 2);
        assert_eq!(
            tool.ino(),
            fs::metadata(dest.join("bin/alias")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(dest.join("bin/link")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            tool.mtime(),
            fs::metadata(src.join("bin/tool")).unwrap().mtime()
        );
    }
}
