//! Runs a plan: each needed stage from its base (an image, scratch or an
//! earlier stage), its steps in order, each layer step (RUN, COPY, ADD,
//! WORKDIR) looked up in the build cache first and otherwise run and
//! committed as an image of the stage so far; the target stage's image is
//! then stored with the build's names.
//!
//! A stage starts as soon as the stages it reads are built, so independent
//! stages build in parallel, each in a thread of its own with a store
//! connection of its own (a connection is not shared between threads). A
//! stage alone runs in the caller's thread. Their progress lines are told
//! apart by BuildKit's `#N` and `[stage k/n]`. When a step fails, the
//! other stages stop at once (their RUN containers are killed,
//! exec/running.rs) and the failed step is the build's error; SIGINT,
//! SIGTERM, SIGHUP and SIGQUIT stop the build the same way.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::cache::{base_key, step_key};
use super::context::Context;
use super::dockerfile::{Dockerfile, Network, Security};
use super::exec::commit::{commit, Layers};
use super::exec::config::{self, push_history};
use super::exec::copy::{self, CopyFrom};
use super::exec::mounts::{run_mounts, MountInputs, Rootfs};
use super::exec::run::{self, RunStep, BUILD_LABEL};
use super::exec::running::{Running, Stop};
use super::exec::workdir;
use super::exec::ExecError;
use super::plan::{
    self, Base, BaseImage, CopyKind, CopySource, CopyStep, Op, Origin, Plan, PlanError,
    PlanOptions, Stage, Step,
};
use crate::build::dockerfile::Mount;
use crate::container::{self, NetMode, Output};
use crate::image::{temp_snapshot, ImageError, NewLayer};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{file}:{line}: {step}: {source}")]
    Step {
        file: String,
        line: usize,
        /// `[stage k/n] INSTRUCTION`
        step: String,
        source: Box<ExecError>,
    },
    #[error("the build was stopped by {0}")]
    Interrupted(&'static str),
    #[error("{file}:{line}: RUN needs a filesystem: the stage has no layer yet (FROM scratch)")]
    RunOnScratch { file: String, line: usize },
    #[error("base image {reference}: {why}")]
    Base { reference: String, why: String },
    #[error(transparent)]
    Exec(Box<ExecError>),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
}

pub type Result<T> = std::result::Result<T, BuildError>;

impl From<ExecError> for BuildError {
    fn from(e: ExecError) -> BuildError {
        BuildError::Exec(Box::new(e))
    }
}

impl BuildError {
    /// A step that did not run because the build was stopping.
    fn is_stopped(&self) -> bool {
        match self {
            BuildError::Step { source, .. } | BuildError::Exec(source) => {
                matches!(**source, ExecError::Stopped)
            }
            _ => false,
        }
    }
}

/// The time of a stage with nothing in it (a base image without one).
const EPOCH_ZERO: &str = "1970-01-01T00:00:00Z";

/// What `rbox build` asks besides the Dockerfile and its context.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub tags: Vec<Reference>,
    /// `--label`: set on the image built
    pub labels: Vec<(String, String)>,
    pub no_cache: bool,
    /// the network of RUN steps without `--network`
    pub network: Option<NetMode>,
    /// `--secret id=…,src=…`
    pub secrets: Vec<(String, PathBuf)>,
    /// no progress on stderr
    pub quiet: bool,
    /// `SOURCE_DATE_EPOCH`: mtimes of new files clamped, times in the
    /// config and history set to it
    pub epoch: Option<u64>,
    /// `--platform` (one of the host's: `plan::host_native`)
    pub platform: Option<plan::Platform>,
    /// `-o` without `-t`: the target stage is exported, no image is made
    pub no_image: bool,
}

/// The image of a base reference: `pull` gives the id of `reference` (a
/// normalized reference), pulling it when it is missing (or always, with
/// `--pull`).
pub type Pull<'a> = &'a dyn Fn(&str) -> Result<String>;

/// A stage being built: its image so far (None: nothing yet, scratch), its
/// layers and config, the cache key of its last step, and the time of its
/// last layer: a step that changes only the config takes that time, and a
/// layer from the cache the time it was made, so a build with nothing
/// changed gives the image it gave before, id and all.
#[derive(Debug, Clone)]
struct StageState {
    image: Option<String>,
    layers: Layers,
    config: Value,
    key: String,
    time: String,
}

/// Builds `df` with the context `ctx`.
pub fn build(
    store: &Store,
    df: &Dockerfile,
    ctx: &Context,
    opts: &BuildOptions,
    pull: Pull<'_>,
) -> Result<Built> {
    remove_dead_builds(store)?;
    let (plan, images) = plan_with_bases(store, df, opts, pull)?;
    let context_digests = context_digests(&plan, ctx)?;
    let counter = AtomicUsize::new(0);
    let running = Running::new(store.root().to_path_buf());
    let shared = Shared {
        plan: &plan,
        ctx,
        opts,
        images: &images,
        context_digests: &context_digests,
        counter: &counter,
        running: &running,
    };
    let b = Builder { s: &shared, store };
    let stop = running.clone();
    let mut finals = crate::signals::forwarding(
        &crate::signals::FORWARDED,
        move |sig| stop.stop(Stop::Signal(sig)),
        || b.stages(),
    )?;
    let mut st = finals[plan.target].take().expect("the target is built");
    if opts.no_image {
        return Ok(Built {
            image: None,
            layers: st.layers.diff_ids,
        });
    }
    if !opts.labels.is_empty() {
        config::apply(&mut st.config, &Op::Label(opts.labels.clone()));
    }
    st.config["created"] = Value::String(st.time.clone());
    let (id, _) = commit(store, &st.layers, None, &mut st.config, &opts.tags)?;
    Ok(Built {
        image: Some(id),
        layers: st.layers.diff_ids,
    })
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The target's image, with the build's names (None with
    /// [`BuildOptions::no_image`]).
    pub image: Option<String>,
    /// The target stage's layers (diff_ids, bottom first): what `-o`
    /// exports.
    pub layers: Vec<String>,
}

/// Plans, pulls the images the plan needs, plans again with their
/// configs (their ENV, WORKDIR, USER, SHELL and ONBUILD), until nothing is
/// missing. Returns the plan and the ids of its images.
fn plan_with_bases(
    store: &Store,
    df: &Dockerfile,
    opts: &BuildOptions,
    pull: Pull<'_>,
) -> Result<(Plan, BTreeMap<String, String>)> {
    let mut popts = PlanOptions::host();
    popts.build_args = opts.build_args.clone();
    popts.target = opts.target.clone();
    popts.platform = opts.platform.clone();
    let native = plan::host_native();
    let mut ids = BTreeMap::new();
    loop {
        let plan = plan::plan(df, &popts)?;
        plan::check_platforms(&plan, &native)?;
        let missing: Vec<String> = plan
            .images
            .iter()
            .filter(|r| !ids.contains_key(*r))
            .cloned()
            .collect();
        if missing.is_empty() && plan.missing_images.is_empty() {
            return Ok((plan, ids));
        }
        for r in missing {
            let id = pull(&r)?;
            popts.images.insert(r.clone(), base_image(store, &id)?);
            ids.insert(r, id);
        }
    }
}

/// The digest of what each COPY and ADD of the context reads, by stage and
/// step, computed before anything runs: a missing source is an error
/// naming its Dockerfile line before the first step.
fn context_digests(plan: &Plan, ctx: &Context) -> Result<BTreeMap<(usize, usize), String>> {
    let mut out = BTreeMap::new();
    for stage in plan.stages.iter().filter(|s| s.needed) {
        for (k, step) in stage.steps.iter().enumerate() {
            let Op::Copy(c) = &step.op else { continue };
            if c.origin != Origin::Context {
                continue;
            }
            let d = copy::sources_digest(c, CopyFrom::Context(ctx)).map_err(|source| {
                BuildError::Step {
                    file: plan.file.clone(),
                    line: step.line,
                    step: step_name(stage, k + 2, &step.source),
                    source: Box::new(source),
                }
            })?;
            out.insert((stage.index, k), d);
        }
    }
    Ok(out)
}

/// An image's raw config JSON (Docker's fields included).
fn raw_config(store: &Store, id: &str) -> Result<Value> {
    let bytes = store.read_blob(id, id)?;
    serde_json::from_slice(&bytes).map_err(|e| BuildError::Base {
        reference: id.to_string(),
        why: format!("its config is not JSON: {e}"),
    })
}

/// What the planner needs of a base image.
fn base_image(store: &Store, id: &str) -> Result<BaseImage> {
    let cfg = raw_config(store, id)?;
    let c = &cfg["config"];
    let strings =
        |v: &Value| -> Vec<String> { serde_json::from_value(v.clone()).unwrap_or_default() };
    let string = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(BaseImage {
        env: strings(&c["Env"]),
        working_dir: string(&c["WorkingDir"]),
        user: string(&c["User"]),
        shell: strings(&c["Shell"]),
        on_build: strings(&c["OnBuild"]),
    })
}

/// Removes the containers of builds whose rbox died (kill -9, a crash):
/// each carries the pid of its build's rbox.
pub(crate) fn remove_dead_builds(store: &Store) -> Result<()> {
    for c in container::list(store)? {
        let Some(pid) = c.spec.labels.get(BUILD_LABEL) else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
        if !alive {
            container::remove(store, &c.id, true)?;
        }
    }
    Ok(())
}

/// `[stage k/n] INSTRUCTION`, as BuildKit names a step (whitespace
/// squeezed); `n` counts the FROM.
fn step_name(stage: &Stage, k: usize, what: &str) -> String {
    let n = stage.steps.len() + 1;
    let what: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("[{} {k}/{n}] {what}", stage.display_name())
}

/// What the threads of a build share.
struct Shared<'a> {
    plan: &'a Plan,
    ctx: &'a Context,
    opts: &'a BuildOptions,
    /// normalized reference -> image id
    images: &'a BTreeMap<String, String>,
    /// (stage, step) -> the digest of what a COPY of the context reads
    context_digests: &'a BTreeMap<(usize, usize), String>,
    /// BuildKit's `#N` of the progress lines
    counter: &'a AtomicUsize,
    running: &'a Arc<Running>,
}

/// A build in one thread: what all share, and this thread's store.
struct Builder<'a> {
    s: &'a Shared<'a>,
    store: &'a Store,
}

impl Builder<'_> {
    fn say(&self, line: &str) {
        if !self.s.opts.quiet {
            eprintln!("{line}");
        }
    }

    /// The `#N [stage k/n] INSTRUCTION` line of a step.
    fn header(&self, stage: &Stage, k: usize, what: &str) -> usize {
        let id = self.s.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.say(&format!("#{id} {}", step_name(stage, k, what)));
        id
    }

    /// Builds the needed stages, each once the stages it reads are built:
    /// alone in this thread, or each in a thread of its own when several
    /// can run. After a failure (or a signal) no stage starts, those
    /// running are stopped, and the first failure is the error.
    fn stages(&self) -> Result<Vec<Option<StageState>>> {
        let plan = self.s.plan;
        let mut finals: Vec<Option<StageState>> = vec![None; plan.stages.len()];
        let mut todo: Vec<usize> = plan.order.iter().flatten().copied().collect();
        let mut failed: Option<BuildError> = None;
        let root = self.store.root().to_path_buf();
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            let mut live = 0usize;
            loop {
                if failed.is_none() && self.s.running.stopping().is_none() {
                    let ready: Vec<usize> = todo
                        .iter()
                        .copied()
                        .filter(|&i| plan.stages[i].deps.iter().all(|&j| finals[j].is_some()))
                        .collect();
                    todo.retain(|i| !ready.contains(i));
                    if live == 0 && ready.len() == 1 {
                        let i = ready[0];
                        match self.stage(&plan.stages[i], &finals) {
                            Ok(st) => finals[i] = Some(st),
                            Err(e) => self.fail(&mut failed, e),
                        }
                        continue;
                    }
                    for i in ready {
                        live += 1;
                        let (tx, finals, root, s) =
                            (tx.clone(), finals.clone(), root.clone(), self.s);
                        scope.spawn(move || {
                            let built =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    let store = Store::open(&root)?;
                                    Builder { s, store: &store }.stage(&s.plan.stages[i], &finals)
                                }));
                            let r = built.unwrap_or_else(|_| Err(ExecError::Panicked.into()));
                            let _ = tx.send((i, r));
                        });
                    }
                }
                if live == 0 {
                    break;
                }
                let Ok((i, r)) = rx.recv() else { break };
                live -= 1;
                match r {
                    Ok(st) => finals[i] = Some(st),
                    Err(e) => self.fail(&mut failed, e),
                }
            }
        });
        if let Some(Stop::Signal(sig)) = self.s.running.stopping() {
            return Err(BuildError::Interrupted(sig.as_str()));
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(finals),
        }
    }

    /// A stage failed: the build stops; the first failure is its error
    /// (the steps stopped because of it are not).
    fn fail(&self, failed: &mut Option<BuildError>, e: BuildError) {
        self.s.running.stop(Stop::Failed);
        if failed.is_none() && !e.is_stopped() {
            *failed = Some(e);
        }
    }

    /// `SOURCE_DATE_EPOCH` as the config's times.
    fn fixed_time(&self) -> Option<String> {
        let e = self.s.opts.epoch?;
        chrono::DateTime::from_timestamp(e as i64, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    fn now(&self) -> String {
        self.fixed_time().unwrap_or_else(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
    }

    fn image_id(&self, reference: &str) -> Result<&String> {
        self.s
            .images
            .get(reference)
            .ok_or_else(|| BuildError::Base {
                reference: reference.to_string(),
                why: "was not pulled".into(),
            })
    }

    fn start(&self, stage: &Stage, finals: &[Option<StageState>]) -> Result<StageState> {
        let mut st = match &stage.base {
            Base::Scratch => StageState {
                image: None,
                layers: Layers::default(),
                config: config::scratch(&stage.platform.arch, &stage.platform.os),
                key: base_key("scratch"),
                time: self.fixed_time().unwrap_or_else(|| EPOCH_ZERO.to_string()),
            },
            Base::Image(r) => {
                let id = self.image_id(r)?;
                let config = raw_config(self.store, id)?;
                let time = self
                    .fixed_time()
                    .or_else(|| config["created"].as_str().map(str::to_string))
                    .unwrap_or_else(|| EPOCH_ZERO.to_string());
                StageState {
                    image: Some(id.clone()),
                    layers: Layers::of_image(self.store, id)?,
                    config,
                    key: base_key(id),
                    time,
                }
            }
            Base::Stage(j) => finals[*j].clone().expect("an earlier wave built it"),
        };
        // ONBUILD triggers run in this stage (the planner made them its
        // first steps); the image built does not keep them
        if let Some(c) = st.config.get_mut("config").and_then(Value::as_object_mut) {
            c.remove("OnBuild");
        }
        if stage.env.iter().any(|(k, _)| k == "PATH") {
            for (k, v) in &stage.env {
                config::set_env(&mut st.config, k, v);
            }
        }
        Ok(st)
    }

    fn stage(&self, stage: &Stage, finals: &[Option<StageState>]) -> Result<StageState> {
        let from = match &stage.base {
            Base::Scratch => "FROM scratch".to_string(),
            Base::Image(r) => format!("FROM {r}"),
            Base::Stage(j) => format!("FROM {}", self.s.plan.stages[*j].display_name()),
        };
        self.header(stage, 1, &from);
        let mut st = self.start(stage, finals)?;
        for (k, step) in stage.steps.iter().enumerate() {
            if self.s.running.stopping().is_some() {
                return Err(ExecError::Stopped.into());
            }
            let id = self.header(stage, k + 2, &step.source);
            self.step(&mut st, (stage.index, k), step, finals, id)
                .map_err(|e| match e {
                    BuildError::Exec(source) => BuildError::Step {
                        file: self.s.plan.file.clone(),
                        line: step.line,
                        step: step_name(stage, k + 2, &step.source),
                        source,
                    },
                    e => e,
                })?;
        }
        Ok(st)
    }

    fn step(
        &self,
        st: &mut StageState,
        at: (usize, usize),
        step: &Step,
        finals: &[Option<StageState>],
        id: usize,
    ) -> Result<()> {
        match &step.op {
            Op::Run(r) => {
                let parent = st.image.clone().ok_or_else(|| BuildError::RunOnScratch {
                    file: self.s.plan.file.clone(),
                    line: step.line,
                })?;
                let inputs = self.run_inputs(r, finals)?;
                self.layer_step(st, step, &inputs, id, |_| self.run(r, &parent, finals, id))
            }
            Op::Copy(c) => {
                let from_layers;
                let from = match &c.origin {
                    Origin::Context => CopyFrom::Context(self.s.ctx),
                    Origin::Stage(j) => {
                        from_layers = finals[*j].as_ref().expect("built").layers.clone();
                        CopyFrom::Layers(&from_layers)
                    }
                    Origin::Image(r) => {
                        from_layers = Layers::of_image(self.store, self.image_id(r)?)?;
                        CopyFrom::Layers(&from_layers)
                    }
                    Origin::Scratch => {
                        from_layers = Layers::default();
                        CopyFrom::Layers(&from_layers)
                    }
                };
                let inputs = match self.s.context_digests.get(&at) {
                    Some(d) => d.clone(),
                    None => copy::sources_digest(c, from)?,
                };
                self.layer_step(st, step, &inputs, id, |layers| {
                    Ok(copy::copy(self.store, layers, c, from, self.s.opts.epoch)?)
                })
            }
            Op::Workdir(dir) => {
                config::apply(&mut st.config, &step.op);
                let dir = dir.clone();
                let user = st.config["config"]["User"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.layer_step(st, step, "", id, |layers| {
                    Ok(workdir::make(
                        self.store,
                        layers,
                        &dir,
                        &user,
                        self.s.opts.epoch,
                    )?)
                })
            }
            op => {
                config::apply(&mut st.config, op);
                push_history(&mut st.config, config::history(step, &st.time, true));
                st.key = step_key(&st.key, op, "");
                Ok(())
            }
        }
    }

    /// A step that may make a layer: from the cache when it has the key,
    /// else `make` runs and its layer (if any) is committed.
    fn layer_step(
        &self,
        st: &mut StageState,
        step: &Step,
        inputs: &str,
        id: usize,
        make: impl FnOnce(&Layers) -> Result<Option<NewLayer>>,
    ) -> Result<()> {
        let key = step_key(&st.key, &step.op, inputs);
        if !self.s.opts.no_cache {
            if let Some(image) = self.store.cache_get(&key)? {
                let layers = Layers::of_image(self.store, &image)?;
                let empty = layers.diff_ids.len() == st.layers.diff_ids.len();
                if let Some(t) = raw_config(self.store, &image)?["created"].as_str() {
                    st.time = t.to_string();
                }
                push_history(&mut st.config, config::history(step, &st.time, empty));
                st.layers = layers;
                st.image = Some(image);
                st.key = key;
                self.say(&format!("#{id} CACHED"));
                return Ok(());
            }
        }
        let layer = make(&st.layers)?;
        st.time = self.now();
        push_history(
            &mut st.config,
            config::history(step, &st.time, layer.is_none()),
        );
        let image = match (layer, &st.image) {
            (None, Some(image)) => image.clone(),
            (layer, _) => {
                let mut cfg = st.config.clone();
                let (image, layers) = commit(self.store, &st.layers, layer, &mut cfg, &[])?;
                st.layers = layers;
                image
            }
        };
        let lock = self.store.lock()?;
        self.store.cache_put(&key, &image)?;
        lock.commit()?;
        st.image = Some(image);
        st.key = key;
        self.say(&format!("#{id} DONE"));
        Ok(())
    }

    /// What a RUN reads besides its parent, for its cache key: the root
    /// filesystem of each mount's `from=` (its image id) and the content
    /// of the context a bind mount of it shows.
    fn run_inputs(&self, r: &plan::RunStep, finals: &[Option<StageState>]) -> Result<String> {
        let mut out = String::new();
        for (i, m) in r.mounts.iter().enumerate() {
            let input = match (&m.mount, &m.origin) {
                (Mount::Bind { source, .. }, Origin::Context) => self.context_digest(source)?,
                (Mount::Bind { .. }, origin) | (Mount::Cache { from: Some(_), .. }, origin) => {
                    self.rootfs(origin, finals)?.id
                }
                _ => continue,
            };
            out.push_str(&format!("mount {i} {input}\n"));
        }
        Ok(out)
    }

    /// The digest of the context at a bind mount's `source`, as a COPY of
    /// it would take it.
    fn context_digest(&self, source: &str) -> Result<String> {
        let clean = crate::build::path::clean(&format!("/{source}"));
        let rel = clean.trim_start_matches('/');
        let step = CopyStep {
            kind: CopyKind::Copy { parents: false },
            origin: Origin::Context,
            sources: vec![CopySource::Path(
                if rel.is_empty() { "." } else { rel }.into(),
            )],
            dest: "/".into(),
            chown: None,
            chmod: None,
            link: false,
            excludes: Vec::new(),
            // only the sources are digested; no history entry is made
            created_by: String::new(),
        };
        Ok(copy::sources_digest(&step, CopyFrom::Context(self.s.ctx))?)
    }

    /// The root filesystem a mount's `from=` names: a stage built, an
    /// image pulled, or nothing.
    fn rootfs(
        &self,
        origin: &Origin,
        finals: &[Option<StageState>],
    ) -> std::result::Result<Rootfs, ExecError> {
        match origin {
            Origin::Stage(j) => {
                let st = finals[*j]
                    .as_ref()
                    .expect("the stages a stage reads are built");
                Ok(Rootfs {
                    id: st.image.clone().unwrap_or_else(|| "scratch".into()),
                    diff_ids: st.layers.diff_ids.clone(),
                })
            }
            Origin::Image(r) => {
                let id = self
                    .s
                    .images
                    .get(r)
                    .ok_or_else(|| StoreError::NoSuchImage(r.clone()))?;
                Ok(Rootfs {
                    id: id.clone(),
                    diff_ids: Layers::of_image(self.store, id)?.diff_ids,
                })
            }
            Origin::Scratch | Origin::Context => Ok(Rootfs::scratch()),
        }
    }

    fn run(
        &self,
        r: &plan::RunStep,
        parent: &str,
        finals: &[Option<StageState>],
        id: usize,
    ) -> Result<Option<NewLayer>> {
        let scratch = temp_snapshot(self.store)?;
        let rootfs = |o: &Origin| self.rootfs(o, finals);
        let inputs = MountInputs {
            context: self.s.ctx.root(),
            secrets: &self.s.opts.secrets,
            scratch: scratch.path(),
            rootfs: &rootfs,
        };
        let mounts = run_mounts(self.store, &r.mounts, &r.inline_files, &inputs)?;
        let env: Vec<String> = r
            .env
            .iter()
            .chain(&self.s.plan.proxy_env)
            .map(|(k, v)| format!("{k}={v}"))
            .chain(mounts.env)
            .collect();
        let network = match r.network {
            Network::Default => self.s.opts.network.clone().unwrap_or(NetMode::Bridge),
            Network::None => NetMode::None,
            Network::Host => NetMode::Host,
        };
        let step = RunStep {
            parent: parent.to_string(),
            argv: r.argv.clone(),
            env,
            user: Some(r.user.clone()).filter(|u| !u.is_empty()),
            workdir: Some(r.workdir.clone()).filter(|w| !w.is_empty()),
            network,
            mounts: mounts.mounts,
            privileged: r.security == Security::Insecure,
        };
        let layer = run::run(
            self.store,
            &step,
            self.s.opts.epoch,
            self.s.running,
            self.output(id),
        )?;
        // the cache locks are held until the step is done
        drop(mounts.locks);
        Ok(layer)
    }

    /// Where a RUN's output goes: BuildKit's plain lines, `#N SECONDS
    /// LINE`, on stderr (nowhere with `-q`).
    fn output(&self, id: usize) -> Output {
        if self.s.opts.quiet {
            return Output::Entries(Arc::new(|_| {}));
        }
        let start = std::time::Instant::now();
        Output::Entries(Arc::new(move |e: &crate::logs::Entry| {
            let t = start.elapsed().as_secs_f64();
            let mut err = std::io::stderr().lock();
            for line in e.log.lines() {
                let _ = writeln!(err, "#{id} {t:.3} {line}");
            }
        }))
    }
}
