use std::time::Duration;

use super::*;

fn parse_ok(text: &str) -> Dockerfile {
    match parse(text, "Dockerfile") {
        Ok(df) => df,
        Err(e) => panic!("{e}"),
    }
}

/// The instructions of the only stage.
fn stage(text: &str) -> Vec<Instruction> {
    let df = parse_ok(&format!("FROM base\n{text}"));
    df.stages[0]
        .instructions
        .iter()
        .map(|i| i.value.clone())
        .collect()
}

fn one(text: &str) -> Instruction {
    let mut all = stage(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn error(text: &str) -> ParseError {
    parse(text, "Dockerfile").unwrap_err()
}

fn w(s: &str) -> Word {
    Word(s.to_string())
}

fn kv(k: &str, v: &str, legacy: bool) -> KeyValue {
    KeyValue {
        key: w(k),
        value: w(v),
        legacy,
    }
}

#[test]
fn tutorial_dockerfile() {
    let df = parse_ok(
        "ARG IMAGE_BASE\nARG IMAGE_TAG=latest\nFROM ${IMAGE_BASE}:${IMAGE_TAG}\n\
         COPY setup.sh /setup.sh\nRUN /setup.sh\nENV PATH=$PATH:/tmp\nEXPOSE 443\nEXPOSE 53/udp\n",
    );
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(
        df.meta_args[1].value,
        [ArgDecl {
            name: "IMAGE_TAG".into(),
            default: Some(w("latest"))
        }]
    );
    let st = &df.stages[0];
    assert_eq!(st.from.value.image, w("${IMAGE_BASE}:${IMAGE_TAG}"));
    assert_eq!(st.from.line, 3);
    let values: Vec<_> = st.instructions.iter().map(|i| i.value.clone()).collect();
    assert_eq!(
        values,
        [
            Instruction::Copy(Copy {
                from: None,
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                excludes: vec![],
                sources: vec![Source::Path(w("setup.sh"))],
                dest: w("/setup.sh"),
            }),
            Instruction::Run(Run {
                command: CommandLine::Shell("/setup.sh".into()),
                heredocs: vec![],
                mounts: vec![],
                network: Network::Default,
                security: Security::Sandbox,
            }),
            Instruction::Env(vec![kv("PATH", "$PATH:/tmp", false)]),
            Instruction::Expose(vec![w("443")]),
            Instruction::Expose(vec![w("53/udp")]),
        ]
    );
    assert_eq!(st.instructions[2].source, "ENV PATH=$PATH:/tmp");
    assert_eq!(st.instructions[4].line, 8);
}

#[test]
fn from_forms() {
    let df = parse_ok(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM scratch\nfrom build as final\n",
    );
    let froms: Vec<_> = df.stages.iter().map(|s| s.from.value.clone()).collect();
    assert_eq!(
        froms,
        [
            From {
                image: w("golang:1.22"),
                platform: Some(w("$BUILDPLATFORM")),
                name: Some("build".into())
            },
            From {
                image: w("scratch"),
                platform: None,
                name: None
            },
            From {
                image: w("build"),
                platform: None,
                name: Some("final".into())
            },
        ]
    );
}

#[test]
fn from_errors() {
    assert_eq!(error("FROM\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(error("FROM a b\n").kind, ParseErrorKind::FromArguments);
    assert_eq!(
        error("FROM a AS 1st\n").kind,
        ParseErrorKind::StageName("1st".into())
    );
    assert_eq!(
        error("FROM a AS b$c\n").kind,
        ParseErrorKind::StageName("b$c".into())
    );
    assert_eq!(
        error("FROM --plat=x a\n").to_string(),
        "Dockerfile:1: unknown flag: --plat"
    );
}

#[test]
fn first_instruction_must_be_from_or_arg() {
    let err = error("# comment\nARG X\nRUN echo\nFROM a\n");
    assert_eq!(
        err.to_string(),
        "Dockerfile:3: no build stage in current context"
    );
}

#[test]
fn empty_and_instructionless_files() {
    assert_eq!(
        error("").to_string(),
        "Dockerfile:1: the Dockerfile cannot be empty"
    );
    assert_eq!(
        error("# only\n\n# comments\n").to_string(),
        "Dockerfile:3: file with no instructions"
    );
}

#[test]
fn unknown_instruction_names_file_and_line() {
    let err = parse("FROM a\n\nRUN true\nFOO bar\n", "app/Dockerfile.dev").unwrap_err();
    assert_eq!(
        err.to_string(),
        "app/Dockerfile.dev:4: unknown instruction: FOO"
    );
}

#[test]
fn instructions_are_case_insensitive() {
    assert_eq!(one("workdir /app"), Instruction::Workdir(w("/app")));
    assert_eq!(one("Run echo"), stage("RUN echo")[0]);
}

#[test]
fn arg_several_per_line() {
    assert_eq!(
        one(r#"ARG A B=2 C="x y" D="#),
        Instruction::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some(w("2"))
            },
            ArgDecl {
                name: "C".into(),
                default: Some(w("\"x y\""))
            },
            ArgDecl {
                name: "D".into(),
                default: Some(w(""))
            },
        ])
    );
    assert_eq!(
        error("FROM a\nARG =x\n").kind,
        ParseErrorKind::BlankName("ARG")
    );
    assert_eq!(
        error("FROM a\nARG\n").kind,
        ParseErrorKind::AtLeastOneArgument("ARG")
    );
}

#[test]
fn env_both_syntaxes() {
    assert_eq!(
        one("ENV A hello world"),
        Instruction::Env(vec![kv("A", "hello world", true)])
    );
    assert_eq!(
        one(r#"ENV K=V K2="a b" K3=a\ b"#),
        Instruction::Env(vec![
            kv("K", "V", false),
            kv("K2", "\"a b\"", false),
            kv("K3", "a\\ b", false)
        ])
    );
    assert_eq!(
        error("FROM a\nENV A\n").kind,
        ParseErrorKind::TwoArguments("ENV")
    );
    assert_eq!(
        error("FROM a\nENV A=1 B\n").to_string(),
        "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
    assert_eq!(
        error("FROM a\nENV =1\n").kind,
        ParseErrorKind::BlankName("ENV")
    );
    assert_eq!(
        error("FROM a\nENV\n").kind,
        ParseErrorKind::AtLeastOneArgument("ENV")
    );
}

#[test]
fn env_value_over_continuation_lines() {
    // BuildKit's parser/testfiles/env
    assert_eq!(
        one("ENV   abc=def   ghi=jkl \\\n    mno=\"pqr stu\""),
        Instruction::Env(vec![
            kv("abc", "def", false),
            kv("ghi", "jkl", false),
            kv("mno", "\"pqr stu\"", false)
        ])
    );
}

#[test]
fn label_pairs_and_quotes() {
    assert_eq!(
        one(r#"LABEL "com.example.vendor"="ACME Inc" version=1.0 description='a "b"'"#),
        Instruction::Label(vec![
            kv("\"com.example.vendor\"", "\"ACME Inc\"", false),
            kv("version", "1.0", false),
            kv("description", "'a \"b\"'", false),
        ])
    );
    assert_eq!(
        one("LABEL maintainer foo@bar.com"),
        Instruction::Label(vec![kv("maintainer", "foo@bar.com", true)])
    );
}

#[test]
fn run_shell_and_exec_forms() {
    let cmd = |i: Instruction| match i {
        Instruction::Run(r) => r.command,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        cmd(one("RUN echo $HOME && ls")),
        CommandLine::Shell("echo $HOME && ls".into())
    );
    assert_eq!(
        cmd(one(r#"RUN ["sh", "-c", "echo $HOME"]"#)),
        CommandLine::Exec(vec!["sh".into(), "-c".into(), "echo $HOME".into()])
    );
    // not valid JSON: the shell form, brackets and all
    assert_eq!(
        cmd(one("RUN [\"a\" \"b\"]")),
        CommandLine::Shell("[\"a\" \"b\"]".into())
    );
    assert_eq!(
        error("FROM a\nRUN [\"a\", 1]\n").kind,
        ParseErrorKind::NotStringArray
    );
}

#[test]
fn run_flags() {
    let Instruction::Run(run) =
        one("RUN --mount=type=cache,target=/root/.cache --network=none --security=insecure make")
    else {
        panic!("not a RUN")
    };
    assert_eq!(run.network, Network::None);
    assert_eq!(run.security, Security::Insecure);
    assert_eq!(run.mounts.len(), 1);
    assert_eq!(run.mounts[0].fields[0].key, MountKey::Type);
    assert_eq!(run.command, CommandLine::Shell("make".into()));
    let err = |t: &str| error(&format!("FROM a\n{t}\n")).to_string();
    assert_eq!(
        err("RUN --network=bridge x"),
        "Dockerfile:2: invalid network mode \"bridge\""
    );
    assert_eq!(
        err("RUN --security=x x"),
        "Dockerfile:2: security \"x\" is not valid"
    );
    assert_eq!(
        err("RUN --mount=target x"),
        "Dockerfile:2: invalid field 'target' must be a key=value pair"
    );
    assert_eq!(
        err("RUN --device=x x"),
        "Dockerfile:2: RUN --device is not supported by rbox build"
    );
    assert_eq!(
        err("RUN --network=host --network=none x"),
        "Dockerfile:2: duplicate flag specified: --network"
    );
}

#[test]
fn run_heredocs() {
    let Instruction::Run(run) = one("RUN <<EOF\napt-get update\napt-get install -y vim\nEOF")
    else {
        panic!("not a RUN")
    };
    assert_eq!(run.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(
        run.heredocs[0].content,
        "apt-get update\napt-get install -y vim\n"
    );
    assert!(run.heredocs[0].expand);
    let Instruction::Run(run) = one("RUN python3 <<'PY' > /out\nprint('$HOME')\nPY") else {
        panic!("not a RUN")
    };
    assert!(!run.heredocs[0].expand);
    assert_eq!(
        run.command,
        CommandLine::Shell("python3 <<'PY' > /out".into())
    );
}

#[test]
fn copy_flags_sources_and_json() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=app:app --chmod=0755 --link --exclude=*.md --exclude=.git a b/ /dst/")
    else {
        panic!("not a COPY")
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown, Some(w("app:app")));
    assert_eq!(c.chmod, Some(w("0755")));
    assert!(c.link);
    assert_eq!(c.excludes, ["*.md", ".git"]);
    assert_eq!(c.sources, [Source::Path(w("a")), Source::Path(w("b/"))]);
    assert_eq!(c.dest, w("/dst/"));
    let Instruction::Copy(c) = one(r#"COPY ["a file", "/dst dir/"]"#) else {
        panic!("not a COPY")
    };
    assert_eq!(c.sources, [Source::Path(w("a file"))]);
    assert_eq!(c.dest, w("/dst dir/"));
}

#[test]
fn copy_heredoc_sources() {
    let Instruction::Copy(c) =
        one("COPY <<EOF <<-\"RAW\" /etc/\nhello $USER\nEOF\n\tkeep $x\n\tRAW")
    else {
        panic!("not a COPY")
    };
    let [Source::Heredoc(a), Source::Heredoc(b)] = c.sources.as_slice() else {
        panic!("{:?}", c.sources)
    };
    assert_eq!(
        (a.name.as_str(), a.content.as_str(), a.expand),
        ("EOF", "hello $USER\n", true)
    );
    assert_eq!(
        (b.name.as_str(), b.body().as_str(), b.expand),
        ("RAW", "keep $x\n", false)
    );
    assert_eq!(c.dest, w("/etc/"));
}

#[test]
fn copy_errors() {
    let err = |t: &str| error(&format!("FROM a\n{t}\n")).to_string();
    assert_eq!(
        err("COPY onlyone"),
        "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        err("COPY a <<EOF\nx\nEOF"),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
    assert_eq!(
        err("COPY --checksum=sha256:x a b"),
        "Dockerfile:2: unknown flag: --checksum"
    );
    assert_eq!(
        err("COPY --link=maybe a b"),
        "Dockerfile:2: expecting boolean value for flag --link, not: maybe"
    );
}

#[test]
fn add_flags() {
    let Instruction::Add(a) =
        one("ADD --checksum=sha256:abc --unpack=false --chown=1:2 https://example.com/x.tgz /x")
    else {
        panic!("not an ADD")
    };
    assert_eq!(a.checksum, Some(w("sha256:abc")));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(a.chown, Some(w("1:2")));
    assert_eq!(a.sources, [Source::Path(w("https://example.com/x.tgz"))]);
    assert_eq!(
        error("FROM a\nADD --keep-git-dir=true https://github.com/x/y.git /y\n").kind,
        ParseErrorKind::KeepGitDir
    );
    assert!(matches!(
        one("ADD --keep-git-dir=false a b"),
        Instruction::Add(_)
    ));
}

#[test]
fn single_argument_instructions() {
    assert_eq!(one("WORKDIR /my dir"), Instruction::Workdir(w("/my dir")));
    assert_eq!(one("USER app:app"), Instruction::User(w("app:app")));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Instruction::StopSignal(w("SIGTERM"))
    );
    assert_eq!(
        one("MAINTAINER Jane <j@x.org>"),
        Instruction::Maintainer("Jane <j@x.org>".into())
    );
    assert_eq!(
        error("FROM a\nUSER\n").kind,
        ParseErrorKind::ExactlyOneArgument("USER")
    );
    assert_eq!(
        error("FROM a\nWORKDIR\n").kind,
        ParseErrorKind::ExactlyOneArgument("WORKDIR")
    );
}

#[test]
fn expose_sorted_as_buildkit() {
    assert_eq!(
        one("EXPOSE 8080 443 53/udp"),
        Instruction::Expose(vec![w("443"), w("53/udp"), w("8080")])
    );
    assert_eq!(
        error("FROM a\nEXPOSE\n").kind,
        ParseErrorKind::AtLeastOneArgument("EXPOSE")
    );
}

#[test]
fn volume_json_or_words() {
    assert_eq!(
        one(r#"VOLUME ["/data", "/var/log"]"#),
        Instruction::Volume(vec![w("/data"), w("/var/log")])
    );
    assert_eq!(
        one("VOLUME /data /var/log"),
        Instruction::Volume(vec![w("/data"), w("/var/log")])
    );
    assert_eq!(
        error("FROM a\nVOLUME [\"/a\", \" \"]\n").kind,
        ParseErrorKind::EmptyVolume
    );
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(
        one("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
        Instruction::Cmd(CommandLine::Exec(vec![
            "nginx".into(),
            "-g".into(),
            "daemon off;".into()
        ]))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Instruction::Entrypoint(CommandLine::Shell("exec top -b".into()))
    );
    assert_eq!(
        one("ENTRYPOINT []"),
        Instruction::Entrypoint(CommandLine::Exec(vec![]))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"),
        Instruction::Shell(vec![
            "/bin/bash".into(),
            "-o".into(),
            "pipefail".into(),
            "-c".into()
        ])
    );
    assert_eq!(
        error("FROM a\nSHELL /bin/bash -c\n").kind,
        ParseErrorKind::NotJson("SHELL")
    );
    assert_eq!(
        error("FROM a\nSHELL []\n").kind,
        ParseErrorKind::AtLeastOneArgument("SHELL")
    );
    assert_eq!(
        error("FROM a\nCMD --x y\n").to_string(),
        "Dockerfile:2: unknown flag: --x"
    );
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(h) =
        one("HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1")
    else {
        panic!("not a HEALTHCHECK")
    };
    assert_eq!(
        h.test(),
        ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
    );
    let Healthcheck::Check(c) = h else {
        panic!("NONE")
    };
    assert_eq!(
        (
            c.interval,
            c.timeout,
            c.start_period,
            c.start_interval,
            c.retries
        ),
        (
            Duration::from_secs(30),
            Duration::from_secs(3),
            Duration::from_secs(60),
            Duration::from_secs(2),
            3
        )
    );
    let Instruction::Healthcheck(h) = one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]") else {
        panic!("not a HEALTHCHECK")
    };
    assert_eq!(h.test(), ["CMD", "/bin/check", "-q"]);
    let err = |t: &str| error(&format!("FROM a\n{t}\n")).kind;
    assert_eq!(
        err("HEALTHCHECK NONE x"),
        ParseErrorKind::HealthcheckNoneArguments
    );
    assert_eq!(
        err("HEALTHCHECK RUN x"),
        ParseErrorKind::HealthcheckType("RUN".into())
    );
    assert_eq!(err("HEALTHCHECK CMD"), ParseErrorKind::HealthcheckCommand);
    assert_eq!(
        err("HEALTHCHECK"),
        ParseErrorKind::AtLeastOneArgument("HEALTHCHECK")
    );
    assert_eq!(
        err("HEALTHCHECK --retries=-2 CMD x"),
        ParseErrorKind::NegativeRetries(-2)
    );
}

#[test]
fn onbuild_wraps_an_instruction() {
    let Instruction::OnBuild(ob) = one("ONBUILD COPY . /app/src") else {
        panic!("not ONBUILD")
    };
    assert_eq!(ob.expression, "COPY . /app/src");
    assert!(matches!(*ob.trigger, Instruction::Copy(_)));
    let Instruction::OnBuild(ob) = one("onbuild RUN <<EOF\nmake\nEOF") else {
        panic!("not ONBUILD")
    };
    assert_eq!(ob.expression, "RUN <<EOF\nmake\nEOF");
    let err = |t: &str| error(&format!("FROM a\n{t}\n")).to_string();
    assert_eq!(
        err("ONBUILD ONBUILD RUN x"),
        "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("ONBUILD FROM x"),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("ONBUILD maintainer x"),
        "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("ONBUILD"),
        "Dockerfile:2: ONBUILD requires at least one argument"
    );
}

#[test]
fn escapes_as_buildkit_keeps_them() {
    // BuildKit's parser/testfiles/escapes: the parser keeps escapes; the
    // planner's expansion (not in RUN) removes them
    let all = stage(
        "LABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\\"\n\nRUN apt-get \\update && \\\n  apt-get \\\"install znc -y\nADD \\conf\\\\\" /.znc\n\nRUN foo \\\n\nbar \\\n\nbaz\n\nCMD [ \"\\/usr\\\\\\\"/bin/znc\", \"-f\", \"-r\" ]",
    );
    assert_eq!(
        all[0],
        Instruction::Label(vec![kv(
            "maintainer",
            "Erik \\\\Hollensbe <erik@hollensbe.org>\\\"",
            true
        )])
    );
    assert_eq!(
        all[1],
        stage("RUN apt-get \\update &&   apt-get \\\"install znc -y")[0],
    );
    let Instruction::Add(a) = &all[2] else {
        panic!("not ADD")
    };
    assert_eq!(a.sources, [Source::Path(w("\\conf\\\\\""))]);
    assert_eq!(all[3], stage("RUN foo bar baz")[0]);
    assert_eq!(
        all[4],
        Instruction::Cmd(CommandLine::Exec(vec![
            "/usr\\\"/bin/znc".into(),
            "-f".into(),
            "-r".into()
        ]))
    );
}

#[test]
fn directives_recorded() {
    let df = parse_ok("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN echo `\n  done\n");
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages[0].instructions[0].source, "RUN echo   done");
}

#[test]
fn empty_continuation_warning_kept() {
    let df = parse_ok("FROM a\nRUN a \\\n\n b\n");
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.warnings[0].line, 4);
}
