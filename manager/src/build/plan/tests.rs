use super::*;
use crate::build::dockerfile::{self, Mount, Network};

fn opts() -> PlanOptions {
    PlanOptions {
        build_args: BTreeMap::new(),
        target: None,
        platform: None,
        build_platform: Platform::parse("linux/amd64").unwrap(),
        images: BTreeMap::new(),
    }
}

fn with_args(pairs: &[(&str, &str)]) -> PlanOptions {
    let mut o = opts();
    o.build_args = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o
}

fn plan_with(text: &str, o: &PlanOptions) -> Result<Plan, PlanError> {
    let df = match dockerfile::parse(text, "Dockerfile") {
        Ok(df) => df,
        Err(e) => panic!("{e}"),
    };
    plan(&df, o)
}

fn plan_ok(text: &str, o: &PlanOptions) -> Plan {
    match plan_with(text, o) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn error(text: &str, o: &PlanOptions) -> String {
    plan_with(text, o).unwrap_err().to_string()
}

/// The ops of the target stage.
fn ops(text: &str, o: &PlanOptions) -> Vec<Op> {
    let p = plan_ok(text, o);
    p.stages[p.target]
        .steps
        .iter()
        .map(|s| s.op.clone())
        .collect()
}

fn run_of(op: &Op) -> &RunStep {
    match op {
        Op::Run(r) => r,
        other => panic!("not a RUN: {other:?}"),
    }
}

fn copy_of(op: &Op) -> &CopyStep {
    match op {
        Op::Copy(c) => c,
        other => panic!("not a COPY: {other:?}"),
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

const TUTORIAL: &str = "ARG IMAGE_BASE\nARG IMAGE_TAG\nFROM ${IMAGE_BASE}:${IMAGE_TAG}\n\
COPY setup.sh /setup.sh\n\
RUN apt-get update && \\\n    apt-get install -y curl && \\\n    /setup.sh\n\
ENV PATH=$PATH:/tmp\nEXPOSE 443\nEXPOSE 53/udp\n";

#[test]
fn tutorial_dockerfile() {
    let o = with_args(&[("IMAGE_BASE", "debian"), ("IMAGE_TAG", "bookworm")]);
    let p = plan_ok(TUTORIAL, &o);
    assert_eq!(
        p.stages[0].base,
        Base::Image(s("docker.io/library/debian:bookworm"))
    );
    assert_eq!(p.images, [s("docker.io/library/debian:bookworm")]);
    assert_eq!(p.missing_images, p.images);
    assert!(p.unused_build_args.is_empty());
    let ops: Vec<Op> = p.stages[0].steps.iter().map(|s| s.op.clone()).collect();
    let copy = copy_of(&ops[0]);
    assert_eq!(copy.sources, [CopySource::Path(s("setup.sh"))]);
    assert_eq!(
        (copy.dest.as_str(), &copy.origin),
        ("/setup.sh", &Origin::Context)
    );
    assert_eq!(
        run_of(&ops[1]).argv,
        [
            "/bin/sh",
            "-c",
            "apt-get update &&     apt-get install -y curl &&     /setup.sh"
        ]
    );
    assert_eq!(
        ops[2],
        Op::Env(env(&[("PATH", &format!("{}:/tmp", steps::DEFAULT_PATH))]))
    );
    assert_eq!(
        ops[3],
        Op::Expose(vec![Port {
            number: 443,
            protocol: Protocol::Tcp
        }])
    );
    assert_eq!(
        ops[4],
        Op::Expose(vec![Port {
            number: 53,
            protocol: Protocol::Udp
        }])
    );
    assert_eq!(p.stages[0].steps[1].line, 5);
}

#[test]
fn tutorial_base_from_arg_defaults_and_errors() {
    let p = plan_ok(
        "ARG IMAGE_BASE=alpine\nARG IMAGE_TAG=3.20\nFROM ${IMAGE_BASE}:${IMAGE_TAG}\n",
        &opts(),
    );
    assert_eq!(
        p.stages[0].base,
        Base::Image(s("docker.io/library/alpine:3.20"))
    );
    assert_eq!(
        error("ARG IMAGE_BASE\nFROM ${IMAGE_BASE}\n", &opts()),
        "Dockerfile:2: base name (${IMAGE_BASE}) should not be blank"
    );
    let err = error(TUTORIAL, &opts());
    assert!(
        err.starts_with("Dockerfile:3: failed to parse stage name \":\""),
        "{err}"
    );
}

#[test]
fn path_from_the_base_image() {
    let mut o = opts();
    o.images.insert(
        s("docker.io/library/debian:latest"),
        BaseImage {
            env: vec![s("PATH=/usr/bin:/bin"), s("LANG=C.UTF-8")],
            ..BaseImage::default()
        },
    );
    let p = plan_ok("FROM debian\nENV PATH=$PATH:/tmp\n", &o);
    assert_eq!(
        p.stages[0].env,
        env(&[("PATH", "/usr/bin:/bin"), ("LANG", "C.UTF-8")])
    );
    assert_eq!(
        p.stages[0].steps[0].op,
        Op::Env(env(&[("PATH", "/usr/bin:/bin:/tmp")]))
    );
    assert!(p.missing_images.is_empty());
}

#[test]
fn env_pairs_see_the_values_before_the_instruction() {
    let ops = ops(
        "FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$def\n",
        &opts(),
    );
    assert_eq!(ops[1], Op::Env(env(&[("abc", "bye"), ("def", "hello")])));
    assert_eq!(ops[2], Op::Env(env(&[("ghi", "hello")])));
}

#[test]
fn env_legacy_form_and_quotes() {
    let ops = ops(
        "FROM scratch\nENV A hello  \"big\" world\nENV B=\"a b\" C='$A' D=\\$A\n",
        &opts(),
    );
    assert_eq!(ops[0], Op::Env(env(&[("A", "hello  big world")])));
    assert_eq!(
        ops[1],
        Op::Env(env(&[("B", "a b"), ("C", "$A"), ("D", "$A")]))
    );
}

#[test]
fn global_args_need_redeclaring_in_a_stage() {
    let text = "ARG VERSION=1.0\nFROM scratch\nRUN echo\nARG VERSION\nRUN echo\nENV V=$VERSION\n";
    let ops = ops(text, &opts());
    assert!(
        !run_of(&ops[0]).env.iter().any(|(k, _)| k == "VERSION"),
        "not before ARG VERSION"
    );
    assert_eq!(ops[1], Op::Arg(vec![(s("VERSION"), Some(s("1.0")))]));
    assert!(run_of(&ops[2]).env.contains(&(s("VERSION"), s("1.0"))));
    assert_eq!(run_of(&ops[2]).build_args, env(&[("VERSION", "1.0")]));
    assert_eq!(ops[3], Op::Env(env(&[("V", "1.0")])));
    let ops2 = self::ops(text, &with_args(&[("VERSION", "2.0")]));
    assert_eq!(ops2[3], Op::Env(env(&[("V", "2.0")])));
}

#[test]
fn global_args_unseen_without_redeclaring() {
    let ops = ops("ARG X=1\nFROM scratch\nENV Y=${X:-unset}\n", &opts());
    assert_eq!(ops[0], Op::Env(env(&[("Y", "unset")])));
}

#[test]
fn arg_defaults_expand_earlier_args_and_env() {
    let text = "FROM scratch\nENV BASE=/opt\nARG A=$BASE/a B=${A}/b\nARG C\nENV D=$B\n";
    let ops = ops(text, &opts());
    assert_eq!(
        ops[1],
        Op::Arg(vec![
            (s("A"), Some(s("/opt/a"))),
            (s("B"), Some(s("/opt/a/b")))
        ])
    );
    assert_eq!(ops[2], Op::Arg(vec![(s("C"), None)]));
    assert_eq!(ops[3], Op::Env(env(&[("D", "/opt/a/b")])));
}

#[test]
fn env_and_arg_interplay_as_buildkit() {
    // the environment takes whichever was set last; the config keeps ENV
    let ops = ops(
        "FROM scratch\nARG V=arg\nENV V=env\nRUN x\nARG V=again\nRUN y\n",
        &opts(),
    );
    assert!(run_of(&ops[2]).env.contains(&(s("V"), s("env"))));
    assert!(run_of(&ops[4]).env.contains(&(s("V"), s("again"))));
}

#[test]
fn run_is_not_expanded() {
    let ops = ops(
        "FROM scratch\nARG NAME=x\nRUN echo $NAME ${HOME:-/root} \"$(id -u)\"\n",
        &opts(),
    );
    assert_eq!(
        run_of(&ops[1]).argv[2],
        "echo $NAME ${HOME:-/root} \"$(id -u)\""
    );
}

#[test]
fn predefined_platform_args() {
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/arm64").unwrap());
    let text = "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH TARGETOS\nRUN GOARCH=$TARGETARCH go build\n\
                FROM alpine\nCOPY --from=build /out /\n";
    let p = plan_ok(text, &o);
    assert_eq!(p.stages[0].platform.to_string(), "linux/amd64");
    assert_eq!(p.stages[1].platform.to_string(), "linux/arm64");
    assert_eq!(
        p.stages[0].steps[0].op,
        Op::Arg(vec![
            (s("TARGETARCH"), Some(s("arm64"))),
            (s("TARGETOS"), Some(s("linux")))
        ])
    );
    let bad = error("FROM --platform=$NOPE alpine\n", &opts());
    assert_eq!(
        bad,
        "Dockerfile:1: empty platform value from expression $NOPE"
    );
    let bad = error("FROM --platform=linux alpine\n", &opts());
    assert_eq!(bad, "Dockerfile:1: failed to parse platform linux");
}

#[test]
fn only_needed_stages_of_a_native_platform_build() {
    let native = platform::native("amd64", "");
    let check = |text: &str, o: &PlanOptions| {
        check_platforms(&plan_ok(text, o), &native).map_err(|e| e.to_string())
    };
    // the host's platform, as BUILDPLATFORM, TARGETPLATFORM or spelled out
    let ok = "FROM --platform=$BUILDPLATFORM alpine AS a\nRUN true\n\
              FROM --platform=$TARGETPLATFORM alpine AS b\nRUN true\n\
              FROM --platform=linux/amd64/v1 alpine\nCOPY --from=a / /\nCOPY --from=b / /\n";
    assert_eq!(check(ok, &opts()), Ok(()));
    // another platform is refused at its FROM, naming it
    let arm = "FROM alpine\nRUN true\nFROM --platform=linux/arm64 alpine AS arm\nRUN true\n";
    assert_eq!(
        check(arm, &opts()),
        Err(
            "Dockerfile:3: platform linux/arm64 cannot be built on this host, which runs \
             linux/amd64 (v1) natively: rbox build has no emulation"
                .to_string()
        )
    );
    // ... unless the target does not need its stage
    let mut o = opts();
    let first = "FROM alpine AS first\nRUN true\nFROM --platform=linux/arm64 alpine\nRUN true\n";
    o.target = Some("first".into());
    assert_eq!(check(first, &o), Ok(()));
    // --platform reaches every stage without its own
    let mut o = opts();
    o.platform = Some(Platform::parse("linux/amd64/v3").unwrap());
    assert!(check("FROM alpine\nRUN true\n", &o)
        .unwrap_err()
        .contains("platform linux/amd64/v3 cannot be built"));
}

#[test]
fn proxies_reach_run_only_through_the_plan() {
    let o = with_args(&[
        ("HTTP_PROXY", "http://proxy:3128"),
        ("no_proxy", "localhost"),
    ]);
    let p = plan_ok("FROM scratch\nRUN apk add curl\n", &o);
    assert_eq!(
        p.proxy_env,
        env(&[
            ("HTTP_PROXY", "http://proxy:3128"),
            ("http_proxy", "http://proxy:3128"),
            ("NO_PROXY", "localhost"),
            ("no_proxy", "localhost")
        ])
    );
    let run = run_of(&p.stages[0].steps[0].op);
    assert!(!run
        .env
        .iter()
        .any(|(k, _)| k.contains("proxy") || k.contains("PROXY")));
    assert!(run.build_args.is_empty());
    assert!(p.unused_build_args.is_empty(), "proxies need no ARG");
    let p = plan_ok("FROM scratch\nARG HTTP_PROXY\nRUN x\n", &o);
    assert_eq!(
        run_of(&p.stages[0].steps[1].op).build_args,
        env(&[("HTTP_PROXY", "http://proxy:3128")])
    );
}

#[test]
fn unused_build_args_are_reported() {
    let o = with_args(&[
        ("USED", "1"),
        ("META", "2"),
        ("NOPE", "3"),
        ("TARGETARCH", "arm64"),
    ]);
    let p = plan_ok("ARG META\nFROM scratch\nARG USED\n", &o);
    assert_eq!(p.unused_build_args, [s("NOPE")]);
}

const MULTI: &str = "FROM golang:1.22 AS build\nRUN go build -o /app\n\
FROM alpine AS tools\nRUN apk add git\n\
FROM build AS test\nRUN go test\n\
FROM scratch AS final\nCOPY --from=build /app /app\nCOPY --from=tools /usr/bin/git /git\n\
FROM final AS debug\nCOPY --from=test /x /y\n";

#[test]
fn stages_the_target_does_not_need_are_pruned() {
    let p = plan_ok(MULTI, &opts());
    assert_eq!(p.target, 4);
    assert_eq!(p.order, [vec![0, 1], vec![2, 3], vec![4]]);
    let needed: Vec<bool> = p.stages.iter().map(|s| s.needed).collect();
    assert_eq!(needed, [true, true, true, true, true]);
    let mut o = opts();
    o.target = Some(s("FINAL"));
    let p = plan_ok(MULTI, &o);
    assert_eq!(p.target, 3);
    assert_eq!(p.order, [vec![0, 1], vec![3]]);
    assert!(!p.stages[2].needed && p.stages[2].steps.is_empty());
    assert_eq!(p.stages[3].deps, [0, 1]);
    assert_eq!(p.stages[3].base, Base::Scratch);
    assert_eq!(
        p.images,
        [
            s("docker.io/library/golang:1.22"),
            s("docker.io/library/alpine:latest")
        ]
    );
    o.target = Some(s("build"));
    let p = plan_ok(MULTI, &o);
    assert_eq!(p.order, [vec![0]]);
    assert_eq!(p.images, [s("docker.io/library/golang:1.22")]);
}

#[test]
fn stage_based_on_a_stage_inherits_its_state() {
    let text = "FROM scratch AS base\nENV A=1\nARG B=2\nWORKDIR /app\nUSER app\nSHELL [\"/bin/bash\", \"-c\"]\n\
                FROM base\nRUN echo\nCMD run\n";
    let p = plan_ok(text, &opts());
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.stages[1].deps, [0]);
    let run = run_of(&p.stages[1].steps[0].op);
    assert_eq!(run.argv, ["/bin/bash", "-c", "echo"]);
    assert_eq!((run.workdir.as_str(), run.user.as_str()), ("/app", "app"));
    assert!(run.env.contains(&(s("A"), s("1"))) && run.env.contains(&(s("B"), s("2"))));
    assert_eq!(run.build_args, env(&[("B", "2")]));
    assert_eq!(
        p.stages[1].env,
        env(&[("PATH", steps::DEFAULT_PATH), ("A", "1")])
    );
    assert_eq!(
        p.stages[1].steps[1].op,
        Op::Cmd(vec![s("/bin/bash"), s("-c"), s("run")])
    );
}

#[test]
fn base_image_config_sets_workdir_user_and_shell() {
    let mut o = opts();
    o.images.insert(
        s("docker.io/library/node:20"),
        BaseImage {
            working_dir: s("/usr/src"),
            user: s("node"),
            shell: vec![s("/bin/ash"), s("-eo"), s("pipefail"), s("-c")],
            ..BaseImage::default()
        },
    );
    let ops = ops("FROM node:20\nWORKDIR app\nRUN npm ci\n", &o);
    assert_eq!(ops[0], Op::Workdir(s("/usr/src/app")));
    let run = run_of(&ops[1]);
    assert_eq!(run.argv, ["/bin/ash", "-eo", "pipefail", "-c", "npm ci"]);
    assert_eq!(
        (run.workdir.as_str(), run.user.as_str()),
        ("/usr/src/app", "node")
    );
}

#[test]
fn workdir_user_volume_label_stopsignal_expand() {
    let text = "FROM scratch\nENV APP=/srv NAME=web U=1000\nWORKDIR $APP\nWORKDIR ${NAME}/data\nWORKDIR ../logs\n\
                USER ${U}:${U}\nVOLUME $APP/cache [\"/x\"]\nVOLUME [\"$APP/json\"]\nLABEL app=$NAME \"v\"=\"1 2\"\nSTOPSIGNAL SIG${SIG:-QUIT}\n";
    let ops = ops(text, &opts());
    assert_eq!(ops[1], Op::Workdir(s("/srv")));
    assert_eq!(ops[2], Op::Workdir(s("/srv/web/data")));
    assert_eq!(ops[3], Op::Workdir(s("/srv/web/logs")));
    assert_eq!(ops[4], Op::User(s("1000:1000")));
    assert_eq!(
        ops[5],
        Op::Volume(vec![s("/srv/cache"), s("[/x]")]),
        "words lose their quotes"
    );
    assert_eq!(ops[6], Op::Volume(vec![s("/srv/json")]));
    assert_eq!(ops[7], Op::Label(env(&[("app", "web"), ("v", "1 2")])));
    assert_eq!(ops[8], Op::StopSignal(s("SIGQUIT")));
    assert_eq!(
        error("FROM scratch\nSTOPSIGNAL SIGNOPE\n", &opts()),
        "Dockerfile:2: Invalid signal: SIGNOPE"
    );
}

#[test]
fn cmd_entrypoint_interplay() {
    let p = plan_ok(
        "FROM scratch\nENTRYPOINT [\"/app\"]\nCMD [\"--help\"]\nENTRYPOINT /app2\n",
        &opts(),
    );
    let ops: Vec<Op> = p.stages[0].steps.iter().map(|s| s.op.clone()).collect();
    assert_eq!(
        ops[0],
        Op::Entrypoint {
            argv: vec![s("/app")],
            clears_cmd: true
        }
    );
    assert_eq!(ops[1], Op::Cmd(vec![s("--help")]));
    assert_eq!(
        ops[2],
        Op::Entrypoint {
            argv: vec![s("/bin/sh"), s("-c"), s("/app2")],
            clears_cmd: false
        }
    );
}

#[test]
fn copy_from_stage_index_image_and_errors() {
    let text = "FROM alpine AS a\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=A /a /b\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\nCOPY --from=scratch / /\n";
    let p = plan_ok(text, &opts());
    let origins: Vec<Origin> = p.stages[1]
        .steps
        .iter()
        .map(|s| copy_of(&s.op).origin.clone())
        .collect();
    assert_eq!(
        origins,
        [
            Origin::Stage(0),
            Origin::Stage(0),
            Origin::Image(s("docker.io/library/nginx:1.27")),
            Origin::Scratch
        ]
    );
    assert_eq!(
        p.images,
        [
            s("docker.io/library/alpine:latest"),
            s("docker.io/library/nginx:1.27")
        ]
    );
    assert_eq!(p.missing_images, [s("docker.io/library/alpine:latest")]);
    let err = |t: &str| error(t, &opts());
    assert_eq!(
        err("ARG S=a\nFROM alpine AS a\nFROM scratch\nCOPY --from=$S /a /a\n"),
        "Dockerfile:4: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    );
    assert_eq!(
        err("FROM scratch\nCOPY --from=3 /a /a\n"),
        "Dockerfile:2: invalid stage index 3"
    );
    assert_eq!(
        err("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nFROM a\n"),
        "Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    assert_eq!(
        err("FROM scratch AS a\nCOPY --from=a /x /x\n"),
        "Dockerfile:2: circular dependency detected on stage: a"
    );
    assert!(err("FROM scratch\nCOPY --from=Bad:Ref /x /x\n")
        .starts_with("Dockerfile:2: failed to parse stage name \"Bad:Ref\""));
}

#[test]
fn a_later_stage_is_fine_when_not_needed() {
    let mut o = opts();
    o.target = Some(s("b"));
    let p = plan_ok(
        "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n",
        &o,
    );
    assert_eq!(p.order, [vec![1]]);
}

#[test]
fn errors_in_unneeded_stages_do_not_count() {
    let mut o = opts();
    o.target = Some(s("good"));
    let text = "FROM scratch AS bad\nENV X=${MISSING:?required}\nFROM scratch AS good\n";
    assert!(plan_with(text, &o).is_ok());
    o.target = Some(s("bad"));
    assert_eq!(
        error(text, &o),
        "Dockerfile:2: failed to process \"${MISSING:?required}\": MISSING: required"
    );
}

#[test]
fn run_mounts_typed_and_their_stages_needed() {
    let text = "FROM alpine AS deps\nFROM scratch AS unused\nFROM golang\nWORKDIR /src\n\
                RUN --mount=type=cache,target=.cache/go --mount=type=bind,from=deps,source=/lib,target=/deps --mount=type=secret,id=token,env=TOKEN --network=none go build\n";
    let p = plan_ok(text, &opts());
    assert_eq!(p.order, [vec![0], vec![2]]);
    assert!(!p.stages[1].needed);
    let run = run_of(&p.stages[2].steps[1].op);
    assert_eq!(run.network, Network::None);
    assert_eq!(run.mounts.len(), 3);
    assert!(
        matches!(&run.mounts[0].mount, Mount::Cache { target, id, .. } if target == "/src/.cache/go" && id == ".cache/go")
    );
    assert_eq!(run.mounts[0].origin, Origin::Scratch);
    assert_eq!(run.mounts[1].origin, Origin::Stage(0));
    assert!(
        matches!(&run.mounts[2].mount, Mount::Secret { env: Some(e), target: None, .. } if e == "TOKEN")
    );
}

#[test]
fn run_mounts_from_stages_and_images_are_read_as_copy_from_is() {
    let text = "FROM scratch AS a\nFROM scratch AS b\nFROM scratch AS c\nFROM scratch AS unused\n\
                FROM busybox\nRUN --mount=type=bind,from=A,target=/a --mount=type=cache,from=b,id=x,target=/b \
                --mount=from=alpine:3.20,target=/img --mount=type=bind,target=/ctx true\nCOPY --from=c / /\n";
    let p = plan_ok(text, &opts());
    // the stages a mount reads are built first, as COPY --from's are
    assert_eq!(p.order, [vec![0, 1, 2], vec![4]]);
    assert_eq!(p.stages[4].deps, [0, 1, 2]);
    assert!(!p.stages[3].needed);
    // a mount's image is pulled with the bases
    assert_eq!(
        p.images,
        [
            s("docker.io/library/busybox:latest"),
            s("docker.io/library/alpine:3.20")
        ]
    );
    let run = run_of(&p.stages[4].steps[0].op);
    let origins: Vec<&Origin> = run.mounts.iter().map(|m| &m.origin).collect();
    assert_eq!(
        origins,
        [
            &Origin::Stage(0),
            &Origin::Stage(1),
            &Origin::Image(s("docker.io/library/alpine:3.20")),
            &Origin::Context
        ]
    );
    assert!(matches!(
        &run.mounts[2].mount,
        Mount::Bind {
            read_only: true,
            ..
        }
    ));
    // only the target's stages count: an unused stage's mount pulls nothing
    let mut o = opts();
    o.target = Some(s("unused"));
    let p = plan_ok(
        "FROM scratch AS unused\nRUN --mount=from=alpine,target=/x true\nFROM busybox\n",
        &o,
    );
    assert_eq!(p.images, [s("docker.io/library/alpine:latest")]);
}

#[test]
fn mount_from_a_later_stage() {
    assert_eq!(
        error("FROM scratch AS first\nRUN --mount=from=later,target=/x true\nFROM scratch AS later\n", &{
            let mut o = opts();
            o.target = Some(s("first"));
            o
        }),
        "Dockerfile:2: cannot mount from stage \"later\" to \"/x\", stage needs to be defined before current command"
    );
    assert_eq!(
        error(
            "FROM scratch\nRUN --mount=type=cache,target=/c,uid=$UID true\n",
            &opts()
        ),
        "Dockerfile:2: invalid value  for uid"
    );
}

#[test]
fn run_heredocs() {
    let text = "FROM scratch\nRUN <<EOF\napt-get update\nEOF\nRUN <<-EOT\n\t#!/usr/bin/env python3\n\tprint('hi')\n\tEOT\nRUN cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n";
    let ops = ops(text, &opts());
    assert_eq!(run_of(&ops[0]).argv, ["/bin/sh", "-c", "apt-get update\n"]);
    let script = run_of(&ops[1]);
    assert_eq!(script.argv, ["/bin/sh", "-c", "/dev/pipes/EOT"]);
    assert_eq!(
        script.inline_files,
        [InlineFile {
            path: s("/dev/pipes/EOT"),
            content: s("#!/usr/bin/env python3\nprint('hi')\n"),
            mode: 0o755
        }]
    );
    assert_eq!(
        run_of(&ops[2]).argv[2],
        "cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB"
    );
}

#[test]
fn copy_heredocs_expand_unless_quoted() {
    let text = "FROM scratch\nARG NAME=world\nCOPY <<EOF <<\"RAW\" /etc/\nhello $NAME \"q\"\nEOF\nraw $NAME\nRAW\n";
    let ops = ops(text, &opts());
    let copy = copy_of(&ops[1]);
    assert_eq!(
        copy.sources,
        [
            CopySource::Inline {
                name: s("EOF"),
                content: s("hello world \"q\"\n")
            },
            CopySource::Inline {
                name: s("RAW"),
                content: s("raw $NAME\n")
            }
        ]
    );
    assert_eq!(copy.dest, "/etc/");
    assert_eq!(copy.created_by, "COPY <<EOF <<RAW /etc/");
}

#[test]
fn copy_and_add_flags_expand() {
    let text = "FROM scratch\nARG UID=1000 MODE=0640 DIR=/opt/app\nWORKDIR /w\n\
                COPY --chown=$UID:$UID --chmod=$MODE --exclude=*.md --parents src/ ${DIR}/\n\
                ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/x.tgz .\n\
                COPY a b ./\n";
    let ops = ops(text, &opts());
    let copy = copy_of(&ops[2]);
    assert_eq!(copy.chown.as_deref(), Some("1000:1000"));
    assert_eq!(copy.chmod, Some(Chmod::Octal(0o640)));
    assert_eq!(copy.excludes, [s("*.md")]);
    assert_eq!(copy.kind, CopyKind::Copy { parents: true });
    assert_eq!(copy.dest, "/opt/app/");
    // the history's text: flags BuildKit names, values expanded, the
    // destination as written
    assert_eq!(
        copy.created_by,
        "COPY --parents --chown=1000:1000 --chmod=0640 src/ /opt/app/"
    );
    assert_eq!(
        copy_of(&ops[3]).created_by,
        "ADD https://example.com/x.tgz ."
    );
    assert_eq!(copy_of(&ops[4]).created_by, "COPY a b ./");
    let add = copy_of(&ops[3]);
    assert_eq!(
        add.sources,
        [CopySource::Url(s("https://example.com/x.tgz"))]
    );
    assert_eq!(add.dest, "/w/");
    assert!(matches!(
        &add.kind,
        CopyKind::Add {
            checksum: Some(_),
            unpack: None
        }
    ));
    assert_eq!(copy_of(&ops[4]).dest, "/w/");
    let err = |t: &str| error(&format!("FROM scratch\n{t}\n"), &opts());
    assert_eq!(
        err("COPY --chmod=999 a /b"),
        "Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"
    );
    assert_eq!(
        err("COPY https://x/y /b"),
        "Dockerfile:2: source can't be a URL for COPY"
    );
    assert_eq!(
        err("ADD --checksum=sha256:abc a /b"),
        "Dockerfile:2: checksum requires HTTP(S) or Git sources"
    );
    assert_eq!(
        err("COPY --exclude=[ a /b"),
        "Dockerfile:2: bad --exclude pattern \"[\": syntax error in pattern"
    );
}

#[test]
fn onbuild_of_a_parent_stage_runs_in_the_child() {
    let text = "FROM scratch AS base\nONBUILD COPY . /src\nONBUILD RUN make\nFROM base\nRUN ls\n";
    let p = plan_ok(text, &opts());
    assert_eq!(p.stages[0].steps[0].op, Op::OnBuild(s("COPY . /src")));
    let child = &p.stages[1].steps;
    assert_eq!(child.len(), 3);
    assert!(child[0].on_build && child[1].on_build && !child[2].on_build);
    assert_eq!(child[0].line, 4);
    assert_eq!(copy_of(&child[0].op).dest, "/src");
    assert_eq!(child[1].source, "RUN make");
}

#[test]
fn onbuild_of_a_base_image() {
    let mut o = opts();
    o.images.insert(
        s("docker.io/library/app:onbuild"),
        BaseImage {
            on_build: vec![s("COPY --from=assets /a /a"), s("RUN echo $X")],
            ..BaseImage::default()
        },
    );
    let text = "FROM scratch AS assets\nFROM scratch AS unused\nFROM app:onbuild\nRUN done\n";
    let p = plan_ok(text, &o);
    assert_eq!(
        p.order,
        [vec![0], vec![2]],
        "the trigger's --from brings the stage in"
    );
    let steps = &p.stages[2].steps;
    assert_eq!(steps.len(), 3);
    assert_eq!(copy_of(&steps[0].op).origin, Origin::Stage(0));
    assert!(steps[1].on_build);
    o.images.insert(
        s("docker.io/library/app:onbuild"),
        BaseImage {
            on_build: vec![s("FOO bar")],
            ..BaseImage::default()
        },
    );
    assert_eq!(
        error(text, &o),
        "Dockerfile:3: onbuild trigger \"FOO bar\": unknown instruction: FOO"
    );
}

#[test]
fn target_and_stage_name_errors() {
    let mut o = opts();
    o.target = Some(s("nope"));
    assert_eq!(
        error("FROM scratch AS a\n", &o),
        "Dockerfile:1: target stage \"nope\" could not be found"
    );
    assert_eq!(
        error("FROM scratch AS a\nFROM scratch AS A\n", &opts()),
        "Dockerfile:2: duplicate stage name \"a\", first defined on line 1"
    );
    assert_eq!(
        error("ARG A=1\n", &opts()),
        "Dockerfile:1: dockerfile contains no stages to build"
    );
}

#[test]
fn from_a_stage_name_needs_an_earlier_stage() {
    // a FROM naming a later stage names an image, as in BuildKit
    let p = plan_ok("FROM later AS first\nFROM scratch AS later\n", &{
        let mut o = opts();
        o.target = Some(s("first"));
        o
    });
    assert_eq!(
        p.stages[0].base,
        Base::Image(s("docker.io/library/later:latest"))
    );
}

#[test]
fn backtick_escape_applies_to_expansion() {
    let ops = ops(
        "# escape=`\nFROM scratch\nENV A=1 B=`$A C=c:\\dir\n",
        &opts(),
    );
    assert_eq!(
        ops[0],
        Op::Env(env(&[("A", "1"), ("B", "$A"), ("C", "c:\\dir")]))
    );
}

#[test]
fn expose_expands_and_splits() {
    let ops = ops(
        "FROM scratch\nENV PORTS=\"80 443/tcp\"\nEXPOSE $PORTS 8000-8001/udp\n",
        &opts(),
    );
    let names: Vec<String> = match &ops[1] {
        Op::Expose(ports) => ports.iter().map(Port::to_string).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(names, ["80/tcp", "443/tcp", "8000/udp", "8001/udp"]);
    assert_eq!(
        error("FROM scratch\nEXPOSE 80/http\n", &opts()),
        "Dockerfile:2: invalid port: \"80/http\": invalid proto: http"
    );
}

#[test]
fn build_args_from_the_command_line() {
    let args = build_args(&[s("A=1"), s("B")], |k| (k == "B").then(|| s("from env")));
    let p = plan_ok(
        "FROM scratch\nARG A B\nENV X=$A Y=$B\n",
        &PlanOptions {
            build_args: args,
            ..opts()
        },
    );
    assert_eq!(
        p.stages[0].steps[1].op,
        Op::Env(env(&[("X", "1"), ("Y", "from env")]))
    );
}
