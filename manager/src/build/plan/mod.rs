//! A parsed Dockerfile made into a plan for one build, as BuildKit's
//! `dockerfile2llb` resolves it before anything runs: build arguments and
//! their scopes, each stage's base, the stages the target needs and the
//! order they can run in, and per stage the steps with every value
//! expanded.
//!
//! Base images: their ENV, WORKDIR, USER, SHELL and ONBUILD triggers
//! change the expansions and the steps of the stages built on them. The
//! planner is pure, so it takes what it knows of them in
//! [`PlanOptions::images`]; [`Plan::missing_images`] lists the bases of
//! needed stages it did not know. An executor plans once, pulls those, and
//! plans again with their configs (again if ONBUILD triggers of the pulled
//! images bring new stages in).

mod args;
mod commands;
mod copy;
mod errors;
mod expose;
mod graph;
mod platform;
mod run;
mod stages;
mod steps;

use std::collections::{BTreeMap, BTreeSet};

pub use args::{build_args, EnvList};
pub use copy::{Chmod, CopyKind, CopySource, CopyStep};
pub use errors::{PlanError, PlanErrorKind};
pub use expose::{Port, Protocol};
pub use platform::{check_platforms, describe as describe_platforms, host_native, runs_natively};
pub use run::{InlineFile, RunMount, RunStep};

use crate::build::dockerfile::{Dockerfile, Healthcheck};
use crate::build::expand::Lexer;
pub use crate::registry::pull::Platform;

/// What a build asks of a Dockerfile.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `--build-arg` values ([`build_args`] reads the command line's).
    pub build_args: BTreeMap<String, String>,
    /// `--target`; the last stage when `None`.
    pub target: Option<String>,
    /// `--platform`; the build platform when `None`.
    pub platform: Option<Platform>,
    /// The platform of the machine that builds.
    pub build_platform: Platform,
    /// The configs of base images known so far, by normalized reference
    /// (`docker.io/library/alpine:3.20`).
    pub images: BTreeMap<String, BaseImage>,
}

impl PlanOptions {
    /// No build args, the last stage, for this host.
    pub fn host() -> PlanOptions {
        PlanOptions {
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            build_platform: Platform::host(),
            images: BTreeMap::new(),
        }
    }
}

/// What the planner needs of a base image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// Docker's `Shell` (empty for `/bin/sh -c`).
    pub shell: Vec<String>,
    /// Docker's `OnBuild` triggers.
    pub on_build: Vec<String>,
}

/// A Dockerfile resolved for one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub file: String,
    /// Every stage, in the Dockerfile's order.
    pub stages: Vec<Stage>,
    /// The stage whose result is the build's result.
    pub target: usize,
    /// The stages the target needs, in waves: the stages of a wave only
    /// need stages of earlier waves, so each wave's may run in parallel.
    pub order: Vec<Vec<usize>>,
    /// Images the needed stages use (bases, `COPY --from`, `RUN --mount
    /// from=`), normalized, without repeats.
    pub images: Vec<String>,
    /// Bases of needed stages whose config was not in the options.
    pub missing_images: Vec<String>,
    /// Given to every RUN, not part of the steps (BuildKit keeps proxies
    /// out of history and cache keys).
    pub proxy_env: Vec<(String, String)>,
    /// Build arguments no ARG of a needed stage (or before the first FROM)
    /// declares, predefined ones aside: Docker warns about them.
    pub unused_build_args: Vec<String>,
}

/// A stage: its base, what it needs, and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The line of its FROM.
    pub line: usize,
    pub base: Base,
    pub platform: Platform,
    /// Whether the target needs it; only needed stages have steps.
    pub needed: bool,
    /// The earlier stages it reads: its base, `COPY --from`, `RUN --mount
    /// from=`.
    pub deps: Vec<usize>,
    /// The image config's Env it starts with (its base's, `PATH` added
    /// when missing, as BuildKit does).
    pub env: Vec<(String, String)>,
    /// The config's OnBuild starts empty in every stage: the base's
    /// triggers are its first steps.
    pub steps: Vec<Step>,
}

impl Stage {
    /// The name BuildKit gives it in messages: its own or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// A normalized image reference.
    Image(String),
    /// An earlier stage.
    Stage(usize),
}

/// One instruction of a stage, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// The instruction as written.
    pub source: String,
    /// An ONBUILD trigger of the base.
    pub on_build: bool,
    pub op: Op,
}

/// What a step does. RUN, COPY, ADD and WORKDIR make layers; the others
/// change the image config and history only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Run(RunStep),
    Copy(CopyStep),
    /// The new working directory, absolute.
    Workdir(String),
    /// Set in the config's Env, each replacing an entry of its name where
    /// it is (RUN steps carry their whole environment already).
    Env(Vec<(String, String)>),
    /// ARGs with their values (`None`: declared without one).
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<Port>),
    Volume(Vec<String>),
    User(String),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The command, the shell prepended in shell form.
    Cmd(Vec<String>),
    /// The entrypoint; it clears an inherited CMD unless this stage set one.
    Entrypoint {
        argv: Vec<String>,
        clears_cmd: bool,
    },
    Shell(Vec<String>),
    /// A trigger for builds based on this image.
    OnBuild(String),
    /// The image's author.
    Maintainer(String),
}

/// Where a COPY, ADD or RUN mount reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The build context.
    Context,
    /// Nothing (`scratch`, and the default of cache and tmpfs mounts).
    Scratch,
    Stage(usize),
    /// A normalized image reference.
    Image(String),
}

/// The plan of `df` for the build `opts` describes.
pub fn plan(df: &Dockerfile, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let planner = Planner::new(df, opts)?;
    let mut stages = stages::resolve(&planner)?;
    let target = stages::target(&planner, &stages)?;
    let graph = graph::Graph::build(&planner, &stages, target)?;
    let steps = steps::all(&planner, &stages, &graph)?;
    for (stage, made) in stages.iter_mut().zip(steps) {
        stage.needed = graph.needed[stage.index];
        stage.deps = graph.stage_deps(stage.index);
        stage.steps = made.steps;
        stage.env = made.env;
    }
    Ok(Plan {
        file: df.file.clone(),
        order: graph.waves(),
        images: graph.images(&stages),
        missing_images: missing_images(&stages, opts),
        stages,
        target,
        proxy_env: args::proxy_env(&opts.build_args),
        unused_build_args: planner.unused_build_args(&graph.declared_args),
    })
}

/// The base images of needed stages whose config `opts` lacks.
fn missing_images(stages: &[Stage], opts: &PlanOptions) -> Vec<String> {
    stages
        .iter()
        .filter(|s| s.needed)
        .filter_map(|s| match &s.base {
            Base::Image(r) if !opts.images.contains_key(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// What every part of the planning shares.
pub(super) struct Planner<'a> {
    pub df: &'a Dockerfile,
    pub opts: &'a PlanOptions,
    pub lexer: Lexer,
    /// The global scope: predefined ARGs and the ARGs before the first FROM.
    pub globals: EnvList,
    /// The names of the ARGs before the first FROM.
    meta_declared: BTreeSet<String>,
}

impl<'a> Planner<'a> {
    fn new(df: &'a Dockerfile, opts: &'a PlanOptions) -> Result<Planner<'a>, PlanError> {
        let lexer = Lexer::new(df.escape);
        let target_stage = opts
            .target
            .clone()
            .or_else(|| df.stages.last().and_then(|s| s.from.value.name.clone()))
            .unwrap_or_else(|| "default".to_string());
        let target_platform = opts.platform.as_ref().unwrap_or(&opts.build_platform);
        let mut globals = args::predefined(
            &opts.build_platform,
            target_platform,
            &target_stage,
            &opts.build_args,
        );
        let meta_declared = args::meta_args(df, &lexer, &mut globals, &opts.build_args)?;
        Ok(Planner {
            df,
            opts,
            lexer,
            globals,
            meta_declared,
        })
    }

    /// An error at `line` of the Dockerfile.
    pub fn error(&self, line: usize, kind: impl Into<PlanErrorKind>) -> PlanError {
        PlanError {
            file: self.df.file.clone(),
            line,
            kind: Box::new(kind.into()),
        }
    }

    fn unused_build_args(&self, declared: &BTreeSet<String>) -> Vec<String> {
        self.opts
            .build_args
            .keys()
            .filter(|k| {
                !declared.contains(*k)
                    && !self.meta_declared.contains(*k)
                    && !args::is_predefined(k)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
