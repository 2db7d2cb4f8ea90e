//! `rbox build`: Dockerfiles built as root with the runtime, shim and
//! plugins under test, from the busybox image `bb`, then run.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use rrun_tests::stderr;
use rrun_tests::{serial, HostBridgeCleanup, Rbox};
use serde_json::Value;

/// A context dir `ctx` in the test's dir with this Dockerfile.
fn context(rb: &Rbox, dockerfile: &str) -> String {
    let ctx = rb.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx.to_str().unwrap().to_string()
}

/// The entries of each layer tar of `image` that its base `bb` does not
/// have (the build's layers), in order.
fn new_layers(rb: &Rbox, image: &str) -> Vec<BTreeSet<String>> {
    let base = rb.inspect("bb")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    let digest = rb.inspect(image)["Metadata"]["ManifestDigest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        rb.root()
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
    };
    let manifest: Value = serde_json::from_slice(&fs::read(blob(&digest)).unwrap()).unwrap();
    manifest["layers"].as_array().unwrap()[base..]
        .iter()
        .map(|l| {
            let f = fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
            let mut t = tar::Archive::new(flate2::read::GzDecoder::new(f));
            t.entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                .collect()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const TUTORIAL: &str = r#"# the tutorial's shapes
ARG IMAGE_BASE=bb
ARG IMAGE_TAG=latest
FROM ${IMAGE_BASE}:${IMAGE_TAG}
ENV PATH=$PATH:/tmp
WORKDIR /app
RUN echo hello > /app/greeting \
    && mkdir -p /data \
    && echo built > /data/x
RUN rm /data/x
EXPOSE 443
EXPOSE 53/udp
LABEL maintainer="me" purpose=test
STOPSIGNAL SIGQUIT
CMD ["cat", "/app/greeting"]
"#;

#[test]
#[ignore = "needs root: builds run containers"]
fn the_tutorials_dockerfile_builds_and_runs() {
    // builds run containers on the bridge: leftovers are checked host-wide
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, TUTORIAL);
    rb.ok(&["build", "-t", "hello:1", &ctx]);
    assert_eq!(rb.ok(&["run", "--rm", "hello:1"]), "hello\n");
    let out = rb.ok(&[
        "run",
        "--rm",
        "hello:1",
        "sh",
        "-c",
        "echo $PATH; pwd; ls -a /data",
    ]);
    assert!(out.starts_with("/usr/local/sbin:"), "{out}");
    assert!(out.contains(":/tmp\n/app\n"), "{out}");
    assert!(!out.contains("x\n"), "/data/x was removed: {out}");

    let img = rb.inspect("hello:1");
    let c = &img["Config"];
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "/app/greeting"]));
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"443/tcp": {}, "53/udp": {}})
    );
    assert_eq!(
        c["Labels"],
        serde_json::json!({"maintainer": "me", "purpose": "test"})
    );
    // base + ENV WORKDIR RUN RUN EXPOSE EXPOSE LABEL STOPSIGNAL CMD
    let history = rb.ok(&["history", "hello:1"]);
    assert_eq!(history.lines().count(), 1 + 1 + 9, "header too: {history}");

    // one layer per WORKDIR and RUN; no mount-point stub (/etc/hosts,
    // /etc/resolv.conf, /proc…) of the build's containers in them
    assert_eq!(
        new_layers(&rb, "hello:1"),
        vec![
            set(&["app"]),
            set(&["app", "app/greeting", "data", "data/x"]),
            set(&["data", "data/.wh.x"]),
        ]
    );
    rb.assert_nothing_left("after the build and runs");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_rebuild_with_nothing_changed_is_all_cached_and_gives_the_same_image() {
    // builds run containers on the bridge: leftovers are checked host-wide
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, TUTORIAL);
    let first = rb.ok(&["build", "-q", "-t", "hello:1", &ctx]);
    let o = rb.run(&["build", "-t", "hello:2", &ctx]);
    rrun_tests::assert_ok(&o, "rebuild");
    let err = stderr(&o);
    assert_eq!(err.matches(" CACHED").count(), 3, "{err}");
    assert!(!err.contains("DONE"), "{err}");
    assert_eq!(rb.inspect("hello:2")["Id"], rb.inspect("hello:1")["Id"]);
    assert_eq!(first.trim(), rb.inspect("hello:1")["Id"].as_str().unwrap());
    // the steps' images are not listed
    let images = rb.ok(&["images", "-q"]);
    assert_eq!(images.lines().count(), 2, "bb and hello: {images}");

    // --no-cache runs every step again
    let o = rb.run(&["build", "--no-cache", &ctx]);
    rrun_tests::assert_ok(&o, "--no-cache");
    assert!(!stderr(&o).contains("CACHED"), "{}", stderr(&o));

    // a changed step runs again, and what follows it
    fs::write(
        Path::new(&ctx).join("Dockerfile"),
        TUTORIAL.replace("rm /data/x", "rm -f /data/x"),
    )
    .unwrap();
    let o = rb.run(&["build", "-t", "hello:3", &ctx]);
    rrun_tests::assert_ok(&o, "changed");
    assert_eq!(stderr(&o).matches(" CACHED").count(), 2, "{}", stderr(&o));

    rb.ok(&["builder", "prune", "-f"]);
    assert!(rb.ok(&["run", "--rm", "hello:3"]).contains("hello"));
    rb.assert_nothing_left("after the builds");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_failed_run_names_the_step_and_its_output_and_leaves_nothing() {
    // builds run containers on the bridge: leftovers are checked host-wide
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(
        &rb,
        "FROM bb\nRUN echo one > /one\nRUN echo something went wrong; exit 3\nRUN echo never\n",
    );
    let before = rb.entries("snapshots");
    let o = rb.run(&["build", "-t", "broken", &ctx]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("something went wrong"), "{err}");
    assert!(!err.contains("never"), "{err}");
    assert!(!rb.run(&["inspect", "broken"]).status.success());
    rb.assert_nothing_left("after the failed build");
    let temps: Vec<_> = rb
        .entries("snapshots")
        .difference(&before)
        .filter(|n| n.starts_with(".tmp-"))
        .cloned()
        .collect();
    assert!(temps.is_empty(), "temp snapshots left: {temps:?}");

    // a bad Dockerfile fails before anything runs
    let ctx = context(&rb, "FROM bb\nRUN echo hi\nFROBNICATE now\n");
    let o = rb.run(&["build", &ctx]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Dockerfile:3"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("RUN"), "nothing ran: {}", stderr(&o));
}

#[test]
#[ignore = "needs root: builds run containers"]
fn stages_build_from_stages_and_the_target_skips_the_rest() {
    // builds run containers on the bridge: leftovers are checked host-wide
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(
        &rb,
        "FROM bb AS base\nRUN echo base > /base\n\
         FROM bb AS broken\nRUN exit 1\n\
         FROM base AS app\nENV WHO=app\nRUN echo $WHO > /who\nCMD [\"cat\", \"/base\", \"/who\"]\n",
    );
    rb.ok(&["build", "--target", "app", "-t", "app", &ctx]);
    assert_eq!(rb.ok(&["run", "--rm", "app"]), "base\napp\n");
    // the last stage is the default target: it fails
    let o = rb.run(&["build", "--target", "broken", &ctx]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Dockerfile:4"), "{}", stderr(&o));
    let o = rb.run(&["build", "--target", "nope", &ctx]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    rb.assert_nothing_left("after the stage builds");
}

/// A file in the context dir, with its mode.
fn put(rb: &Rbox, rel: &str, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = rb.path("ctx").join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_copied_script_runs_and_dockerignore_keeps_files_out() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(
        &rb,
        "FROM bb\nCOPY setup.sh /setup.sh\nRUN /setup.sh\nCOPY . /src/\n\
         COPY --chown=1000:1001 --chmod=640 conf/app.conf /etc/app/\nCMD [\"cat\", \"/done\"]\n",
    );
    put(&rb, "setup.sh", "#!/bin/sh\necho set up > /done\n", 0o755);
    put(&rb, "conf/app.conf", "k=v\n", 0o600);
    put(&rb, "secret.txt", "do not copy\n", 0o644);
    put(&rb, "logs/a.log", "noise\n", 0o644);
    put(&rb, ".dockerignore", "secret.txt\n**/*.log\n", 0o644);
    rb.ok(&["build", "-t", "copied", &ctx]);
    assert_eq!(rb.ok(&["run", "--rm", "copied"]), "set up\n");
    let ls = rb.ok(&[
        "run",
        "--rm",
        "copied",
        "sh",
        "-c",
        "cd /src && find . | sort",
    ]);
    assert!(
        ls.contains("./setup.sh\n") && ls.contains("./conf/app.conf\n"),
        "{ls}"
    );
    assert!(!ls.contains("secret.txt") && !ls.contains("a.log"), "{ls}");
    let st = rb.ok(&[
        "run",
        "--rm",
        "copied",
        "stat",
        "-c",
        "%u:%g %a",
        "/etc/app/app.conf",
    ]);
    assert_eq!(st, "1000:1001 640\n");

    // one changed file: the COPYs that read it (`COPY .` too) and what
    // follows run again, the steps before come from the cache
    put(&rb, "conf/app.conf", "k=w\n", 0o600);
    let o = rb.run(&["build", "-t", "copied", &ctx]);
    rrun_tests::assert_ok(&o, "rebuild");
    let err = stderr(&o);
    assert_eq!(err.matches(" CACHED").count(), 2, "{err}");
    // a changed ignored file changes nothing
    put(&rb, "secret.txt", "still secret\n", 0o644);
    let o = rb.run(&["build", "-t", "copied", &ctx]);
    assert_eq!(stderr(&o).matches(" CACHED").count(), 4, "{}", stderr(&o));
    rb.assert_nothing_left("after the builds");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_dockerfile_outside_the_context_a_tar_context_and_copy_from_a_stage() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, "unused\n");
    put(&rb, "hello.txt", "hi\n", 0o644);
    let df = rb.path("Other.dockerfile");
    fs::write(
        &df,
        "FROM bb AS make\nRUN echo made > /made\n\
         FROM bb\nCOPY --from=make /made /from-stage\nCOPY hello.txt /\n\
         CMD [\"cat\", \"/from-stage\", \"/hello.txt\"]\n",
    )
    .unwrap();
    rb.ok(&["build", "-f", df.to_str().unwrap(), "-t", "two", &ctx]);
    assert_eq!(rb.ok(&["run", "--rm", "two"]), "made\nhi\n");

    // the context as a tar on stdin, its Dockerfile in it
    fs::write(
        Path::new(&ctx).join("Dockerfile"),
        "FROM bb\nCOPY hello.txt /t\nCMD [\"cat\", \"/t\"]\n",
    )
    .unwrap();
    let tar = rb.path("ctx.tar");
    let st = std::process::Command::new("tar")
        .args(["-C", &ctx, "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    let o = rb
        .cmd(&["build", "-t", "fromtar", "-"])
        .stdin(fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    rrun_tests::assert_ok(&o, "build -");
    assert_eq!(rb.ok(&["run", "--rm", "fromtar"]), "hi\n");

    // a missing source is named before anything runs
    fs::write(
        Path::new(&ctx).join("Dockerfile"),
        "FROM bb\nRUN echo ran\nCOPY nope.txt /\n",
    )
    .unwrap();
    let o = rb.run(&["build", &ctx]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope.txt"), "{}", stderr(&o));
    rb.assert_nothing_left("after the builds");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_build_killed_in_a_run_step_is_cleaned_by_the_next_build() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, "FROM bb\nRUN echo started; sleep 60\n");
    let mut child = rb
        .cmd(&["build", "-t", "killed", &ctx])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_step(&rb, "started");
    child.kill().unwrap();
    child.wait().unwrap();
    // the step's container outlives the killed rbox; the next build
    // removes it (it names the dead rbox's pid)
    assert!(!rb.ok(&["ps", "-a", "-q"]).trim().is_empty());
    let ctx = context(&rb, "FROM bb\nRUN echo next > /next\n");
    rb.ok(&["build", "-t", "next", &ctx]);
    assert_eq!(
        rb.ok(&["ps", "-a", "-q"]),
        "",
        "the killed build's container"
    );
    assert!(!rb.run(&["inspect", "killed"]).status.success());

    // builder prune does the same
    let ctx = context(&rb, "FROM bb\nRUN echo again; sleep 60\n");
    let mut child = rb
        .cmd(&["build", &ctx])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_step(&rb, "again");
    child.kill().unwrap();
    child.wait().unwrap();
    rb.ok(&["builder", "prune", "-f"]);
    assert_eq!(
        rb.ok(&["ps", "-a", "-q"]),
        "",
        "builder prune: the container"
    );
    rb.assert_nothing_left("after the killed builds");
}

/// Waits until a RUN step's container runs and has printed `marker`, and
/// its build is past the start (a build killed inside the start leaves a
/// half-made container, which any rbox finishes removing at once).
fn running_step(rb: &Rbox, marker: &str) {
    rrun_tests::wait_for(
        "the RUN step's output",
        std::time::Duration::from_secs(20),
        || {
            let id = rb.ok(&["ps", "-q"]);
            let id = id.trim();
            !id.is_empty() && rb.ok(&["logs", id]).contains(marker)
        },
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// The extended attribute `name` of `path` (not following a symlink).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// Sets the extended attribute `name` of `path`.
fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name} on {}", path.display());
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            out.push(r.to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &r, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out);
    out.sort();
    out
}

/// The entries of a tar: (path, type, uid, gid, mode, link name).
fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u64, u64, u32, Option<String>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.entry_type(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

/// Layers that change and delete files: the export must be their merge.
const LAYERED: &str = "FROM xa AS files\n\
FROM bb\n\
RUN mkdir -p /data/d/sub && echo hi > /data/f && ln /data/f /data/hard \\\n\
 && chown 1234:5678 /data/f && chmod 4750 /data/f \\\n\
 && echo x > /data/gone && touch /data/d/sub/old\n\
RUN rm /data/gone && rm -r /data/d && mkdir /data/d && echo new > /data/d/n\n";

#[test]
#[ignore = "needs root: builds run containers"]
fn output_exports_the_flattened_target_as_a_directory_or_a_tar_and_makes_no_image() {
    use std::os::unix::fs::MetadataExt;
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    // an image whose file has an xattr (the import keeps it)
    let xa = rrun_tests::busybox_tar(&rb.path(""), "xa", |root| {
        fs::create_dir_all(root.join("x")).unwrap();
        fs::write(root.join("x/f"), "with xattr").unwrap();
        set_xattr(&root.join("x/f"), "user.rbox", b"yes");
    });
    rb.ok(&["import", xa.to_str().unwrap(), "xa"]);
    let ctx = context(&rb, LAYERED);
    let images = rb.ok(&["images", "-q"]);

    // -o DIR: the files, no image
    let out = rb.path("out");
    let o = rb.run(&["build", "-o", out.to_str().unwrap(), &ctx]);
    rrun_tests::assert_ok(&o, "build -o DIR");
    assert_eq!(rb.ok(&["images", "-q"]), images, "no image is made");
    assert_eq!(fs::read_to_string(out.join("data/f")).unwrap(), "hi\n");
    let f = fs::metadata(out.join("data/f")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1234, 5678, 0o4750));
    assert_eq!(f.ino(), fs::metadata(out.join("data/hard")).unwrap().ino());
    assert!(out.join("bin/busybox").is_file());
    let data = tree(&out.join("data"));
    assert_eq!(data, ["d", "d/n", "f", "hard"], "whiteouts applied");
    assert!(
        !tree(&out).iter().any(|p| p.contains(".wh.")),
        "no whiteout file"
    );
    // the target stage's own layers: xattrs kept
    let files = rb.path("files");
    rb.ok(&[
        "build",
        "--target",
        "files",
        "-o",
        &format!("type=local,dest={}", files.display()),
        &ctx,
    ]);
    assert_eq!(
        xattr(&files.join("x/f"), "user.rbox"),
        Some(b"yes".to_vec())
    );
    // into a directory that has files: they stay, the export's replace
    fs::write(out.join("mine"), "kept").unwrap();
    fs::write(out.join("data/f"), "stale").unwrap();
    rb.ok(&["build", "-o", out.to_str().unwrap(), &ctx]);
    assert_eq!(fs::read_to_string(out.join("mine")).unwrap(), "kept");
    assert_eq!(fs::read_to_string(out.join("data/f")).unwrap(), "hi\n");

    // type=tar: the same files in one tar; dest=- on stdout, the same bytes
    let tar_path = rb.path("out.tar");
    let o = rb.run(&[
        "build",
        "-q",
        "-o",
        &format!("type=tar,dest={}", tar_path.display()),
        &ctx,
    ]);
    rrun_tests::assert_ok(&o, "build -o type=tar");
    assert_eq!(rrun_tests::stdout(&o), "", "no image, no id");
    let bytes = fs::read(&tar_path).unwrap();
    let entries = tar_entries(&bytes);
    let find = |p: &str| entries.iter().find(|e| e.0 == p).cloned();
    let f = find("data/f").expect("data/f");
    assert_eq!(
        (f.1, f.2, f.3, f.4),
        (tar::EntryType::Regular, 1234, 5678, 0o4750)
    );
    let hard = find("data/hard").expect("data/hard");
    assert_eq!(
        (hard.1, hard.5),
        (tar::EntryType::Link, Some("data/f".into()))
    );
    assert!(find("data/gone").is_none() && find("data/d/sub").is_none());
    assert!(!entries.iter().any(|e| e.0.contains(".wh.")));
    let o = rb.run(&["build", "-q", "-o", "-", &ctx]);
    rrun_tests::assert_ok(&o, "build -o -");
    assert!(o.stdout == bytes, "-o - writes the same tar to stdout");
    assert_eq!(rb.ok(&["images", "-q"]), images, "still no image");

    // with -t too: the image and the export
    rb.ok(&[
        "build",
        "-t",
        "both",
        "-o",
        rb.path("both").to_str().unwrap(),
        &ctx,
    ]);
    assert!(rb.path("both/data/d/n").is_file());
    assert_eq!(rb.ok(&["run", "--rm", "both", "cat", "/data/d/n"]), "new\n");
    rb.assert_nothing_left("after the exports");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn output_values_are_checked_first_and_a_failed_export_leaves_nothing() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, "FROM bb\nRUN echo ran > /ran\n");
    let file = rb.path("a-file");
    fs::write(&file, "").unwrap();
    let bad: Vec<(String, &str)> = vec![
        ("type=local".into(), "type=local needs dest=DIR"),
        ("type=image,name=x".into(), "type=image is not supported"),
        ("type=local,dest=x,foo=bar".into(), "unknown key \"foo\""),
        (
            format!("type=local,dest={}", file.display()),
            "is not a directory",
        ),
        (
            format!("type=tar,dest={}", rb.path("").display()),
            "is a directory",
        ),
    ];
    for (value, why) in &bad {
        let o = rb.run(&["build", "-o", value, &ctx]);
        rrun_tests::assert_fails_naming(&o, value, why);
        assert!(!stderr(&o).contains("RUN"), "nothing ran: {}", stderr(&o));
    }

    // a build that fails makes no destination
    let failing = context(&rb, "FROM bb\nRUN exit 2\n");
    let dest = rb.path("never");
    let o = rb.run(&["build", "-o", dest.to_str().unwrap(), &failing]);
    assert!(!o.status.success());
    assert!(!dest.exists());

    // an export that fails (the disk is full) leaves no half-written
    // destination, and no temp file beside it
    let small = rb.path("small");
    fs::create_dir(&small).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &small,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )
    .unwrap();
    let ctx = context(&rb, "FROM bb\nRUN echo ran > /ran\n");
    for value in [
        format!("type=local,dest={}/out", small.display()),
        format!("type=tar,dest={}/out.tar", small.display()),
    ] {
        let o = rb.run(&["build", "-o", &value, &ctx]);
        rrun_tests::assert_fails_naming(&o, &value, "No space left on device");
        let left: Vec<_> = fs::read_dir(&small).unwrap().flatten().collect();
        assert!(left.is_empty(), "{value}: {left:?}");
    }
    nix::mount::umount2(&small, nix::mount::MntFlags::empty()).unwrap();
    rb.assert_nothing_left("after the failed exports");
}

/// A loopback HTTP/1.1 server (127.0.0.1 only) of files the test may
/// change (path -> body, Last-Modified), 404 for other paths; counts the
/// requests per path; stops when dropped.
struct Server {
    addr: std::net::SocketAddr,
    files: Files,
    hits: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Files =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, (Vec<u8>, Option<String>)>>>;

impl Server {
    fn new() -> Server {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let files = Files::default();
        let hits = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f, h, st) = (files.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for c in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut c) = c else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut hdr = String::new();
                    match r.read_line(&mut hdr) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if hdr == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                let reply = match f.lock().unwrap().get(&path) {
                    Some((body, lm)) => {
                        let mut v = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        if let Some(lm) = lm {
                            v.push_str(&format!("Last-Modified: {lm}\r\n"));
                        }
                        v.push_str("\r\n");
                        let mut v = v.into_bytes();
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
            addr,
            files,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn put(&self, path: &str, body: &[u8], last_modified: Option<&str>) {
        self.files.lock().unwrap().insert(
            path.to_string(),
            (body.to_vec(), last_modified.map(String::from)),
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `sha256:<hex>` of `bytes`, by the host's sha256sum.
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = c.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

#[test]
#[ignore = "needs root: builds run containers"]
fn add_of_a_url_fetches_checks_names_dates_and_caches_it() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let srv = Server::new();
    let tool = b"#!/bin/sh\necho fetched tool\n";
    srv.put("/dl/tool.sh", tool, Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    srv.put("/dl/plain", b"v1\n", None);
    // a gzip tar: ADD of a URL does not extract it
    let tgz = rb.path("a.tgz");
    let st = std::process::Command::new("tar")
        .args([
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            &rb.path("").to_string_lossy(),
            "bb.tar",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    srv.put("/a.tgz", &fs::read(&tgz).unwrap(), None);
    let dockerfile = format!(
        "FROM bb\n\
         ADD --checksum={sum} {tool_url} /opt/\n\
         ADD --chown=7:8 --chmod=755 {plain_url} /bin/plain\n\
         ADD {tgz_url} /t/\n\
         RUN stat -c '%n %a %u:%g %Y' /opt/tool.sh > /stat && stat -c '%n %a %u:%g' /bin/plain >> /stat \\\n\
          && ls /t > /t.ls\n\
         CMD [\"sh\", \"-c\", \"cat /stat /t.ls; sh /opt/tool.sh\"]\n",
        sum = sha256(tool),
        tool_url = srv.url("/dl/tool.sh"),
        plain_url = srv.url("/dl/plain"),
        tgz_url = srv.url("/a.tgz"),
    );
    let ctx = context(&rb, &dockerfile);
    rb.ok(&["build", "-t", "fetched", &ctx]);
    let out = rb.ok(&["run", "--rm", "fetched"]);
    // 0600, root's, Last-Modified's time; --chown and --chmod applied;
    // the archive not extracted
    assert_eq!(
        out,
        "/opt/tool.sh 600 0:0 784111777\n/bin/plain 755 7:8\na.tgz\nfetched tool\n"
    );
    assert_eq!(srv.hits("/dl/tool.sh"), 1);

    // a rebuild: all cached; the checksummed URL is not fetched again
    let o = rb.run(&["build", "-t", "fetched", &ctx]);
    rrun_tests::assert_ok(&o, "rebuild");
    assert_eq!(stderr(&o).matches(" CACHED").count(), 4, "{}", stderr(&o));
    assert_eq!(srv.hits("/dl/tool.sh"), 1);
    assert_eq!(srv.hits("/dl/plain"), 2);
    // changed content behind the same URL: that ADD and what follows run
    srv.put("/dl/plain", b"v2\n", None);
    let o = rb.run(&["build", "-t", "fetched", &ctx]);
    rrun_tests::assert_ok(&o, "changed");
    assert_eq!(stderr(&o).matches(" CACHED").count(), 1, "{}", stderr(&o));
    assert_eq!(
        rb.ok(&["run", "--rm", "fetched", "cat", "/bin/plain"]),
        "v2\n"
    );

    // a wrong checksum names the URL and both digests
    let wrong = format!("sha256:{}", "0".repeat(64));
    let bad = context(
        &rb,
        &format!(
            "FROM bb\nADD --checksum={wrong} {} /x\n",
            srv.url("/dl/tool.sh")
        ),
    );
    let o = rb.run(&["build", &bad]);
    rrun_tests::assert_fails_naming(&o, "wrong checksum", &srv.url("/dl/tool.sh"));
    let err = stderr(&o);
    assert!(err.contains(&wrong) && err.contains(&sha256(tool)), "{err}");
    // a missing file names the URL and the status
    let gone = context(&rb, &format!("FROM bb\nADD {} /x\n", srv.url("/nope")));
    let o = rb.run(&["build", &gone]);
    rrun_tests::assert_fails_naming(&o, "404", "invalid response status 404");
    assert!(stderr(&o).contains(&srv.url("/nope")), "{}", stderr(&o));
    // nothing fetched is left in the store
    let temps: Vec<_> = rb
        .entries("snapshots")
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    rb.assert_nothing_left("after the builds");
}

/// The `system df` Build Cache row: (TOTAL, ACTIVE, SIZE, RECLAIMABLE).
fn build_cache_row(rb: &Rbox) -> (u32, u32, String, String) {
    let out = rb.ok(&["system", "df"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache row: {out}"));
    let f: Vec<&str> = line["Build Cache".len()..].split_whitespace().collect();
    (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].to_string(),
        f[3].to_string(),
    )
}

#[test]
#[ignore = "needs root: builds run containers"]
fn system_df_counts_the_build_cache_and_builder_prune_empties_it() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    assert_eq!(build_cache_row(&rb), (0, 0, "0B".into(), "0B".into()));
    let ctx = context(
        &rb,
        "FROM bb\nRUN --mount=type=cache,target=/cache head -c 1000 /dev/zero > /cache/f\n\
         RUN head -c 3000 /dev/zero > /big\nRUN echo started; sleep 2\n",
    );
    // while a step runs, its parent (a step's image) is in use
    let mut child = rb
        .cmd(&["build", "-t", "cached", &ctx])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_step(&rb, "started");
    let (total, active, _, _) = build_cache_row(&rb);
    assert_eq!((total, active), (3, 1), "2 steps and the cache mount");
    assert!(child.wait().unwrap().success());
    // 3 steps and the cache mount; the steps' layers are the image's too:
    // only the cache mount's 1000 bytes are the cache's own
    assert_eq!(build_cache_row(&rb), (4, 0, "1kB".into(), "1kB".into()));
    let images = rb.ok(&["system", "df"]);
    let row = images.lines().find(|l| l.starts_with("Images")).unwrap();
    assert!(
        row.split_whitespace().nth(1) == Some("2"),
        "bb and cached: {images}"
    );
    // the image gone, its layers are the cache's alone
    rb.ok(&["rmi", "cached"]);
    assert_eq!(build_cache_row(&rb), (4, 0, "4kB".into(), "4kB".into()));
    rb.ok(&["builder", "prune", "-f"]);
    assert_eq!(build_cache_row(&rb), (0, 0, "0B".into(), "0B".into()));
    rb.assert_nothing_left("after the builds");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn quiet_prints_only_the_id_and_a_failure_still_names_its_step() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(
        &rb,
        "FROM bb\nRUN echo visible-output; echo on-stderr >&2; echo x > /x\n",
    );
    let o = rb.run(&["build", "-q", &ctx]);
    rrun_tests::assert_ok(&o, "build -q");
    let id = rrun_tests::stdout(&o);
    assert!(id.starts_with("sha256:") && id.lines().count() == 1, "{id}");
    assert_eq!(rb.inspect(id.trim())["Id"], id.trim());
    let err = stderr(&o);
    assert!(
        !err.contains("visible-output") && !err.contains("on-stderr"),
        "{err}"
    );
    assert!(!err.contains("#1"), "no progress: {err}");
    // without -q the step's output is shown, on stderr (as BuildKit's)
    let o = rb.run(&["build", "--no-cache", &ctx]);
    rrun_tests::assert_ok(&o, "build");
    assert_eq!(rrun_tests::stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.contains("visible-output") && err.contains("on-stderr"),
        "{err}"
    );

    // a failed step under -q: its line, command, exit code and last lines
    let ctx = context(
        &rb,
        "FROM bb\nRUN echo fine\nRUN for i in 1 2 3; do echo line $i; done; exit 4\n",
    );
    let o = rb.run(&["build", "-q", &ctx]);
    assert!(!o.status.success());
    assert_eq!(rrun_tests::stdout(&o), "");
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("exit code: 4"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(
        !err.contains("fine"),
        "the steps that passed stay quiet: {err}"
    );
    rb.assert_nothing_left("after the quiet builds");
}

#[test]
#[ignore = "needs root: builds run containers"]
fn the_hosts_platform_builds_and_another_is_refused_by_name() {
    let _serial = serial();
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let (host, foreign) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        _ => ("arm64", "amd64"),
    };
    let ctx = context(
        &rb,
        "FROM --platform=$BUILDPLATFORM bb AS tools\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM > /target\n\
         FROM --platform=$TARGETPLATFORM bb\nARG BUILDPLATFORM TARGETPLATFORM TARGETARCH TARGETVARIANT\n\
         COPY --from=tools /target /tools-target\n\
         RUN echo \"$BUILDPLATFORM $TARGETPLATFORM $TARGETARCH [$TARGETVARIANT]\" > /p\n\
         CMD [\"cat\", \"/p\", \"/tools-target\"]\n",
    );
    rb.ok(&["build", "-t", "plain", &ctx]);
    assert_eq!(
        rb.ok(&["run", "--rm", "plain"]),
        format!("linux/{host} linux/{host} {host} []\nlinux/{host}\n")
    );
    rb.ok(&[
        "build",
        "--platform",
        &format!("linux/{host}"),
        "-t",
        "flag",
        &ctx,
    ]);
    assert_eq!(
        rb.ok(&["run", "--rm", "flag"]),
        format!("linux/{host} linux/{host} {host} []\nlinux/{host}\n")
    );
    // a variant of the host's: given to the build as it was asked
    let variant = if host == "amd64" { "v1" } else { "v8" };
    rb.ok(&[
        "build",
        "--platform",
        &format!("linux/{host}/{variant}"),
        "-t",
        "variant",
        &ctx,
    ]);
    assert_eq!(
        rb.ok(&["run", "--rm", "variant"]),
        format!("linux/{host} linux/{host}/{variant} {host} [{variant}]\nlinux/{host}/{variant}\n")
    );

    // another platform: refused before anything runs, naming it
    let o = rb.run(&["build", "--platform", &format!("linux/{foreign}"), &ctx]);
    rrun_tests::assert_fails_naming(&o, "--platform", &format!("linux/{foreign}"));
    assert!(stderr(&o).contains("no emulation"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("RUN"), "nothing ran: {}", stderr(&o));
    let o = rb.run(&[
        "build",
        "--platform",
        &format!("linux/{host},linux/{foreign}"),
        &ctx,
    ]);
    rrun_tests::assert_fails_naming(&o, "two platforms", "one platform at a time");
    let other = context(
        &rb,
        &format!("FROM bb\nRUN true\nFROM --platform=linux/{foreign} bb\nRUN true\n"),
    );
    let o = rb.run(&["build", &other]);
    rrun_tests::assert_fails_naming(
        &o,
        "FROM --platform",
        &format!("Dockerfile:3: platform linux/{foreign} cannot be built on this host"),
    );
    assert!(!stderr(&o).contains("RUN"), "nothing ran: {}", stderr(&o));
    rb.assert_nothing_left("after the platform builds");
}
