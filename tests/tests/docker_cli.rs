//! rbox as a user of Docker's tutorial types it: what `ps` and `inspect`
//! show of the image's command, `ps`/`images` `--format` and `--filter`,
//! Docker's `image ls`/`container ls` spellings, exit statuses, `--user`
//! with the image's /etc/passwd and /etc/group, and `make install`. Docker's
//! observable behaviour is the spec. Black-box: the rbox binary (RBOX_BIN)
//! with rrun (RRUN_BIN), its shim (SHIM_BIN) and our CNI plugins
//! (CNI_BIN_DIR), on busybox images imported into a store of the test's own.

use std::path::Path;
use std::process::{Command, Stdio};

use rrun_tests::*;

/// A store ([`Rbox`]) with two busybox images: `bb` (no command) and
/// `srv` (`ENTRYPOINT ["sleep"]`, `CMD ["300"]`). Its /etc/group lists
/// `user` (uid 1000, home /home/user) in `wheel` (10) and `audio` (29).
fn store() -> Rbox {
    let rb = Rbox::with_image(|rootfs| {
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nwheel:x:10:other,user\naudio:x:29:user\nuser:x:1000:\nnobody:x:65534:\n",
        )
        .unwrap()
    });
    let tar = rb.path("bb.tar");
    rb.ok(&[
        "import",
        "-c",
        r#"ENTRYPOINT ["sleep"]"#,
        "-c",
        r#"CMD ["300"]"#,
        tar.to_str().unwrap(),
        "srv",
    ]);
    rb
}

/// Lines of `ps --format {{.Names}}` (and `args`), sorted.
fn names(rb: &Rbox, args: &[&str]) -> Vec<String> {
    let mut a = vec!["ps", "--format", "{{.Names}}"];
    a.extend(args);
    let mut v: Vec<String> = rb.ok(&a).lines().map(String::from).collect();
    v.sort();
    v
}

fn set(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split_whitespace().collect();
    v.sort();
    v
}

/// `docker run -d redis` then `docker ps`: COMMAND is the image's
/// ENTRYPOINT and CMD, quoted and cut at 20 characters unless --no-trunc;
/// `inspect` has Path, Args, Config.Entrypoint and Config.Cmd.
#[test]
#[ignore = "needs root"]
fn ps_and_inspect_show_the_image_command() {
    let _serial = serial();
    let rb = store();
    rb.ok(&["run", "-d", "--net", "none", "--name", "db1", "srv"]);
    rb.ok(&[
        "run",
        "-d",
        "--net",
        "none",
        "--name",
        "sh1",
        "--entrypoint",
        "sh",
        "srv",
        "-c",
        "sleep 300 # and a long comment",
    ]);
    assert_eq!(
        rb.ok(&["ps", "--filter", "name=db1", "--format", "{{.Command}}"]),
        "\"sleep 300\"\n"
    );
    let table = rb.ok(&["ps", "--filter", "name=db1"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("\"sleep 300\"")),
        "{table}"
    );
    let f = "{{json .Path}} {{json .Args}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}";
    assert_eq!(
        rb.ok(&["inspect", "--format", f, "db1"]),
        "\"sleep\" [\"300\"] [\"sleep\"] [\"300\"]\n"
    );
    // an argument with a space is single-quoted, the whole cut at 20
    assert_eq!(
        rb.ok(&["ps", "--filter", "name=sh1", "--format", "{{.Command}}"]),
        "\"sh -c 'sleep 300 # …\"\n"
    );
    assert_eq!(
        rb.ok(&[
            "ps",
            "--no-trunc",
            "--filter",
            "name=sh1",
            "--format",
            "{{.Command}}"
        ]),
        "\"sh -c 'sleep 300 # and a long comment'\"\n"
    );
    assert_eq!(
        rb.ok(&["inspect", "--format", f, "sh1"]),
        "\"sh\" [\"-c\",\"sleep 300 # and a long comment\"] [\"sh\"] [\"-c\",\"sleep 300 # and a long comment\"]\n"
    );
    // the image's labels, and the command line's over them
    let tar = rb.dir.path().join("bb.tar");
    rb.ok(&[
        "import",
        "-c",
        "LABEL tier=db a=b",
        "-c",
        r#"CMD ["sleep", "300"]"#,
        tar.to_str().unwrap(),
        "lbl",
    ]);
    rb.ok(&[
        "run",
        "-d",
        "--net",
        "none",
        "--name",
        "l1",
        "-l",
        "tier=cache",
        "-l",
        "x",
        "lbl",
    ]);
    assert_eq!(
        rb.ok(&["inspect", "--format", "{{json .Config.Labels}}", "l1"]),
        "{\"a\":\"b\",\"tier\":\"cache\",\"x\":\"\"}\n"
    );
}

/// `--format` as Docker reads it: `table` with a header of Docker's
/// titles, `\t` escapes, `json` and `{{json .}}` one object a line; the
/// same for `images`.
#[test]
#[ignore = "needs root"]
fn ps_and_images_format_like_docker() {
    let _serial = serial();
    let rb = store();
    let id = rb.ok(&["run", "-d", "--net", "none", "--name", "web1", "srv"]);
    let short = &id.trim()[..12];
    assert_eq!(
        rb.ok(&["ps", "--format", r"table {{.ID}}\t{{.Names}}"]),
        format!("CONTAINER ID   NAMES\n{short}   web1\n")
    );
    assert_eq!(
        rb.ok(&["ps", "--format", r"{{.Names}}\t{{.State}}"]),
        "web1\trunning\n"
    );
    let header = rb.ok(&["ps", "--format", "table"]);
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND "),
        "{header}"
    );
    for format in ["json", "{{json .}}"] {
        let out = rb.ok(&["ps", "--format", format]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
        assert_eq!(v["Names"], "web1", "{out}");
        assert_eq!(v["ID"], short, "{out}");
        assert_eq!(v["Command"], "\"sleep 300\"", "{out}");
        assert_eq!(v["State"], "running", "{out}");
        assert_eq!(v["Image"], "srv", "{out}");
        assert_eq!(v["Networks"], "none", "{out}");
        assert!(v["Status"].as_str().unwrap().starts_with("Up "), "{out}");
    }
    // a field ps does not have: an error naming it, not empty output
    let o = rb.run(&["ps", "--format", "{{.Nope}}"]);
    assert_fails_naming(&o, "unknown field", "Nope");

    let mut lines: Vec<String> = rb
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(lines, ["bb:latest", "srv:latest"]);
    let t = rb.ok(&["images", "--format", r"table {{.Repository}}\t{{.Tag}}"]);
    let mut rows = t.lines();
    assert_eq!(rows.next(), Some("REPOSITORY   TAG"), "{t}");
    assert_eq!(set(&rows.collect::<Vec<_>>().join("\n")).len(), 4, "{t}");
    let j = rb.ok(&["images", "--format", "json"]);
    for l in j.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect(l);
        assert!(v["ID"].is_string() && v["Repository"].is_string(), "{j}");
    }
    // labels: LABELS is k=v,…; .Label "k" one of them
    rb.ok(&[
        "run", "-d", "--net", "none", "--name", "web2", "-l", "tier=db", "-l", "a=b", "srv",
    ]);
    let f = r#"{{.Names}} {{.Labels}} {{.Label "tier"}}."#;
    assert_eq!(
        rb.ok(&["ps", "--format", f]),
        "web2 a=b,tier=db db.\nweb1  .\n"
    );
}

/// `--filter`: one key's values OR, different keys AND, Docker's keys and
/// its error for an unknown one; the same for `images`.
#[test]
#[ignore = "needs root"]
fn ps_and_images_filter_like_docker() {
    let _serial = serial();
    let rb = store();
    let net = ["--net", "none"];
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "-d"];
        a.extend(net);
        a.extend(extra);
        rb.ok(&a)
    };
    run(&["--name", "web1", "bb", "sleep", "300"]);
    let db = run(&["--name", "db1", "srv"]);
    let o = rb.run(&[
        "run", "--name", "job1", "--net", "none", "bb", "sh", "-c", "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    assert_eq!(names(&rb, &["--filter", "name=web1"]), ["web1"]);
    assert_eq!(names(&rb, &["--filter", "name=^/db"]), ["db1"]);
    assert_eq!(
        names(&rb, &["--filter", &format!("id={}", &db.trim()[..8])]),
        ["db1"]
    );
    // status lists stopped containers without -a, as Docker's does
    assert_eq!(names(&rb, &["--filter", "status=exited"]), ["job1"]);
    assert_eq!(names(&rb, &["-a", "--filter", "exited=3"]), ["job1"]);
    assert!(names(&rb, &["-a", "--filter", "exited=0"]).is_empty());
    assert_eq!(names(&rb, &["-a", "--filter", "ancestor=srv"]), ["db1"]);
    assert_eq!(names(&rb, &["-a", "--filter", "network=none"]).len(), 3);
    // OR within a key, AND across keys
    assert_eq!(
        names(&rb, &["--filter", "name=web1", "--filter", "name=db1"]),
        ["db1", "web1"]
    );
    assert!(names(&rb, &["--filter", "name=web1", "--filter", "status=exited"]).is_empty());
    assert_eq!(
        names(
            &rb,
            &[
                "-a",
                "--filter",
                "status=running",
                "--filter",
                "ancestor=bb"
            ]
        ),
        ["web1"]
    );
    let o = rb.run(&["ps", "--filter", "bogus=1"]);
    assert_fails_naming(&o, "unknown filter", "invalid filter 'bogus'");
    let o = rb.run(&["ps", "--filter", "status=sleeping"]);
    assert_fails_naming(&o, "bad status", "invalid filter 'status=sleeping'");

    // images: a dangling one (its name moved to a new import)
    let tar = rb.dir.path().join("bb.tar");
    let old = rb.ok(&["images", "-q", "bb"]);
    rb.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), "bb"]);
    assert_eq!(
        rb.ok(&["images", "-q", "--filter", "dangling=true"]),
        old,
        "the old bb is dangling"
    );
    let repos = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}"];
        a.extend(args);
        set(&rb.ok(&a))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(repos(&["--filter", "reference=sr*"]), ["srv"]);
    assert_eq!(repos(&["--filter", "reference=bb:latest"]), ["bb"]);
    assert_eq!(repos(&["--filter", "dangling=false"]), ["bb", "srv"]);
    let o = rb.run(&["images", "--filter", "bogus=1"]);
    assert_fails_naming(&o, "unknown image filter", "invalid filter 'bogus'");

    // labels: the image's and --label's
    rb.ok(&[
        "import",
        "-c",
        "LABEL tier=db",
        "-c",
        r#"CMD ["sleep", "300"]"#,
        tar.to_str().unwrap(),
        "lbl",
    ]);
    assert_eq!(repos(&["--filter", "label=tier=db"]), ["lbl"]);
    run(&["--name", "web2", "-l", "tier=front", "bb", "sleep", "300"]);
    run(&["--name", "db2", "lbl"]);
    assert_eq!(names(&rb, &["--filter", "label=tier=front"]), ["web2"]);
    assert_eq!(names(&rb, &["--filter", "label=tier"]), ["db2", "web2"]);
    assert_eq!(
        names(&rb, &["--filter", "label=tier", "--filter", "name=db"]),
        ["db2"],
        "db1 has no label"
    );
}

/// Docker's management commands: `image ls`, `container ls`, and the
/// other `image X` / `container X` forms of rbox's verbs.
#[test]
#[ignore = "needs root"]
fn image_and_container_commands() {
    let _serial = serial();
    let rb = store();
    let images = rb.ok(&["images"]);
    assert_eq!(rb.ok(&["image", "ls"]), images);
    assert_eq!(rb.ok(&["image", "list"]), images);
    rb.ok(&[
        "container",
        "run",
        "-d",
        "--net",
        "none",
        "--name",
        "c1",
        "srv",
    ]);
    let ps = rb.ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}}"]);
    assert_eq!(ps, "c1 srv\n");
    for verb in ["ls", "list", "ps"] {
        assert_eq!(
            rb.ok(&["container", verb, "-a", "--format", "{{.Names}} {{.Image}}"]),
            ps,
            "container {verb}"
        );
    }
    assert_eq!(rb.ok(&["container", "exec", "c1", "echo", "hi"]), "hi\n");
    assert_eq!(
        rb.ok(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Status}}",
            "c1"
        ]),
        "running\n"
    );
    rb.ok(&["container", "stop", "-t", "1", "c1"]);
    rb.ok(&["container", "rm", "c1"]);
    assert_eq!(rb.ok(&["container", "ls", "-a", "-q"]), "");
    rb.ok(&["image", "tag", "bb", "bb:2"]);
    assert!(rb
        .ok(&["image", "inspect", "--format", "{{json .RepoTags}}", "bb:2"])
        .contains("bb:2"));
    assert!(rb.ok(&["image", "history", "bb:2"]).starts_with("IMAGE"));
    rb.ok(&["image", "rm", "bb:2"]);
    // no line with the tag 2 (CREATED may say "2 seconds ago")
    let images = rb.ok(&["images"]);
    assert!(
        !images
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("2")),
        "{images}"
    );
    // image prune: the dangling image goes, tagged ones stay
    let tar = rb.dir.path().join("bb.tar");
    let old = rb.ok(&["images", "-q", "bb"]);
    rb.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), "bb"]);
    let pruned = rb.ok(&["image", "prune", "-f"]);
    assert!(pruned.contains(old.trim()), "{pruned}");
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(rb.ok(&["images", "-q"]).lines().count(), 2);
    // help for the management command lists its forms
    let help = rb.ok(&["image", "--help"]);
    assert!(help.contains("prune"), "{help}");
}

/// Docker's exit statuses: 125 when rbox fails (a bad flag, no such image),
/// 126 when the command cannot be invoked, 127 when it is not found, for
/// run and exec; 1 for the other verbs' errors.
#[test]
#[ignore = "needs root"]
fn exit_statuses_like_docker() {
    let _serial = serial();
    let rb = store();
    rb.ok(&["run", "-d", "--net", "none", "--name", "up", "srv"]);
    let cases: &[(&[&str], i32)] = &[
        (&["run", "--bogus-flag", "bb", "true"], 125),
        (
            &[
                "run", "--rm", "--net", "none", "--memory", "lots", "bb", "true",
            ],
            125,
        ),
        (
            &[
                "run",
                "--rm",
                "--net",
                "none",
                "127.0.0.1:1/nosuch:1",
                "true",
            ],
            125,
        ),
        (&["create", "--net", "none", "127.0.0.1:1/nosuch:1"], 125),
        (
            &["run", "--rm", "--net", "none", "bb", "nosuchcommand"],
            127,
        ),
        (
            &["run", "--rm", "--net", "none", "bb", "/no/such/file"],
            127,
        ),
        (&["run", "--rm", "--net", "none", "bb", "/etc"], 126),
        (&["run", "--rm", "--net", "none", "bb", "/etc/passwd"], 126),
        (
            &["run", "--rm", "--net", "none", "bb", "sh", "-c", "exit 7"],
            7,
        ),
        (&["exec", "up", "nosuchcommand"], 127),
        (&["exec", "up", "/etc"], 126),
        (&["exec", "up", "/etc/passwd"], 126),
        (&["exec", "up", "sh", "-c", "exit 9"], 9),
        (&["exec", "nosuchcontainer", "true"], 1),
        (&["rm", "nosuchcontainer"], 1),
        (&["stop", "nosuchcontainer"], 1),
        (&["start", "nosuchcontainer"], 1),
        (&["inspect", "nosuchthing"], 1),
        (&["rmi", "nosuchimage"], 1),
        (&["ps", "--bogus-flag"], 125),
        (&["nosuchverb"], 1),
    ];
    let mut wrong = Vec::new();
    for (args, want) in cases {
        let o = rb.run(args);
        if o.status.code() != Some(*want) {
            wrong.push(format!(
                "{args:?}: {:?}, want {want}: {}",
                o.status.code(),
                stderr(&o).trim()
            ));
        }
        if *want >= 125 && !args.contains(&"--bogus-flag") && !args.contains(&"nosuchverb") {
            // rbox's one-line error (a pull may print its progress first)
            assert!(
                stderr(&o).lines().any(|l| l.starts_with("rbox: ")),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // the refused --rm runs left nothing behind
    assert_eq!(rb.ok(&["ps", "-a", "--format", "{{.Names}}"]), "up\n");
}

/// `--user` as Docker resolves it in the image: HOME from /etc/passwd ("/"
/// for an unknown uid), the primary group and the /etc/group entries that
/// list the user (not with an explicit group), `--group-add`; `exec -u`
/// the same.
#[test]
#[ignore = "needs root"]
fn user_takes_home_and_groups_from_the_image() {
    let _serial = serial();
    let rb = store();
    let probe = "echo $HOME; id -u; id -g; grep '^Groups:' /proc/self/status | cut -f2";
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm", "--net", "none"];
        a.extend(extra);
        a.extend(["bb", "sh", "-c", probe]);
        let out = rb.ok(&a);
        let l: Vec<String> = out.lines().map(String::from).collect();
        assert_eq!(l.len(), 4, "{extra:?}: {out}");
        (
            l[0].clone(),
            l[1].clone(),
            l[2].clone(),
            set(&l[3]).join(" "),
        )
    };
    let t = |h: &str, u: &str, g: &str, groups: &str| {
        (
            h.to_string(),
            u.to_string(),
            g.to_string(),
            groups.to_string(),
        )
    };
    assert_eq!(run(&[]), t("/root", "0", "0", "0"));
    assert_eq!(
        run(&["--user", "1000"]),
        t("/home/user", "1000", "1000", "10 1000 29")
    );
    assert_eq!(
        run(&["--user", "user"]),
        t("/home/user", "1000", "1000", "10 1000 29")
    );
    // an explicit group: that one only
    assert_eq!(
        run(&["--user", "1000:29"]),
        t("/home/user", "1000", "29", "29")
    );
    // a uid the image does not know: HOME=/, group 0
    assert_eq!(run(&["--user", "4242"]), t("/", "4242", "0", "0"));
    assert_eq!(
        run(&[
            "--user",
            "4242",
            "--group-add",
            "audio",
            "--group-add",
            "777"
        ]),
        t("/", "4242", "0", "0 29 777")
    );
    // -e HOME wins, as in Docker
    let out = rb.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-u",
        "1000",
        "-e",
        "HOME=/x",
        "bb",
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(out, "/x\n");
    let o = rb.run(&[
        "run",
        "--rm",
        "--net",
        "none",
        "--group-add",
        "nosuchgroup",
        "bb",
        "true",
    ]);
    assert_fails_naming(&o, "unknown --group-add", "nosuchgroup");
    assert_eq!(o.status.code(), Some(125));

    // exec -u: the same rules; the container's --group-add too
    rb.ok(&[
        "run",
        "-d",
        "--net",
        "none",
        "--name",
        "u1",
        "--group-add",
        "777",
        "srv",
    ]);
    let out = rb.ok(&["exec", "-u", "1000", "u1", "sh", "-c", probe]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "/home/user", "{out}");
    assert_eq!(set(l[3]), ["10", "1000", "29", "777"], "{out}");
    let out = rb.ok(&["exec", "u1", "sh", "-c", probe]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!((l[0], set(l[3])), ("/root", vec!["0", "777"]), "{out}");
}

/// With only `rbox` installed, a run says where the shim was looked for
/// (and makes nothing); `make install` copies what `make build` made, runs
/// no cargo, and installs what the README lists.
#[test]
#[ignore = "needs root"]
fn missing_shim_and_make_install() {
    let _serial = serial();
    let rb = store();
    let alone = tempfile::tempdir().unwrap();
    let rbox = alone.path().join("rbox");
    std::fs::copy(rbox_bin(), &rbox).unwrap();
    let o = Command::new(&rbox)
        .arg("--root")
        .arg(rb.root())
        .args(["run", "--rm", "--net", "none", "bb", "true"])
        .env_clear()
        .env("PATH", "/nonexistent-bin")
        .env("RBOX_CGROUP_PARENT", &rb.cgroup.0)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        "containerd-shim-rrun-v2 not found",
        "$RBOX_SHIM (not set)",
        &format!(
            "{} (next to rbox)",
            alone.path().join("containerd-shim-rrun-v2").display()
        ),
        "PATH (/nonexistent-bin)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "", "nothing was made");

    // make install into a DESTDIR: no cargo (CARGO=false), everything rbox needs
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dest = tempfile::tempdir().unwrap();
    let o = Command::new("make")
        .arg("-C")
        .arg(&repo)
        .arg("install")
        .arg(format!("DESTDIR={}", dest.path().display()))
        .arg("PREFIX=/usr/local")
        .arg("CARGO=false")
        .output()
        .unwrap();
    assert_ok(&o, "make install");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let said = readme
        .lines()
        .skip_while(|l| !l.contains("`make install` copies"))
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    for f in [
        "bin/rrun",
        "bin/rbox",
        "bin/rbox-init",
        "bin/containerd-shim-rrun-v2",
        "lib/cni/bridge",
        "lib/cni/host-local",
        "lib/cni/portmap",
        "lib/cni/loopback",
    ] {
        let p = dest.path().join("usr/local").join(f);
        assert!(p.is_file(), "{f} not installed");
        let name = f.rsplit('/').next().unwrap();
        assert!(
            said.contains(name),
            "the README's make install does not list {name}: {said}"
        );
    }
    // the installed rbox finds the installed shim next to itself
    let o = Command::new(dest.path().join("usr/local/bin/rbox"))
        .args(["version", "--format", "{{.Shim}}"])
        .env_clear()
        .env("PATH", "/nonexistent-bin")
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o).trim(),
        dest.path()
            .join("usr/local/bin/containerd-shim-rrun-v2")
            .display()
            .to_string()
    );
    // nothing built: a clear error, nothing installed
    let dest2 = tempfile::tempdir().unwrap();
    let o = Command::new("make")
        .arg("-C")
        .arg(&repo)
        .arg("install")
        .arg(format!("DESTDIR={}", dest2.path().display()))
        .arg("RRUN_TARGET=no-such-target")
        .arg("CARGO=false")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("run 'make build'"), "{}", stderr(&o));
    assert!(std::fs::read_dir(dest2.path()).unwrap().next().is_none());
}
