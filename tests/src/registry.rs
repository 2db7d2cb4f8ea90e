//! `Registry`: Debian's docker-registry on a free port of an address,
//! storage in a temp dir, with no auth, basic auth (`tester:secret`) or a
//! token server's; skopeo pushes OCI layouts to it. Killed on drop.

use std::path::Path;
use std::process::{Command, Stdio};

/// htpasswd line for user `tester`, password `secret` (bcrypt).
const HTPASSWD: &str = "tester:$2b$12$cP6oQ95Y3dISFX3U8fPoWuR1idPCkPtipXx2klV82V25UODYCxFGm\n";

/// What the registry asks of its clients.
pub enum RegistryAuth<'a> {
    None,
    /// `tester:secret` (htpasswd)
    Basic,
    /// tokens of a token server: its port (realm `/token`), the bundle of
    /// its signing certificate, and the names it signs with
    Token {
        port: u16,
        cert: &'a Path,
        service: &'a str,
        issuer: &'a str,
    },
}

/// A `docker-registry` with a free port and temp storage, killed on drop.
pub struct Registry {
    child: std::process::Child,
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// what skopeo pushes with
    creds: Option<&'static str>,
}

impl Registry {
    /// On 127.0.0.1, no auth.
    pub fn start() -> Registry {
        Self::start_with_auth(false)
    }

    /// With `basic_auth`, the registry wants `tester:secret` (htpasswd).
    pub fn start_with_auth(basic_auth: bool) -> Registry {
        let auth = if basic_auth {
            RegistryAuth::Basic
        } else {
            RegistryAuth::None
        };
        Self::start_on("127.0.0.1", auth, "")
    }

    /// A registry listening on `ip`, `extra` appended to its config.
    pub fn start_on(ip: &str, auth: RegistryAuth<'_>, extra: &str) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("rbox-registry")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {ip}:{port}\n",
            dir.path().join("data").display()
        );
        let creds = match auth {
            RegistryAuth::None => None,
            RegistryAuth::Basic => {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, HTPASSWD).unwrap();
                yml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: rbox-test\n    path: {}\n",
                    htpasswd.display()
                ));
                Some("tester:secret")
            }
            RegistryAuth::Token {
                port,
                cert,
                service,
                issuer,
            } => {
                yml.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    cert.display()
                ));
                Some("tester:secret")
            }
        };
        yml.push_str(extra);
        std::fs::write(&config, yml).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is missing: make deps");
        let r = Registry {
            child,
            ip: ip.to_string(),
            port,
            dir,
            creds,
        };
        crate::wait_for(
            "the registry to listen",
            std::time::Duration::from_secs(10),
            || std::net::TcpStream::connect((ip, port)).is_ok(),
        );
        r
    }

    /// `IP:PORT`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Copy `layout:tag` (an OCI layout) to `repo_tag` on this registry.
    pub fn push(&self, layout: &Path, tag: &str, repo_tag: &str, all: bool) {
        self.push_as(layout, tag, repo_tag, all, None)
    }

    /// `push`, converting the manifest (`v2s2`: Docker schema2) when asked.
    pub fn push_as(
        &self,
        layout: &Path,
        tag: &str,
        repo_tag: &str,
        all: bool,
        format: Option<&str>,
    ) {
        let mut c = Command::new("skopeo");
        c.args(["--insecure-policy", "copy", "--dest-tls-verify=false", "-q"]);
        if let Some(creds) = self.creds {
            c.arg(format!("--dest-creds={creds}"));
        }
        if all {
            c.arg("--all");
        }
        if let Some(f) = format {
            c.arg(format!("--format={f}"));
        }
        let o = c
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .expect("skopeo is missing: make deps");
        assert!(
            o.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The request log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
