//! `Serve`: `rbox serve` on a socket in a test's store dir ([`Rbox`]), the
//! Docker clients pointed at it, and raw HTTP requests for what a client
//! never sends (bad bodies, unknown paths). Dropping it stops the server
//! (SIGTERM, then SIGKILL) and checks that its socket is gone.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{assert_ok, stdout, wait_for, Rbox};

/// Debian's docker.io client (20.10) and the preinstalled 28.x one.
pub const DOCKER_CLIENTS: [&str; 2] = ["/usr/bin/docker", "/usr/local/bin/docker"];

/// A running `rbox serve`.
pub struct Serve {
    child: Child,
    pub socket: PathBuf,
    /// its stderr (`--debug`: a line per request)
    pub log: PathBuf,
    /// DOCKER_CONFIG for the clients: empty, not the host's
    docker_config: PathBuf,
}

impl Serve {
    /// `rbox serve --debug -H unix://DIR/docker.sock` on `rb`'s store, with
    /// `extra` flags; returns once the socket answers `/_ping`.
    pub fn start(rb: &Rbox, extra: &[&str]) -> Serve {
        let socket = rb.path("docker.sock");
        let log = rb.path("serve.log");
        let docker_config = rb.path("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        let host = format!("unix://{}", socket.display());
        let mut args = vec!["serve", "--debug", "-H", &host];
        args.extend(extra);
        let child = rb
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serve {
            child,
            socket,
            log,
            docker_config,
        };
        let begin = Instant::now();
        while s.try_request("GET", "/_ping", None).is_none() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("rbox serve exited ({status}): {}", s.log_text());
            }
            assert!(
                begin.elapsed() < Duration::from_secs(10),
                "rbox serve did not answer: {}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the server process has exited (reaped if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `client ARGS` against this server.
    pub fn docker_cmd(&self, client: &str, args: &[&str]) -> Command {
        let mut c = Command::new(client);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, client: &str, args: &[&str]) -> Output {
        self.docker_cmd(client, args).output().unwrap()
    }

    /// [`Serve::docker`] that must succeed; its stdout.
    #[track_caller]
    pub fn docker_ok(&self, client: &str, args: &[&str]) -> String {
        let o = self.docker(client, args);
        assert_ok(
            &o,
            &format!(
                "{client} {} (server log:\n{})",
                args.join(" "),
                self.log_text()
            ),
        );
        stdout(&o)
    }

    /// One HTTP/1.1 request on a connection of its own: the status, the
    /// headers (lower-case names) and the body (de-chunked). None when the
    /// socket does not answer.
    pub fn try_request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Option<Reply> {
        raw_request(&self.socket, method, path, body)
    }

    #[track_caller]
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer; log:\n{}", self.log_text()))
    }

    /// Stops the server (SIGTERM) and waits for it; false if it had to be
    /// killed.
    pub fn stop(&mut self) -> bool {
        if self.exited() {
            return true;
        }
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let begin = Instant::now();
        while begin.elapsed() < Duration::from_secs(15) {
            if self.exited() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.wait();
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let clean = self.stop();
        let left = self.socket.exists();
        // a killed server cannot remove its socket
        let _ = std::fs::remove_file(&self.socket);
        if !std::thread::panicking() {
            assert!(clean, "rbox serve did not end on SIGTERM");
            assert!(
                !left,
                "rbox serve left its socket {}",
                self.socket.display()
            );
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request (`Connection: close`) on the unix socket at `socket`.
pub fn raw_request(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> Option<Reply> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// Waits until `docker logs` of `name` (through `serve` with `client`)
/// has `stdout` and `stderr`; the two as read.
pub fn logs_once_written(
    serve: &Serve,
    client: &str,
    name: &str,
    want_out: &str,
    want_err: &str,
) -> (String, String) {
    let mut last = (String::new(), String::new());
    wait_for(
        &format!("docker logs {name}"),
        Duration::from_secs(10),
        || {
            let o = serve.docker(client, &["logs", name]);
            last = (stdout(&o), crate::stderr(&o));
            last.0.contains(want_out) && last.1.contains(want_err)
        },
    );
    last
}
