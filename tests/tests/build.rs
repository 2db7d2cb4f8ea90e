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
