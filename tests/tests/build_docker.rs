//! `rbox build` against `docker build`: the same Dockerfiles and contexts
//! built by rbox and by BuildKit (DOCKER_BUILDKIT=1) of Debian's docker.io
//! 20.10 on a private dockerd, from the same busybox image (`rbox save` |
//! `docker load`, so FROM finds it in dockerd's store: no pull, no
//! network, no `# syntax=` frontend image), then both images read from
//! their `save` archives by the same code: the config fields `docker
//! inspect` shows, the history (length, `created_by`, which entries are
//! empty layers) and the files of the final root filesystem (type, mode,
//! owner, size and content, symlink target). Docker's observable behaviour
//! is the spec. Where BuildKit changed since 20.10's (0.8), rbox does what
//! BuildKit does now, and each Dockerfile lists those differences exactly
//! (`known`): any other difference, or a listed one not seen, fails the
//! test. docs/build.md gives the reasons, what rbox does differently on
//! purpose, and what 20.10's built-in Dockerfile frontend cannot build
//! (heredocs, `--link`, `--exclude`, `--checksum`, `--start-interval`…).
//! One dockerd serves the five builds; dropping it removes its data root
//! (images, build cache), and the store and contexts go with the test's
//! temp dir, also when the test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use rrun_tests::docker::Dockerd;
use rrun_tests::{
    assert_ok, output_via_files, rrun_bin, serial, stderr, HostBridgeCleanup, Rbox, Value,
};

/// One build: a context (files, symlinks, archives) and its Dockerfile,
/// built with the same `--build-arg`s and tagged `name` by both.
struct Case {
    name: &'static str,
    dockerfile: &'static str,
    /// (path, content, mode)
    files: &'static [(&'static str, &'static str, u32)],
    /// (path, target)
    symlinks: &'static [(&'static str, &'static str)],
    /// (directory, mode), set after the files are written
    dirs: &'static [(&'static str, u32)],
    build_args: &'static [&'static str],
    /// writes `archive.tar`, `archive.tar.gz` and `one.tar` into the context
    archives: bool,
    /// the differences expected (Docker 20.10's BuildKit 0.8 against what
    /// BuildKit does now, which rbox does)
    known: &'static [Known],
}

/// A difference the test expects, exactly: `at` (`history[N]`, a path or
/// a config field), what Docker 20.10 has there and what rbox has, and why
/// (docs/build.md, "Differences from Docker BuildKit").
struct Known {
    at: &'static str,
    docker: &'static str,
    rbox: &'static str,
    why: &'static str,
}

const ARG_VALUE: &str =
    "BuildKit 0.17+ writes an ARG's value (a build arg's, a global or predefined one's) in its history entry";
const EXPOSE_LIST: &str = "BuildKit 0.25+ writes EXPOSE's ports as a list, 0.8 as a Go map";
const HEALTHCHECK_FIELDS: &str =
    "BuildKit 0.30+ writes HEALTHCHECK's config with its field names (%+v), 0.8 with %q";
const COPY_FLAGS: &str =
    "BuildKit 0.13+ names --chown and --chmod in COPY's and ADD's history entry";
const STAGE_ARGS: &str =
    "BuildKit 0.15+ gives a stage the ARGs of the stage it is built on (a RUN's `|N k=v` prefix)";
const GROUPS: &str =
    "BuildKit 0.12+ gives RUN the user's primary group as a supplementary group, as docker run does";
const CHMOD_DEST: &str =
    "BuildKit 0.12+ (fsutil) makes the destination of a directory's contents with --chmod's mode";
const CHOWN_ARCHIVE: &str = "BuildKit 0.23+ applies ADD --chown to what an archive holds";

const TUTORIAL: Case = Case {
    name: "tutorial",
    dockerfile: r#"# the tutorial's shapes: ARG in FROM, ENV PATH, RUN with \ and &&
ARG IMAGE_BASE=bb
ARG IMAGE_TAG=latest
FROM ${IMAGE_BASE}:${IMAGE_TAG}
ARG IMAGE_TAG
ARG VERSION=v${IMAGE_TAG}
ENV PATH=$PATH:/tmp
ENV APP_HOME /srv/app
ENV GREETING="hello world" TAG=$IMAGE_TAG
WORKDIR $APP_HOME
WORKDIR sub
COPY setup.sh /setup.sh
RUN /setup.sh
RUN mkdir -p /data \
# a comment inside the continuation
    && echo built > /data/x \

    && echo "$GREETING from $TAG" > greeting \
    && mkdir /out && chown user:user /out
RUN rm /data/x
RUN true
WORKDIR /tmp
USER user
RUN id > /out/whoami && echo "$HOME $PATH" > /out/env
WORKDIR /made/by/user
USER 1000:1000
EXPOSE 443
EXPOSE 53/udp 8080/tcp
VOLUME /data
VOLUME ["/var/log", "/cache"]
LABEL maintainer="me" purpose=test "multi word"="a b"
LABEL version=$IMAGE_TAG
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=2 CMD wget -q -O- http://localhost/ || exit 1
CMD ["cat", "greeting"]
"#,
    files: &[("setup.sh", "#!/bin/sh\necho set up > /setup.done\n", 0o755)],
    symlinks: &[],
    dirs: &[],
    build_args: &[],
    archives: false,
    known: &[
        Known {
            at: "history[1]",
            docker: "ARG IMAGE_TAG [empty layer]",
            rbox: "ARG IMAGE_TAG=latest [empty layer]",
            why: ARG_VALUE,
        },
        Known {
            at: "history[18]",
            docker: "EXPOSE map[443/tcp:{}] [empty layer]",
            rbox: "EXPOSE [443/tcp] [empty layer]",
            why: EXPOSE_LIST,
        },
        Known {
            at: "history[19]",
            docker: "EXPOSE map[53/udp:{} 8080/tcp:{}] [empty layer]",
            rbox: "EXPOSE [53/udp 8080/tcp] [empty layer]",
            why: EXPOSE_LIST,
        },
        Known {
            at: "history[25]",
            docker: r#"HEALTHCHECK &{["CMD-SHELL" "wget -q -O- http://localhost/ || exit 1"] "30s" "3s" "5s" '\x02'} [empty layer]"#,
            rbox: "HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] Interval:30s Timeout:3s StartPeriod:5s StartInterval:0s Retries:2} [empty layer]",
            why: HEALTHCHECK_FIELDS,
        },
        Known {
            at: "/out/whoami",
            docker: r#"file "uid=1000(user) gid=1000(user)\n", mode 0644, owner 1000:1000"#,
            rbox: r#"file "uid=1000(user) gid=1000(user) groups=1000(user)\n", mode 0644, owner 1000:1000"#,
            why: GROUPS,
        },
    ],
};

const STAGES: Case = Case {
    name: "stages",
    dockerfile: r#"FROM --platform=$BUILDPLATFORM bb AS base
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG BUILDPLATFORM
RUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM" > /platform
RUN mkdir -p /out/dir/sub \
 && echo a > /out/a.txt && echo b > /out/b.txt && chmod 600 /out/b.txt \
 && echo c > /out/dir/sub/c.txt && ln -s a.txt /out/link \
 && chown -R 1000:1000 /out/dir
CMD ["sh"]

FROM base AS second
ENV STAGE=second
RUN echo "$STAGE ${HTTP_PROXY:-no proxy}" > /second

FROM bb AS unused
RUN exit 1

FROM second
COPY --from=base /out/ /copied/
COPY --from=base --chown=1000:1000 /out/dir /owned
COPY --from=base /out/dir /kept-owner
COPY --from=0 /platform /platform-copy
COPY --from=bb /marker-inside-rootfs /marker-copy
ENTRYPOINT ["/bin/echo"]
"#,
    files: &[],
    symlinks: &[],
    dirs: &[],
    build_args: &["HTTP_PROXY=http://proxy.invalid:3128"],
    archives: false,
    known: &[
        Known {
            at: "history[1]",
            docker: "ARG TARGETPLATFORM [empty layer]",
            rbox: "ARG TARGETPLATFORM=linux/amd64 [empty layer]",
            why: ARG_VALUE,
        },
        Known {
            at: "history[2]",
            docker: "ARG TARGETOS [empty layer]",
            rbox: "ARG TARGETOS=linux [empty layer]",
            why: ARG_VALUE,
        },
        Known {
            at: "history[3]",
            docker: "ARG TARGETARCH [empty layer]",
            rbox: "ARG TARGETARCH=amd64 [empty layer]",
            why: ARG_VALUE,
        },
        Known {
            at: "history[4]",
            docker: "ARG BUILDPLATFORM [empty layer]",
            rbox: "ARG BUILDPLATFORM=linux/amd64 [empty layer]",
            why: ARG_VALUE,
        },
        Known {
            at: "history[9]",
            docker: r#"RUN /bin/sh -c echo "$STAGE ${HTTP_PROXY:-no proxy}" > /second # buildkit"#,
            rbox: r#"RUN |4 TARGETPLATFORM=linux/amd64 TARGETOS=linux TARGETARCH=amd64 BUILDPLATFORM=linux/amd64 /bin/sh -c echo "$STAGE ${HTTP_PROXY:-no proxy}" > /second # buildkit"#,
            why: STAGE_ARGS,
        },
        Known {
            at: "history[11]",
            docker: "COPY /out/dir /owned # buildkit",
            rbox: "COPY --chown=1000:1000 /out/dir /owned # buildkit",
            why: COPY_FLAGS,
        },
    ],
};

const COPIES: Case = Case {
    name: "copies",
    dockerfile: r#"FROM scratch AS files
COPY a.txt /a

FROM bb
COPY a.txt /dst/
COPY a.txt /renamed.txt
COPY *.txt /wild/
COPY *.nomatch /nothing/
COPY [bc].* /classes/
COPY dir /dirc
COPY dir/ /dirc2/
COPY dir/sub/y.txt dir/.hidden /multi/
COPY link /copied-link
COPY --chown=user:user b.txt /owned/
COPY --chown=1000 a.txt /owned/uidonly
COPY --chmod=0755 a.txt /modes/exec
COPY --chmod=600 --chown=1000:1000 dir /modes/dir
COPY --from=files /a /from-scratch
ADD archive.tar /extracted/
ADD archive.tar.gz /extracted-gz
ADD --chown=1000:1000 one.tar /extracted-owned/
ADD --chmod=600 one.tar /extracted-chmod/
COPY private /private-copy
ADD a.txt /added/
ADD --chmod=640 b.txt /added/b
COPY archive.tar /not-extracted/
WORKDIR rel
COPY a.txt .
COPY keep ./keep/
COPY . /all/
CMD cat /dst/a.txt
"#,
    files: &[
        ("a.txt", "a\n", 0o644),
        ("b.txt", "bee\n", 0o600),
        ("c.md", "# c\n", 0o644),
        ("dir/x.txt", "x\n", 0o644),
        ("dir/sub/y.txt", "y\n", 0o640),
        ("dir/.hidden", "h\n", 0o644),
        ("dir/tmp/t.txt", "ignored by **/tmp\n", 0o644),
        ("noise.log", "ignored by **/*.log\n", 0o644),
        ("keep/important.log", "kept by !keep/*.log\n", 0o644),
        ("keep/other.txt", "other\n", 0o644),
        ("secret.txt", "ignored\n", 0o644),
        ("private/p.txt", "p\n", 0o600),
        (
            ".dockerignore",
            "**/*.log\n!keep/*.log\nsecret.txt\n**/tmp\n",
            0o644,
        ),
    ],
    symlinks: &[("link", "a.txt")],
    dirs: &[("private", 0o700)],
    build_args: &[],
    archives: true,
    known: &[
        Known {
            at: "history[10]",
            docker: "COPY b.txt /owned/ # buildkit",
            rbox: "COPY --chown=user:user b.txt /owned/ # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[11]",
            docker: "COPY a.txt /owned/uidonly # buildkit",
            rbox: "COPY --chown=1000 a.txt /owned/uidonly # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[12]",
            docker: "COPY a.txt /modes/exec # buildkit",
            rbox: "COPY --chmod=0755 a.txt /modes/exec # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[13]",
            docker: "COPY dir /modes/dir # buildkit",
            rbox: "COPY --chown=1000:1000 --chmod=600 dir /modes/dir # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[17]",
            docker: "ADD one.tar /extracted-owned/ # buildkit",
            rbox: "ADD --chown=1000:1000 one.tar /extracted-owned/ # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[18]",
            docker: "ADD one.tar /extracted-chmod/ # buildkit",
            rbox: "ADD --chmod=600 one.tar /extracted-chmod/ # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "history[21]",
            docker: "ADD b.txt /added/b # buildkit",
            rbox: "ADD --chmod=640 b.txt /added/b # buildkit",
            why: COPY_FLAGS,
        },
        Known {
            at: "/extracted-owned/d",
            docker: "dir, mode 0750, owner 1234:1235",
            rbox: "dir, mode 0750, owner 1000:1000",
            why: CHOWN_ARCHIVE,
        },
        Known {
            at: "/extracted-owned/d/f",
            docker: r#"file "f\n", mode 0640, owner 1234:1235"#,
            rbox: r#"file "f\n", mode 0640, owner 1000:1000"#,
            why: CHOWN_ARCHIVE,
        },
        Known {
            at: "/modes/dir",
            docker: "dir, mode 0755, owner 1000:1000",
            rbox: "dir, mode 0600, owner 1000:1000",
            why: CHMOD_DEST,
        },
    ],
};

const ESCAPE: Case = Case {
    name: "escape",
    dockerfile: r#"# escape=`
FROM bb
SHELL ["/bin/sh", "-e", "-c"]
RUN echo one > /one && `
    echo two >> /one
ENV WINPATH=C:\dir\sub
RUN echo "$WINPATH" > /winpath
ONBUILD RUN echo triggered > /onbuild
ONBUILD ENV FROM_ONBUILD=yes
ENTRYPOINT echo entry
CMD ["kept: set after ENTRYPOINT in the stage"]
"#,
    files: &[],
    symlinks: &[],
    dirs: &[],
    build_args: &[],
    archives: false,
    known: &[],
};

/// Built on `escape`'s image: its ONBUILD triggers run, its ENTRYPOINT is
/// replaced and the CMD it inherits goes.
const ONBUILD: Case = Case {
    name: "onbuild",
    dockerfile: r#"FROM escape
RUN echo "$FROM_ONBUILD" > /child
ENTRYPOINT ["/bin/echo", "child"]
HEALTHCHECK NONE
"#,
    files: &[],
    symlinks: &[],
    dirs: &[],
    build_args: &[],
    archives: false,
    known: &[Known {
        at: "history[11]",
        docker: r#"HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\x00'} [empty layer]"#,
        rbox: "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0} [empty layer]",
        why: HEALTHCHECK_FIELDS,
    }],
};

const CASES: [&Case; 5] = [&TUTORIAL, &STAGES, &COPIES, &ESCAPE, &ONBUILD];

/// The config fields compared (those `docker inspect` shows of a build).
const CONFIG_FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
];

#[test]
#[ignore = "needs root: builds run containers, and a private dockerd"]
fn rbox_and_buildkit_build_the_same_images() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let dk = Dockerd::start(&rrun_bin());
    let base = rb.path("bb-docker.tar");
    rb.ok(&["save", "-o", base.to_str().unwrap(), "bb"]);
    dk.ok(&["load", "-i", base.to_str().unwrap()]);

    let mut report = Vec::new();
    for case in CASES {
        let ctx = context(&rb, case);
        let ctx = ctx.to_str().unwrap();
        let mut args = vec!["build", "-t", case.name];
        for a in case.build_args {
            args.extend(["--build-arg", a]);
        }
        args.push(ctx);
        rb.ok(&args);
        let out = output_via_files(
            dk.command()
                .env("DOCKER_BUILDKIT", "1")
                .args(["build", "--progress", "plain"])
                .args(&args[1..]),
        );
        assert_ok(&out, &format!("docker build of {}", case.name));
        let ours = Image::saved(&rb.path(&format!("{}-rbox.tar", case.name)), |p| {
            rb.ok(&["save", "-o", p, case.name]);
        });
        let docker = Image::saved(&rb.path(&format!("{}-docker.tar", case.name)), |p| {
            dk.ok(&["save", "-o", p, case.name]);
        });
        let diffs = compare(&docker, &ours);
        let unexpected: Vec<String> = diffs
            .iter()
            .filter(|d| {
                !case
                    .known
                    .iter()
                    .any(|k| (k.at, k.docker, k.rbox) == (&d.at, &d.docker, &d.rbox))
            })
            .map(Diff::to_string)
            .collect();
        let unseen: Vec<String> = case
            .known
            .iter()
            .filter(|k| !diffs.iter().any(|d| d.at == k.at))
            .map(|k| format!("{} ({}): was not seen", k.at, k.why))
            .collect();
        if !unexpected.is_empty() || !unseen.is_empty() {
            report.push(format!(
                "{}: {} unexpected, {} expected but not seen (docker build's output:\n{}):\n  {}",
                case.name,
                unexpected.len(),
                unseen.len(),
                stderr(&out),
                unexpected
                    .iter()
                    .chain(&unseen)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "rbox's images differ from BuildKit's (- docker, + rbox):\n{}",
        report.join("\n")
    );
    rb.assert_nothing_left("after the builds");
}

/// The context dir of `case` in the test's dir.
fn context(rb: &Rbox, case: &Case) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let ctx = rb.path(&format!("ctx-{}", case.name));
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), case.dockerfile).unwrap();
    for (rel, content, mode) in case.files {
        let p = ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    for (rel, target) in case.symlinks {
        std::os::unix::fs::symlink(target, ctx.join(rel)).unwrap();
    }
    if case.archives {
        let tar = archive();
        fs::write(ctx.join("archive.tar"), &tar).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        fs::write(ctx.join("archive.tar.gz"), gz.finish().unwrap()).unwrap();
        fs::write(ctx.join("one.tar"), small_archive()).unwrap();
    }
    for (rel, mode) in case.dirs {
        fs::set_permissions(ctx.join(rel), fs::Permissions::from_mode(*mode)).unwrap();
    }
    ctx
}

/// A tar for ADD to unpack: a directory with an owner and mode of its
/// own, a file, a symlink and a hard link.
fn archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut put = |path: &str, kind: tar::EntryType, mode: u32, owner: u64, body: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner);
        h.set_gid(owner + 1);
        h.set_mtime(1_700_000_000);
        h.set_size(body.len() as u64);
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.set_size(0);
                b.append_link(&mut h, path, std::str::from_utf8(body).unwrap())
                    .unwrap();
            }
            _ => b.append_data(&mut h, path, body).unwrap(),
        }
    };
    put("pkg/", tar::EntryType::Directory, 0o750, 1234, b"");
    put("pkg/bin/", tar::EntryType::Directory, 0o755, 0, b"");
    put(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        1234,
        b"#!/bin/sh\n",
    );
    put(
        "pkg/current",
        tar::EntryType::Symlink,
        0o777,
        0,
        b"bin/tool",
    );
    put(
        "pkg/tool-link",
        tar::EntryType::Link,
        0o755,
        0,
        b"pkg/bin/tool",
    );
    put("top.txt", tar::EntryType::Regular, 0o444, 0, b"top\n");
    b.into_inner().unwrap()
}

/// A tar of one directory and one file, both owned by 1234:1235.
fn small_archive() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, mode, body) in [
        ("d/", tar::EntryType::Directory, 0o750, &b""[..]),
        ("d/f", tar::EntryType::Regular, 0o640, &b"f\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(1235);
        h.set_mtime(1_700_000_000);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, path, body).unwrap();
    }
    b.into_inner().unwrap()
}

/// What an image's `save` archive says of it.
struct Image {
    config: Value,
    files: BTreeMap<String, Node>,
}

impl Image {
    /// Saves it with `save(path)` and reads the docker-archive (manifest,
    /// config, layers applied in order, whiteouts honoured).
    fn saved(path: &Path, save: impl FnOnce(&str)) -> Image {
        save(path.to_str().unwrap());
        let mut members = BTreeMap::new();
        let mut t = tar::Archive::new(fs::File::open(path).unwrap());
        for e in t.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            members.insert(name, body);
        }
        fs::remove_file(path).unwrap();
        let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
        let m = &manifest[0];
        let config = serde_json::from_slice(&members[m["Config"].as_str().unwrap()]).unwrap();
        let mut files = BTreeMap::new();
        for layer in m["Layers"].as_array().unwrap() {
            apply_layer(&mut files, &members[layer.as_str().unwrap()]);
        }
        Image { config, files }
    }
}

/// A file of the root filesystem as compared: mtimes are not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    /// the content when short text, else its size and a hash of it
    File(String),
    Symlink(String),
    Other(u8),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Dir => write!(f, "dir")?,
            Kind::File(c) => write!(f, "file {c}")?,
            Kind::Symlink(t) => write!(f, "symlink to {t}")?,
            Kind::Other(t) => write!(f, "tar type {t}")?,
        }
        write!(
            f,
            ", mode {:04o}, owner {}:{}",
            self.mode, self.uid, self.gid
        )
    }
}

/// A node or `(none)`.
fn shown(n: Option<&Node>) -> String {
    n.map_or("(none)".to_string(), |n| n.to_string())
}

fn content(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) if s.len() <= 80 => format!("{s:?}"),
        _ => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            body.hash(&mut h);
            format!("{} bytes, hash {:016x}", body.len(), h.finish())
        }
    }
}

/// `./a/b/` -> `a/b`
fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

fn remove_tree(files: &mut BTreeMap<String, Node>, path: &str) {
    files.remove(path);
    let prefix = format!("{path}/");
    files.retain(|k, _| !k.starts_with(&prefix));
}

/// One layer tar (gzipped or not) over `files`, with OCI whiteouts.
fn apply_layer(files: &mut BTreeMap<String, Node>, blob: &[u8]) {
    let reader: Box<dyn Read + '_> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        Box::new(blob)
    };
    let mut t = tar::Archive::new(reader);
    for e in t.entries().unwrap() {
        let mut e = e.unwrap();
        let path = clean(&e.path().unwrap().to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            let prefix = format!("{dir}/");
            files.retain(|k, _| !k.starts_with(&prefix));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            remove_tree(files, &gone);
            continue;
        }
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                Kind::File(content(&body))
            }
            tar::EntryType::Symlink => Kind::Symlink(
                e.link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ),
            tar::EntryType::Link => {
                let target = clean(&e.link_name().unwrap().unwrap().to_string_lossy());
                files
                    .get(&target)
                    .unwrap_or_else(|| panic!("hard link {path} to a missing {target}"))
                    .kind
                    .clone()
            }
            other => Kind::Other(other.as_byte()),
        };
        if kind != Kind::Dir || files.get(&path).is_some_and(|n| n.kind != Kind::Dir) {
            remove_tree(files, &path);
        }
        let node = Node {
            kind,
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
        };
        files.insert(path, node);
    }
}

/// Missing and null are the same (Docker writes `"OnBuild": null`).
fn field(config: &Value, name: &str) -> Value {
    config["config"].get(name).cloned().unwrap_or(Value::Null)
}

/// What a history entry is compared on (the comment when it is not
/// BuildKit's).
fn entry(h: &Value) -> String {
    let mut out = h["created_by"].as_str().unwrap_or_default().to_string();
    if h["empty_layer"].as_bool().unwrap_or(false) {
        out.push_str(" [empty layer]");
    }
    match h["comment"].as_str().unwrap_or_default() {
        "buildkit.dockerfile.v0" => {}
        c => out.push_str(&format!(" ({c})")),
    }
    out
}

/// One difference: where, and what each image has there.
struct Diff {
    at: String,
    docker: String,
    rbox: String,
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:\n    - {}\n    + {}",
            self.at, self.docker, self.rbox
        )
    }
}

/// The differences of the config fields, the history and the files.
fn compare(docker: &Image, ours: &Image) -> Vec<Diff> {
    let mut out = Vec::new();
    let mut differ = |at: String, d: String, o: String| {
        if d != o {
            out.push(Diff {
                at,
                docker: d,
                rbox: o,
            });
        }
    };
    for name in CONFIG_FIELDS {
        let (d, o) = (field(&docker.config, name), field(&ours.config, name));
        differ(format!("config {name}"), d.to_string(), o.to_string());
    }
    let history = |c: &Value| -> Vec<String> {
        c["history"]
            .as_array()
            .map(|h| h.iter().map(entry).collect())
            .unwrap_or_default()
    };
    let (dh, oh) = (history(&docker.config), history(&ours.config));
    if dh.len() == oh.len() {
        for (i, (d, o)) in dh.into_iter().zip(oh).enumerate() {
            differ(format!("history[{i}]"), d, o);
        }
    } else {
        differ(
            "history".to_string(),
            format!("{} entries:\n      {}", dh.len(), dh.join("\n      ")),
            format!("{} entries:\n      {}", oh.len(), oh.join("\n      ")),
        );
    }
    let paths: BTreeSet<&String> = docker.files.keys().chain(ours.files.keys()).collect();
    for p in paths {
        let (d, o) = (docker.files.get(p), ours.files.get(p));
        differ(format!("/{p}"), shown(d), shown(o));
    }
    out
}
