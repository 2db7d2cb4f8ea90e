use super::*;

fn resolve(csv: &str) -> Result<Mount, MountError> {
    resolve_in(csv, "/")
}

fn resolve_in(csv: &str, workdir: &str) -> Result<Mount, MountError> {
    let spec = MountSpec::parse(csv)?;
    spec.resolve(
        &mut |w: &Word| Ok(w.0.replace("$DIR", "/expanded")),
        workdir,
    )
}

#[test]
fn cache_mount_defaults() {
    assert_eq!(
        resolve("type=cache,target=/root/.cache/go-build"),
        Ok(Mount::Cache {
            target: "/root/.cache/go-build".into(),
            id: "/root/.cache/go-build".into(),
            sharing: Sharing::Shared,
            from: None,
            source: String::new(),
            read_only: false,
            mode: None,
            uid: None,
            gid: None,
        })
    );
}

#[test]
fn cache_mount_options() {
    let m = resolve(
        "type=cache,id=apt,target=/var/cache/apt,sharing=locked,mode=0755,uid=1000,gid=1000,ro",
    )
    .unwrap();
    assert_eq!(
        m,
        Mount::Cache {
            target: "/var/cache/apt".into(),
            id: "apt".into(),
            sharing: Sharing::Locked,
            from: None,
            source: String::new(),
            read_only: true,
            mode: Some(0o755),
            uid: Some(1000),
            gid: Some(1000),
        }
    );
}

#[test]
fn bind_mount_is_read_only_unless_rw() {
    let m = resolve("type=bind,from=build,source=/out,target=/in").unwrap();
    assert_eq!(
        m,
        Mount::Bind {
            target: "/in".into(),
            from: Some("build".into()),
            source: "/out".into(),
            read_only: true,
        }
    );
    let m = resolve("target=/src,rw=true").unwrap();
    assert!(
        matches!(
            m,
            Mount::Bind {
                read_only: false,
                ..
            }
        ),
        "{m:?}"
    );
}

#[test]
fn relative_targets_are_under_the_workdir() {
    let m = resolve_in("type=tmpfs,dst=tmp,size=64m", "/app").unwrap();
    assert_eq!(
        m,
        Mount::Tmpfs {
            target: "/app/tmp".into(),
            size: Some(64 << 20)
        }
    );
    assert_eq!(resolve("type=tmpfs"), Err(MountError::Target("/".into())));
}

#[test]
fn secret_mounts() {
    assert_eq!(
        resolve("type=secret,id=aws"),
        Ok(Mount::Secret {
            id: "aws".into(),
            target: Some("/run/secrets/aws".into()),
            env: None,
            required: false,
            mode: 0o400,
            uid: 0,
            gid: 0,
        })
    );
    assert_eq!(
        resolve("type=secret,id=token,env=TOKEN,required"),
        Ok(Mount::Secret {
            id: "token".into(),
            target: None,
            env: Some("TOKEN".into()),
            required: true,
            mode: 0o400,
            uid: 0,
            gid: 0,
        })
    );
    let m = resolve("type=secret,target=/etc/key.pem").unwrap();
    assert!(
        matches!(m, Mount::Secret { ref id, .. } if id == "key.pem"),
        "{m:?}"
    );
}

#[test]
fn values_are_expanded() {
    let m = resolve("type=cache,target=$DIR").unwrap();
    assert!(
        matches!(m, Mount::Cache { ref target, .. } if target == "/expanded"),
        "{m:?}"
    );
}

#[test]
fn quoted_csv_fields() {
    assert_eq!(
        resolve("\"type=bind,x\",target=/a"),
        Err(MountError::Type("bind,x".into()))
    );
    let m = resolve("\"target=/a,b\",\"source=say \"\"hi\"\"\"").unwrap();
    assert!(
        matches!(m, Mount::Bind { ref target, ref source, .. } if target == "/a,b" && source == "say \"hi\""),
        "{m:?}"
    );
}

#[test]
fn refused_as_buildkit_refuses() {
    let err = |csv: &str| resolve(csv).unwrap_err().to_string();
    assert_eq!(
        err("type=volume,target=/a"),
        "unsupported mount type \"volume\""
    );
    assert_eq!(
        err("type=cache,target=/a,sharing=all"),
        "unsupported sharing value \"all\""
    );
    assert_eq!(
        err("type=bind,target=/a,mode=0700"),
        "mode not allowed for \"bind\" type mounts"
    );
    assert_eq!(
        err("type=bind,target=/a,required"),
        "unexpected key 'required' for mount type 'bind'"
    );
    assert_eq!(
        err("required,type=secret,id=a"),
        "unexpected key 'required' for mount type 'bind'"
    );
    assert_eq!(
        err("type=cache,target=/a,size=1g"),
        "unexpected key 'size' for mount type 'cache'"
    );
    assert_eq!(
        err("type=secret,from=x,id=a"),
        "secret mount should not have a from"
    );
    assert_eq!(
        err("type=secret"),
        "invalid secret mount. one of source, target required"
    );
    assert_eq!(
        err("type=secret,id=a,src=b"),
        "both source and id can't be set"
    );
    assert_eq!(
        err("type=bind,target=/a,sharing=private"),
        "invalid cache sharing set for bind mount"
    );
    assert_eq!(err("type=cache,target=/a,uid=x"), "invalid value x for uid");
    assert_eq!(
        err("type=bind,target=/a,ro=maybe"),
        "invalid value for readonly: maybe"
    );
    assert_eq!(
        err("type=cache,target"),
        "invalid field 'target' must be a key=value pair"
    );
    assert_eq!(
        err("type=cache,tagret=/a"),
        "unexpected key 'tagret' in 'tagret=/a'"
    );
    assert_eq!(
        err("from=$STAGE,target=/a"),
        "'from' doesn't support variable expansion, define alias stage instead"
    );
    assert_eq!(
        err("type=bind,\"a"),
        "failed to parse csv mounts: extraneous or missing \" in quoted-field"
    );
    assert_eq!(
        err("type=bind,a\"b"),
        "failed to parse csv mounts: bare \" in non-quoted-field"
    );
}

#[test]
fn sizes_as_go_units_reads_them() {
    assert_eq!(ram_in_bytes("512"), Some(512));
    assert_eq!(ram_in_bytes("64k"), Some(64 << 10));
    assert_eq!(ram_in_bytes("1.5g"), Some(3 << 29));
    assert_eq!(ram_in_bytes("2MiB"), Some(2 << 20));
    assert_eq!(ram_in_bytes("2 mb"), Some(2 << 20));
    assert_eq!(ram_in_bytes("1x"), None);
}
