//! rbox images: import, images, tag, rmi, inspect, history, layer unpack
//! (metadata, whiteouts, unsafe entries), the store under concurrency, and
//! bundles run by the real rrun. Every test has its own `--root`; `Rbox`'s
//! Drop unmounts and removes whatever a test left, also when it panics.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rrun_tests::{
    assert_fails_naming, assert_ok, busybox_rootfs, mounts_mentioning, output_via_files, rbox_bin,
    stderr, stdout, tar_dir, Rbox, Registry, RegistryAuth, Runtime, Value,
};

fn sha256_file(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(o.status.success());
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split(' ')
            .next()
            .unwrap()
    )
}

/// A busybox rootfs tarball in `rb`'s dir, /home/user owned by user.
fn busybox_tar(rb: &Rbox, name: &str) -> PathBuf {
    rrun_tests::busybox_tar(rb.dir.path(), name, |rootfs| {
        std::os::unix::fs::chown(rootfs.join("home/user"), Some(1000), Some(1000)).unwrap()
    })
}

/// One raw ustar entry: any name, link name and type, no checks at all
/// (GNU tar and the tar crate refuse to write unsafe entries).
struct Raw<'a> {
    name: &'a str,
    kind: u8,
    link: &'a str,
    data: &'a [u8],
    mode: u32,
}

fn raw(name: &str, kind: u8) -> Raw<'_> {
    Raw {
        name,
        kind,
        link: "",
        data: b"",
        mode: if kind == b'5' { 0o755 } else { 0o644 },
    }
}

fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        let put =
            |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
        put(&mut h, 0, e.name.as_bytes());
        put(&mut h, 100, format!("{:07o}\0", e.mode).as_bytes());
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{:011o}\0", e.data.len()).as_bytes());
        put(&mut h, 136, b"14000000000\0");
        put(&mut h, 148, b"        ");
        h[156] = e.kind;
        put(&mut h, 157, e.link.as_bytes());
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let path = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: path and name are NUL-terminated; buf is a live buffer of buf.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn setxattr(p: &Path, name: &str, value: &[u8]) {
    let path = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    // SAFETY: path and name are NUL-terminated; value is a live slice.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name:?} on {}", p.display());
}

fn snapshot_fs(rb: &Rbox, diff_id: &str) -> PathBuf {
    rb.root()
        .join("snapshots")
        .join(diff_id.trim_start_matches("sha256:"))
        .join("fs")
}

#[test]
#[ignore = "needs root"]
fn import_keeps_file_metadata_and_the_views_agree() {
    let rb = Rbox::new();
    let rootfs = rb.path("rootfs");
    busybox_rootfs(&rootfs);
    // the metadata a layer must keep
    let suid = rootfs.join("bin/suid");
    std::fs::write(&suid, "x").unwrap();
    std::os::unix::fs::chown(&suid, Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::hard_link(rootfs.join("bin/busybox"), rootfs.join("bin/hardlink")).unwrap();
    nix::unistd::mkfifo(
        &rootfs.join("fifo"),
        nix::sys::stat::Mode::from_bits(0o640).unwrap(),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &rootfs.join("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits(0o666).unwrap(),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    setxattr(&rootfs.join("marker-inside-rootfs"), "user.rbox", b"kept");
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    nix::sys::stat::utimensat(
        None,
        &rootfs.join("etc"),
        &old,
        &old,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let tar = rb.path("layer.tar");
    tar_dir(&rootfs, &tar);
    let diff_id = sha256_file(&tar);

    let id = rb.ok(&["import", tar.to_str().unwrap(), "busybox:1"]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    // the views
    let images = rb.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(lines.len(), 2, "{images}");
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{images}");
    }
    let short = &id[7..19];
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "1", short], "{images}");
    assert!(lines[1].ends_with("MB"), "{images}");
    assert_eq!(rb.ok(&["images", "-q"]), format!("{short}\n"));
    assert!(rb
        .ok(&["images", "--digests"])
        .lines()
        .nth(1)
        .unwrap()
        .contains("<none>"));
    let j: Value = serde_json::from_str(rb.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Repository"], "busybox");
    assert_eq!(j["Tag"], "1");
    assert_eq!(j["ID"], short);

    let v = rb.inspect("busybox:1");
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:1"]));
    assert_eq!(v["RepoDigests"], serde_json::json!([]));
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert!(v["Size"].as_u64().unwrap() > 1_000_000);
    // by full id, by id prefix, by the long name: the same image
    assert_eq!(rb.inspect(id)["Id"], id);
    assert_eq!(rb.inspect(short)["Id"], id);
    assert_eq!(rb.inspect("docker.io/library/busybox:1")["Id"], id);

    let history = rb.ok(&["history", "busybox:1"]);
    assert!(
        history.lines().nth(1).unwrap().starts_with(short),
        "{history}"
    );
    assert!(history.contains("Imported from"), "{history}");

    // blobs are named by their content's digest: config = id, manifest, layer
    let blobs = rb.entries("blobs/sha256");
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    for b in &blobs {
        let p = rb.root().join("blobs/sha256").join(b);
        assert_eq!(sha256_file(&p), format!("sha256:{b}"));
    }
    assert!(blobs.contains(&id[7..]));

    // the snapshot keeps what the tar had
    let fs = snapshot_fs(&rb, &diff_id);
    let m = std::fs::metadata(fs.join("bin/suid")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o4755));
    let bb = std::fs::metadata(fs.join("bin/busybox")).unwrap();
    assert_eq!(
        bb.ino(),
        std::fs::metadata(fs.join("bin/hardlink")).unwrap().ino()
    );
    assert_eq!(bb.mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read_link(fs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let f = std::fs::symlink_metadata(fs.join("fifo")).unwrap();
    assert!(f.file_type().is_fifo());
    assert_eq!(f.mode() & 0o777, 0o640);
    let d = std::fs::symlink_metadata(fs.join("dev/null")).unwrap();
    assert!(d.file_type().is_char_device());
    assert_eq!(d.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(
        getxattr(&fs.join("marker-inside-rootfs"), "user.rbox").as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        std::fs::metadata(fs.join("etc")).unwrap().mtime(),
        1_000_000_000
    );
    assert_eq!(
        std::fs::read(fs.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
}

#[test]
#[ignore = "needs root"]
fn gzip_and_zstd_tarballs_give_the_plain_tar_diff_id() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    let diff_id = sha256_file(&tar);
    for (tool, tag) in [("gzip", "gz"), ("zstd", "zst")] {
        let st = Command::new(tool)
            .args(["-k", "-q"])
            .arg(&tar)
            .status()
            .unwrap();
        assert!(st.success(), "{tool}");
        let packed = format!("{}.{tag}", tar.display());
        rb.ok(&["import", &packed, &format!("bb:{tag}")]);
        assert_eq!(
            rb.inspect(&format!("bb:{tag}"))["RootFS"]["Layers"],
            serde_json::json!([diff_id])
        );
    }
    // one layer, one snapshot, for both images
    assert_eq!(rb.entries("snapshots").len(), 1);
}

#[test]
#[ignore = "needs root"]
fn whiteouts_become_overlayfs_whiteouts() {
    let rb = Rbox::new();
    let data = raw_tar(&[
        raw("d/", b'5'),
        raw("d/.wh..wh..opq", b'0'),
        raw("d/kept", b'0'),
        raw(".wh.gone", b'0'),
        raw("e/.wh.deep", b'0'),
    ]);
    let tar = rb.path("wh.tar");
    std::fs::write(&tar, &data).unwrap();
    rb.ok(&["import", tar.to_str().unwrap(), "wh"]);
    let fs = snapshot_fs(&rb, &sha256_file(&tar));
    for w in ["gone", "e/deep"] {
        let m = std::fs::symlink_metadata(fs.join(w)).unwrap();
        assert!(m.file_type().is_char_device(), "{w}");
        assert_eq!(m.rdev(), 0, "{w}");
    }
    assert_eq!(
        getxattr(&fs.join("d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(fs.join("d/kept").exists());
    for name in [".wh.gone", "d/.wh..wh..opq", "e/.wh.deep"] {
        assert!(!fs.join(name).exists(), "{name} was written as a file");
    }
}

#[test]
#[ignore = "needs root"]
fn unsafe_layers_are_refused_and_leave_nothing() {
    let rb = Rbox::new();
    let outside = rb.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let out = outside.to_str().unwrap().to_string();
    let target = format!("{out}/pwned");
    let cases: Vec<(&str, Vec<Raw<'_>>, &str)> = vec![
        ("dotdot", vec![raw("a/../../pwned", b'0')], "'..'"),
        ("absolute", vec![raw(&target, b'0')], "absolute"),
        (
            "symlink parent",
            vec![
                Raw {
                    link: &out,
                    ..raw("evil", b'2')
                },
                raw("evil/pwned", b'0'),
            ],
            "symlink",
        ),
        (
            "relative symlink parent",
            vec![
                Raw {
                    link: "../../../../../../..",
                    ..raw("up", b'2')
                },
                raw("up/pwned", b'0'),
            ],
            "symlink",
        ),
        (
            "hard link out",
            vec![Raw {
                link: "../../../etc/passwd",
                ..raw("h", b'1')
            }],
            "hard link",
        ),
        (
            "absolute hard link",
            vec![Raw {
                link: "/etc/passwd",
                ..raw("h", b'1')
            }],
            "hard link",
        ),
        (
            "hard link through a symlink",
            vec![
                Raw {
                    link: "/etc",
                    ..raw("etc", b'2')
                },
                Raw {
                    link: "etc/passwd",
                    ..raw("h", b'1')
                },
            ],
            "symlink",
        ),
    ];
    for (what, entries, needle) in cases {
        // a good file first, so the refusal happens half-way
        let mut all = vec![Raw {
            data: b"fine",
            ..raw("ok", b'0')
        }];
        all.extend(entries);
        let tar = rb.path("bad.tar");
        std::fs::write(&tar, raw_tar(&all)).unwrap();
        let o = rb.run(&["import", tar.to_str().unwrap(), "bad"]);
        assert_fails_naming(&o, what, needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{what}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("rbox: import "), "{}", stderr(&o));
        rb.assert_empty();
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "{what}: something was written outside"
        );
    }
    assert!(!Path::new("/pwned").exists());
}

#[test]
#[ignore = "needs root"]
fn tag_rmi_and_shared_layers() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    let diff_id = sha256_file(&tar);
    let a = rb.ok(&["import", tar.to_str().unwrap(), "a:1"]);
    let b = rb.ok(&["import", tar.to_str().unwrap(), "localhost:5000/b"]);
    assert_ne!(
        a, b,
        "two imports are two images (their created times differ)"
    );
    assert_eq!(
        rb.entries("snapshots").len(),
        1,
        "the layer is unpacked once"
    );
    // layer blob (shared) + 2 configs + 2 manifests
    assert_eq!(rb.entries("blobs/sha256").len(), 5);

    rb.ok(&["tag", "a:1", "user/c:2"]);
    let v = rb.inspect("a:1");
    assert_eq!(v["RepoTags"], serde_json::json!(["a:1", "user/c:2"]));
    let images = rb.ok(&["images"]);
    assert!(images.contains("localhost:5000/b"), "{images}");
    assert!(images.contains("user/c"), "{images}");

    // by id, with names in two repositories: refused without -f
    let o = rb.run(&["rmi", &a.trim()[7..19]]);
    assert_fails_naming(&o, "rmi by id", "must be forced");
    assert_eq!(rb.ok(&["images", "-q"]).lines().count(), 2);

    assert_eq!(rb.ok(&["rmi", "user/c:2"]), "Untagged: user/c:2\n");
    assert_eq!(
        rb.ok(&["rmi", "a:1"]),
        format!("Untagged: a:1\nDeleted: {}\n", a.trim())
    );
    // the layer stays for b
    assert_eq!(rb.entries("snapshots").len(), 1);
    assert_eq!(rb.entries("blobs/sha256").len(), 3);
    let o = rb.run(&["inspect", "a:1"]);
    assert_fails_naming(&o, "inspect a removed image", "no such image: a:1");

    let o = rb.run(&["rmi", "nothere", "localhost:5000/b"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no such image: nothere"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o),
        format!(
            "Untagged: localhost:5000/b:latest\nDeleted: {}\nDeleted: {diff_id}\n",
            b.trim()
        )
    );
    rb.assert_empty();

    // -f removes every name of an image at once
    rb.ok(&["import", tar.to_str().unwrap(), "x"]);
    rb.ok(&["tag", "x", "y"]);
    let out = rb.ok(&["rmi", "-f", rb.ok(&["images", "-q"]).trim()]);
    assert!(
        out.contains("Untagged: x:latest") && out.contains("Untagged: y:latest"),
        "{out}"
    );
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn concurrent_commands_keep_the_store_consistent() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    // the store exists before the race
    rb.ok(&["images"]);
    let spawn = |args: Vec<String>| {
        let mut c = rb.cmd(&[]);
        c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let kids: Vec<_> = (0..4)
        .map(|i| {
            spawn(vec![
                "import".into(),
                tar.to_str().unwrap().into(),
                format!("img:{i}"),
            ])
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(rb.ok(&["images", "-q"]).lines().count(), 4);
    assert_eq!(rb.entries("snapshots").len(), 1);
    let kids: Vec<_> = (0..4)
        .map(|i| spawn(vec!["rmi".into(), format!("img:{i}")]))
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn bad_input_is_one_clear_line_and_changes_nothing() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    let t = tar.to_str().unwrap();
    let missing = rb.path("missing.tar");
    let garbage = rb.path("garbage.tar");
    std::fs::write(&garbage, vec![0x55u8; 4096]).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["import", missing.to_str().unwrap(), "x"],
            "missing.tar",
        ),
        (
            vec!["import", garbage.to_str().unwrap(), "x"],
            "garbage.tar",
        ),
        (vec!["import", t, "Busybox"], "must be lowercase"),
        (vec!["import", t, "a:b:c"], "invalid reference format"),
        (vec!["import", "-c", "RUN true", t, "x"], "RUN true"),
        (vec!["import", "-c", "WORKDIR rel", t, "x"], "absolute"),
        (vec!["tag", "nothere", "x"], "no such image: nothere"),
        (vec!["rmi", "nothere"], "no such image: nothere"),
        (vec!["history", "nothere"], "no such image: nothere"),
        (vec!["inspect", "nothere"], "no such image: nothere"),
    ];
    for (args, needle) in cases {
        let o = rb.run(&args);
        assert_fails_naming(&o, &format!("{args:?}"), needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        rb.assert_empty();
    }
    // a bad tag on an existing image changes nothing either
    rb.ok(&["import", t, "ok"]);
    let o = rb.run(&["tag", "ok", "UPPER"]);
    assert_fails_naming(&o, "tag UPPER", "lowercase");
    let o = rb.run(&[
        "tag",
        "ok",
        "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    assert_fails_naming(&o, "tag with digest", "digest");
    assert_eq!(
        rb.inspect("ok")["RepoTags"],
        serde_json::json!(["ok:latest"])
    );
    let root = rb.root();
    let o = Command::new(rbox_bin())
        .args(["--root", root.join("rbox.db").to_str().unwrap(), "images"])
        .output()
        .unwrap();
    assert_fails_naming(&o, "a file as --root", "rbox.db");
}

#[test]
#[ignore = "needs root"]
fn bundle_from_an_image_runs_with_rrun_and_teardown_leaves_nothing() {
    let rt = Runtime::new();
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    rb.ok(&[
        "import",
        "-c",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        "-c",
        r#"CMD ["echo hi; id -u; id -g; id -G; pwd; echo $FOO; echo $HOME; exit 3"]"#,
        "-c",
        "ENV FOO=bar",
        "-c",
        "WORKDIR /home/user",
        "-c",
        "USER user",
        tar.to_str().unwrap(),
        "app:1",
    ]);
    let bundle = rb.path("bundle");
    let id = rt.id("rbox");
    rb.ok(&["bundle", "create", "app:1", &id, bundle.to_str().unwrap()]);
    let rootfs = bundle.join("rootfs");
    assert_eq!(mounts_mentioning(&rootfs).len(), 1, "one overlay mount");
    let spec: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["user"]["uid"], 1000);
    assert_eq!(spec["process"]["cwd"], "/home/user");
    assert_eq!(spec["process"]["args"][0], "/bin/sh");
    let caps = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap();
    assert_eq!(caps.len(), 14, "Docker's default capabilities");
    assert_eq!(
        spec["linux"]["cgroupsPath"],
        format!("{}/{id}", rb.cgroup.0),
        "under RBOX_CGROUP_PARENT"
    );

    // the image is in use: rmi refuses, and the container id is taken
    assert_fails_naming(&rb.run(&["rmi", "app:1"]), "rmi in use", &id);
    assert_fails_naming(
        &rb.run(&[
            "bundle",
            "create",
            "app:1",
            &id,
            rb.path("b2").to_str().unwrap(),
        ]),
        "same id twice",
        "already exists",
    );
    assert!(!rb.path("b2").exists());

    let o = rt.cmd(&["run", "-b", bundle.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hi\n1000\n1000\n1000\n/home/user\nbar\n/home/user\n"
    );

    // args replace Cmd; a second container shares the layers
    let b3 = rb.path("b3");
    let id3 = rt.id("rbox");
    rb.ok(&[
        "bundle",
        "create",
        "app:1",
        &id3,
        b3.to_str().unwrap(),
        "--",
        "touch /home/user/new && cat /etc/passwd | wc -l",
    ]);
    let o = rt.cmd(&["run", "-b", b3.to_str().unwrap(), &id3]);
    assert_ok(&o, "run with args");
    assert_eq!(stdout(&o).trim(), "3");
    let upper = rb.root().join("containers").join(&id3).join("upper");
    // the container wrote to its upper dir, not to the layer
    assert!(upper.join("home/user/new").exists());
    assert_eq!(rb.entries("snapshots").len(), 1);

    for (i, b) in [(&id, &bundle), (&id3, &b3)] {
        rb.ok(&["bundle", "rm", i]);
        assert!(mounts_mentioning(b).is_empty());
        assert!(!b.exists(), "rbox made the bundle dir, so it removes it");
    }
    assert!(rb.entries("containers").is_empty());
    assert_fails_naming(
        &rb.run(&["bundle", "rm", &id]),
        "rm twice",
        "no such container",
    );
    rb.ok(&["rmi", "app:1"]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn failed_bundle_creation_leaves_nothing() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    let t = tar.to_str().unwrap();
    rb.ok(&[
        "import",
        "-c",
        "USER nosuchuser",
        "-c",
        "CMD [\"true\"]",
        t,
        "nouser",
    ]);
    rb.ok(&["import", t, "nocmd"]);
    let dir = rb.path("bundle");
    let d = dir.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["bundle", "create", "nouser", "c1", d],
            "unable to find user nosuchuser",
        ),
        (
            vec!["bundle", "create", "nocmd", "c1", d],
            "no command specified",
        ),
        (
            vec!["bundle", "create", "nothere", "c1", d],
            "no such image: nothere",
        ),
        (
            vec!["bundle", "create", "nocmd", "../x", d],
            "invalid container id",
        ),
    ] {
        let o = rb.run(&args);
        assert_fails_naming(&o, &format!("{args:?}"), needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(
            mounts_mentioning(rb.dir.path()).is_empty(),
            "{args:?}: mount left"
        );
        assert!(!dir.exists(), "{args:?}: bundle dir left");
        assert!(rb.entries("containers").is_empty(), "{args:?}");
    }
    // a bundle dir that already has a rootfs is not touched
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(dir.join("rootfs/mine"), "x").unwrap();
    let o = rb.run(&["bundle", "create", "nocmd", "c1", d, "--", "true"]);
    assert_fails_naming(&o, "existing rootfs", "already has a rootfs");
    assert!(dir.join("rootfs/mine").exists());
    assert!(rb.entries("containers").is_empty());
    // and the ids stayed free
    rb.ok(&["rmi", "nocmd", "nouser"]);
    rb.assert_empty();
}

// ---- pull: a real registry (Debian's docker-registry, tests/src/registry.rs) fed by skopeo ----

/// Write `data` as a blob of the OCI layout `dir`: (digest, size).
fn layout_blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let tmp = blobs.join("tmp");
    std::fs::write(&tmp, data).unwrap();
    let digest = sha256_file(&tmp);
    std::fs::rename(&tmp, blobs.join(&digest[7..])).unwrap();
    (digest, data.len())
}

/// An image manifest in layout `dir` for `arch` with gzip layers made from
/// the given tars; returns (manifest digest, size, layer blob digests).
fn layout_manifest(dir: &Path, arch: &str, tars: &[&Path]) -> (String, usize, Vec<String>) {
    let diff_ids: Vec<String> = tars.iter().map(|t| sha256_file(t)).collect();
    layout_manifest_claiming(dir, arch, tars, diff_ids)
}

/// `layout_manifest` whose config claims `diff_ids` (true or not).
fn layout_manifest_claiming(
    dir: &Path,
    arch: &str,
    tars: &[&Path],
    diff_ids: Vec<String>,
) -> (String, usize, Vec<String>) {
    let mut layers = Vec::new();
    let mut digests = Vec::new();
    for t in tars {
        let gz = Command::new("gzip")
            .args(["-n", "-c"])
            .arg(t)
            .output()
            .unwrap();
        assert!(gz.status.success());
        let (d, size) = layout_blob(dir, &gz.stdout);
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d, "size": size}));
        digests.push(d);
    }
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", "cat /app/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (cd, cs) = layout_blob(dir, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers,
    });
    let (md, ms) = layout_blob(dir, manifest.to_string().as_bytes());
    (md, ms, digests)
}

/// index.json of layout `dir`: `tag` names the descriptor given.
fn layout_index(dir: &Path, tag: &str, media_type: &str, digest: &str, size: usize) {
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A tar with one file /app/hello holding `text`.
fn app_tar(rb: &Rbox, name: &str, text: &str) -> PathBuf {
    let d = rb.path(&format!("{name}-dir"));
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::write(d.join("app/hello"), text).unwrap();
    let out = rb.path(&format!("{name}.tar"));
    tar_dir(&d, &out);
    out
}

#[test]
#[ignore = "needs root"]
fn pull_shares_layers_with_images_already_there() {
    let rt = Runtime::new();
    let rb = Rbox::new();
    let reg = Registry::start();
    let base = busybox_tar(&rb, "bb");
    let app = app_tar(&rb, "app", "hello from the registry\n");
    let lay_base = rb.path("layout-base");
    let (md, ms, base_blobs) = layout_manifest(&lay_base, "amd64", &[&base]);
    layout_index(
        &lay_base,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    // the base as a Docker schema2 manifest, the app as an OCI one
    reg.push_as(&lay_base, "1", "base:1", false, Some("v2s2"));
    let lay_app = rb.path("layout-app");
    let (md, ms, app_blobs) = layout_manifest(&lay_app, "amd64", &[&base, &app]);
    layout_index(
        &lay_app,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay_app, "1", "app:1", false);
    let host = reg.host();
    let base_ref = format!("{host}/base:1");
    let app_ref = format!("{host}/app:1");

    let out = rb.ok(&["pull", &base_ref]);
    assert!(
        out.contains(&format!("{}: Pull complete", &base_blobs[0][7..19])),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {base_ref}")),
        "{out}"
    );
    let v = rb.inspect(&base_ref);
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!([sha256_file(&base)])
    );
    let manifest_digest = v["Metadata"]["ManifestDigest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(rb.root().join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digests = v["RepoDigests"].as_array().unwrap();
    assert_eq!(digests.len(), 1);
    assert!(digests[0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{host}/base@sha256:")));
    assert!(rb.ok(&["images", "--digests"]).contains("sha256:"));

    let log_before = reg.log();
    let out = rb.ok(&["pull", &app_ref]);
    assert!(
        out.contains(&format!("{}: Already exists", &base_blobs[0][7..19])),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: Pull complete", &app_blobs[1][7..19])),
        "{out}"
    );
    assert_eq!(out.matches("Pull complete").count(), 1, "{out}");
    // the registry served the new layer only
    let log = &reg.log()[log_before.len()..];
    assert!(
        log.contains(&format!("/v2/app/blobs/{}", app_blobs[1])),
        "{log}"
    );
    assert!(!log.contains(&format!("blobs/{}", base_blobs[0])), "{log}");
    assert_eq!(rb.entries("snapshots").len(), 2);

    // the layers run: the image's Cmd reads the second layer's file
    let bundle = rb.path("bundle");
    let id = rt.id("rbox-pull");
    rb.ok(&["bundle", "create", &app_ref, &id, bundle.to_str().unwrap()]);
    let o = rt.cmd(&["run", "-b", bundle.to_str().unwrap(), &id]);
    rb.ok(&["bundle", "rm", &id]);
    assert_ok(&o, "run the pulled image");
    assert_eq!(stdout(&o), "hello from the registry\n");

    // pulling again downloads nothing
    let out = rb.ok(&["pull", &app_ref]);
    assert!(out.contains("Image is up to date"), "{out}");

    // rmi of the base keeps the layer the app image shares
    let out = rb.ok(&["rmi", &base_ref]);
    assert!(out.contains(&format!("Untagged: {base_ref}")), "{out}");
    assert!(
        out.contains(&format!("Untagged: {host}/base@sha256:")),
        "{out}"
    );
    assert_eq!(rb.entries("snapshots").len(), 2);
    assert_eq!(
        rb.inspect(&app_ref)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    rb.ok(&["rmi", &app_ref]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn pull_picks_the_platform_from_an_index() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let lay = rb.path("layout");
    let amd = app_tar(&rb, "amd", "amd64\n");
    let arm = app_tar(&rb, "arm", "arm64\n");
    let (ad, asz, _) = layout_manifest(&lay, "amd64", &[&amd]);
    let (rd, rsz, _) = layout_manifest(&lay, "arm64", &[&arm]);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ad, "size": asz,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": rd, "size": rsz,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    let (id, isz) = layout_blob(&lay, index.to_string().as_bytes());
    layout_index(
        &lay,
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &id,
        isz,
    );
    reg.push(&lay, "multi", "multi:1", true);
    let r = format!("{}/multi:1", reg.host());

    rb.ok(&["pull", "--platform", "linux/arm64", &r]);
    let v = rb.inspect(&r);
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!([sha256_file(&arm)])
    );
    // the repo digest is the index's, as Docker records it
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{}/multi@{id}", reg.host())])
    );
    rb.ok(&["rmi", &r]);
    rb.ok(&["pull", &r]);
    assert_eq!(rb.inspect(&r)["Architecture"], "amd64");
    rb.ok(&["rmi", &r]);

    // the same as a Docker manifest list
    reg.push_as(&lay, "multi", "list:1", true, Some("v2s2"));
    let list = format!("{}/list:1", reg.host());
    rb.ok(&["pull", "--platform", "linux/arm64", &list]);
    assert_eq!(rb.inspect(&list)["Architecture"], "arm64");
    let log = reg.log();
    assert!(
        log.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "the registry did not serve a manifest list"
    );
    rb.ok(&["rmi", &list]);

    let o = rb.run(&["pull", "--platform", "linux/s390x", &r]);
    assert_fails_naming(
        &o,
        "unknown platform",
        "no manifest for platform linux/s390x",
    );
    assert!(stderr(&o).contains("linux/arm64/v8"), "{}", stderr(&o));
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn pull_errors_are_clear_and_change_nothing() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let lay = rb.path("layout");
    let t = app_tar(&rb, "a", "a\n");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&t]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "there:1", false);
    let host = reg.host();
    let cases = [
        (format!("{host}/nothere:1"), "nothere"),
        (format!("{host}/there:nosuchtag"), "nosuchtag"),
    ];
    for (r, needle) in &cases {
        let o = rb.run(&["pull", r]);
        assert_fails_naming(&o, r, needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        rb.assert_empty();
    }
    // a registry that is not there
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = format!("127.0.0.1:{port}/x:1");
    let o = rb.run(&["pull", &r]);
    assert_fails_naming(&o, "registry down", &format!("127.0.0.1:{port}"));
    assert!(
        stderr(&o).to_lowercase().contains("connect"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    rb.assert_empty();
    // and a good pull still works after all that
    rb.ok(&["pull", &format!("{host}/there:1")]);
}

#[test]
#[ignore = "needs root"]
fn pull_with_basic_auth() {
    let rb = Rbox::new();
    let reg = Registry::start_with_auth(true);
    let lay = rb.path("layout");
    let t = app_tar(&rb, "a", "a\n");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&t]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "private:1", false);
    let r = format!("{}/private:1", reg.host());
    for user in [None, Some("tester:wrong")] {
        let mut args = vec!["pull", &r];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        let o = rb.run(&args);
        assert_fails_naming(&o, &format!("pull as {user:?}"), "private:1");
        assert!(stderr(&o).contains("Not authorized"), "{}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        rb.assert_empty();
    }
    rb.ok(&["pull", "--user", "tester:secret", &r]);
    assert_eq!(
        rb.inspect(&r)["RootFS"]["Layers"],
        serde_json::json!([sha256_file(&t)])
    );
    // the same through the environment, which keeps it out of `ps`
    rb.ok(&["rmi", &r]);
    let o = output_via_files(
        rb.cmd(&[])
            .env("RBOX_REGISTRY_AUTH", "tester:secret")
            .args(["pull", &r]),
    );
    assert_ok(&o, "pull with RBOX_REGISTRY_AUTH");
}

#[test]
#[ignore = "needs root"]
fn user_lookup_stays_inside_the_rootfs() {
    let rb = Rbox::new();
    // a passwd file outside the rootfs that an escaping lookup would read
    let outside = rb.path("outside-passwd");
    std::fs::write(&outside, "intruder:x:4242:4242::/:/bin/sh\n").unwrap();
    let up = "../".repeat(20);
    for (n, target) in [
        outside.to_str().unwrap().to_string(),
        format!("{up}{}", outside.to_str().unwrap().trim_start_matches('/')),
    ]
    .iter()
    .enumerate()
    {
        let d = rb.path(&format!("evil{n}"));
        busybox_rootfs(&d);
        std::fs::remove_file(d.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(target, d.join("etc/passwd")).unwrap();
        let tar = rb.path(&format!("evil{n}.tar"));
        tar_dir(&d, &tar);
        rb.ok(&[
            "import",
            "-c",
            "USER intruder",
            "-c",
            "CMD [\"true\"]",
            tar.to_str().unwrap(),
            "evil",
        ]);
        let dir = rb.path("bundle");
        let o = rb.run(&["bundle", "create", "evil", "c1", dir.to_str().unwrap()]);
        assert_fails_naming(&o, target, "unable to find user intruder");
        assert!(mounts_mentioning(rb.dir.path()).is_empty());
        assert!(!dir.exists());
        rb.ok(&["rmi", "evil"]);
    }
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn temp_files_of_a_dead_rbox_are_swept_live_ones_kept() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    rb.ok(&["images"]); // makes the store
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    let age = |p: &Path| {
        nix::sys::stat::utimensat(
            None,
            p,
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap()
    };
    let dead_snap = rb.root().join("snapshots/.tmp-1-2-3");
    std::fs::create_dir_all(dead_snap.join("fs/etc")).unwrap();
    age(&dead_snap);
    let dead_blob = rb.root().join("blobs/sha256/.tmp-1-2-4");
    std::fs::write(&dead_blob, "half a blob").unwrap();
    age(&dead_blob);
    // a temp dir some live rbox holds (its flock), as old as the others
    let live = rb.root().join("snapshots/.tmp-1-2-5");
    std::fs::create_dir(&live).unwrap();
    age(&live);
    let held = std::fs::File::open(&live).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&held);
    // SAFETY: flock on a descriptor this test holds; no memory is passed.
    let r = unsafe { libc::flock(fd, libc::LOCK_EX) };
    assert_eq!(r, 0);
    // a young one (its owner may not have locked it yet)
    let young = rb.root().join("blobs/sha256/.tmp-1-2-6");
    std::fs::write(&young, "").unwrap();

    rb.ok(&["import", tar.to_str().unwrap(), "bb"]);
    assert!(
        !dead_snap.exists() && !dead_blob.exists(),
        "orphans were not swept"
    );
    assert!(live.exists(), "a locked temp dir was removed");
    assert!(young.exists(), "a fresh temp file was removed");
    drop(held);
    std::fs::remove_dir(&live).unwrap();
    std::fs::remove_file(&young).unwrap();
    rb.ok(&["rmi", "bb"]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn pulled_layers_must_match_the_config_diff_ids() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let lay = rb.path("layout");
    let a = app_tar(&rb, "a", "a\n");
    let b = app_tar(&rb, "b", "b\n");
    // the config claims b's diff_id for a's content
    let (md, ms, _) = layout_manifest_claiming(&lay, "amd64", &[&a], vec![sha256_file(&b)]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "liar:1", false);
    let o = rb.run(&["pull", &format!("{}/liar:1", reg.host())]);
    assert_fails_naming(&o, "diff_id mismatch", "does not match its diff_id");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    rb.assert_empty();
}

// ---- push, save and load ----

/// `skopeo copy SRC DST` (no signature policy, plain HTTP registries).
#[track_caller]
fn skopeo_copy(src: &str, dst: &str) {
    let o = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args([src, dst])
        .output()
        .expect("skopeo is missing: make deps");
    assert!(
        o.status.success(),
        "skopeo copy {src} {dst}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The manifest an OCI layout's index.json names, and its digest.
fn layout_top(dir: &Path) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m = std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap();
    (digest, serde_json::from_slice(&m).unwrap())
}

/// Registry log lines of one HTTP method after `from` bytes.
fn requests(log: &str, method: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(&format!("\"{method} /v2/")))
        .map(String::from)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn push_uploads_mounts_and_skips_and_skopeo_pulls_it_back() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let host = reg.host();
    let tar = busybox_tar(&rb, "bb");
    let one = format!("{host}/one:1");
    let id = rb.ok(&["import", tar.to_str().unwrap(), &one]);
    let id = id.trim();
    let v = rb.inspect(&one);
    let manifest_digest = v["Metadata"]["ManifestDigest"]
        .as_str()
        .unwrap()
        .to_string();
    let stored_bytes =
        std::fs::read(rb.root().join("blobs/sha256").join(&manifest_digest[7..])).unwrap();
    let stored: Value = serde_json::from_slice(&stored_bytes).unwrap();
    let layer = stored["layers"][0]["digest"].as_str().unwrap().to_string();
    let layer_size = stored["layers"][0]["size"].as_u64().unwrap();
    assert!(layer_size > 200_000, "{layer_size}");

    // chunked: the layer goes in 64 KiB PATCHes, the small config in one PUT
    let out = rb.ok(&["push", "--chunk-size", "65536", &one]);
    assert!(
        out.starts_with(&format!("The push refers to repository [{host}/one]\n")),
        "{out}"
    );
    assert!(out.contains(&format!("{}: Pushed", &layer[7..19])), "{out}");
    assert!(
        out.ends_with(&format!(
            "1: digest: {manifest_digest} size: {}\n",
            stored_bytes.len()
        )),
        "{out}"
    );
    let log = reg.log();
    let patches = requests(&log, "PATCH");
    assert!(
        patches.len() as u64 >= layer_size / 65536,
        "{} PATCHes for {layer_size} bytes:\n{log}",
        patches.len()
    );
    assert!(
        patches.iter().all(|l| l.contains("/v2/one/blobs/uploads/")),
        "{patches:?}"
    );
    // skopeo reads back the very same manifest, config and layer
    let back = rb.path("back");
    skopeo_copy(
        &format!("docker://{one}"),
        &format!("oci:{}:1", back.display()),
    );
    let (digest, m) = layout_top(&back);
    assert_eq!(digest, manifest_digest);
    assert_eq!(m["config"]["digest"], id);
    assert_eq!(m["layers"][0]["digest"], layer.as_str());
    assert_eq!(
        sha256_file(&back.join("blobs/sha256").join(&layer[7..])),
        layer
    );
    // Docker's RepoDigests after a push
    assert_eq!(
        rb.inspect(&one)["RepoDigests"],
        serde_json::json!([format!("{host}/one@{manifest_digest}")])
    );

    // again: every blob is there already, nothing is uploaded
    let before = reg.log().len();
    let out = rb.ok(&["push", &one]);
    assert!(
        out.contains(&format!("{}: Layer already exists", &layer[7..19])),
        "{out}"
    );
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");
    let log = reg.log()[before..].to_string();
    assert!(requests(&log, "PATCH").is_empty(), "{log}");
    assert!(!log.contains("/blobs/uploads/"), "{log}");

    // another repository of the same registry: blobs mounted across
    let two = format!("{host}/two:1");
    rb.ok(&["tag", &one, &two]);
    let before = reg.log().len();
    let out = rb.ok(&["push", &two]);
    assert!(
        out.contains(&format!("{}: Mounted from one", &layer[7..19])),
        "{out}"
    );
    let log = reg.log()[before..].to_string();
    assert!(log.contains("mount=sha256"), "{log}");
    assert!(requests(&log, "PATCH").is_empty(), "{log}");
    let back2 = rb.path("back2");
    skopeo_copy(
        &format!("docker://{two}"),
        &format!("oci:{}:1", back2.display()),
    );
    assert_eq!(layout_top(&back2).0, manifest_digest);

    // monolithic (the default for blobs this small): one PUT per blob, no PATCH
    let app = app_tar(&rb, "app", "pushed\n");
    let three = format!("{host}/three:1");
    rb.ok(&["import", app.to_str().unwrap(), &three]);
    let before = reg.log().len();
    let out = rb.ok(&["push", &three]);
    assert_eq!(out.matches(": Pushed").count(), 2, "{out}");
    let log = reg.log()[before..].to_string();
    assert!(requests(&log, "PATCH").is_empty(), "{log}");
    let puts: Vec<String> = requests(&log, "PUT")
        .into_iter()
        .filter(|l| l.contains("/blobs/uploads/") && l.contains("digest=sha256"))
        .collect();
    assert_eq!(puts.len(), 2, "{log}");
    let back3 = rb.path("back3");
    skopeo_copy(
        &format!("docker://{three}"),
        &format!("oci:{}:1", back3.display()),
    );
    assert_eq!(
        layout_top(&back3).0,
        rb.inspect(&three)["Metadata"]["ManifestDigest"]
            .as_str()
            .unwrap()
    );

    // bad input: one line, non-zero, the store unchanged
    let blobs = rb.entries("blobs/sha256");
    let o = rb.run(&["push", &format!("{host}/nothere:1")]);
    assert_fails_naming(&o, "push of an unknown image", "no such image");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("127.0.0.1:{port}/one:1");
    rb.ok(&["tag", &one, &down]);
    let o = rb.run(&["push", &down]);
    assert_fails_naming(&o, "push to a registry that is down", &down);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(rb.entries("blobs/sha256"), blobs);
    rb.ok(&["rmi", "-f", id]);
    rb.ok(&["rmi", &three]);
    rb.assert_empty();
}

/// A two-layer OCI layout (busybox, then /app/hello) tagged `1`: (layout,
/// manifest digest, diff_ids).
fn two_layer_layout(rb: &Rbox) -> (PathBuf, String, Vec<String>) {
    let base = busybox_tar(rb, "bb");
    let app = app_tar(rb, "app", "saved and loaded\n");
    let lay = rb.path("layout-two");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&base, &app]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    (lay, md, vec![sha256_file(&base), sha256_file(&app)])
}

/// One member of a tar file.
fn tar_member(tar: &Path, name: &str) -> Vec<u8> {
    let o = Command::new("tar")
        .arg("-xOf")
        .arg(tar)
        .arg(name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{name} in {}", tar.display());
    o.stdout
}

#[test]
#[ignore = "needs root"]
fn save_and_load_both_formats_with_skopeo_and_round_trips() {
    let rb = Rbox::new();
    let (lay, md, diff_ids) = two_layer_layout(&rb);

    // skopeo writes, rbox loads: docker-archive
    let from_skopeo = rb.path("skopeo-docker.tar");
    skopeo_copy(
        &format!("oci:{}:1", lay.display()),
        &format!("docker-archive:{}:two:1", from_skopeo.display()),
    );
    let out = rb.ok(&["load", "-i", from_skopeo.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: two:1\n");
    let v = rb.inspect("two:1");
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!(diff_ids));
    let id = v["Id"].as_str().unwrap().to_string();
    // the layers unpacked: the top one has the file
    let top = snapshot_fs(&rb, &diff_ids[1]);
    assert_eq!(
        std::fs::read_to_string(top.join("app/hello")).unwrap(),
        "saved and loaded\n"
    );
    rb.ok(&["rmi", "two:1"]);
    rb.assert_empty();

    // skopeo writes, rbox loads: OCI archive, digests kept
    let from_skopeo_oci = rb.path("skopeo-oci.tar");
    skopeo_copy(
        &format!("oci:{}:1", lay.display()),
        &format!("oci-archive:{}:localhost/two:1", from_skopeo_oci.display()),
    );
    let out = rb.ok(&["load", "-i", from_skopeo_oci.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: localhost/two:1\n");
    let v = rb.inspect("localhost/two:1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Metadata"]["ManifestDigest"], md.as_str());
    rb.ok(&["tag", "localhost/two:1", "two:1"]);

    // rbox writes, skopeo reads: docker-archive
    let saved = rb.path("saved-docker.tar");
    rb.ok(&["save", "-o", saved.to_str().unwrap(), "two:1"]);
    let manifest: Value = serde_json::from_slice(&tar_member(&saved, "manifest.json")).unwrap();
    assert_eq!(manifest[0]["Config"], format!("{}.json", &id[7..]));
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["two:1"]));
    let layers: Vec<String> = diff_ids
        .iter()
        .map(|d| format!("{}/layer.tar", &d[7..]))
        .collect();
    assert_eq!(manifest[0]["Layers"], serde_json::json!(layers));
    let repos: Value = serde_json::from_slice(&tar_member(&saved, "repositories")).unwrap();
    assert_eq!(repos["two"]["1"], &diff_ids[1][7..]);
    // the layer tars are the plain layers: their digests are the diff_ids
    for (l, d) in layers.iter().zip(&diff_ids) {
        let p = rb.path("member");
        std::fs::write(&p, tar_member(&saved, l)).unwrap();
        assert_eq!(&sha256_file(&p), d);
    }
    // (dir: keeps the config as it is; oci: would convert it)
    let back = rb.path("back-docker");
    skopeo_copy(
        &format!("docker-archive:{}", saved.display()),
        &format!("dir:{}", back.display()),
    );
    let m: Value =
        serde_json::from_slice(&std::fs::read(back.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["config"]["digest"], id.as_str());
    assert_eq!(sha256_file(&back.join(&id[7..])), id);

    // rbox writes, skopeo reads: OCI archive, the very same manifest
    let saved_oci = rb.path("saved-oci.tar");
    rb.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        saved_oci.to_str().unwrap(),
        "two:1",
    ]);
    let back = rb.path("back-oci");
    skopeo_copy(
        &format!("oci-archive:{}:1", saved_oci.display()),
        &format!("oci:{}:1", back.display()),
    );
    assert_eq!(layout_top(&back).0, md);

    // round trips into a fresh store, through stdout and stdin as well
    for format in ["docker-archive", "oci-archive"] {
        let file = rb.path(&format!("piped-{format}.tar"));
        let o = Command::new(rbox_bin())
            .arg("--root")
            .arg(rb.root())
            .args(["save", "--format", format, "two:1", &id[7..19]])
            .stdout(std::fs::File::create(&file).unwrap())
            .status()
            .unwrap();
        assert!(o.success(), "save {format} to stdout");
        let rb2 = Rbox::new();
        let o = output_via_files(
            rb2.cmd(&[])
                .arg("load")
                .stdin(std::fs::File::open(&file).unwrap()),
        );
        assert_ok(&o, &format!("load {format} from stdin"));
        assert_eq!(stdout(&o), "Loaded image: two:1\n", "{format}");
        let v = rb2.inspect("two:1");
        assert_eq!(v["Id"], id.as_str(), "{format}");
        assert_eq!(v["RootFS"]["Layers"], serde_json::json!(diff_ids));
        if format == "oci-archive" {
            assert_eq!(v["Metadata"]["ManifestDigest"], md.as_str());
        }
        // loading again changes nothing and says the same
        assert_eq!(
            rb2.ok(&["load", "-i", file.to_str().unwrap()]),
            "Loaded image: two:1\n"
        );
        assert_eq!(rb2.entries("snapshots").len(), 2);
        assert!(!rb2
            .entries("blobs/sha256")
            .iter()
            .any(|b| b.starts_with('.')));
        rb2.ok(&["rmi", "two:1"]);
        rb2.assert_empty();
    }

    // bad input: one line naming the archive, non-zero, the store unchanged
    let blobs = rb.entries("blobs/sha256");
    let snaps = rb.entries("snapshots");
    let garbage = rb.path("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar").unwrap();
    let truncated = rb.path("truncated.tar");
    let data = std::fs::read(&saved).unwrap();
    std::fs::write(&truncated, &data[..data.len() * 2 / 3]).unwrap();
    let other = rb.path("other.tar");
    tar_dir(&rb.path("app-dir"), &other);
    for (f, needle) in [
        (&garbage, "garbage.tar"),
        (&truncated, "truncated.tar"),
        (&other, "neither a docker-archive"),
    ] {
        let o = rb.run(&["load", "-i", f.to_str().unwrap()]);
        assert_fails_naming(&o, &format!("load {}", f.display()), needle);
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert_eq!(rb.entries("blobs/sha256"), blobs);
        assert_eq!(rb.entries("snapshots"), snaps);
    }
    // a layer the store has, but with other content in the archive
    let x = rb.path("tampered");
    std::fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&saved)
        .status()
        .unwrap();
    assert!(st.success());
    let other_dir = rb.path("other-dir");
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::write(other_dir.join("other"), "other\n").unwrap();
    tar_dir(&other_dir, &x.join(&layers[1]));
    let tampered = rb.path("tampered.tar");
    tar_dir(&x, &tampered);
    let o = rb.run(&["load", "-i", tampered.to_str().unwrap()]);
    assert_fails_naming(&o, "load of a tampered layer", "does not match its diff_id");
    assert!(stderr(&o).contains(&layers[1]), "{}", stderr(&o));
    assert_eq!(rb.entries("blobs/sha256"), blobs);
    assert_eq!(rb.entries("snapshots"), snaps);
    let out = rb.path("never.tar");
    let o = rb.run(&["save", "-o", out.to_str().unwrap(), "two:1", "nosuch:1"]);
    assert_fails_naming(&o, "save of an unknown image", "nosuch:1");
    assert!(!out.exists());
    assert!(!rb.path("never.tar.rbox-tmp").exists());
    rb.ok(&["rmi", "-f", &id]);
    rb.assert_empty();
}

// ---- login, logout, bearer tokens ----

const TOKEN_SERVICE: &str = "rbox-test-registry";
const TOKEN_ISSUER: &str = "rbox-test-issuer";

/// A bearer-token service for the registry's `auth: token`: HTTP on
/// 127.0.0.1, JWTs signed RS256 (by the openssl CLI) with a key whose
/// self-signed certificate the registry trusts (it rides in the `x5c`
/// header). `tester:secret` gets what it asks for; anything else is 401.
/// Stopped and joined on drop.
struct TokenServer {
    port: u16,
    dir: tempfile::TempDir,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// every scope asked for, with the user (or "-")
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                rest = &tail[2..];
            }
            _ => {
                out.push(if b == b'+' { b' ' } else { b });
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    fn start() -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("rbox-token")
            .tempdir()
            .unwrap();
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=rbox-test-token", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl is missing");
        assert!(st.success(), "openssl req");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap();
        assert!(der.status.success(), "openssl x509");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let key = dir.path().join("key.pem");
        let x5c = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&der.stdout)
        };
        let (stop2, asked2) = (stop.clone(), asked.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = Self::serve(conn, &key, &x5c, &asked2);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        TokenServer {
            port,
            dir,
            stop,
            asked,
            thread: Some(thread),
        }
    }

    fn serve(
        mut conn: std::net::TcpStream,
        key: &Path,
        x5c: &str,
        asked: &std::sync::Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        use std::io::{Read, Write};
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8_lossy(&req).into_owned();
        let target = req.split(' ').nth(1).unwrap_or("/");
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let mut scopes = Vec::new();
        for kv in query.split('&') {
            if let Some(("scope", v)) = kv.split_once('=') {
                scopes.push(percent_decode(v));
            }
        }
        let user = req
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("authorization").then(|| v.trim())
            })
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        asked.lock().unwrap().push(format!(
            "{} {}",
            user.as_deref()
                .and_then(|u| u.split(':').next())
                .unwrap_or("-"),
            scopes.join(" ")
        ));
        if user.as_deref() != Some("tester:secret") {
            let body =
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            return write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut p = s.splitn(3, ':');
                let (typ, name, actions) = (p.next()?, p.next()?, p.next()?);
                Some(serde_json::json!({"type": typ, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "tester", "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", std::process::id()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut sign = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary", "-sign"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        sign.stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())?;
        let sig = sign.wait_with_output()?;
        let token = format!("{signing_input}.{}", b64url(&sig.stdout));
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
            .to_string();
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// rbox with HOME in the test dir and no other credential source.
fn rbox_home(rb: &Rbox, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = rb.cmd(&[]);
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG")
        .env_remove("RBOX_REGISTRY_AUTH")
        .args(args);
    if let Some(s) = stdin {
        let f = rb.path("stdin");
        std::fs::write(&f, s).unwrap();
        c.stdin(std::fs::File::open(&f).unwrap());
    }
    output_via_files(&mut c)
}

#[test]
#[ignore = "needs root"]
fn login_token_auth_pull_push_logout_and_docker_config() {
    let rb = Rbox::new();
    let ts = TokenServer::start();
    let reg = Registry::start_on(
        "127.0.0.1",
        RegistryAuth::Token {
            port: ts.port,
            cert: &ts.dir.path().join("cert.pem"),
            service: TOKEN_SERVICE,
            issuer: TOKEN_ISSUER,
        },
        "",
    );
    let host = reg.host();
    let lay = rb.path("layout");
    let t = app_tar(&rb, "a", "behind a token\n");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&t]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "tok:1", false);
    let r = format!("{host}/tok:1");
    let home = rb.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let auth_json = home.join(".config/rbox/auth.json");

    // no credentials: one clear line, nothing stored
    let o = rbox_home(&rb, &home, &["pull", &r], None);
    assert_fails_naming(&o, "pull without credentials", &r);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Not authorized (401 from "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("rbox login"), "{}", stderr(&o));
    rb.assert_empty();

    // a wrong password is refused by the token service and not stored
    let o = rbox_home(
        &rb,
        &home,
        &["login", "-u", "tester", "--password-stdin", &host],
        Some("wrong\n"),
    );
    assert_fails_naming(
        &o,
        "login with a wrong password",
        "incorrect username or password",
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(!auth_json.exists());

    let o = rbox_home(
        &rb,
        &home,
        &[
            "login",
            "-u",
            "tester",
            "--password-stdin",
            &format!("http://{host}/"),
        ],
        Some("secret\n"),
    );
    assert_ok(&o, "login");
    assert_eq!(stdout(&o), "Login Succeeded\n");
    let m = std::fs::metadata(&auth_json).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    let v: Value = serde_json::from_slice(&std::fs::read(&auth_json).unwrap()).unwrap();
    assert_eq!(v["auths"][&host]["auth"], "dGVzdGVyOnNlY3JldA=="); // tester:secret

    // pull and push with the stored credentials, through tokens
    let o = rbox_home(&rb, &home, &["pull", &r], None);
    assert_ok(&o, "pull after login");
    assert_eq!(
        rb.inspect(&r)["RootFS"]["Layers"],
        serde_json::json!([sha256_file(&t)])
    );
    assert!(
        ts.asked().iter().any(|a| a == "tester repository:tok:pull"),
        "{:?}",
        ts.asked()
    );
    let pushed = format!("{host}/tok2:1");
    rb.ok(&["tag", &r, &pushed]);
    let o = rbox_home(&rb, &home, &["push", &pushed], None);
    assert_ok(&o, "push after login");
    assert!(
        ts.asked()
            .iter()
            .any(|a| a.starts_with("tester repository:tok2:pull,push")),
        "{:?}",
        ts.asked()
    );
    let back = rb.path("back");
    let o = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q", "--src-tls-verify=false"])
        .arg("--src-creds=tester:secret")
        .arg(format!("docker://{pushed}"))
        .arg(format!("oci:{}:1", back.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(layout_top(&back).0, md);

    // logout forgets them: pulling fails again
    let o = rbox_home(&rb, &home, &["logout", &host], None);
    assert_ok(&o, "logout");
    assert_eq!(
        stdout(&o),
        format!("Removing login credentials for {host}\n")
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&auth_json).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none(), "{v}");
    rb.ok(&["rmi", &r, &pushed]);
    rb.assert_empty();
    let o = rbox_home(&rb, &home, &["pull", &r], None);
    assert_fails_naming(&o, "pull after logout", &r);
    rb.assert_empty();
    let o = rbox_home(&rb, &home, &["logout", &host], None);
    assert_eq!(stdout(&o), format!("Not logged in to {host}\n"));

    // Docker's config.json is read too
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        serde_json::json!({"auths": {host.clone(): {"auth": "dGVzdGVyOnNlY3JldA=="}}}).to_string(),
    )
    .unwrap();
    let o = rbox_home(&rb, &home, &["pull", &r], None);
    assert_ok(&o, "pull with Docker's config.json");
    rb.ok(&["rmi", &r]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn login_with_basic_auth() {
    let rb = Rbox::new();
    let reg = Registry::start_with_auth(true);
    let host = reg.host();
    let lay = rb.path("layout");
    let t = app_tar(&rb, "a", "basic\n");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&t]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "private:1", false);
    let home = rb.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let o = rbox_home(
        &rb,
        &home,
        &["login", "-u", "tester", "-p", "nope", &host],
        None,
    );
    assert_fails_naming(
        &o,
        "login with a wrong password",
        "incorrect username or password",
    );
    assert!(!home.join(".config/rbox/auth.json").exists());
    let o = rbox_home(
        &rb,
        &home,
        &["login", "-u", "tester", "-p", "secret", &host],
        None,
    );
    assert_ok(&o, "login");
    assert!(stderr(&o).contains("--password-stdin"), "{}", stderr(&o));
    let o = rbox_home(&rb, &home, &["pull", &format!("{host}/private:1")], None);
    assert_ok(&o, "pull after login");
    rb.ok(&["rmi", &format!("{host}/private:1")]);
    rb.assert_empty();
}

// ---- /etc/rbox/rbox.toml: mirrors and insecure registries ----

/// This machine's first non-loopback IPv4 address.
fn host_ip() -> String {
    let o = Command::new("hostname").arg("-I").output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .expect("this test needs a non-loopback IPv4 address")
        .to_string()
}

/// A one-layer image pushed to `reg` as each of `names`: its diff_id.
fn serve_image(rb: &Rbox, reg: &Registry, text: &str, names: &[&str]) -> String {
    let lay = rb.path(&format!("layout-{}", reg.port));
    let t = app_tar(rb, &format!("serve-{}", reg.port), text);
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&t]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    for n in names {
        reg.push(&lay, "1", n, false);
    }
    sha256_file(&t)
}

#[test]
#[ignore = "needs root"]
fn config_mirrors_and_insecure_registries() {
    let rb = Rbox::new();
    let mirror = Registry::start();
    let diff_id = serve_image(&rb, &mirror, "from the mirror\n", &["library/mirrored:1"]);
    // the first mirror is down: the second serves docker.io's image
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = rb.path("rbox.toml");
    std::fs::write(
        &cfg,
        format!(
            "[registries.\"docker.io\"]\nmirrors = [\"127.0.0.1:{down}\", \"{}\"]\n",
            mirror.host()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let out = rb.ok(&["--config", c, "pull", "mirrored:1"]);
    assert!(
        out.contains("Status: Downloaded newer image for mirrored:1"),
        "{out}"
    );
    let v = rb.inspect("mirrored:1");
    assert_eq!(v["RepoTags"], serde_json::json!(["mirrored:1"]));
    assert!(
        v["RepoDigests"][0]
            .as_str()
            .unwrap()
            .starts_with("mirrored@sha256:"),
        "{v}"
    );
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert!(
        mirror.log().contains("/v2/library/mirrored/manifests/1"),
        "{}",
        mirror.log()
    );
    rb.ok(&["rmi", "mirrored:1"]);
    rb.assert_empty();

    // a registry on a non-loopback address speaks HTTPS unless listed insecure
    let ip = host_ip();
    let plain = Registry::start_on(&ip, RegistryAuth::None, "");
    let diff_id = serve_image(&rb, &plain, "plain http\n", &["lan:1"]);
    let r = format!("{}/lan:1", plain.host());
    let o = rb.run(&["pull", &r]);
    assert_fails_naming(&o, "pull over HTTPS from an HTTP registry", &r);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    rb.assert_empty();
    std::fs::write(
        &cfg,
        format!("[registries.\"{}\"]\ninsecure = true\n", plain.host()),
    )
    .unwrap();
    rb.ok(&["--config", c, "pull", &r]);
    assert_eq!(
        rb.inspect(&r)["RootFS"]["Layers"],
        serde_json::json!([diff_id])
    );
    // and push speaks plain HTTP to it too
    let pushed = format!("{}/lan2:1", plain.host());
    rb.ok(&["tag", &r, &pushed]);
    let o = rb.run(&["push", &pushed]);
    assert_fails_naming(&o, "push over HTTPS to an HTTP registry", &pushed);
    rb.ok(&["--config", c, "push", &pushed]);
    rb.ok(&["rmi", &r, &pushed]);
    rb.assert_empty();

    // a bad config: one line naming the file (and the line), nothing done
    std::fs::write(&cfg, "[registries.\"docker.io\"]\nmirrors = 5\n").unwrap();
    let o = rb.run(&["--config", c, "pull", "mirrored:1"]);
    assert_fails_naming(&o, "a bad config", &format!("{c}: line 2"));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let missing = rb.path("missing.toml");
    let o = rb.run(&["--config", missing.to_str().unwrap(), "pull", "mirrored:1"]);
    assert_fails_naming(&o, "a missing config", "missing.toml");
    rb.assert_empty();
}

// ---- faults: a proxy that corrupts or slows a blob, a full disk, kill -9 ----

/// What the proxy does to the response for one blob.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mischief {
    /// flip a byte in the middle of the body
    Corrupt,
    /// send the body in 4 KiB pieces, 50 ms apart
    Slow,
}

/// An HTTP proxy on 127.0.0.1 in front of a registry, one request per
/// connection, that does `Mischief` to the GET of one blob. Its threads
/// are stopped and joined on drop.
struct Proxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// body bytes of the target blob sent so far
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    threads: std::sync::Arc<std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: u16, blob: &str, mischief: Mischief) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>> = Arc::default();
        let (stop2, sent2, threads2) = (stop.clone(), sent.clone(), threads.clone());
        let target = format!("/blobs/{blob}");
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop3, sent3, target) = (stop2.clone(), sent2.clone(), target.clone());
                        let t = std::thread::spawn(move || {
                            let _ = Self::serve(conn, upstream, &target, mischief, &stop3, &sent3);
                        });
                        threads2.lock().unwrap().push(t);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            port,
            stop,
            sent,
            threads,
            accept: Some(accept),
        }
    }

    fn serve(
        mut conn: std::net::TcpStream,
        upstream: u16,
        target: &str,
        mischief: Mischief,
        stop: &std::sync::atomic::AtomicBool,
        sent: &std::sync::atomic::AtomicUsize,
    ) -> std::io::Result<()> {
        use std::io::{Read, Write};
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        // the request head (pulls send no bodies)
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            req.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&req).into_owned();
        let head = head.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<&str> = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        lines.push("Connection: close");
        let first = lines[0].to_string();
        let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream))?;
        up.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp)?;
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(resp.len(), |p| p + 4);
        let (rhead, body) = resp.split_at_mut(split);
        let hit = first.starts_with("GET ")
            && first.contains(target)
            && rhead.starts_with(b"HTTP/1.1 200");
        if !hit {
            conn.write_all(rhead)?;
            return conn.write_all(body);
        }
        match mischief {
            Mischief::Corrupt => {
                let mid = body.len() / 2;
                body[mid] ^= 0xff;
                conn.write_all(rhead)?;
                conn.write_all(body)?;
                sent.fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
            }
            Mischief::Slow => {
                conn.write_all(rhead)?;
                for piece in body.chunks(4096) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return Ok(());
                    }
                    conn.write_all(piece)?;
                    sent.fetch_add(piece.len(), std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

/// A base (busybox) + app image on `reg` as `name`: (layer blob digests).
fn serve_two_layers(rb: &Rbox, reg: &Registry, name: &str) -> Vec<String> {
    let base = busybox_tar(rb, &format!("{name}-bb"));
    let app = app_tar(rb, &format!("{name}-app"), "two layers\n");
    let lay = rb.path(&format!("layout-{name}"));
    let (md, ms, blobs) = layout_manifest(&lay, "amd64", &[&base, &app]);
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", &format!("{name}:1"), false);
    blobs
}

#[test]
#[ignore = "needs root"]
fn a_corrupted_blob_is_rejected_naming_its_digest_and_nothing_is_stored() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let blobs = serve_two_layers(&rb, &reg, "img");
    let proxy = Proxy::start(reg.port, &blobs[0], Mischief::Corrupt);
    let r = format!("{}/img:1", proxy.host());
    let o = rb.run(&["pull", &r]);
    assert_fails_naming(&o, "pull of a corrupted layer", &blobs[0]);
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&r), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(proxy.sent.load(std::sync::atomic::Ordering::Relaxed) > 0);
    rb.assert_empty();
    // the registry itself serves it intact
    rb.ok(&["pull", &format!("{}/img:1", reg.host())]);
}

/// Snapshots are unrelated trees: on ext2/3/4 their directory carries the
/// Orlov allocator's top-directory flag (`chattr +T`), so a new snapshot
/// gets a block group of its own instead of the inodes that removed
/// snapshots just freed (on ext4 without a journal, every inode allocation
/// scans past those: 1 to 2 ms a file). The store must be on ext2/3/4.
#[test]
#[ignore = "needs root"]
fn snapshots_are_spread_over_block_groups_on_ext4() {
    let rb = Rbox::new();
    let tar = busybox_tar(&rb, "bb");
    let id = rb.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    let id = id.trim();
    let snapshots = rb.root().join("snapshots");
    let fs = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&snapshots)
        .output()
        .unwrap();
    assert_ok(&fs, "stat -f");
    assert!(
        stdout(&fs).starts_with("ext"),
        "the store {} is on {}: this test needs ext2/3/4 (set TMPDIR to a directory on ext4)",
        snapshots.display(),
        stdout(&fs).trim()
    );
    let attrs = |p: &Path| {
        let o = Command::new("lsattr").arg("-d").arg(p).output().unwrap();
        assert_ok(&o, "lsattr -d");
        stdout(&o).split_whitespace().next().unwrap().to_string()
    };
    assert!(attrs(&snapshots).contains('T'), "{}", attrs(&snapshots));
    // the layer is in it, and a store opened again keeps the flag
    let diff_id = rb.inspect(id)["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(snapshot_fs(&rb, &diff_id).join("bin/busybox").exists());
    rb.ok(&["rmi", "bb:1"]);
    rb.assert_empty();
    assert!(attrs(&snapshots).contains('T'), "{}", attrs(&snapshots));
}

/// A tmpfs mounted on a test's dir, unmounted on drop (before the Rbox).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size}").as_str()),
        )
        .unwrap();
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
#[ignore = "needs root"]
fn a_full_disk_during_extraction_is_one_line_and_the_store_stays_usable() {
    let rb = Rbox::new();
    let reg = Registry::start();
    // small: fits; big: 8 MiB of text that gzips to a few KiB
    let small = app_tar(&rb, "small", "small\n");
    let big_dir = rb.path("big-dir");
    std::fs::create_dir_all(big_dir.join("app")).unwrap();
    std::fs::write(
        big_dir.join("app/big"),
        "rbox fills the disk\n".repeat(8 << 20 >> 4),
    )
    .unwrap();
    let big = rb.path("big.tar");
    tar_dir(&big_dir, &big);
    for (name, tar) in [("small", &small), ("big", &big)] {
        let lay = rb.path(&format!("layout-{name}"));
        let (md, ms, _) = layout_manifest(&lay, "amd64", &[tar]);
        layout_index(
            &lay,
            "1",
            "application/vnd.oci.image.manifest.v1+json",
            &md,
            ms,
        );
        reg.push(&lay, "1", &format!("{name}:1"), false);
    }
    let disk = Tmpfs::mount(rb.path("disk"), "4m");
    let root = disk.0.join("root");
    let r = |args: &[&str]| {
        output_via_files(
            Command::new(rbox_bin())
                .arg("--root")
                .arg(&root)
                .args(args)
                .stdin(Stdio::null()),
        )
    };
    let small_ref = format!("{}/small:1", reg.host());
    let big_ref = format!("{}/big:1", reg.host());
    assert_ok(&r(&["pull", &small_ref]), "pull small");
    let entries = |d: &str| -> BTreeSet<String> {
        std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (blobs, snaps) = (entries("blobs/sha256"), entries("snapshots"));
    let o = r(&["pull", &big_ref]);
    assert_fails_naming(&o, "pull onto a full disk", "No space left on device");
    assert!(stderr(&o).contains(&big_ref), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(entries("blobs/sha256"), blobs);
    assert_eq!(entries("snapshots"), snaps);
    // still usable: the small image is there, and can go and come back
    let o = r(&["images", "--format", "json"]);
    assert_ok(&o, "images");
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert_ok(&r(&["rmi", &small_ref]), "rmi small");
    assert_ok(&r(&["pull", &small_ref]), "pull small again");
    assert_ok(&r(&["rmi", &small_ref]), "rmi small again");
    assert!(entries("blobs/sha256").is_empty());
    assert!(entries("snapshots").is_empty());
}

#[test]
#[ignore = "needs root"]
fn a_pull_killed_midway_leaves_no_visible_blob_and_the_next_pull_succeeds() {
    let rb = Rbox::new();
    let reg = Registry::start();
    let blobs = serve_two_layers(&rb, &reg, "slow");
    let proxy = Proxy::start(reg.port, &blobs[0], Mischief::Slow);
    let r = format!("{}/slow:1", proxy.host());
    let mut child = rb
        .cmd(&[])
        .args(["pull", &r])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rrun_tests::wait_for(
        "the slow layer to be half-way",
        std::time::Duration::from_secs(30),
        || proxy.sent.load(std::sync::atomic::Ordering::Relaxed) > 256 << 10,
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    drop(proxy);
    // temp names only: nothing a reader could take for a blob or a layer
    for d in ["blobs/sha256", "snapshots"] {
        let visible: Vec<String> = rb
            .entries(d)
            .into_iter()
            .filter(|e| !e.starts_with(".tmp-"))
            .collect();
        assert!(visible.is_empty(), "{d}: {visible:?}");
    }
    assert_eq!(rb.ok(&["images", "-q"]), "");
    // once the dead pull's temp files are old, the next pull sweeps them
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    for d in ["blobs/sha256", "snapshots"] {
        for e in rb.entries(d) {
            nix::sys::stat::utimensat(
                None,
                &rb.root().join(d).join(&e),
                &old,
                &old,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }
    let direct = format!("{}/slow:1", reg.host());
    rb.ok(&["pull", &direct]);
    for d in ["blobs/sha256", "snapshots"] {
        assert!(
            !rb.entries(d).iter().any(|e| e.starts_with(".tmp-")),
            "{d}: {:?}",
            rb.entries(d)
        );
    }
    assert_eq!(rb.entries("snapshots").len(), 2);
    rb.ok(&["rmi", &direct]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn a_foreign_layer_is_skipped_with_a_clear_message() {
    let rb = Rbox::new();
    // the registry accepts manifests whose foreign layers have URLs
    let reg = Registry::start_on(
        "127.0.0.1",
        RegistryAuth::None,
        "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n",
    );
    let foreign = app_tar(&rb, "foreign", "not distributable\n");
    let app = app_tar(&rb, "app", "distributable\n");
    let lay = rb.path("layout");
    let (md, _, _) = layout_manifest(&lay, "amd64", &[&foreign, &app]);
    // make the first layer a foreign one served from elsewhere
    let mpath = lay.join("blobs/sha256").join(&md[7..]);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let foreign_digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    m["layers"][0]["mediaType"] =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into();
    m["layers"][0]["urls"] = serde_json::json!(["https://example.invalid/foreign.tar.gz"]);
    let (md, ms) = layout_blob(&lay, m.to_string().as_bytes());
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    reg.push(&lay, "1", "foreign:1", false);
    let r = format!("{}/foreign:1", reg.host());
    let log_before = reg.log().len();
    let out = rb.ok(&["pull", &r]);
    assert!(
        out.contains(&format!(
            "{}: Skipping foreign layer {foreign_digest} (application/vnd.oci.image.layer.nondistributable.v1.tar+gzip, from https://example.invalid/foreign.tar.gz)",
            &foreign_digest[7..19]
        )),
        "{out}"
    );
    assert!(!reg.log()[log_before..].contains(&format!("blobs/{foreign_digest}")));
    // the image has the distributable layer
    assert_eq!(rb.entries("snapshots").len(), 1);
    let fs = snapshot_fs(&rb, &sha256_file(&app));
    assert_eq!(
        std::fs::read_to_string(fs.join("app/hello")).unwrap(),
        "distributable\n"
    );
    rb.ok(&["rmi", &r]);
    rb.assert_empty();
    // an OCI archive with it: loaded without it, saying so
    let archive = rb.path("foreign.tar");
    tar_dir(&lay, &archive);
    let out = rb.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("Skipping foreign layer {foreign_digest} (")),
        "{out}"
    );
    let id = out
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("Loaded image ID: ");
    assert_eq!(rb.entries("snapshots").len(), 1);
    rb.ok(&["rmi", id]);
    rb.assert_empty();
}

// ---- a registry stand-in that lies about sizes ----

/// How the stand-in sends a body.
#[derive(Clone)]
enum Body {
    /// with a Content-Length
    Sized(Vec<u8>),
    /// chunked: no Content-Length, the length shows only as it streams
    Chunked(Vec<u8>),
    /// zeros until the client hangs up (or `ENDLESS_CAP`), no Content-Length
    Endless,
    /// with a Content-Length, 16 KiB every 20 ms
    Slow(Vec<u8>),
}

/// The most an `Endless` body sends, so that a client that does not stop
/// still ends (a failed assertion, not a hung test).
const ENDLESS_CAP: u64 = 64 << 20;

/// A distribution-API stand-in on 127.0.0.1: `GET /v2/` answers 200, other
/// GETs the routes given (path → body), everything else 404. One request
/// per connection. It records the request lines and counts the body bytes
/// it got into the socket. Its threads are stopped and joined on drop.
struct Liar {
    port: u16,
    routes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Body>>>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: std::sync::Arc<std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Liar {
    fn start() -> Liar {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<std::collections::HashMap<String, Body>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>> = Arc::default();
        let (r2, l2, s2, st2, t2) = (
            routes.clone(),
            log.clone(),
            sent.clone(),
            stop.clone(),
            threads.clone(),
        );
        let accept = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (r3, l3, s3, st3) = (r2.clone(), l2.clone(), s2.clone(), st2.clone());
                        let t = std::thread::spawn(move || {
                            let _ = Self::answer(conn, &r3, &l3, &s3, &st3);
                        });
                        t2.lock().unwrap().push(t);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        Liar {
            port,
            routes,
            log,
            sent,
            stop,
            threads,
            accept: Some(accept),
        }
    }

    fn answer(
        mut conn: std::net::TcpStream,
        routes: &std::sync::Mutex<std::collections::HashMap<String, Body>>,
        log: &std::sync::Mutex<Vec<String>>,
        sent: &std::sync::atomic::AtomicU64,
        stop: &std::sync::atomic::AtomicBool,
    ) -> std::io::Result<()> {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut req = Vec::new();
        let mut buf = [0u8; 8192];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            req.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&req).into_owned();
        let first = head.lines().next().unwrap_or_default().to_string();
        log.lock().unwrap().push(first.clone());
        let mut parts = first.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let body = if method != "GET" {
            None
        } else if path == "/v2/" {
            Some(Body::Sized(b"{}".to_vec()))
        } else {
            routes.lock().unwrap().get(path).cloned()
        };
        let Some(body) = body else {
            let msg = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}"#;
            return conn.write_all(
                format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                    msg.len()
                )
                .as_bytes(),
            );
        };
        let ctype = if path.contains("/manifests/") {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            "application/octet-stream"
        };
        let count = |n: usize| sent.fetch_add(n as u64, Ordering::Relaxed);
        match body {
            Body::Sized(data) => {
                conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        data.len()
                    )
                    .as_bytes(),
                )?;
                conn.write_all(&data)?;
                count(data.len());
            }
            Body::Chunked(data) => {
                conn.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )?;
                for piece in data.chunks(64 << 10) {
                    conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                    conn.write_all(piece)?;
                    conn.write_all(b"\r\n")?;
                    count(piece.len());
                }
                conn.write_all(b"0\r\n\r\n")?;
            }
            Body::Endless => {
                conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )?;
                let zeros = vec![0u8; 64 << 10];
                while sent.load(Ordering::Relaxed) < ENDLESS_CAP && !stop.load(Ordering::Relaxed) {
                    conn.write_all(&zeros)?;
                    count(zeros.len());
                }
            }
            Body::Slow(data) => {
                conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        data.len()
                    )
                    .as_bytes(),
                )?;
                for piece in data.chunks(16 << 10) {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    conn.write_all(piece)?;
                    count(piece.len());
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
        Ok(())
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn route(&self, path: &str, body: Body) {
        self.routes.lock().unwrap().insert(path.to_string(), body);
    }

    /// Serve `repo:1`: `manifest` (JSON) as it is, and the blobs given.
    fn serve(&self, repo: &str, manifest: Body, blobs: Vec<(String, Body)>) {
        self.route(&format!("/v2/{repo}/manifests/1"), manifest);
        for (d, b) in blobs {
            self.route(&format!("/v2/{repo}/blobs/{d}"), b);
        }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

/// `sha256:<hex>` of `data`.
fn sha256_bytes(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split(' ')
            .next()
            .unwrap()
    )
}

/// A one-layer image as the stand-in serves it: the gzip layer blob, the
/// config and a manifest whose descriptors `edit` may make lie. Returns
/// (manifest bytes, layer digest, layer blob, config digest, config bytes).
fn lying_image(
    tar: &Path,
    edit: impl FnOnce(&mut Value),
) -> (Vec<u8>, String, Vec<u8>, String, Vec<u8>) {
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    let blob = gz.stdout;
    let layer = sha256_bytes(&blob);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh", "-c", "cat /app/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_file(tar)]},
    })
    .to_string()
    .into_bytes();
    let cd = sha256_bytes(&config);
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": blob.len()}],
    });
    edit(&mut m);
    (m.to_string().into_bytes(), layer, blob, cd, config)
}

/// A pull, killed if it has not ended by itself in 60 s: (output, whether
/// it ended by itself).
fn pull_bounded(rb: &Rbox, args: &[&str]) -> (Output, bool) {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = rb
        .cmd(&[])
        .args(args)
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut by_itself = true;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            by_itself = false;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    (out, by_itself)
}

#[test]
#[ignore = "needs root"]
fn a_registry_that_lies_about_sizes_is_refused_and_nothing_is_kept() {
    let rb = Rbox::new();
    let liar = Liar::start();
    let tar = app_tar(&rb, "app", "hello from the liar\n");
    let host = liar.host();
    rb.ok(&["images"]); // the store exists

    // refused, one line naming the image, the blob and what is wrong, and
    // nothing left in the store (no blob, no snapshot, no temp file)
    let refused = |repo: &str, needles: &[&str]| -> Output {
        let r = format!("{host}/{repo}:1");
        let (o, by_itself) = pull_bounded(&rb, &["pull", &r]);
        assert!(by_itself, "pull {repo}: still running after 60 s");
        assert_fails_naming(&o, &format!("pull {repo}"), &r);
        for n in needles {
            assert!(
                stderr(&o).contains(n),
                "pull {repo}: no {n:?}: {}",
                stderr(&o)
            );
        }
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        rb.assert_empty();
        o
    };
    // whether a request for `d` came after the first `since` requests
    let blob_requested =
        |since: usize, d: &str| liar.requests()[since..].iter().any(|l| l.contains(d));

    // a layer of 1000 bytes by its descriptor, endless on the wire: the
    // download stops at 1001 bytes
    let (m, layer, _, cd, config) = lying_image(&tar, |m| m["layers"][0]["size"] = 1000.into());
    liar.serve(
        "endless",
        Body::Sized(m),
        vec![
            (layer.clone(), Body::Endless),
            (cd.clone(), Body::Sized(config)),
        ],
    );
    let before = liar.sent();
    refused(
        "endless",
        &[
            &format!("layer {layer}"),
            "more than the 1000 bytes the manifest gives it",
        ],
    );
    let sent = liar.sent() - before;
    assert!(
        sent < 24 << 20,
        "the stand-in got {sent} bytes of the endless layer out"
    );

    // a blob longer than its descriptor, streamed (no Content-Length)
    let (m, layer, blob, cd, config) = lying_image(&tar, |m| m["layers"][0]["size"] = 100.into());
    liar.serve(
        "longer",
        Body::Sized(m),
        vec![
            (layer.clone(), Body::Chunked(blob.clone())),
            (cd.clone(), Body::Sized(config.clone())),
        ],
    );
    refused("longer", &[&layer, "more than the 100 bytes"]);
    // the same with a Content-Length that says so: refused before reading
    let (m, layer, blob, cd, config) = lying_image(&tar, |m| m["layers"][0]["size"] = 100.into());
    liar.serve(
        "announced",
        Body::Sized(m),
        vec![
            (layer.clone(), Body::Sized(blob.clone())),
            (cd.clone(), Body::Sized(config.clone())),
        ],
    );
    refused(
        "announced",
        &[
            &layer,
            &format!(
                "announces {} bytes (Content-Length), the manifest gives it 100",
                blob.len()
            ),
        ],
    );
    // shorter than its descriptor (the digest of what came is right)
    let big = blob.len() + 5000;
    let (m, layer, blob, cd, config) = lying_image(&tar, |m| m["layers"][0]["size"] = big.into());
    liar.serve(
        "shorter",
        Body::Sized(m),
        vec![
            (layer.clone(), Body::Chunked(blob.clone())),
            (cd.clone(), Body::Sized(config.clone())),
        ],
    );
    refused(
        "shorter",
        &[
            &layer,
            &format!("sent {} bytes, the manifest gives it {big}", blob.len()),
        ],
    );

    // sizes -1 and 2^62: refused before any blob is asked for
    for (repo, size, needle) in [
        ("negative", -1i64, "negative size (-1)".to_string()),
        (
            "huge",
            1i64 << 62,
            format!("gives it {} bytes, more than the", 1u64 << 62),
        ),
    ] {
        let (m, layer, blob, cd, config) =
            lying_image(&tar, |m| m["layers"][0]["size"] = size.into());
        liar.serve(
            repo,
            Body::Sized(m),
            vec![
                (layer.clone(), Body::Sized(blob)),
                (cd, Body::Sized(config)),
            ],
        );
        let since = liar.requests().len();
        refused(repo, &[&layer, &needle]);
        assert!(
            !blob_requested(since, &layer),
            "{repo}: the layer was asked for"
        );
    }

    // a layer of an unknown media type: refused, not unpacked as gzip
    let (m, layer, blob, cd, config) = lying_image(&tar, |m| {
        m["layers"][0]["mediaType"] = "application/x-evil".into()
    });
    liar.serve(
        "evil",
        Body::Sized(m),
        vec![
            (layer.clone(), Body::Sized(blob)),
            (cd, Body::Sized(config)),
        ],
    );
    let since = liar.requests().len();
    refused(
        "evil",
        &[&format!(
            "layer {layer}: unsupported media type \"application/x-evil\""
        )],
    );
    assert!(
        !blob_requested(since, &layer),
        "the evil layer was asked for"
    );

    // a 64 MiB manifest, streamed: the read stops past 4 MiB
    let (m, ..) = lying_image(&tar, |m| {
        m["annotations"] = serde_json::json!({"pad": "a".repeat(64 << 20)})
    });
    let before = liar.sent();
    liar.serve("bigmanifest", Body::Chunked(m), vec![]);
    refused(
        "bigmanifest",
        &["more than 4194304 bytes, the limit for a manifest"],
    );
    let sent = liar.sent() - before;
    assert!(
        sent < 32 << 20,
        "the stand-in got {sent} bytes of the manifest out"
    );

    // a config over 4 MiB by its descriptor, and one longer than its own
    let (m, _, _, cd, config) = lying_image(&tar, |m| m["config"]["size"] = (5 << 20).into());
    liar.serve(
        "bigconfig",
        Body::Sized(m),
        vec![(cd.clone(), Body::Sized(config))],
    );
    let since = liar.requests().len();
    refused(
        "bigconfig",
        &[&format!("config {cd}: the manifest gives it 5242880 bytes, more than the 4194304-byte limit for an image config")],
    );
    assert!(!blob_requested(since, &cd), "the big config was asked for");
    let (m, _, _, cd, _) = lying_image(&tar, |m| m["config"]["size"] = 100.into());
    liar.serve(
        "endlessconfig",
        Body::Sized(m),
        vec![(cd.clone(), Body::Endless)],
    );
    refused(
        "endlessconfig",
        &[&format!(
            "config {cd}: the registry sent more than the 100 bytes"
        )],
    );

    // the honest image pulls, and runs its layer's file
    let (m, layer, blob, cd, config) = lying_image(&tar, |_| {});
    liar.serve(
        "honest",
        Body::Sized(m),
        vec![(layer, Body::Chunked(blob)), (cd, Body::Sized(config))],
    );
    let r = format!("{host}/honest:1");
    rb.ok(&["pull", &r]);
    let fs = snapshot_fs(&rb, &sha256_file(&tar));
    assert_eq!(
        std::fs::read_to_string(fs.join("app/hello")).unwrap(),
        "hello from the liar\n"
    );
    rb.ok(&["rmi", &r]);
    rb.assert_empty();

    // `load` checks layer media types with the same list
    let lay = rb.path("evil-layout");
    let (md, ms, _) = layout_manifest(&lay, "amd64", &[&tar]);
    let mpath = lay.join("blobs/sha256").join(&md[7..]);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let evil_layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    m["layers"][0]["mediaType"] = "application/x-evil".into();
    let _ = ms;
    let (md, ms) = layout_blob(&lay, m.to_string().as_bytes());
    layout_index(
        &lay,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &md,
        ms,
    );
    let archive = rb.path("evil.tar");
    tar_dir(&lay, &archive);
    let o = rb.run(&["load", "-i", archive.to_str().unwrap()]);
    assert_fails_naming(
        &o,
        "load of an x-evil layer",
        &format!("layer {evil_layer}: unsupported media type \"application/x-evil\""),
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    rb.assert_empty();
}

/// Give every entry of `dirs` (under the store) an mtime long past.
fn age_temp_files(rb: &Rbox) {
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    for d in ["blobs/sha256", "snapshots"] {
        for e in rb.entries(d) {
            nix::sys::stat::utimensat(
                None,
                &rb.root().join(d).join(&e),
                &old,
                &old,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }
}

/// The `.tmp-*` names in blobs/sha256 and snapshots.
fn temp_names(rb: &Rbox) -> Vec<String> {
    ["blobs/sha256", "snapshots"]
        .iter()
        .flat_map(|d| {
            rb.entries(d)
                .into_iter()
                .filter(|e| e.starts_with(".tmp-"))
                .map(move |e| format!("{d}/{e}"))
        })
        .collect()
}

/// Start a pull of `r` whose layer the stand-in trickles, and kill -9 it
/// once `at_least` bytes of it are out: what a killed pull leaves.
fn kill_a_pull_midway(rb: &Rbox, liar: &Liar, r: &str, at_least: u64) {
    let before = liar.sent();
    let mut child = rb
        .cmd(&[])
        .args(["pull", r])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rrun_tests::wait_for(
        "the slow layer to be under way",
        std::time::Duration::from_secs(30),
        || liar.sent() - before > at_least,
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
}

#[test]
#[ignore = "needs root"]
fn a_killed_pulls_temp_files_go_at_the_next_pull_and_in_prune_a_live_ones_stay() {
    let rb = Rbox::new();
    let liar = Liar::start();
    // a 4 MiB layer of noise, trickled: a pull of it takes seconds
    let noise_dir = rb.path("noise-dir");
    std::fs::create_dir_all(&noise_dir).unwrap();
    let mut noise = vec![0u8; 4 << 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut noise,
    )
    .unwrap();
    std::fs::write(noise_dir.join("noise"), &noise).unwrap();
    let tar = rb.path("noise.tar");
    tar_dir(&noise_dir, &tar);
    let (m, layer, blob, cd, config) = lying_image(&tar, |_| {});
    liar.serve(
        "slow",
        Body::Sized(m.clone()),
        vec![
            (layer.clone(), Body::Slow(blob)),
            (cd.clone(), Body::Sized(config.clone())),
        ],
    );
    let slow = format!("{}/slow:1", liar.host());
    // an image the stand-in does not have: the next pull fails
    let bad = format!("{}/nothere:1", liar.host());
    rb.ok(&["images"]); // the store exists

    // a temp file as old as the others that a live rbox holds (its flock),
    // as a concurrent pull's is
    let live = rb.root().join("blobs/sha256/.tmp-1-2-3");
    std::fs::write(&live, "a concurrent pull's blob").unwrap();
    let held = std::fs::File::open(&live).unwrap();
    // SAFETY: flock on a descriptor this test holds; no memory is passed.
    let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) };
    assert_eq!(r, 0);
    let live_name = "blobs/sha256/.tmp-1-2-3";

    kill_a_pull_midway(&rb, &liar, &slow, 256 << 10);
    let left = temp_names(&rb);
    assert!(
        left.iter()
            .any(|t| t.starts_with("blobs/sha256/") && t != live_name),
        "the killed pull left no partial blob: {left:?}"
    );
    // once the dead pull's files are older than a live rbox may leave a
    // temp file unlocked, the next pull removes them, though it fails
    age_temp_files(&rb);
    let o = rb.run(&["pull", &bad]);
    assert_fails_naming(&o, "the next pull", "not here");
    assert_eq!(temp_names(&rb), [live_name], "after the next pull");

    // and `system prune` with no image in the store
    kill_a_pull_midway(&rb, &liar, &slow, 256 << 10);
    assert!(temp_names(&rb).len() > 1, "{:?}", temp_names(&rb));
    age_temp_files(&rb);
    let out = rb.ok(&["system", "prune", "-a", "-f"]);
    assert_eq!(temp_names(&rb), [live_name], "after prune: {out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");

    // once its owner is gone, the held one goes too; a young temp file
    // stays (its owner may not have locked it yet)
    drop(held);
    let young = rb.root().join("snapshots/.tmp-1-2-4");
    std::fs::create_dir(&young).unwrap();
    rb.ok(&["system", "prune", "-a", "-f"]);
    assert!(!live.exists(), "an old temp file nobody holds was kept");
    assert!(young.exists(), "a fresh temp dir was removed");
    std::fs::remove_dir(&young).unwrap();

    // and a whole pull still works
    rb.ok(&["pull", &slow]);
    rb.ok(&["rmi", &slow]);
    rb.assert_empty();
}

/// `rbox --config CONFIG ARGS` on `rb`'s store.
fn with_config(rb: &Rbox, config: &Path, args: &[&str]) -> Output {
    output_via_files(rb.cmd(&["--config"]).arg(config).args(args))
}

#[test]
#[ignore = "needs root"]
fn run_and_create_pull_a_missing_image_like_docker() {
    let rb = Rbox::new().for_containers();
    let reg = Registry::start();
    // docker.io's library/rbox-pulled, served by a mirror written as Docker
    // writes registry-mirrors (no traffic leaves the host)
    let blobs = serve_two_layers(&rb, &reg, "pulled");
    reg.push(
        &rb.path("layout-pulled"),
        "1",
        "library/rbox-pulled:latest",
        false,
    );
    let cfg = rb.path("rbox.toml");
    std::fs::write(
        &cfg,
        format!(
            "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n",
            reg.host()
        ),
    )
    .unwrap();

    // the tutorial's first command: run an image the store does not have
    let o = with_config(&rb, &cfg, &["run", "--rm", "--net", "none", "rbox-pulled"]);
    assert_ok(&o, "run of a missing image");
    assert_eq!(stdout(&o), "two layers\n");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("Unable to find image 'rbox-pulled:latest' locally"),
        "{err}"
    );
    for needle in [
        "latest: Pulling from ",
        &format!("{}: Pull complete", &blobs[1][7..19]),
        "Status: Downloaded newer image for rbox-pulled:latest",
    ] {
        assert!(err.contains(needle), "no {needle:?}: {err}");
    }
    assert!(
        reg.log()
            .contains("/v2/library/rbox-pulled/manifests/latest"),
        "the mirror was not asked"
    );
    assert_eq!(
        rb.inspect("rbox-pulled")["RepoTags"],
        serde_json::json!(["rbox-pulled:latest"])
    );

    // there now: no pull, nothing on stderr
    let o = with_config(&rb, &cfg, &["run", "--rm", "--net", "none", "rbox-pulled"]);
    assert_ok(&o, "run of the image there");
    assert_eq!(stdout(&o), "two layers\n");
    assert_eq!(stderr(&o), "");

    // --pull always asks the registry again; create prints only the id
    let log_before = reg.log().len();
    let o = with_config(
        &rb,
        &cfg,
        &["create", "--pull", "always", "--net", "none", "rbox-pulled"],
    );
    assert_ok(&o, "create --pull always");
    let id = stdout(&o);
    assert!(
        id.trim_end().len() == 64 && id.trim_end().bytes().all(|b| b.is_ascii_hexdigit()),
        "stdout is not only the id: {id:?}"
    );
    assert!(
        stderr(&o).contains("Status: Image is up to date for rbox-pulled:latest"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    assert!(reg.log()[log_before..].contains("/v2/library/rbox-pulled/manifests/latest"));
    rb.ok(&["rm", id.trim_end()]);

    // --pull never: Docker's "No such image", nothing asked for
    let log_before = reg.log().len();
    let o = with_config(
        &rb,
        &cfg,
        &["create", "--pull", "never", "--net", "none", "rbox-other"],
    );
    assert_fails_naming(&o, "create --pull never", "rbox-other:latest");
    assert!(
        stderr(&o)
            .to_lowercase()
            .contains("no such image: rbox-other:latest"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    assert!(!reg.log()[log_before..].contains("rbox-other"));
    // a bad --pull value is named
    let o = with_config(&rb, &cfg, &["create", "--pull", "sometimes", "rbox-pulled"]);
    assert_fails_naming(&o, "--pull sometimes", "sometimes");

    // a registry that is down: the pull's error, and no container
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("127.0.0.1:{down}/nowhere");
    let o = with_config(&rb, &cfg, &["run", "--rm", "--net", "none", &nowhere]);
    assert_fails_naming(
        &o,
        "run of an image nowhere",
        &format!("pull {nowhere}:latest: "),
    );
    assert!(
        stderr(&o).starts_with(&format!(
            "Unable to find image '{nowhere}:latest' locally\n"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(rb.ok(&["ps", "-a", "-q"]), "");
    rb.ok(&["rmi", "rbox-pulled"]);
    rb.assert_empty();
}

#[test]
#[ignore = "needs root"]
fn a_mirror_that_fails_is_named_in_the_error_with_the_origin() {
    let rb = Rbox::new();
    let mirror = Registry::start();
    // the image's own registry is down; its mirror lacks the image
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("127.0.0.1:{down}");
    let cfg = rb.path("rbox.toml");
    std::fs::write(
        &cfg,
        format!(
            "[registries.\"{origin}\"]\nmirrors = [\"http://{}\"]\n",
            mirror.host()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let r = format!("{origin}/app:1");
    let o = rb.run(&["--config", c, "pull", &r]);
    assert_fails_naming(&o, "pull through a mirror without the image", &r);
    let err = stderr(&o);
    for needle in [
        format!(
            "mirror http://{} answered: GET http://{}/v2/app/manifests/1: 404 Not Found: manifest unknown",
            mirror.host(),
            mirror.host()
        ),
        format!("; then http://{origin} answered: "),
    ] {
        assert!(err.contains(&needle), "no {needle:?}: {err}");
    }
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    rb.assert_empty();

    // once the mirror has it, the pull goes through the mirror
    let diff_id = serve_image(&rb, &mirror, "via the mirror\n", &["app:1"]);
    rb.ok(&["--config", c, "pull", &r]);
    assert_eq!(
        rb.inspect(&r)["RootFS"]["Layers"],
        serde_json::json!([diff_id])
    );
    rb.ok(&["rmi", &r]);
    rb.assert_empty();

    // a mirror that is no URL rbox can speak to is refused by name
    std::fs::write(
        &cfg,
        format!(
            "[registries.\"{origin}\"]\nmirrors = [\"ftp://{}\"]\n",
            mirror.host()
        ),
    )
    .unwrap();
    let o = rb.run(&["--config", c, "pull", &r]);
    assert_fails_naming(
        &o,
        "an ftp:// mirror",
        &format!(
            "registries.\"{origin}\".mirrors: \"ftp://{}\": unsupported scheme",
            mirror.host()
        ),
    );
    rb.assert_empty();
}
