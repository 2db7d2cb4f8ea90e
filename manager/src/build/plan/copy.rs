//! COPY and ADD expanded (BuildKit's `dispatchCopy`): sources classified
//! (paths, URLs for ADD, heredoc files), the destination made absolute
//! under the working directory with its trailing slash kept, `--chmod`
//! typed, `--checksum` checked.

use crate::build::dockerfile::{Add, Copy, Source, Word};
use crate::build::expand::Lexer;
use crate::build::ignore::Ignore;
use crate::build::path;

use super::errors::PlanErrorKind;
use super::steps::Builder;
use super::Origin;

type Result<T> = std::result::Result<T, PlanErrorKind>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStep {
    pub kind: CopyKind,
    /// COPY's `--from`, else the context.
    pub origin: Origin,
    pub sources: Vec<CopySource>,
    /// Absolute; a trailing `/` (the destination is a directory) kept.
    pub dest: String,
    /// `user[:group]`, names or ids, resolved in the stage's rootfs.
    pub chown: Option<String>,
    pub chmod: Option<Chmod>,
    pub link: bool,
    /// `--exclude` patterns, .dockerignore syntax.
    pub excludes: Vec<String>,
    /// The step as its history entry names it (BuildKit's `commitMessage`):
    /// `COPY [--parents] [--chown=…] [--chmod=…] SRC… DEST`, values
    /// expanded and as written, heredocs as `<<NAME` after the paths.
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyKind {
    /// `--parents`: keep the sources' directories under the destination.
    Copy { parents: bool },
    /// Local archives are extracted unless `unpack` is false; remote files
    /// are not unless it is true.
    Add {
        checksum: Option<String>,
        unpack: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A path or wildcard pattern in the origin.
    Path(String),
    /// ADD of an http(s) URL.
    Url(String),
    /// A heredoc: a file of this name and content.
    Inline { name: String, content: String },
}

/// `--chmod`: octal, or symbolic as chmod(1) takes it (`u+x,go-w`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(String),
}

pub(super) fn copy(b: &Builder, c: &Copy, origin: Origin) -> Result<CopyStep> {
    let chmod_text = b.optional(&c.chmod)?;
    let chmod = chmod(chmod_text.clone())?;
    let sources = sources(b, &c.sources, |s| match classify(s) {
        Kind::Git => Err(PlanErrorKind::CopyGit),
        Kind::Url => Err(PlanErrorKind::CopyUrl),
        Kind::Path => Ok(CopySource::Path(s.to_string())),
    })?;
    let written_dest = b.word(&c.dest)?;
    let chown = b.optional(&c.chown)?;
    let created_by = created_by(
        "COPY",
        c.parents,
        [&chown, &chmod_text],
        &sources,
        &written_dest,
    );
    Ok(CopyStep {
        kind: CopyKind::Copy { parents: c.parents },
        origin,
        sources,
        dest: dest(&b.workdir(), &written_dest),
        chown,
        chmod,
        link: c.link,
        excludes: excludes(&c.excludes)?,
        created_by,
    })
}

pub(super) fn add(b: &Builder, a: &Add) -> Result<CopyStep> {
    let chmod_text = b.optional(&a.chmod)?;
    let chmod = chmod(chmod_text.clone())?;
    let checksum = b.optional(&a.checksum)?;
    let sources = sources(b, &a.sources, |s| match classify(s) {
        Kind::Git => Err(PlanErrorKind::AddGit(s.to_string())),
        Kind::Url => Ok(CopySource::Url(s.to_string())),
        Kind::Path => Ok(CopySource::Path(s.to_string())),
    })?;
    if let Some(sum) = &checksum {
        check_checksum(sum, &sources)?;
    }
    let written_dest = b.word(&a.dest)?;
    let chown = b.optional(&a.chown)?;
    let created_by = created_by("ADD", false, [&chown, &chmod_text], &sources, &written_dest);
    Ok(CopyStep {
        kind: CopyKind::Add {
            checksum,
            unpack: a.unpack,
        },
        origin: Origin::Context,
        sources,
        dest: dest(&b.workdir(), &written_dest),
        chown,
        chmod,
        link: a.link,
        excludes: excludes(&a.excludes)?,
        created_by,
    })
}

/// BuildKit's history text of a COPY or ADD (`--from`, `--link`,
/// `--exclude` and the rest are left out, as BuildKit does).
fn created_by(
    keyword: &str,
    parents: bool,
    [chown, chmod]: [&Option<String>; 2],
    sources: &[CopySource],
    dest: &str,
) -> String {
    let mut out = keyword.to_string();
    if parents {
        out.push_str(" --parents");
    }
    if let Some(c) = chown.as_deref().filter(|c| !c.is_empty()) {
        out.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = chmod.as_deref().filter(|c| !c.is_empty()) {
        out.push_str(&format!(" --chmod={c}"));
    }
    for s in sources {
        if let CopySource::Path(p) | CopySource::Url(p) = s {
            out.push_str(&format!(" {p}"));
        }
    }
    for s in sources {
        if let CopySource::Inline { name, .. } = s {
            out.push_str(&format!(" <<{name}"));
        }
    }
    out.push_str(&format!(" {dest}"));
    out
}

/// Paths expanded and classified; heredocs expanded unless their name was
/// quoted (with a backslash escape and quotes kept, as BuildKit does).
fn sources(
    b: &Builder,
    sources: &[Source],
    classify: impl Fn(&str) -> Result<CopySource>,
) -> Result<Vec<CopySource>> {
    sources
        .iter()
        .map(|s| match s {
            Source::Path(w) => classify(&b.word(w)?),
            Source::Heredoc(h) => {
                let body = h.body();
                let content = if h.expand {
                    Lexer::new('\\')
                        .skip_quotes()
                        .process_word(&body, b.env())?
                } else {
                    body
                };
                Ok(CopySource::Inline {
                    name: h.name.clone(),
                    content,
                })
            }
        })
        .collect()
}

enum Kind {
    Path,
    Url,
    Git,
}

/// BuildKit's `isGitSource` and `isHTTPSource`: git, ssh and scp-like
/// remotes and http(s) URLs of `.git` repositories are git sources.
fn classify(src: &str) -> Kind {
    if src.starts_with("./") || src.starts_with("../") {
        return Kind::Path;
    }
    if ["git://", "ssh://", "git@"]
        .iter()
        .any(|p| src.starts_with(p))
    {
        return Kind::Git;
    }
    let Some(rest) = src
        .strip_prefix("https://")
        .or_else(|| src.strip_prefix("http://"))
    else {
        return Kind::Path;
    };
    let url_path = rest.split(['?', '#']).next().unwrap_or(rest);
    if url_path.ends_with(".git") {
        Kind::Git
    } else {
        Kind::Url
    }
}

/// The destination under the working directory: `.` is the directory
/// itself; relative paths are joined and cleaned, keeping a trailing `/`
/// or `/.`; absolute ones are taken as written (BuildKit's
/// `pathRelativeToWorkingDir`).
pub(super) fn dest(workdir: &str, d: &str) -> String {
    let d = if d.is_empty() || d == "." { "./" } else { d };
    if d.starts_with('/') {
        return d.to_string();
    }
    let mut out = path::join(if workdir.is_empty() { "/" } else { workdir }, d);
    if d.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    } else if d.ends_with("/.") {
        if out != "/" {
            out.push('/');
        }
        out.push('.');
    }
    out
}

fn chmod(value: Option<String>) -> Result<Option<Chmod>> {
    let Some(v) = value else { return Ok(None) };
    if let Ok(n) = u32::from_str_radix(&v, 8) {
        return match n {
            0..=0o7777 => Ok(Some(Chmod::Octal(n))),
            _ => Err(PlanErrorKind::Chmod(v)),
        };
    }
    if v.chars().all(|c| c.is_ascii_digit()) || !v.split(',').all(symbolic_clause) {
        return Err(PlanErrorKind::Chmod(v));
    }
    Ok(Some(Chmod::Symbolic(v)))
}

/// `[ugoa]*` then one or more `[-+=]` each with `[rwxXst]*` or one of `ugo`.
fn symbolic_clause(clause: &str) -> bool {
    symbolic_actions(clause.trim_start_matches(['u', 'g', 'o', 'a']))
}

fn symbolic_actions(ops: &str) -> bool {
    let mut chars = ops.chars().peekable();
    let mut any = false;
    while let Some(op) = chars.next() {
        if !matches!(op, '+' | '-' | '=') {
            return false;
        }
        any = true;
        while let Some(&c) = chars.peek() {
            if !"rwxXstugo".contains(c) {
                break;
            }
            chars.next();
        }
    }
    any
}

/// One http(s) source and a digest BuildKit accepts.
fn check_checksum(sum: &str, sources: &[CopySource]) -> Result<()> {
    let remote: Vec<&CopySource> = sources
        .iter()
        .filter(|s| !matches!(s, CopySource::Inline { .. }))
        .collect();
    if remote.len() != 1 {
        return Err(PlanErrorKind::ChecksumSources);
    }
    if !matches!(remote[0], CopySource::Url(_)) {
        return Err(PlanErrorKind::ChecksumSource);
    }
    let valid = match sum.split_once(':') {
        Some(("sha256", hex)) => is_hex(hex, 64),
        Some(("sha384", hex)) => is_hex(hex, 96),
        Some(("sha512", hex)) => is_hex(hex, 128),
        _ => false,
    };
    if !valid {
        return Err(PlanErrorKind::Checksum(sum.to_string()));
    }
    Ok(())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn excludes(patterns: &[String]) -> Result<Vec<String>> {
    for p in patterns {
        Ignore::new(std::slice::from_ref(p), "--exclude")
            .map_err(|_| PlanErrorKind::Exclude(p.clone()))?;
    }
    Ok(patterns.to_vec())
}

impl Builder<'_> {
    /// A flag's value expanded; empty is none.
    fn optional(&self, word: &Option<Word>) -> Result<Option<String>> {
        match word {
            Some(w) => Ok(Some(self.word(w)?).filter(|v| !v.is_empty())),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_as_buildkit_resolves_them() {
        let cases = [
            ("/", "/setup.sh", "/setup.sh"),
            ("/app", ".", "/app/"),
            ("/app", "", "/app/"),
            ("/app", "bin/", "/app/bin/"),
            ("/app", "bin", "/app/bin"),
            ("/app", "../etc/x", "/etc/x"),
            ("/app", "dir/.", "/app/dir/."),
            ("", ".", "/"),
            ("/app", "/abs//kept/", "/abs//kept/"),
        ];
        for (workdir, d, want) in cases {
            assert_eq!(dest(workdir, d), want, "{workdir} {d}");
        }
    }

    #[test]
    fn chmod_octal_or_symbolic() {
        assert_eq!(chmod(Some("755".into())), Ok(Some(Chmod::Octal(0o755))));
        assert_eq!(chmod(Some("04755".into())), Ok(Some(Chmod::Octal(0o4755))));
        assert_eq!(
            chmod(Some("u+x,go-w".into())),
            Ok(Some(Chmod::Symbolic("u+x,go-w".into())))
        );
        assert_eq!(
            chmod(Some("a=rX".into())),
            Ok(Some(Chmod::Symbolic("a=rX".into())))
        );
        assert_eq!(chmod(None), Ok(None));
        for bad in ["17777", "999", "u", "x+r", "u+q"] {
            assert_eq!(
                chmod(Some(bad.into())),
                Err(PlanErrorKind::Chmod(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn sources_classified() {
        assert!(matches!(classify("https://example.com/a.tgz"), Kind::Url));
        assert!(matches!(
            classify("https://github.com/moby/buildkit.git#v0.10"),
            Kind::Git
        ));
        assert!(matches!(
            classify("git@github.com:moby/buildkit.git"),
            Kind::Git
        ));
        assert!(matches!(classify("./git@x"), Kind::Path));
        assert!(matches!(classify("src/*.go"), Kind::Path));
    }

    #[test]
    fn checksums() {
        let url = [CopySource::Url("https://x/y".into())];
        let sum = format!("sha256:{}", "a".repeat(64));
        assert_eq!(check_checksum(&sum, &url), Ok(()));
        assert_eq!(
            check_checksum("sha256:abc", &url),
            Err(PlanErrorKind::Checksum("sha256:abc".into()))
        );
        let two = [
            CopySource::Url("https://x/y".into()),
            CopySource::Url("https://x/z".into()),
        ];
        assert_eq!(
            check_checksum(&sum, &two),
            Err(PlanErrorKind::ChecksumSources)
        );
        assert_eq!(
            check_checksum(&sum, &[CopySource::Path("a".into())]),
            Err(PlanErrorKind::ChecksumSource)
        );
    }
}
