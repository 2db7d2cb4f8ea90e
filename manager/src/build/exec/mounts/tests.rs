use std::os::unix::ffi::OsStrExt;

use super::*;
use crate::build::plan::Origin;

#[test]
fn bind_sources_stay_in_the_context() {
    let r = Path::new("/ctx");
    assert_eq!(inside(r, "a/../../../etc"), Path::new("/ctx/etc"));
    assert_eq!(inside(r, "/src/./x"), Path::new("/ctx/src/x"));
    assert_eq!(inside(r, "."), Path::new("/ctx"));
}

/// Layer dirs `names` (top first) under `base`, each with `files` (a
/// trailing `/` makes a directory).
fn layers(base: &Path, spec: &[(&str, &[&str])]) -> Vec<PathBuf> {
    spec.iter()
        .map(|(name, files)| {
            let root = base.join(name);
            fs::create_dir_all(&root).unwrap();
            for f in *files {
                let p = root.join(f.trim_end_matches('/'));
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                if f.ends_with('/') {
                    fs::create_dir_all(&p).unwrap();
                } else {
                    fs::write(&p, name).unwrap();
                }
            }
            root
        })
        .collect()
}

#[test]
fn the_dirs_of_a_path_are_each_layers_down_to_one_that_hides_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let roots = layers(
        d.path(),
        &[
            ("top", &["src/new.txt", "bin/tool"]),
            // nothing at src: the layers below show through
            ("mid", &["other/"]),
            ("low", &["src/old.txt", "src/sub/"]),
            // a file where the layers above have a directory: hidden
            ("bottom", &["src"]),
        ],
    );
    let [top, _, low, _] = &roots[..] else {
        unreachable!()
    };
    assert_eq!(
        layer_dirs(&roots, Path::new("/src")),
        [top.join("src"), low.join("src")]
    );
    assert_eq!(
        layer_dirs(&roots, Path::new("/src/sub")),
        [low.join("src/sub")]
    );
    assert_eq!(layer_dirs(&roots, Path::new("/")), roots);
    assert!(layer_dirs(&roots, Path::new("/nothing")).is_empty());
    // a file: the topmost layer's
    assert_eq!(
        layer_file(&roots, Path::new("/src/old.txt")),
        Some(low.join("src/old.txt"))
    );
    assert_eq!(
        layer_file(&roots, Path::new("bin/tool")),
        Some(top.join("bin/tool"))
    );
    assert_eq!(layer_file(&roots, Path::new("/src/none")), None);
}

fn mknod_whiteout(p: &Path) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    nix::sys::stat::mknod(
        p,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
}

fn set_opaque(dir: &Path) {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

#[test]
#[ignore = "needs root: a whiteout is a 0:0 device node, the opaque mark a trusted.* xattr"]
fn whiteouts_and_opaque_dirs_hide_the_layers_below() {
    let d = tempfile::tempdir().unwrap();
    let roots = layers(
        d.path(),
        &[
            ("top", &["app/x", "lib/"]),
            ("mid", &["app/y", "lib/keep"]),
            ("low", &["app/z", "lib/gone", "etc/conf"]),
        ],
    );
    // app is opaque in the top layer: mid's and low's are hidden
    set_opaque(&roots[0].join("app"));
    assert_eq!(
        layer_dirs(&roots, Path::new("/app")),
        [roots[0].join("app")]
    );
    assert_eq!(layer_file(&roots, Path::new("/app/z")), None);
    // a whiteout of a file, and of a directory
    mknod_whiteout(&roots[0].join("lib/gone"));
    assert_eq!(layer_file(&roots, Path::new("/lib/gone")), None);
    assert_eq!(
        layer_file(&roots, Path::new("/lib/keep")),
        Some(roots[1].join("lib/keep"))
    );
    mknod_whiteout(&roots[1].join("etc"));
    assert!(layer_dirs(&roots, Path::new("/etc")).is_empty());
    assert_eq!(layer_file(&roots, Path::new("/etc/conf")), None);
}

/// A store with a stage of two layers: /src/a (bottom), /src/b and the
/// file /tool (top).
fn two_layer_stage() -> (tempfile::TempDir, Store, Rootfs) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let diff_ids: Vec<String> = ["sha256:aaaa", "sha256:bbbb"].map(String::from).into();
    let bottom = store.snapshot_fs(&diff_ids[0]);
    let top = store.snapshot_fs(&diff_ids[1]);
    layers(&bottom, &[("", &["src/a", "seed/s"])]);
    layers(&top, &[("", &["src/b", "tool"])]);
    let fs = Rootfs {
        id: "sha256:stage".into(),
        diff_ids,
    };
    (dir, store, fs)
}

fn bind(from: Option<&str>, source: &str, target: &str, read_only: bool) -> RunMount {
    RunMount {
        mount: Mount::Bind {
            target: target.into(),
            from: from.map(String::from),
            source: source.into(),
            read_only,
        },
        origin: match from {
            Some(_) => Origin::Stage(0),
            None => Origin::Context,
        },
    }
}

fn cache(id: &str, from: Option<&str>, sharing: Sharing) -> RunMount {
    RunMount {
        mount: Mount::Cache {
            target: "/c".into(),
            id: id.into(),
            sharing,
            from: from.map(String::from),
            source: "/seed".into(),
            read_only: false,
            mode: None,
            uid: None,
            gid: None,
        },
        origin: match from {
            Some(_) => Origin::Stage(0),
            None => Origin::Scratch,
        },
    }
}

#[test]
#[ignore = "needs root: overlay mounts"]
fn mounts_from_a_stage_are_overlays_of_its_layers() {
    let (_dir, store, stage) = two_layer_stage();
    let scratch = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    fs::create_dir(ctx.path().join("dir")).unwrap();
    fs::write(ctx.path().join("dir/f"), "ctx").unwrap();
    let rootfs = |o: &Origin| {
        assert_eq!(o, &Origin::Stage(0));
        Ok(stage.clone())
    };
    let inputs = MountInputs {
        context: ctx.path(),
        secrets: &[],
        scratch: scratch.path(),
        rootfs: &rootfs,
    };
    let s = scratch.path();
    let top = store.snapshot_fs("sha256:bbbb");
    let bottom = store.snapshot_fs("sha256:aaaa");
    let got = run_mounts(
        &store,
        &[
            bind(Some("stage"), "/src", "/m/ro", true),
            bind(Some("stage"), "src/../src", "/m/rw", false),
            bind(Some("stage"), "/tool", "/m/tool", true),
            bind(None, "dir", "/m/ctx", false),
            bind(Some("stage"), "/", "/m/all", true),
        ],
        &[],
        &inputs,
    )
    .unwrap();
    let sources: Vec<&Source> = got.mounts.iter().map(|m| &m.source).collect();
    assert_eq!(
        sources,
        [
            &Source::Overlay {
                lower: vec![top.join("src"), bottom.join("src"), s.join("mount-0/empty")],
                upper: None,
            },
            &Source::Overlay {
                lower: vec![top.join("src"), bottom.join("src"), s.join("mount-1/empty")],
                upper: Some((s.join("mount-1/upper"), s.join("mount-1/work"))),
            },
            &Source::Bind(top.join("tool")),
            &Source::Overlay {
                lower: vec![ctx.path().join("dir"), s.join("mount-3/empty")],
                upper: Some((s.join("mount-3/upper"), s.join("mount-3/work"))),
            },
            &Source::Overlay {
                lower: vec![top.clone(), bottom.clone(), s.join("mount-4/empty")],
                upper: None,
            },
        ]
    );
    let ro: Vec<bool> = got.mounts.iter().map(|m| m.readonly).collect();
    assert_eq!(ro, [true, false, true, false, true]);
    // a source the stage does not have
    let e = run_mounts(
        &store,
        &[bind(Some("stage"), "/nope", "/x", true)],
        &[],
        &inputs,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "RUN --mount: source \"/nope\" is not in sha256:stage"
    );
    // nothing mounted is left on the host
    assert!(!fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&store.root().display().to_string()));
}

#[test]
#[ignore = "needs root: overlay mounts and chown"]
fn a_cache_from_a_stage_starts_with_its_files_and_is_a_cache_of_its_own() {
    let (_dir, store, stage) = two_layer_stage();
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = |_: &Origin| Ok(stage.clone());
    let inputs = MountInputs {
        context: Path::new("/nonexistent"),
        secrets: &[],
        scratch: scratch.path(),
        rootfs: &rootfs,
    };
    let got = run_mounts(
        &store,
        &[
            cache("c", Some("stage"), Sharing::Shared),
            cache("c", None, Sharing::Shared),
        ],
        &[],
        &inputs,
    )
    .unwrap();
    let dirs: Vec<PathBuf> = got
        .mounts
        .iter()
        .map(|m| match &m.source {
            Source::Bind(p) => p.clone(),
            s => panic!("a cache is a directory: {s:?}"),
        })
        .collect();
    assert_eq!(dirs[0], cache_dir(&store, "c", Some((&stage, "/seed"))));
    assert_eq!(dirs[1], cache_dir(&store, "c", None));
    assert_ne!(dirs[0], dirs[1]);
    assert_eq!(fs::read_to_string(dirs[0].join("s")).unwrap(), "");
    assert!(fs::read_dir(&dirs[1]).unwrap().next().is_none());
    // made once: what a step wrote stays
    fs::write(dirs[0].join("kept"), "1").unwrap();
    let again = run_mounts(
        &store,
        &[cache("c", Some("stage"), Sharing::Shared)],
        &[],
        &inputs,
    )
    .unwrap();
    assert_eq!(again.mounts[0].source, Source::Bind(dirs[0].clone()));
    assert!(dirs[0].join("kept").exists());

    // locked: held while the step runs; private: a spare one meanwhile
    let locked = run_mounts(&store, &[cache("l", None, Sharing::Locked)], &[], &inputs).unwrap();
    assert_eq!(locked.locks.len(), 1);
    let scratch2 = tempfile::tempdir().unwrap();
    let inputs2 = MountInputs {
        scratch: scratch2.path(),
        ..inputs
    };
    let private = run_mounts(&store, &[cache("l", None, Sharing::Private)], &[], &inputs2).unwrap();
    assert_eq!(
        private.mounts[0].source,
        Source::Bind(scratch2.path().join("mount-0/private"))
    );
    drop(locked);
    let private = run_mounts(&store, &[cache("l", None, Sharing::Private)], &[], &inputs2).unwrap();
    assert_eq!(
        private.mounts[0].source,
        Source::Bind(cache_dir(&store, "l", None))
    );

    // ssh stays refused
    let ssh = RunMount {
        mount: Mount::Ssh {
            id: "default".into(),
            target: None,
            required: false,
            mode: 0o600,
            uid: 0,
            gid: 0,
        },
        origin: Origin::Scratch,
    };
    let e = run_mounts(&store, &[ssh], &[], &inputs).unwrap_err();
    assert!(e.to_string().contains("type=ssh is not supported"), "{e}");
}
