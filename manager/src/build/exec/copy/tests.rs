//! COPY and ADD on plain directories (no root: nothing is chowned), and
//! through the stage's overlay as root.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::build::plan::{Chmod, Origin};

fn step(sources: &[&str], dest: &str) -> CopyStep {
    CopyStep {
        kind: CopyKind::Copy { parents: false },
        origin: Origin::Context,
        sources: sources
            .iter()
            .map(|s| CopySource::Path(s.to_string()))
            .collect(),
        dest: dest.to_string(),
        chown: None,
        chmod: None,
        link: false,
        excludes: Vec::new(),
        created_by: String::new(),
    }
}

fn add(sources: &[&str], dest: &str, unpack: Option<bool>) -> CopyStep {
    CopyStep {
        kind: CopyKind::Add {
            checksum: None,
            unpack,
        },
        ..step(sources, dest)
    }
}

/// A context: a.txt, b.txt, src/{x, sub/y, link -> x}, notes.md
fn context() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::write(r.join("a.txt"), "aaa").unwrap();
    fs::write(r.join("b.txt"), "bbb").unwrap();
    fs::write(r.join("notes.md"), "notes").unwrap();
    fs::create_dir_all(r.join("src/sub")).unwrap();
    fs::write(r.join("src/x"), "x").unwrap();
    fs::write(r.join("src/sub/y"), "y").unwrap();
    symlink("x", r.join("src/link")).unwrap();
    d
}

struct Run {
    ctx: tempfile::TempDir,
    ignore: Ignore,
    root: tempfile::TempDir,
    remote: Remote,
}

impl Run {
    fn new(ctx: tempfile::TempDir, dockerignore: &str) -> Run {
        Run {
            ctx,
            ignore: Ignore::parse(dockerignore, ".dockerignore").unwrap(),
            root: tempfile::tempdir().unwrap(),
            remote: Remote::new(std::env::temp_dir()),
        }
    }

    fn tree(&self) -> Tree<'_> {
        Tree {
            root: self.ctx.path(),
            ignore: Some(&self.ignore),
            remote: Some(&self.remote),
        }
    }

    fn copy(&self, s: &CopyStep) -> std::result::Result<bool, CopyStepError> {
        copy_into(
            self.root.path(),
            s,
            Some(self.tree()),
            Owner::Untouched,
            None,
        )
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.root.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.root.path().join(p)).is_ok()
    }

    /// Every path under the root, sorted.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.root.path(), Path::new(""), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        out.push(r.display().to_string());
        if e.file_type().unwrap().is_dir() {
            walk(root, &r, out);
        }
    }
}

#[test]
fn a_file_into_a_directory_or_as_the_destination() {
    let r = Run::new(context(), "");
    r.copy(&step(&["a.txt"], "/app/")).unwrap();
    assert_eq!(r.read("app/a.txt"), "aaa");
    r.copy(&step(&["a.txt"], "/opt/deep/b.conf")).unwrap();
    assert_eq!(r.read("opt/deep/b.conf"), "aaa");
    // an existing directory without the slash: inside it
    fs::create_dir(r.root.path().join("etc")).unwrap();
    r.copy(&step(&["b.txt"], "/etc")).unwrap();
    assert_eq!(r.read("etc/b.txt"), "bbb");
    // an existing file is replaced
    r.copy(&step(&["b.txt"], "/opt/deep/b.conf")).unwrap();
    assert_eq!(r.read("opt/deep/b.conf"), "bbb");
    // `/.` and the root
    r.copy(&step(&["a.txt"], "/srv/.")).unwrap();
    assert_eq!(r.read("srv/a.txt"), "aaa");
    r.copy(&step(&["a.txt"], "/")).unwrap();
    assert_eq!(r.read("a.txt"), "aaa");
}

#[test]
fn a_directory_copies_its_contents_with_symlinks_as_symlinks() {
    let r = Run::new(context(), "");
    r.copy(&step(&["src"], "/app")).unwrap();
    assert_eq!(
        r.files(),
        ["app", "app/link", "app/sub", "app/sub/y", "app/x"]
    );
    assert_eq!(
        fs::read_link(r.root.path().join("app/link")).unwrap(),
        Path::new("x")
    );
    // the destination made for the contents is 0755, whatever the source
    // directory's mode (fsutil's MkdirAll); the directories below are
    // copied with theirs
    let mode = |p: &str| fs::metadata(r.root.path().join(p)).unwrap().mode() & 0o7777;
    fs::set_permissions(r.ctx.path().join("src"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(
        r.ctx.path().join("src/sub"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    r.copy(&step(&["src"], "/private")).unwrap();
    assert_eq!((mode("private"), mode("private/sub")), (0o755, 0o750));
    // into an existing directory: merged
    r.copy(&step(&["a.txt"], "/app/")).unwrap();
    r.copy(&step(&["src/sub"], "/app/")).unwrap();
    assert!(r.exists("app/a.txt") && r.exists("app/y"));
}

#[test]
fn several_sources_need_a_directory_destination() {
    let r = Run::new(context(), "");
    let e = r.copy(&step(&["a.txt", "b.txt"], "/app")).unwrap_err();
    assert!(
        e.to_string()
            .contains("must be a directory and end with a /"),
        "{e}"
    );
    let e = r.copy(&step(&["*.txt"], "/app")).unwrap_err();
    assert!(matches!(e, CopyStepError::DestNotDirectory), "{e}");
    r.copy(&step(&["a.txt", "b.txt"], "/app/")).unwrap();
    assert_eq!(r.files(), ["app", "app/a.txt", "app/b.txt"]);
    // a wildcard matching one file may name it
    r.copy(&step(&["a*.txt"], "/one")).unwrap();
    assert_eq!(r.read("one"), "aaa");
}

#[test]
fn wildcards_match_per_component_and_may_match_nothing() {
    let r = Run::new(context(), "");
    r.copy(&step(&["*.txt", "s?c/s*/[x-z]"], "/w/")).unwrap();
    assert_eq!(r.files(), ["w", "w/a.txt", "w/b.txt", "w/y"]);
    // BuildKit's AllowEmptyWildcard: nothing copied, no error
    assert!(!r.copy(&step(&["*.nothing"], "/none/")).unwrap());
    assert!(!r.exists("none"));
    // but what comes before the wildcard must exist
    let e = r.copy(&step(&["missing/*"], "/x/")).unwrap_err();
    assert!(matches!(e, CopyStepError::NotFound { .. }), "{e}");
}

#[test]
fn a_missing_source_is_named() {
    let r = Run::new(context(), "");
    let e = r.copy(&step(&["nope.txt"], "/x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to calculate checksum of \"nope.txt\": \"/nope.txt\": not found"
    );
}

#[test]
fn sources_cannot_leave_the_context() {
    let r = Run::new(context(), "");
    // `../a.txt` is `/a.txt` of the context
    r.copy(&step(&["../../a.txt"], "/x")).unwrap();
    assert_eq!(r.read("x"), "aaa");
    // a symlink out of the context resolves inside it
    symlink("/etc/hostname", r.ctx.path().join("out")).unwrap();
    let e = r.copy(&step(&["out"], "/y")).unwrap_err();
    assert!(matches!(e, CopyStepError::NotFound { .. }), "{e}");
    symlink("../../../../a.txt", r.ctx.path().join("up")).unwrap();
    r.copy(&step(&["up"], "/z")).unwrap();
    assert_eq!(r.read("z"), "aaa");
}

#[test]
fn a_symlink_source_is_followed_and_named_by_itself() {
    let r = Run::new(context(), "");
    symlink("src", r.ctx.path().join("dirlink")).unwrap();
    symlink("a.txt", r.ctx.path().join("alias")).unwrap();
    r.copy(&step(&["alias", "dirlink/sub"], "/d/")).unwrap();
    assert_eq!(r.files(), ["d", "d/alias", "d/y"]);
    assert!(fs::symlink_metadata(r.root.path().join("d/alias"))
        .unwrap()
        .is_file());
}

#[test]
fn dockerignore_hides_files_and_directories() {
    let r = Run::new(context(), "*.md\nsrc\n!src/sub/y\nb.txt\n");
    let e = r.copy(&step(&["notes.md"], "/x")).unwrap_err();
    assert!(matches!(e, CopyStepError::NotFound { .. }), "{e}");
    // an excluded directory shows only what an exception brings back
    r.copy(&step(&["src"], "/s")).unwrap();
    assert_eq!(r.files(), ["s", "s/sub", "s/sub/y"]);
    r.copy(&step(&["*.txt"], "/t/")).unwrap();
    assert!(r.exists("t/a.txt") && !r.exists("t/b.txt"));
    // a whole-context copy
    r.copy(&step(&["."], "/all/")).unwrap();
    assert!(r.exists("all/a.txt") && !r.exists("all/notes.md") && !r.exists("all/src/x"));
    assert!(r.exists("all/src/sub/y"));
}

#[test]
fn excludes_leave_out_matches_and_entries() {
    let r = Run::new(context(), "");
    let mut s = step(&["*"], "/e/");
    s.excludes = vec!["*.md".into(), "sub".into()];
    r.copy(&s).unwrap();
    assert_eq!(
        r.files(),
        ["e", "e/a.txt", "e/b.txt", "e/link", "e/x"],
        "the src directory's contents, without sub"
    );
}

#[test]
fn hard_links_mtimes_and_the_epoch() {
    let r = Run::new(context(), "");
    fs::hard_link(r.ctx.path().join("src/x"), r.ctx.path().join("src/x2")).unwrap();
    let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
    nix::sys::stat::utimensat(
        None,
        &r.ctx.path().join("src/sub/y"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    r.copy(&step(&["src"], "/h")).unwrap();
    let a = fs::metadata(r.root.path().join("h/x")).unwrap();
    let b = fs::metadata(r.root.path().join("h/x2")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(
        fs::metadata(r.root.path().join("h/sub/y")).unwrap().mtime(),
        1_000_000
    );
    let dir = fs::metadata(r.root.path().join("h/sub")).unwrap().mtime();
    assert_eq!(
        dir,
        fs::metadata(r.ctx.path().join("src/sub")).unwrap().mtime()
    );
    // with an epoch, later mtimes are clamped
    let root2 = tempfile::tempdir().unwrap();
    copy_into(
        root2.path(),
        &step(&["src"], "/h"),
        Some(r.tree()),
        Owner::Untouched,
        Some(500),
    )
    .unwrap();
    for p in ["h", "h/x", "h/sub/y", "h/link"] {
        let m = fs::symlink_metadata(root2.path().join(p)).unwrap();
        assert_eq!(m.mtime(), 500, "{p}");
    }
}

#[test]
fn chmod_octal_and_symbolic() {
    let r = Run::new(context(), "");
    fs::set_permissions(
        r.ctx.path().join("a.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let mut s = step(&["a.txt"], "/o");
    s.chmod = Some(Chmod::Octal(0o751));
    r.copy(&s).unwrap();
    let mode = |p: &str| fs::metadata(r.root.path().join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("o"), 0o751);
    s.chmod = Some(Chmod::Symbolic("go+r".into()));
    s.dest = "/s".into();
    r.copy(&s).unwrap();
    assert_eq!(mode("s"), 0o644);
    // directories copied get it too, the destination's parents not, the
    // destination made for a directory's contents an octal one only
    let mut d = step(&["src"], "/p/q");
    d.chmod = Some(Chmod::Symbolic("a=rX".into()));
    r.copy(&d).unwrap();
    assert_eq!(mode("p"), 0o755);
    assert_eq!(mode("p/q"), 0o755);
    assert_eq!(mode("p/q/sub"), 0o555);
    assert_eq!(mode("p/q/x"), 0o444);
    d.chmod = Some(Chmod::Octal(0o700));
    d.dest = "/o7/q".into();
    r.copy(&d).unwrap();
    assert_eq!(
        (mode("o7"), mode("o7/q"), mode("o7/q/x")),
        (0o755, 0o700, 0o700)
    );
}

#[test]
fn heredocs_become_files() {
    let r = Run::new(context(), "");
    let mut s = step(&[], "/etc/");
    s.sources.push(CopySource::Inline {
        name: "motd".into(),
        content: "hello\n".into(),
    });
    assert!(r.copy(&s).unwrap());
    assert_eq!(r.read("etc/motd"), "hello\n");
    assert_eq!(
        fs::metadata(r.root.path().join("etc/motd")).unwrap().mode() & 0o777,
        0o644
    );
}

#[test]
fn parents_keep_the_path_below_the_pivot() {
    let r = Run::new(context(), "");
    let mut s = step(&["src/sub/y", "./src/./sub"], "/p/");
    s.kind = CopyKind::Copy { parents: true };
    r.copy(&s).unwrap();
    assert_eq!(
        r.files(),
        ["p", "p/src", "p/src/sub", "p/src/sub/y", "p/sub", "p/sub/y"]
    );
}

#[test]
fn the_destination_resolves_through_the_images_symlinks_inside_the_root() {
    let r = Run::new(context(), "");
    let root = r.root.path();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    symlink("/usr/lib", root.join("lib")).unwrap();
    symlink("../../../../..", root.join("escape")).unwrap();
    r.copy(&step(&["a.txt"], "/lib/")).unwrap();
    assert_eq!(r.read("usr/lib/a.txt"), "aaa");
    r.copy(&step(&["b.txt"], "/escape/tmp/")).unwrap();
    assert_eq!(r.read("tmp/b.txt"), "bbb");
    // a directory copied onto a symlink to a file is refused, as fsutil does
    symlink("/usr/lib/a.txt", root.join("usr/lib/sub")).unwrap();
    let e = r.copy(&step(&["src"], "/usr/lib/")).unwrap_err();
    assert!(matches!(e, CopyStepError::NotADirectory(_)), "{e}");
}

fn tar_bytes(gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("pkg/bin/tool", &b"#!/bin/sh\n"[..]),
        ("pkg/README", b"read me"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_uid(1234);
        h.set_mtime(777);
        b.append_data(&mut h, name, data).unwrap();
    }
    let t = b.into_inner().unwrap();
    if !gzip {
        return t;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &t).unwrap();
    gz.finish().unwrap()
}

#[test]
fn add_extracts_local_archives_unless_told_not_to() {
    let r = Run::new(context(), "");
    fs::write(r.ctx.path().join("app.tar"), tar_bytes(false)).unwrap();
    fs::write(r.ctx.path().join("app.tgz"), tar_bytes(true)).unwrap();
    fs::write(r.ctx.path().join("fake.tar.gz"), "not an archive").unwrap();
    r.copy(&add(&["app.tar"], "/plain", None)).unwrap();
    assert_eq!(r.read("plain/pkg/README"), "read me");
    r.copy(&add(&["app.tgz"], "/gz/", None)).unwrap();
    assert_eq!(r.read("gz/pkg/bin/tool"), "#!/bin/sh\n");
    assert_eq!(
        fs::metadata(r.root.path().join("gz/pkg/README"))
            .unwrap()
            .mtime(),
        777
    );
    r.copy(&add(&["fake.tar.gz"], "/f", None)).unwrap();
    assert_eq!(r.read("f"), "not an archive");
    r.copy(&add(&["app.tgz"], "/kept/", Some(false))).unwrap();
    assert!(fs::metadata(r.root.path().join("kept/app.tgz"))
        .unwrap()
        .is_file());
    // COPY never extracts
    r.copy(&step(&["app.tar"], "/c/")).unwrap();
    assert!(r.exists("c/app.tar"));
    // --chmod is not applied to what an archive holds (BuildKit's unpack)
    let mut s = add(&["app.tar"], "/m/", None);
    s.chmod = Some(Chmod::Octal(0o600));
    r.copy(&s).unwrap();
    let mode = |p: &str| fs::metadata(r.root.path().join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("m/pkg/bin/tool"), 0o755);
}

#[test]
fn an_archives_hard_link_entry_sets_the_mode_of_its_file() {
    let r = Run::new(context(), "");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "f", &b"f\n"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_mode(0o700);
    h.set_size(0);
    b.append_link(&mut h, "g", "f").unwrap();
    fs::write(r.ctx.path().join("l.tar"), b.into_inner().unwrap()).unwrap();
    r.copy(&add(&["l.tar"], "/l/", None)).unwrap();
    let md = fs::metadata(r.root.path().join("l/f")).unwrap();
    assert_eq!((md.mode() & 0o7777, md.nlink()), (0o700, 2));
}

/// A loopback HTTP/1.1 server of `files` (path, body, Last-Modified),
/// 404 for other paths; counts the requests; stops when dropped.
struct Server {
    base: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn new(files: Vec<(&'static str, Vec<u8>, Option<&'static str>)>) -> Server {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, st) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for c in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut c) = c else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut hdr = String::new();
                    if r.read_line(&mut hdr).unwrap() == 0 || hdr == "\r\n" {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let reply = match files.iter().find(|(p, _, _)| *p == path) {
                    Some((_, body, lm)) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        if let Some(lm) = lm {
                            head.push_str(&format!("Last-Modified: {lm}\r\n"));
                        }
                        let mut v = format!("{head}\r\n").into_bytes();
                        v.extend_from_slice(body);
                        v
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = c.write_all(&reply);
            }
        });
        Server {
            base,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn add_url(url: &str, dest: &str, checksum: Option<String>) -> CopyStep {
    CopyStep {
        kind: CopyKind::Add {
            checksum,
            unpack: None,
        },
        sources: vec![CopySource::Url(url.to_string())],
        ..step(&[], dest)
    }
}

#[test]
fn add_of_a_url_fetches_it_once_named_by_its_path_0600_with_its_date() {
    let body = b"#!/bin/sh\necho fetched\n".to_vec();
    let srv = Server::new(vec![
        (
            "/dl/tool.sh",
            body.clone(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        ),
        ("/dl/plain", b"no date".to_vec(), None),
        ("/a.tar", tar_bytes(false), None),
    ]);
    let r = Run::new(context(), "");
    let url = srv.url("/dl/tool.sh");
    // into a directory: named by the URL's path
    assert!(r.copy(&add_url(&url, "/opt/", None)).unwrap());
    assert_eq!(fs::read(r.root.path().join("opt/tool.sh")).unwrap(), body);
    let md = fs::metadata(r.root.path().join("opt/tool.sh")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!(md.mtime(), 784111777);
    // as the destination, --chmod applied; fetched once for the build
    let mut s = add_url(&url, "/bin/tool", None);
    s.chmod = Some(Chmod::Octal(0o755));
    r.copy(&s).unwrap();
    let md = fs::metadata(r.root.path().join("bin/tool")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o755);
    assert_eq!(srv.hits(), 1);
    // no Last-Modified: now
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    r.copy(&add_url(&srv.url("/dl/plain"), "/p/", None))
        .unwrap();
    let mtime = fs::metadata(r.root.path().join("p/plain")).unwrap().mtime();
    assert!(mtime >= before - 1, "{mtime} < {before}");
    // a tar is not extracted, unless --unpack=true
    r.copy(&add_url(&srv.url("/a.tar"), "/t/", None)).unwrap();
    assert!(r.exists("t/a.tar"));
    let mut s = add_url(&srv.url("/a.tar"), "/u/", None);
    s.kind = CopyKind::Add {
        checksum: None,
        unpack: Some(true),
    };
    r.copy(&s).unwrap();
    assert!(!r.exists("u/a.tar"));
    assert_eq!(r.read("u/pkg/README"), "read me");
}

#[test]
fn add_of_a_url_checks_the_checksum_and_the_status() {
    let srv = Server::new(vec![("/f", b"content".to_vec(), None)]);
    let r = Run::new(context(), "");
    let url = srv.url("/f");
    let good = format!(
        "sha256:{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(b"content")
    );
    r.copy(&add_url(&url, "/ok", Some(good.clone()))).unwrap();
    assert_eq!(r.read("ok"), "content");
    let bad = format!("sha256:{}", "1".repeat(64));
    let e = r
        .copy(&add_url(&url, "/bad", Some(bad.clone())))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("ADD {url}: digest mismatch: expected {bad}, got {good}")
    );
    assert!(!r.exists("bad"));
    let missing = srv.url("/nope");
    let e = r.copy(&add_url(&missing, "/x", None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("ADD {missing}: invalid response status 404 Not Found")
    );
}

#[test]
fn a_url_key_is_its_checksum_or_its_content() {
    let srv = Server::new(vec![
        ("/v1", b"one".to_vec(), None),
        ("/v2", b"two".to_vec(), None),
    ]);
    let a = context();
    let digest = |url: &str, checksum: Option<String>| {
        let c = Context::from_dir(a.path(), None).unwrap();
        sources_digest(&add_url(url, "/x", checksum), CopyFrom::Context(&c)).unwrap()
    };
    // with a checksum nothing is fetched: the key is the checksum
    let sum = format!("sha256:{}", "2".repeat(64));
    let k1 = digest(&srv.url("/v1"), Some(sum.clone()));
    assert_eq!(srv.hits(), 0);
    assert_eq!(k1, digest(&srv.url("/v1"), Some(sum)));
    // without one, the content decides
    let c1 = digest(&srv.url("/v1"), None);
    assert_eq!(srv.hits(), 1);
    assert_eq!(c1, digest(&srv.url("/v1"), None));
    assert_ne!(c1, digest(&srv.url("/v2"), None));
    assert_ne!(c1, k1);
}

fn digest_of(ctx: &Path, dockerignore: &str, s: &CopyStep) -> String {
    fs::write(ctx.join(".dockerignore"), dockerignore).unwrap();
    let c = Context::from_dir(ctx, None).unwrap();
    sources_digest(s, CopyFrom::Context(&c)).unwrap()
}

#[test]
fn digests_follow_content_not_place_times_or_hidden_files() {
    let a = context();
    let b = context();
    let s = step(&["src", "*.txt"], "/app/");
    let da = digest_of(a.path(), "*.md\n", &s);
    assert_eq!(
        da,
        digest_of(b.path(), "*.md\n", &s),
        "the same tree elsewhere"
    );
    // times do not count
    let t = nix::sys::time::TimeSpec::new(5, 0);
    nix::sys::stat::utimensat(
        None,
        &b.path().join("a.txt"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    assert_eq!(da, digest_of(b.path(), "*.md\n", &s));
    // files the step does not copy, or .dockerignore hides, do not count
    fs::write(b.path().join("notes.md"), "changed").unwrap();
    fs::write(b.path().join("other.bin"), "new").unwrap();
    assert_eq!(da, digest_of(b.path(), "*.md\n", &s));
    // one byte does
    fs::write(b.path().join("src/sub/y"), "z").unwrap();
    let changed = digest_of(b.path(), "*.md\n", &s);
    assert_ne!(da, changed);
    // so do a mode, a symlink's target, a new file in a copied directory
    fs::write(b.path().join("src/sub/y"), "y").unwrap();
    assert_eq!(da, digest_of(b.path(), "*.md\n", &s));
    fs::set_permissions(b.path().join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(da, digest_of(b.path(), "*.md\n", &s));
    let c = context();
    fs::remove_file(c.path().join("src/link")).unwrap();
    symlink("sub", c.path().join("src/link")).unwrap();
    assert_ne!(da, digest_of(c.path(), "*.md\n", &s));
    let d = context();
    fs::write(d.path().join("src/new"), "").unwrap();
    assert_ne!(da, digest_of(d.path(), "*.md\n", &s));
    // a missing source fails as the copy would
    let c = Context::from_dir(a.path(), None).unwrap();
    let e = sources_digest(&step(&["nope"], "/x"), CopyFrom::Context(&c)).unwrap_err();
    assert!(e.to_string().contains("\"/nope\": not found"), "{e}");
}

#[test]
fn a_digest_of_twenty_thousand_files_is_fast() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let dir = d.path().join(format!("d{i:03}"));
        fs::create_dir(&dir).unwrap();
        for j in 0..100 {
            fs::write(dir.join(format!("f{j:03}")), format!("{i} {j}")).unwrap();
        }
    }
    let c = Context::from_dir(d.path(), None).unwrap();
    let s = step(&["."], "/app/");
    let t = std::time::Instant::now();
    let first = sources_digest(&s, CopyFrom::Context(&c)).unwrap();
    let took = t.elapsed();
    eprintln!("sources_digest of 20,000 files: {took:?}");
    assert_eq!(first, sources_digest(&s, CopyFrom::Context(&c)).unwrap());
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

#[test]
fn layers_digest_is_their_diff_ids_and_the_sources() {
    let l = Layers {
        diff_ids: vec!["sha256:aa".into()],
        ..Default::default()
    };
    let s = step(&["/app/bin"], "/usr/bin/");
    let a = sources_digest(&s, CopyFrom::Layers(&l)).unwrap();
    let l2 = Layers {
        diff_ids: vec!["sha256:bb".into()],
        ..Default::default()
    };
    assert_ne!(a, sources_digest(&s, CopyFrom::Layers(&l2)).unwrap());
    assert_ne!(
        a,
        sources_digest(&step(&["/app/lib"], "/usr/bin/"), CopyFrom::Layers(&l)).unwrap()
    );
    assert_eq!(a, sources_digest(&s, CopyFrom::Layers(&l)).unwrap());
}

mod root {
    //! Through the stage's overlay, as `rbox build` runs them.

    use super::*;
    use crate::build::exec::commit::commit;

    /// A stage whose one layer has /etc/passwd and /etc/group with `app`.
    fn stage(store: &Store) -> Layers {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir(ctx.path().join("etc")).unwrap();
        fs::write(
            ctx.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(ctx.path().join("etc/group"), "root:x:0:\napp:x:1001:\n").unwrap();
        let c = Context::from_dir(ctx.path(), None).unwrap();
        let layer = copy(
            store,
            &Layers::default(),
            &step(&["etc"], "/etc"),
            CopyFrom::Context(&c),
            None,
        )
        .unwrap()
        .expect("a layer");
        let mut config = crate::build::exec::config::scratch("amd64", "linux");
        commit(store, &Layers::default(), Some(layer), &mut config, &[])
            .unwrap()
            .1
    }

    #[test]
    #[ignore = "needs root: overlay mounts and chown"]
    fn copy_makes_a_layer_owned_as_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layers = stage(&store);
        let tmp = context();
        let c = Context::from_dir(tmp.path(), None).unwrap();
        let ctx = c.root().to_path_buf();
        fs::set_permissions(ctx.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        let mut s = step(&["a.txt", "src"], "/home/app/");
        s.chown = Some("app".into());
        let l = copy(&store, &layers, &s, CopyFrom::Context(&c), Some(1000))
            .unwrap()
            .unwrap();
        let fs_dir = l.snapshot.as_ref().unwrap().path().join("fs");
        for (p, uid, gid) in [
            ("home", 1000, 1001),
            ("home/app", 1000, 1001),
            ("home/app/a.txt", 1000, 1001),
            ("home/app/sub/y", 1000, 1001),
        ] {
            let m = fs::symlink_metadata(fs_dir.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
        }
        assert_eq!(
            fs::metadata(fs_dir.join("home/app/a.txt")).unwrap().mode() & 0o777,
            0o640
        );
        // without --chown: root's, whoever owns them in the context
        nix::unistd::chown(
            &ctx.join("b.txt"),
            Some(nix::unistd::Uid::from_raw(42)),
            None,
        )
        .unwrap();
        let l = copy(
            &store,
            &layers,
            &step(&["b.txt"], "/b"),
            CopyFrom::Context(&c),
            None,
        )
        .unwrap()
        .unwrap();
        let m = fs::metadata(l.snapshot.as_ref().unwrap().path().join("fs/b")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0));
        // the layer tar has the file
        assert!(l.diff_id.starts_with("sha256:"));
        let mut s = step(&["a.txt"], "/x");
        s.chown = Some("nobody".into());
        let Err(e) = copy(&store, &layers, &s, CopyFrom::Context(&c), None) else {
            panic!("an unknown user is an error");
        };
        assert!(e.to_string().contains("--chown=nobody"), "{e}");
        // a wildcard that matches nothing: an empty layer, as BuildKit's
        let l = copy(
            &store,
            &layers,
            &step(&["*.none"], "/n/"),
            CopyFrom::Context(&c),
            None,
        )
        .unwrap()
        .unwrap();
        let fs_dir = l.snapshot.as_ref().unwrap().path().join("fs");
        assert_eq!(fs::read_dir(fs_dir).unwrap().count(), 0);
    }

    #[test]
    #[ignore = "needs root: overlay mounts"]
    fn copy_from_a_stage_reads_its_layers_and_keeps_owners() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let one = stage(&store);
        // a second layer: a file owned by app, and a symlink out of the root
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir(ctx.path().join("out")).unwrap();
        fs::write(ctx.path().join("out/bin"), "binary").unwrap();
        symlink("/etc/passwd", ctx.path().join("out/pw")).unwrap();
        let c = Context::from_dir(ctx.path(), None).unwrap();
        let mut s = step(&["out"], "/build/out");
        s.chown = Some("1000:1001".into());
        let l = copy(&store, &one, &s, CopyFrom::Context(&c), None)
            .unwrap()
            .unwrap();
        let mut config = crate::build::exec::config::scratch("amd64", "linux");
        let two = commit(&store, &one, Some(l), &mut config, &[]).unwrap().1;
        assert_eq!(two.diff_ids.len(), 2);
        // from the two layers (a lower-only overlay) into a scratch stage
        let s = step(
            &["/build/out/bin", "/etc/passwd", "/build/out/pw"],
            "/copied/",
        );
        let l = copy(&store, &Layers::default(), &s, CopyFrom::Layers(&two), None)
            .unwrap()
            .unwrap();
        let fs_dir = l.snapshot.as_ref().unwrap().path().join("fs");
        let m = fs::metadata(fs_dir.join("copied/bin")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1001));
        assert!(fs::read_to_string(fs_dir.join("copied/passwd"))
            .unwrap()
            .contains("app:x:1000"));
        // the symlink the source names is followed inside the stage's root
        assert!(fs::read_to_string(fs_dir.join("copied/pw"))
            .unwrap()
            .contains("app:x:1000"));
        // one layer: its snapshot read directly
        let l = copy(
            &store,
            &Layers::default(),
            &step(&["/etc/group"], "/g"),
            CopyFrom::Layers(&one),
            None,
        )
        .unwrap()
        .unwrap();
        assert!(
            fs::read_to_string(l.snapshot.as_ref().unwrap().path().join("fs/g"))
                .unwrap()
                .contains("app")
        );
        assert!(!fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&dir.path().display().to_string()));
    }
}
