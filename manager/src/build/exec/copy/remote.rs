//! ADD's http(s) sources, fetched by rbox itself on the host (not in a
//! container: the RUN network does not matter) with the HTTP client of
//! the registry code, as BuildKit's http source fetches them:
//!
//! - each URL is fetched once per build, into a temp dir of the store
//!   (`snapshots/.tmp-…`, locked while the build lives, swept after a
//!   crash), hashed as it is written;
//! - a non-2xx answer fails the step naming the URL and the status;
//! - `--checksum=ALG:HEX` (sha256, sha384, sha512) must match the
//!   content, else the step fails naming the URL and both digests; with
//!   it, the cache key is the checksum and a cached step fetches nothing;
//!   without it, the URL is fetched before the build's steps run and its
//!   content's digest is in the key;
//! - the file's name is the last segment of the URL's path (decoded;
//!   `__unnamed__` when there is none), its mode 0600, its mtime the
//!   `Last-Modified` header's (else now); it is not extracted (unless
//!   `--unpack=true`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::store::{temp_name, TempPath};

use super::error::CopyStepError;

type Result<T> = std::result::Result<T, CopyStepError>;

/// BuildKit's name for a URL whose path has no last segment.
const UNNAMED: &str = "__unnamed__";

/// A fetched URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// the content, in the build's temp dir
    pub path: PathBuf,
    /// `sha256:<hex>` of the content
    pub digest: String,
    /// the `Last-Modified` header, in seconds since 1970
    pub last_modified: Option<i64>,
}

/// The URLs a build fetched. Shared by the steps (and threads) of one
/// build; the files go when it is dropped.
#[derive(Debug)]
pub struct Remote {
    /// where the temp dir is made, at the first fetch
    parent: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    dir: Option<TempPath>,
    files: BTreeMap<String, Fetched>,
}

impl Remote {
    /// Fetched files will go into a temp dir made in `parent`.
    pub fn new(parent: PathBuf) -> Remote {
        Remote {
            parent,
            state: Mutex::new(State::default()),
        }
    }

    /// `url`'s content, fetched now or earlier in this build; with
    /// `checksum` (`ALG:HEX`) checked against it.
    pub fn fetch(&self, url: &str, checksum: Option<&str>) -> Result<Fetched> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let f = match st.files.get(url) {
            Some(f) => f.clone(),
            None => {
                let dir = match &st.dir {
                    Some(d) => d.path().to_path_buf(),
                    None => {
                        let d = self.make_dir()?;
                        let p = d.path().to_path_buf();
                        st.dir = Some(d);
                        p
                    }
                };
                let path = dir.join(format!("{}", st.files.len()));
                let f = download(url, &path)?;
                st.files.insert(url.to_string(), f.clone());
                f
            }
        };
        if let Some(want) = checksum {
            verify(url, &f, want)?;
        }
        Ok(f)
    }

    fn make_dir(&self) -> Result<TempPath> {
        let p = self.parent.join(temp_name());
        let err = |source| CopyStepError::Write {
            op: "create",
            path: p.display().to_string(),
            source,
        };
        std::fs::create_dir(&p).map_err(err)?;
        TempPath::locked(p.clone()).map_err(|e| CopyStepError::Write {
            op: "lock",
            path: p.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// The content of `f` matches `want` (`ALG:HEX`), else an error naming
/// the URL and both digests.
fn verify(url: &str, f: &Fetched, want: &str) -> Result<()> {
    let actual = match want.split_once(':').map(|(alg, _)| alg) {
        Some("sha256") => f.digest.clone(),
        Some(alg @ ("sha384" | "sha512")) => file_digest(&f.path, alg)?,
        _ => {
            return Err(CopyStepError::Url {
                url: url.to_string(),
                why: format!("invalid checksum {want:?}"),
            })
        }
    };
    if actual != want {
        return Err(CopyStepError::Checksum {
            url: url.to_string(),
            expected: want.to_string(),
            actual,
        });
    }
    Ok(())
}

fn file_digest(path: &Path, alg: &str) -> Result<String> {
    let read_err = |source| CopyStepError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let hex = match alg {
        "sha384" => {
            let mut h = Sha384::new();
            std::io::copy(&mut file, &mut h).map_err(read_err)?;
            format!("{:x}", h.finalize())
        }
        _ => {
            let mut h = Sha512::new();
            std::io::copy(&mut file, &mut h).map_err(read_err)?;
            format!("{:x}", h.finalize())
        }
    };
    Ok(format!("{alg}:{hex}"))
}

/// GETs `url` into the new file `path` (0600), hashing it.
fn download(url: &str, path: &Path) -> Result<Fetched> {
    let fail = |why: String| CopyStepError::Url {
        url: url.to_string(),
        why,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("an async runtime: {e}")))?;
    // rustls needs one crypto provider for the process; ring it is
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CopyStepError::Write {
            op: "create",
            path: path.display().to_string(),
            source,
        })?;
    let (digest, last_modified) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| fail(chain(&e)))?;
        let mut res = client.get(url).send().await.map_err(|e| fail(chain(&e)))?;
        let status = res.status();
        if !status.is_success() {
            return Err(fail(format!("invalid response status {status}")));
        }
        let last_modified = res
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(http_time);
        let mut h = Sha256::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| fail(chain(&e)))? {
            h.update(&chunk);
            file.write_all(&chunk)
                .map_err(|source| CopyStepError::Write {
                    op: "write",
                    path: path.display().to_string(),
                    source,
                })?;
        }
        Ok((format!("sha256:{:x}", h.finalize()), last_modified))
    })?;
    Ok(Fetched {
        path: path.to_path_buf(),
        digest,
        last_modified,
    })
}

/// An error and its causes on one line (reqwest's own says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// An HTTP date (Go's `http.ParseTime`: RFC 7231's IMF-fixdate, RFC 850
/// and asctime forms), in seconds since 1970.
pub fn http_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        return Some(t.timestamp());
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().timestamp())
}

/// The name a fetched file gets: the last segment of the URL's path,
/// percent-decoded (Go's `path.Base` of `url.Path`).
pub fn file_name(url: &str) -> OsString {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = match rest.find(['/', '?', '#']) {
        Some(i) if rest[i..].starts_with('/') => &rest[i..],
        _ => "",
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = percent_decode(base);
    if name.is_empty() || name == b"." || name == b".." {
        return OsString::from(UNNAMED);
    }
    OsString::from_vec(name)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_url_path() {
        let n = |u: &str| file_name(u).into_string().unwrap();
        assert_eq!(n("https://example.com/a/b/tool.tar.gz"), "tool.tar.gz");
        assert_eq!(n("http://example.com/dir/?x=1#frag"), "dir");
        assert_eq!(n("http://example.com/f?name=other"), "f");
        assert_eq!(n("http://example.com/my%20file.txt"), "my file.txt");
        assert_eq!(n("http://example.com/100%"), "100%");
        assert_eq!(n("http://example.com/"), UNNAMED);
        assert_eq!(n("http://example.com"), UNNAMED);
        assert_eq!(n("http://example.com?q=/x"), UNNAMED);
        assert_eq!(n("http://example.com/a/.."), UNNAMED);
    }

    #[test]
    fn http_dates_in_their_three_forms() {
        let t = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(http_time("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(http_time("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(http_time("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(http_time("yesterday"), None);
    }

    #[test]
    fn checksums_of_each_algorithm() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        let f = Fetched {
            path,
            digest: format!("sha256:{:x}", Sha256::digest(b"hello\n")),
            last_modified: None,
        };
        assert!(verify("u", &f, &f.digest.clone()).is_ok());
        let s512 = format!("sha512:{:x}", Sha512::digest(b"hello\n"));
        assert!(verify("u", &f, &s512).is_ok());
        let s384 = format!("sha384:{:x}", Sha384::digest(b"hello\n"));
        assert!(verify("u", &f, &s384).is_ok());
        let wrong = format!("sha256:{}", "0".repeat(64));
        let e = verify("http://h/f", &f, &wrong).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "ADD http://h/f: digest mismatch: expected {wrong}, got {}",
                f.digest
            )
        );
    }
}
