//! `rbox build`'s front half: Dockerfiles to build plans, pure and
//! root-free.
//!
//! The data flows one way:
//!
//! 1. [`dockerfile::parse`]`(text, file)` reads a Dockerfile as BuildKit's
//!    frontend does (directives, continuations, heredocs, JSON and shell
//!    forms) into a [`dockerfile::Dockerfile`]: the ARGs before the first
//!    FROM and the stages, each a list of typed, located instructions whose
//!    [`dockerfile::Word`]s are not yet expanded.
//! 2. [`plan::plan`]`(&dockerfile, &options)` resolves it for one build
//!    (build args, target, platform, and the configs of the base images
//!    known so far) into a [`plan::Plan`]: each stage's base (an image,
//!    `scratch` or an earlier stage), the stages the target needs and an
//!    order in which independent ones may run in parallel, and per stage
//!    the steps with every value expanded (ENV and ARG applied in order),
//!    RUN's command line, environment and mounts ready to run. Every error
//!    a Dockerfile can have is found here, before anything runs, and names
//!    `Dockerfile:LINE`. A plan made before the base images are pulled
//!    lists them in [`plan::Plan::images`]; planning again with their
//!    configs gives their ENV, WORKDIR, USER, SHELL and ONBUILD triggers.
//! 3. The executor (to come) runs the plan: RUN steps in containers, COPY
//!    and ADD from the context filtered by [`ignore::Ignore`] (or from
//!    earlier stages), one layer per RUN, COPY, ADD and WORKDIR, config
//!    changes for the rest.
//! 4. The cache (to come) keys each step by its parent, the step as
//!    planned, and for COPY and ADD the content of the files it copies.

pub mod cache;
pub mod context;
pub mod dockerfile;
pub mod exec;
pub mod executor;
pub mod expand;
pub mod ignore;
pub mod output;
pub mod path;
pub mod plan;
pub mod prune;
pub mod usage;
