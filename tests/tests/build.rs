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

/// The numbers `cat` prints of `files` in `image`, one a line.
fn numbers(rb: &Rbox, image: &str, files: &[&str]) -> Vec<f64> {
    let mut args = vec!["run", "--rm", image, "cat"];
    args.extend(files);
    rb.ok(&args)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// The `N` of the progress line `#N [STEP…` in `err`.
fn step_number(err: &str, step: &str) -> String {
    let line = err
        .lines()
        .find(|l| l.starts_with('#') && l.contains(&format!(" {step}")))
        .unwrap_or_else(|| panic!("no step {step:?} in {err}"));
    line[1..line.find(' ').unwrap()].to_string()
}

/// Two stages with a RUN each, whose start and end (the host's uptime: the
/// containers share its clock) land in the final image.
const TWO_STAGES: &str = "FROM bb AS one\n\
RUN cut -d' ' -f1 /proc/uptime > /start; echo one is running; sleep 2; cut -d' ' -f1 /proc/uptime > /end\n\
FROM bb AS two\n\
RUN cut -d' ' -f1 /proc/uptime > /start; echo two is running; sleep 2; cut -d' ' -f1 /proc/uptime > /end\n\
FROM bb\n\
COPY --from=one /start /one.start\nCOPY --from=one /end /one.end\n\
COPY --from=two /start /two.start\nCOPY --from=two /end /two.end\n";

#[test]
#[ignore = "needs root: builds run containers"]
fn independent_stages_build_in_parallel_with_their_output_told_apart() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, TWO_STAGES);
    let o = rb.run(&["build", "-t", "par", &ctx]);
    rrun_tests::assert_ok(&o, "build");
    let t = numbers(
        &rb,
        "par",
        &["/one.start", "/one.end", "/two.start", "/two.end"],
    );
    let [one_start, one_end, two_start, two_end] = t[..] else {
        panic!("{t:?}")
    };
    // each took its 2 s: one after the other, they could not overlap
    assert!(one_end - one_start >= 1.99, "{t:?}");
    assert!(two_end - two_start >= 1.99, "{t:?}");
    assert!(
        one_start.max(two_start) < one_end.min(two_end),
        "the two RUN steps ran one after the other: {t:?}"
    );
    // each output line carries its step's number, which names the stage
    let err = stderr(&o);
    for stage in ["one", "two"] {
        let n = step_number(&err, &format!("[{stage} 2/2] RUN"));
        let said = format!("{stage} is running");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("#{n} ")) && l.ends_with(&said)),
            "no '#{n} … {said}' line in {err}"
        );
    }
    step_number(&err, "[stage-2 5/5] COPY --from=two /end /two.end");
    rb.assert_nothing_left("after the parallel build");
}

/// Waits until `n` step containers run and their output has each marker.
fn running_steps(rb: &Rbox, markers: &[&str]) {
    rrun_tests::wait_for(
        "the RUN steps' output",
        std::time::Duration::from_secs(20),
        || {
            let ids = rb.ok(&["ps", "-q"]);
            let logs: String = ids.lines().map(|id| rb.ok(&["logs", id])).collect();
            ids.lines().count() == markers.len() && markers.iter().all(|m| logs.contains(m))
        },
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
}

#[test]
#[ignore = "needs root: builds run containers"]
fn a_failed_stage_stops_the_others_at_once_and_nothing_is_left() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    // `bad` fails once `slow` runs (a cache mount both see tells it)
    let ctx = context(
        &rb,
        "FROM bb AS slow\n\
         RUN --mount=type=cache,id=sync,target=/sync touch /sync/slow; echo slow is running; sleep 60; echo slow done-$((6*7))\n\
         FROM bb AS bad\n\
         RUN --mount=type=cache,id=sync,target=/sync until [ -e /sync/slow ]; do sleep 0.1; done; echo bad went wrong; exit 7\n\
         FROM bb\nCOPY --from=slow /bin/busybox /a\nCOPY --from=bad /bin/busybox /b\n",
    );
    let before = rb.entries("snapshots");
    let began = std::time::Instant::now();
    let o = rb.run(&["build", "-t", "broken", &ctx]);
    let took = began.elapsed();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        took < std::time::Duration::from_secs(30),
        "the slow stage was waited for: {took:?}\n{err}"
    );
    // the failed step, its exit code and its last lines end the output
    let last = &err[err.rfind("Dockerfile:").expect("the error") - 1..];
    assert!(
        last.contains("Dockerfile:4: [bad 2/2] RUN --mount=type=cache,id=sync"),
        "{err}"
    );
    assert!(last.contains("exit code: 7"), "{err}");
    assert!(last.contains("its last lines:\n  bad went wrong"), "{err}");
    assert!(err.contains("slow is running"), "{err}");
    assert!(!err.contains("done-42"), "{err}");
    assert!(!rb.run(&["inspect", "broken"]).status.success());
    rb.assert_nothing_left("after the failed build");
    let temps: Vec<_> = rb
        .entries("snapshots")
        .difference(&before)
        .filter(|n| n.starts_with(".tmp-"))
        .cloned()
        .collect();
    assert!(temps.is_empty(), "temp snapshots left: {temps:?}");

    // SIGINT stops every stage, and the build
    let ctx = context(
        &rb,
        "FROM bb AS a\nRUN echo a is running; sleep 60\n\
         FROM bb AS b\nRUN echo b is running; sleep 60\n\
         FROM bb\nCOPY --from=a /bin/busybox /a\nCOPY --from=b /bin/busybox /b\n",
    );
    let child = rb
        .cmd(&["build", &ctx])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    running_steps(&rb, &["a is running", "b is running"]);
    let began = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(
        began.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    assert!(
        stderr(&o).contains("the build was stopped by SIGINT"),
        "{}",
        stderr(&o)
    );
    rb.assert_nothing_left("after the interrupted build");

    // kill -9: both steps' containers outlive rbox; the next build
    // removes them
    let mut child = rb
        .cmd(&["build", &ctx])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    running_steps(&rb, &["a is running", "b is running"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rb.ok(&["ps", "-a", "-q"]).lines().count(), 2);
    let ctx = context(&rb, "FROM bb\nRUN echo next > /next\n");
    rb.ok(&["build", "-t", "next", &ctx]);
    assert_eq!(
        rb.ok(&["ps", "-a", "-q"]),
        "",
        "the killed build's containers"
    );
    rb.assert_nothing_left("after the killed build");
}

const MOUNTS: &str = "ARG V=1\n\
FROM bb AS tools\n\
ARG V\n\
RUN mkdir -p /opt/tools && echo tool-v$V > /opt/tools/version && echo data > /file\n\
FROM bb\n\
RUN --mount=type=bind,from=tools,source=/opt/tools,target=/mnt/tools cat /mnt/tools/version > /got\n\
RUN --mount=from=tools,target=/t,rw echo scribble > /t/file && cat /t/file > /rw-saw\n\
RUN --mount=from=tools,target=/t cat /t/file > /after-rw; echo x > /t/file; echo $? > /ro-status\n\
RUN --mount=from=bb,source=/marker-inside-rootfs,target=/marker cat /marker > /from-image\n\
RUN --mount=type=cache,from=tools,source=/opt/tools,id=tc,target=/cache cat /cache/version > /cache-saw && echo more > /cache/added\n\
RUN --mount=type=cache,from=tools,source=/opt/tools,id=tc,target=/cache ls /cache > /cache-list\n\
RUN --mount=type=bind,source=ctx.txt,target=/ctx.txt cat /ctx.txt > /ctx-saw\n";

const MOUNTED: [&str; 8] = [
    "/got",
    "/rw-saw",
    "/after-rw",
    "/ro-status",
    "/from-image",
    "/cache-saw",
    "/cache-list",
    "/ctx-saw",
];

fn cat(rb: &Rbox, image: &str, files: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image, "cat"];
    args.extend(files);
    rb.ok(&args)
}

#[test]
#[ignore = "needs root: builds run containers"]
fn run_mounts_read_stages_images_and_the_context_and_key_the_cache() {
    let _serial = serial();
    // RUN steps use the default bridge: rbox0 and its leases go after
    let _bridge = HostBridgeCleanup::new();
    let rb = Rbox::with_busybox();
    let ctx = context(&rb, MOUNTS);
    put(&rb, "ctx.txt", "ctx-1\n", 0o644);
    rb.ok(&["build", "-t", "mounts", &ctx]);
    assert_eq!(
        cat(&rb, "mounts", &MOUNTED),
        "tool-v1\nscribble\ndata\n1\nrootfs\ntool-v1\nadded\nversion\nctx-1\n",
        "what the steps saw: a stage's files, rw writes thrown away, read-only, \
         an image's file, a cache filled from the stage, the context"
    );
    // one layer per RUN with its file only: no mount point stub
    let files: Vec<BTreeSet<String>> = ["got", "rw-saw", "after-rw ro-status", "from-image"]
        .iter()
        .chain(&["cache-saw", "cache-list", "ctx-saw"])
        .map(|f| f.split(' ').map(String::from).collect())
        .collect();
    assert_eq!(new_layers(&rb, "mounts"), files);

    // nothing changed: all cached (the stage's RUN and the 7 others)
    let o = rb.run(&["build", "-t", "mounts", &ctx]);
    rrun_tests::assert_ok(&o, "rebuild");
    assert_eq!(stderr(&o).matches(" CACHED").count(), 8, "{}", stderr(&o));
    // the mounted stage changed: the steps that mount it run again
    let o = rb.run(&["build", "--build-arg", "V=2", "-t", "mounts", &ctx]);
    rrun_tests::assert_ok(&o, "V=2");
    assert_eq!(
        cat(&rb, "mounts", &["/got", "/cache-saw", "/cache-list"]),
        "tool-v2\ntool-v2\nadded\nversion\n",
        "{}",
        stderr(&o)
    );
    // the context file a bind mount shows changed: that step runs again
    put(&rb, "ctx.txt", "ctx-2\n", 0o644);
    let o = rb.run(&["build", "--build-arg", "V=2", "-t", "mounts", &ctx]);
    rrun_tests::assert_ok(&o, "ctx.txt changed");
    assert_eq!(stderr(&o).matches(" CACHED").count(), 7, "{}", stderr(&o));
    assert_eq!(cat(&rb, "mounts", &["/ctx-saw"]), "ctx-2\n");

    // a source the stage lacks, and ssh: errors naming the line
    let ctx = context(
        &rb,
        "FROM bb AS s\nFROM bb\nRUN --mount=from=s,source=/nope,target=/x true\n",
    );
    let o = rb.run(&["build", &ctx]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Dockerfile:3") && stderr(&o).contains("\"/nope\" is not in"),
        "{}",
        stderr(&o)
    );
    let ctx = context(&rb, "FROM bb\nRUN --mount=type=ssh true\n");
    let o = rb.run(&["build", &ctx]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Dockerfile:2") && stderr(&o).contains("type=ssh is not supported"),
        "{}",
        stderr(&o)
    );
    rb.ok(&["builder", "prune", "-f"]);
    rb.assert_nothing_left("after the builds with mounts");
}
