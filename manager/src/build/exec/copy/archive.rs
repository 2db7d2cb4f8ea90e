//! ADD's local archives: a tar, plain or compressed (gzip, zstd), found by
//! its content as Docker does (the compression by its magic bytes, then a
//! valid tar header), extracted into the destination directory with the
//! archive's owners (or `--chown`'s), modes (`--chmod` is not applied to
//! them, as in BuildKit) and mtimes; a hard link entry's owner and mode
//! are given to the file it names, as Docker's archive package does.
//! Every entry is made below the destination: `..` in a name is refused, a
//! symlink on the way resolves inside the root.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Component, Path, PathBuf};

use crate::image::unpack::decompress;

use super::error::CopyStepError;
use super::target::{split, Meta, Target};

type Result<T> = std::result::Result<T, CopyStepError>;

const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// The tar stream of `path` if it is an archive ADD extracts.
pub fn open(path: &Path) -> Result<Option<Box<dyn Read>>> {
    let read_err = |source| CopyStepError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = BufReader::new(File::open(path).map_err(read_err)?);
    let head = io::BufRead::fill_buf(&mut f).map_err(read_err)?;
    if head.starts_with(BZIP2_MAGIC) || head.starts_with(XZ_MAGIC) {
        return Err(CopyStepError::Archive {
            entry: path.display().to_string(),
            why: "bzip2 and xz archives are not supported by rbox build: use a plain, gzip or zstd tar, or ADD --unpack=false",
        });
    }
    let mut r = decompress(f).map_err(read_err)?;
    let mut block = Vec::with_capacity(512);
    // a compressed stream that is no valid compressed data is a plain file
    if (&mut r).take(512).read_to_end(&mut block).is_err() || !is_tar_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(block).chain(r))))
}

/// A full first block whose checksum is right (and not all zeros).
pub fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 || b.iter().all(|&x| x == 0) {
        return false;
    }
    let field = String::from_utf8_lossy(&b[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = b[..512]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(x)
            }
        })
        .sum();
    sum == want
}

/// Extracts the tar stream `r` into the directory `dir` of the target
/// (resolved, existing).
pub fn extract(t: &mut Target, dir: &Path, r: impl Read) -> Result<()> {
    let tar_err = |source| CopyStepError::Read {
        path: PathBuf::from("the archive"),
        source,
    };
    let mut a = tar::Archive::new(r);
    for e in a.entries().map_err(tar_err)? {
        let mut e = e.map_err(tar_err)?;
        let raw = e.path().map_err(tar_err)?.into_owned();
        let mut rel = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir | Component::RootDir => {}
                _ => {
                    return Err(CopyStepError::Archive {
                        entry: raw.display().to_string(),
                        why: "`..` is not allowed",
                    })
                }
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let h = e.header();
        let meta = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: h.mtime().unwrap_or(0) as i64,
            mtime_nsec: 0,
        };
        let kind = h.entry_type();
        let (parent_rel, leaf) = split(&rel);
        let parent_in_root = t.resolve(&format!("/{}", dir.join(&parent_rel).display()))?;
        let parent = t.mkdir_all(&parent_in_root)?;
        let shown = Path::new("/").join(dir).join(&rel);
        let link = || -> Result<PathBuf> {
            Ok(e.link_name()
                .map_err(tar_err)?
                .unwrap_or_default()
                .into_owned())
        };
        match kind {
            tar::EntryType::Directory => {
                t.copied_dir(&parent, &leaf, &meta, &shown, true)?;
            }
            tar::EntryType::Symlink => {
                let target = link()?;
                t.symlink_at(&parent, &leaf, &target, &meta, &shown)?;
            }
            tar::EntryType::Link => {
                let target = link()?;
                let target = target.strip_prefix("/").unwrap_or(&target).to_path_buf();
                let base = Path::new("/").join(dir);
                t.hard_link_at(&parent, &leaf, &base, &target, &shown)?;
                t.link_meta(&parent, &leaf, &meta, &shown)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                t.file_at(&parent, &leaf, &meta, &mut e, None, &shown)?;
            }
            // pax and GNU headers are read by the tar crate; device nodes
            // and fifos of an ADDed archive are not made
            _ => {}
        }
    }
    Ok(())
}
