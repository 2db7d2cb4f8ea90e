//! RUN expanded: the command line with the stage's shell, heredoc scripts,
//! the environment (config ENV and ARG values), and the mounts typed with
//! their values expanded (BuildKit's `dispatchRun`). The command itself is
//! never expanded: the shell does that.

use crate::build::dockerfile::{self, CommandLine, Heredoc, Mount, Network, Run, Security};

use super::commands::Edge;
use super::errors::PlanErrorKind;
use super::steps::Builder;
use super::Origin;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// What to execute: the exec form as written, or the stage's shell
    /// (`/bin/sh -c` by default) and the command line.
    pub argv: Vec<String>,
    /// Files to mount read-only for a heredoc script with a `#!` line.
    pub inline_files: Vec<InlineFile>,
    /// The environment: the config's ENV and the ARGs in scope, in the
    /// order they were last set (proxies come from [`super::Plan`]).
    pub env: Vec<(String, String)>,
    /// The ARGs in scope and their values, for the history (`|N K=V ...
    /// cmd`) and the cache key.
    pub build_args: Vec<(String, String)>,
    pub workdir: String,
    /// `USER` in effect (empty: the image's default, root).
    pub user: String,
    pub mounts: Vec<RunMount>,
    pub network: Network,
    pub security: Security,
}

/// A file made from a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub path: String,
    pub content: String,
    pub mode: u32,
}

/// A mount and what it mounts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub mount: Mount,
    /// `from=`, else the context for bind mounts and nothing for the others.
    pub origin: Origin,
}

/// Where BuildKit mounts a heredoc script it runs directly.
const PIPES: &str = "/dev/pipes";

pub(super) fn step(b: &Builder, run: &Run, edges: Vec<Edge>) -> Result<RunStep, PlanErrorKind> {
    let (argv, inline_files) = command(run, &b.shell());
    let mut from_origins = edges.into_iter().map(|e| e.origin);
    let mut mounts = Vec::with_capacity(run.mounts.len());
    for spec in &run.mounts {
        let mount = spec.resolve(&mut |w| b.word(w), &b.workdir())?;
        let origin = match spec.from() {
            Some(_) => from_origins.next().unwrap_or(Origin::Scratch),
            None if matches!(mount, Mount::Bind { .. }) => Origin::Context,
            None => Origin::Scratch,
        };
        mounts.push(RunMount { mount, origin });
    }
    Ok(RunStep {
        argv,
        inline_files,
        env: b.env().pairs().to_vec(),
        build_args: b.build_args(),
        workdir: b.workdir(),
        user: b.user().to_string(),
        mounts,
        network: run.network,
        security: run.security,
    })
}

/// The command to execute. A shell-form RUN that is a single heredoc runs
/// its body (a script with `#!` as a file of its own); heredocs within a
/// longer command line are given back to the shell as written.
fn command(run: &Run, shell: &[String]) -> (Vec<String>, Vec<InlineFile>) {
    let line = match &run.command {
        CommandLine::Exec(args) => return (args.clone(), Vec::new()),
        CommandLine::Shell(line) => line,
    };
    let with_shell = |s: String| shell.iter().cloned().chain([s]).collect();
    let Some(first) = run.heredocs.first() else {
        return (with_shell(line.clone()), Vec::new());
    };
    if dockerfile::heredoc_marker(line).is_none() {
        return (with_shell(inline_heredocs(line, &run.heredocs)), Vec::new());
    }
    let body = first.body();
    if !body.starts_with("#!") {
        return (with_shell(body), Vec::new());
    }
    let path = format!("{PIPES}/{}", first.name);
    let file = InlineFile {
        path: path.clone(),
        content: body,
        mode: 0o755,
    };
    (with_shell(path), vec![file])
}

/// The command line followed by each heredoc's body and terminator.
fn inline_heredocs(line: &str, docs: &[Heredoc]) -> String {
    let mut out = line.to_string();
    for doc in docs {
        out.push('\n');
        out.push_str(&doc.content);
        out.push_str(&doc.name);
    }
    out
}
