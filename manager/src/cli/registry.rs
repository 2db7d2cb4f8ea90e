//! The registry verbs: `pull`, `push`, `login`, `logout`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::Ctx;
use rbox::reference::Reference;
use rbox::registry::auth;
use rbox::registry::config::Config;
use rbox::registry::pull::{self, Platform, PullOptions};
use rbox::registry::push::{self, PushOptions};

#[derive(Args)]
pub struct PullArgs {
    /// os/arch[/variant] to pick from a multi-platform image
    #[arg(long)]
    pub platform: Option<String>,
    /// USER:PASSWORD for the registry (basic auth, or the token service's)
    #[arg(long, env = "RBOX_REGISTRY_AUTH", hide_env_values = true)]
    pub user: Option<String>,
    /// NAME[:TAG|@DIGEST]
    pub image: String,
}

#[derive(Args)]
pub struct PushArgs {
    /// USER:PASSWORD for the registry (basic auth, or the token service's)
    #[arg(long, env = "RBOX_REGISTRY_AUTH", hide_env_values = true)]
    pub user: Option<String>,
    /// Blobs up to this many bytes go in one request, bigger ones in chunks of it
    #[arg(long, hide = true, default_value_t = push::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: usize,
    /// NAME[:TAG]
    pub image: String,
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// host[:port]; docker.io when left out
    pub registry: Option<String>,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// host[:port]; docker.io when left out
    pub registry: Option<String>,
}

pub fn pull(ctx: &Ctx, a: PullArgs) -> Result<ExitCode> {
    let r = Reference::parse(&a.image)?;
    let platform = match a.platform {
        Some(p) => Platform::parse(&p)?,
        None => Platform::host(),
    };
    let user = user_pass(a.user.as_deref())?;
    let endpoints = pull::endpoints(&ctx.config()?, &r, user)?;
    pull::pull(
        &ctx.store,
        &r,
        &PullOptions {
            platform,
            endpoints,
        },
        pull::Out::Stdout,
    )?;
    println!("{}", r.familiar());
    Ok(ExitCode::SUCCESS)
}

pub fn push(ctx: &Ctx, a: PushArgs) -> Result<ExitCode> {
    let r = Reference::parse(&a.image)?;
    let auth = auth::registry_auth(r.domain(), user_pass(a.user.as_deref())?)?;
    let opts = PushOptions {
        auth,
        plain_http: ctx.config()?.plain_http(r.domain()),
        chunk_size: a.chunk_size,
    };
    push::push(&ctx.store, &r, &opts, &mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}

pub fn login(config: &Config, a: LoginArgs) -> Result<ExitCode> {
    let registry = registry_name(a.registry);
    let user = a.username.context("login: give the user name with -u")?;
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .read_line(&mut p)
                .context("login: read the password from stdin")?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => anyhow::bail!("login: give the password with --password-stdin (or -p)"),
    };
    if password.is_empty() {
        anyhow::bail!("login: the password is empty");
    }
    auth::verify(&registry, config.plain_http(&registry), &user, &password)?;
    auth::save(&registry, &user, &password)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(a: LogoutArgs) -> Result<ExitCode> {
    let registry = registry_name(a.registry);
    if auth::remove(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `http://host:port/` → `host:port`; none → docker.io.
fn registry_name(r: Option<String>) -> String {
    let r = r.unwrap_or_else(|| rbox::reference::DEFAULT_DOMAIN.into());
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(&r);
    let r = r.split('/').next().unwrap_or(r);
    match r {
        "index.docker.io" | "registry-1.docker.io" => rbox::reference::DEFAULT_DOMAIN.into(),
        r => r.to_string(),
    }
}

/// `--user USER:PASSWORD`.
fn user_pass(user: Option<&str>) -> Result<Option<(String, String)>> {
    user.map(|u| {
        let (name, pass) = u.split_once(':').context("--user must be USER:PASSWORD")?;
        Ok((name.to_string(), pass.to_string()))
    })
    .transpose()
}
