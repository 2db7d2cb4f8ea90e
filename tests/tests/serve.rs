//! `rbox serve`: the Docker Engine API on a unix socket, driven by real
//! Docker clients, Debian's 20.10 (/usr/bin/docker) and the 28.x one
//! (/usr/local/bin/docker), with `DOCKER_HOST=unix://SOCK`, and by raw
//! HTTP for what no client sends. Each test has its own store ([`Rbox`],
//! a busybox image `bb` imported, no network needed) and its own server
//! ([`Serve`]), stopped at the end (also on failure) with its socket
//! removed; the containers go with the store and nothing may be left.

use std::time::{Duration, Instant};

use rrun_tests::*;

/// The docker client's name, for container names (`web-20`, `web-28`).
fn tag(client: &str) -> &'static str {
    if client.starts_with("/usr/bin") {
        "20"
    } else {
        "28"
    }
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

/// `docker version` and `docker info` through both clients: they
/// negotiate API 1.41; `/_ping` has Docker's headers.
#[test]
#[ignore = "needs root"]
fn clients_negotiate_and_see_the_engine() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let srv = Serve::start(&rb, &[]);
    let m = std::fs::metadata(&srv.socket).unwrap();
    assert_eq!(
        (m.permissions().mode() & 0o777, m.uid(), m.gid()),
        (0o660, 0, 0),
        "root:root 0660 by default"
    );
    let ping = srv.request("HEAD", "/_ping", None);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.header("api-version"), Some("1.41"));
    assert_eq!(ping.header("ostype"), Some("linux"));
    assert_eq!(ping.header("docker-experimental"), Some("false"));
    assert!(ping.header("builder-version").is_some());
    assert_eq!(srv.request("GET", "/_ping", None).text(), "OK");
    for client in DOCKER_CLIENTS {
        let v = srv.docker_ok(client, &["version", "--format", "{{json .Server}}"]);
        let v: Value = serde_json::from_str(&v).unwrap();
        assert_eq!(v["ApiVersion"], "1.41", "{client}: {v}");
        assert_eq!(v["MinAPIVersion"], "1.12", "{client}: {v}");
        assert_eq!(v["Os"], "linux");
        // the plain output too (the client's own template over the answer)
        let plain = srv.docker_ok(client, &["version"]);
        assert!(
            plain.contains("1.41 (minimum version 1.12)"),
            "{client}: {plain}"
        );
        let info = srv.docker_ok(
            client,
            &[
                "info",
                "--format",
                "{{.ServerVersion}} {{.Driver}} {{.Images}} {{.Containers}} {{.DockerRootDir}}",
            ],
        );
        assert_eq!(
            info.trim(),
            format!("0.1.0 overlay 1 0 {}", rb.root().display()),
            "{client}"
        );
        let o = srv.docker(client, &["info"]);
        assert_ok(&o, &format!("{client} info"));
        assert!(
            stdout(&o).contains("Server Version: 0.1.0"),
            "{client}: {}",
            stdout(&o)
        );
    }
}

/// The container verbs through both clients, on the same store as rbox's
/// own CLI: run -d, ps and ps -a (the same containers as `rbox ps`),
/// inspect, logs (stdout and stderr apart, -t, --tail), top, stop, start,
/// kill, wait, rm -f; nothing is left.
#[test]
#[ignore = "needs root"]
fn container_verbs_through_both_clients() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let srv = Serve::start(&rb, &[]);
    for client in DOCKER_CLIENTS {
        let name = format!("web-{}", tag(client));
        let id = srv
            .docker_ok(
                client,
                &[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    "-e",
                    "GREETING=hi",
                    "-l",
                    "tier=web",
                    "bb",
                    "sh",
                    "-c",
                    "echo out-line $GREETING; echo err-line >&2; exec sleep 300",
                ],
            )
            .trim()
            .to_string();
        assert_eq!(id.len(), 64, "{client}: {id}");
        // docker ps and rbox ps list the same containers the same way
        let f = "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Label \"tier\"}}";
        let docker_ps = srv.docker_ok(client, &["ps", "--no-trunc", "--format", f]);
        let rbox_ps = rb.ok(&["ps", "--no-trunc", "--format", f]);
        assert_eq!(sorted_lines(&docker_ps), sorted_lines(&rbox_ps), "{client}");
        assert!(
            docker_ps.contains(&format!("{id} {name} bb ")),
            "{client}: {docker_ps}"
        );
        assert!(docker_ps.contains(" running web"), "{client}: {docker_ps}");
        assert_eq!(
            sorted_lines(&srv.docker_ok(client, &["ps", "-a", "-q", "--no-trunc"])),
            sorted_lines(&rb.ok(&["ps", "-a", "-q", "--no-trunc"])),
            "{client}"
        );
        let inspect = srv.docker_ok(
            client,
            &[
                "inspect",
                "--format",
                "{{.Id}} {{.Name}} {{.State.Status}} {{.Config.Image}} {{.HostConfig.NetworkMode}}",
                &name,
            ],
        );
        assert_eq!(
            inspect.trim(),
            format!("{id} /{name} running bb none"),
            "{client}"
        );
        // logs: the two streams apart (Docker's framing), with times, the tail
        let (out, err) = logs_once_written(&srv, client, &name, "out-line hi", "err-line");
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("out-line hi\n", "err-line\n"),
            "{client}"
        );
        let stamped = stdout(&srv.docker(client, &["logs", "-t", &name]));
        let (time, line) = stamped.trim_end().split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{client}: {stamped}"
        );
        assert_eq!(line, "out-line hi");
        let tail = srv.docker(client, &["logs", "--tail", "1", &name]);
        assert_eq!(
            stdout(&tail).lines().count() + stderr(&tail).lines().count(),
            1,
            "{client}"
        );
        let top = srv.docker_ok(client, &["top", &name]);
        assert!(top.contains("sleep 300"), "{client}: {top}");
        // a running container: rm without -f is a conflict, start has
        // nothing to do (304, which clients take as done)
        let o = srv.docker(client, &["rm", &name]);
        assert_fails_naming(&o, "docker rm of a running container", "is running");
        srv.docker_ok(client, &["start", &name]);
        let future = srv.docker(client, &["logs", "--since", "2100-01-01T00:00:00Z", &name]);
        assert_eq!(
            (stdout(&future), stderr(&future)),
            (String::new(), String::new())
        );
        // a followed log ends with the container
        let mut follow = srv
            .docker_cmd(client, &["logs", "-f", &name])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // stop (TERM is ignored by a shell as PID 1: KILL after 1 s), start, kill, wait
        srv.docker_ok(client, &["stop", "-t", "1", &name]);
        wait_for("docker logs -f to end", Duration::from_secs(10), || {
            follow.try_wait().unwrap().is_some()
        });
        let followed = follow.wait_with_output().unwrap();
        assert!(followed.status.success(), "{client}: logs -f");
        assert_eq!(stdout(&followed), "out-line hi\n", "{client}: logs -f");
        assert_eq!(
            rb.inspect_format("{{.State.Status}}", &name),
            "exited",
            "{client}: rbox sees the stop"
        );
        // stopped already: 304
        srv.docker_ok(client, &["stop", &name]);
        srv.docker_ok(client, &["start", &name]);
        assert_eq!(rb.inspect_format("{{.State.Status}}", &name), "running");
        srv.docker_ok(client, &["kill", &name]);
        assert_eq!(
            srv.docker_ok(client, &["wait", &name]).trim(),
            "137",
            "{client}"
        );
        // a removed container is a 404 with Docker's words
        srv.docker_ok(client, &["rm", "-f", &name]);
        let gone = srv.docker(client, &["logs", &name]);
        assert_fails_naming(
            &gone,
            "docker logs of a removed container",
            &format!("No such container: {name}"),
        );
    }
    rb.assert_nothing_left("after docker rm -f");
}

/// `docker wait` blocks in one request while others are answered: every
/// request runs on its own.
#[test]
#[ignore = "needs root"]
fn requests_are_served_concurrently() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let srv = Serve::start(&rb, &[]);
    let client = DOCKER_CLIENTS[0];
    srv.docker_ok(
        client,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "slow",
            "bb",
            "sleep",
            "300",
        ],
    );
    let mut wait = srv
        .docker_cmd(client, &["wait", "slow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        wait.try_wait().unwrap().is_none(),
        "docker wait returned early"
    );
    let begin = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            srv.request("GET", "/v1.41/containers/json", None).status,
            200
        );
        srv.docker_ok(client, &["ps"]);
    }
    assert!(
        begin.elapsed() < Duration::from_secs(10),
        "slow answers while a wait ran"
    );
    srv.docker_ok(client, &["kill", "slow"]);
    let out = wait.wait_with_output().unwrap();
    assert_eq!(stdout(&out).trim(), "137");
    srv.docker_ok(client, &["rm", "slow"]);
    rb.assert_nothing_left("after docker rm");
}

/// images, image inspect, history, tag and rmi through both clients, on the
/// same store as `rbox images`.
#[test]
#[ignore = "needs root"]
fn image_verbs_through_both_clients() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let srv = Serve::start(&rb, &[]);
    let id = rb.inspect_format("{{.Id}}", "bb");
    let short = &id.trim_start_matches("sha256:")[..12];
    for client in DOCKER_CLIENTS {
        let images = srv.docker_ok(
            client,
            &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        );
        assert_eq!(images.trim(), format!("bb:latest {short}"), "{client}");
        let t = format!("bb:c{}", tag(client));
        srv.docker_ok(client, &["tag", "bb", &t]);
        assert!(rb
            .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains(&t));
        assert_eq!(
            srv.docker_ok(
                client,
                &["image", "inspect", "--format", "{{.Id}} {{.Os}}", &t]
            )
            .trim(),
            format!("{id} linux"),
            "{client}"
        );
        let history = srv.docker_ok(
            client,
            &["history", "--no-trunc", "--format", "{{.ID}}", "bb"],
        );
        assert_eq!(
            history.lines().next(),
            Some(id.as_str()),
            "{client}: {history}"
        );
        let rmi = srv.docker_ok(client, &["rmi", &t]);
        assert_eq!(rmi.trim(), format!("Untagged: {t}"), "{client}");
        assert!(!rb
            .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains(&t));
        let o = srv.docker(client, &["rmi", "nosuch:1"]);
        assert_fails_naming(&o, "docker rmi nosuch:1", "No such image");
    }
    // an image a container uses is a conflict
    srv.docker_ok(
        DOCKER_CLIENTS[1],
        &[
            "create",
            "--network",
            "none",
            "--name",
            "user",
            "bb",
            "true",
        ],
    );
    let o = srv.docker(DOCKER_CLIENTS[1], &["rmi", "bb"]);
    assert_fails_naming(&o, "docker rmi of a used image", "is used by container");
    srv.docker_ok(DOCKER_CLIENTS[1], &["rm", "user"]);
    assert_eq!(rb.ok(&["images", "-q"]).trim(), short);
}

/// Requests no client would send: a malformed body is 400 with a message
/// and the server goes on; an unknown path 404, an endpoint of a later
/// phase 501 naming it, a version too new 400; unknown fields are ignored,
/// fields rbox does not do are refused by name, a missing image is 404.
#[test]
#[ignore = "needs root"]
fn bad_requests_get_dockers_errors() {
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let srv = Serve::start(&rb, &[]);
    let r = srv.request("POST", "/v1.41/containers/create", Some(b"{\"Image\": "));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON"),
        "{}",
        r.text()
    );
    let r = srv.request("POST", "/v1.41/containers/create", Some(b"[1, 2]"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        srv.request("GET", "/_ping", None).status,
        200,
        "still serving"
    );
    let r = srv.request("GET", "/v1.41/nope", None);
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"message": "page not found"}))
    );
    let r = srv.request("POST", "/v1.41/containers/x/exec", Some(b"{}"));
    assert_eq!(r.status, 501);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("exec is not implemented"),
        "{}",
        r.text()
    );
    let r = srv.request("GET", "/v1.99/info", None);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("too new"), "{}", r.text());
    let r = srv.request("GET", "/v1.41/containers/nosuch/json", None);
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"message": "No such container: nosuch"}))
    );
    let r = srv.request(
        "POST",
        "/v1.41/containers/create?name=no-image",
        Some(br#"{"Image": "nosuch", "Cmd": ["true"]}"#),
    );
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"message": "No such image: nosuch"}))
    );
    let r = srv.request(
        "POST",
        "/v1.41/containers/create",
        Some(br#"{"Image": "bb", "HostConfig": {"PidMode": "host"}}"#),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("HostConfig.PidMode"), "{}", r.text());
    let r = srv.request(
        "POST",
        "/v1.41/containers/create?name=extra",
        Some(br#"{"Image": "bb", "Cmd": ["true"], "Bogus": 1, "HostConfig": {"NetworkMode": "none", "Also": []}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["Id"].as_str().unwrap().len(), 64);
    // the same name again: a conflict
    let r2 = srv.request(
        "POST",
        "/v1.41/containers/create?name=extra",
        Some(br#"{"Image": "bb", "HostConfig": {"NetworkMode": "none"}}"#),
    );
    assert_eq!(r2.status, 409, "{}", r2.text());
    assert_eq!(
        srv.request("DELETE", "/v1.41/containers/extra", None)
            .status,
        204
    );
    // a body over the cap
    let big = vec![b' '; 5 << 20];
    let r = srv.try_request("POST", "/v1.41/containers/create", Some(&big));
    if let Some(r) = r {
        assert_eq!(r.status, 400, "{}", r.text());
    }
    assert_eq!(
        srv.request("GET", "/_ping", None).status,
        200,
        "still serving"
    );
    // a client's own view of a refused field
    let o = srv.docker(
        DOCKER_CLIENTS[1],
        &["run", "-d", "--pid", "host", "bb", "true"],
    );
    assert_fails_naming(
        &o,
        "docker run --pid host",
        "HostConfig.PidMode is not supported",
    );
    rb.assert_nothing_left("after the bad requests");
}

/// The socket: 0660, root's group or --group's; a stale one is replaced,
/// a live one refused; --timeout ends an idle server (socket removed);
/// tcp:// is refused as not supported yet.
#[test]
#[ignore = "needs root"]
fn socket_group_timeout_and_refusals() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _serial = serial();
    let rb = Rbox::with_busybox();
    let o = rb.run(&["serve", "-H", "tcp://127.0.0.1:2375"]);
    assert_fails_naming(&o, "rbox serve -H tcp://", "not supported yet");
    let o = rb.run(&[
        "serve",
        "-H",
        &format!("unix://{}", rb.path("g.sock").display()),
        "--group",
        "no-such-group-x",
    ]);
    assert_fails_naming(&o, "rbox serve --group nosuch", "no such group");
    assert!(!rb.path("g.sock").exists());
    // a stale socket (its server gone) is replaced
    drop(std::os::unix::net::UnixListener::bind(rb.path("docker.sock")).unwrap());
    assert!(rb.path("docker.sock").exists());
    let mut srv = Serve::start(&rb, &["--group", "daemon", "--timeout", "2"]);
    let m = std::fs::metadata(&srv.socket).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        (m.uid(), m.gid()),
        (
            0,
            nix::unistd::Group::from_name("daemon")
                .unwrap()
                .unwrap()
                .gid
                .as_raw()
        )
    );
    // a second server on a live socket is refused
    let o = rb.run(&["serve", "-H", &format!("unix://{}", srv.socket.display())]);
    assert_fails_naming(&o, "a second rbox serve", "another server is listening");
    assert!(
        srv.socket.exists(),
        "the refused server left the live socket"
    );
    // idle for 2 s: the server ends by itself and removes its socket
    wait_for("the idle server to end", Duration::from_secs(10), || {
        srv.exited()
    });
    assert!(!srv.socket.exists());
}

/// `POST /images/create` through both clients: `docker pull` from a local
/// registry (Docker's progress lines, the image in rbox's store), `docker
/// run` of a missing image (the 404 of create, then the pull, then the
/// container), and a failed pull as the stream's last message.
#[test]
#[ignore = "needs root"]
fn pulls_through_both_clients() {
    let _serial = serial();
    let reg = Registry::start();
    // another store pushes the image to the registry
    let src = Rbox::with_busybox();
    for t in ["1", "2"] {
        let r = format!("{}/bb:{t}", reg.host());
        src.ok(&["tag", "bb", &r]);
        src.ok(&["push", &r]);
    }
    let rb = Rbox::new().for_containers();
    let srv = Serve::start(&rb, &[]);
    let one = format!("{}/bb:1", reg.host());
    let out = srv.docker_ok(DOCKER_CLIENTS[0], &["pull", &one]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {one}")),
        "{out}"
    );
    assert_eq!(
        rb.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .trim(),
        one
    );
    let out = srv.docker_ok(DOCKER_CLIENTS[1], &["pull", &one]);
    assert!(out.contains("Image is up to date"), "{out}");
    // run of an image the store lacks: create says 404, the client pulls
    let two = format!("{}/bb:2", reg.host());
    let o = srv.docker(
        DOCKER_CLIENTS[1],
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "pulled",
            &two,
            "sleep",
            "300",
        ],
    );
    assert_ok(&o, "docker run of a missing image");
    assert!(
        stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    assert_eq!(rb.inspect_format("{{.State.Status}}", "pulled"), "running");
    srv.docker_ok(DOCKER_CLIENTS[1], &["rm", "-f", "pulled"]);
    // a pull that fails is the stream's last message
    let r = srv.request(
        "POST",
        &format!("/v1.41/images/create?fromImage={}/nosuch&tag=1", reg.host()),
        None,
    );
    assert_eq!(r.status, 200);
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert!(
        last["error"].as_str().is_some_and(|e| e.contains("nosuch")),
        "{}",
        r.text()
    );
    for client in DOCKER_CLIENTS {
        let o = srv.docker(client, &["pull", &format!("{}/nosuch:1", reg.host())]);
        assert_fails_naming(&o, "docker pull of a missing image", "nosuch");
    }
    rb.assert_nothing_left("after the pulls");
}
