//! Each needed stage's steps, expanded in order as BuildKit dispatches
//! them: the stage starts from its base's state (a stage's, with its ARGs,
//! or an image's config), ENV and ARG change what later instructions see,
//! WORKDIR, USER and SHELL what RUN runs with.

use crate::build::dockerfile::{ArgDecl, CommandLine, Instruction, KeyValue, Word};
use crate::build::expand::ExpandError;
use crate::build::path;

use super::args::EnvList;
use super::commands::{self, Command};
use super::errors::{PlanError, PlanErrorKind};
use super::graph::Graph;
use super::{copy, expose, run, Base, BaseImage, Op, Origin, Planner, Stage, Step};

/// BuildKit's `system.DefaultPathEnvUnix`, set when a base has no PATH.
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// What a stage has set so far.
#[derive(Debug, Clone, Default)]
struct State {
    /// What expansions and RUN see: config ENV and ARG values.
    env: EnvList,
    /// The image config's Env: ENV only, replaced in place.
    config_env: Vec<(String, String)>,
    /// ARGs in scope (a stage's are inherited by stages built on it).
    args: Vec<(String, Option<String>)>,
    workdir: String,
    user: String,
    shell: Vec<String>,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl State {
    fn from_image(image: Option<&BaseImage>) -> State {
        let Some(image) = image else {
            return State::default();
        };
        let config_env = image
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        State {
            config_env,
            workdir: image.working_dir.clone(),
            user: image.user.clone(),
            shell: image.shell.clone(),
            ..State::default()
        }
    }
}

/// A stage's steps and the config Env it starts with.
#[derive(Default)]
pub(super) struct StageSteps {
    pub steps: Vec<Step>,
    pub env: Vec<(String, String)>,
}

/// Per stage, its steps (none for the stages not needed).
pub(super) fn all(
    p: &Planner,
    stages: &[Stage],
    graph: &Graph,
) -> Result<Vec<StageSteps>, PlanError> {
    let mut finals: Vec<Option<State>> = vec![None; stages.len()];
    let mut out = Vec::with_capacity(stages.len());
    for stage in stages {
        if !graph.needed[stage.index] {
            out.push(StageSteps::default());
            continue;
        }
        let mut b = Builder {
            p,
            stages,
            state: initial(p, stage, &finals),
        };
        let start_env = b.state.config_env.clone();
        let steps = graph.commands[stage.index]
            .iter()
            .map(|c| b.step(c))
            .collect::<Result<Vec<_>, _>>()?;
        finals[stage.index] = Some(b.state);
        out.push(StageSteps {
            steps,
            env: start_env,
        });
    }
    Ok(out)
}

/// The state a stage starts with: its base stage's final one, or its base
/// image's config; PATH added when missing; config ENV applied last.
fn initial(p: &Planner, stage: &Stage, finals: &[Option<State>]) -> State {
    let mut state = match &stage.base {
        Base::Stage(j) => finals[*j].clone().unwrap_or_default(),
        Base::Image(r) => State::from_image(p.opts.images.get(r)),
        Base::Scratch => State::default(),
    };
    state.cmd_set = false;
    if !state.config_env.iter().any(|(k, _)| k == "PATH") {
        state
            .config_env
            .push(("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    for (k, v) in &state.config_env {
        state.env.set(k, v);
    }
    state
}

/// A stage's steps being made.
pub(super) struct Builder<'a> {
    p: &'a Planner<'a>,
    stages: &'a [Stage],
    state: State,
}

impl Builder<'_> {
    fn step(&mut self, c: &Command) -> Result<Step, PlanError> {
        let op = self.op(c).map_err(|kind| self.p.error(c.line, kind))?;
        Ok(Step {
            line: c.line,
            source: c.source.clone(),
            on_build: c.on_build,
            op,
        })
    }

    fn op(&mut self, c: &Command) -> Result<Op, PlanErrorKind> {
        Ok(match &c.instruction {
            Instruction::Env(pairs) => self.env_op(pairs)?,
            Instruction::Arg(decls) => self.arg_op(decls)?,
            Instruction::Label(pairs) => Op::Label(self.pairs(pairs)?),
            Instruction::Expose(words) => Op::Expose(self.ports(words)?),
            Instruction::Volume(words) => Op::Volume(self.volumes(words)?),
            Instruction::User(w) => {
                self.state.user = self.word(w)?;
                Op::User(self.state.user.clone())
            }
            Instruction::Workdir(w) => {
                self.state.workdir = workdir(&self.workdir(), &self.word(w)?);
                Op::Workdir(self.state.workdir.clone())
            }
            Instruction::StopSignal(w) => Op::StopSignal(self.signal(w)?),
            Instruction::Copy(cp) => Op::Copy(copy::copy(self, cp, self.copy_origin(c))?),
            Instruction::Add(add) => Op::Copy(copy::add(self, add)?),
            Instruction::Run(r) => Op::Run(run::step(self, r, self.edges(c))?),
            Instruction::Cmd(cl) => {
                self.state.cmd_set = true;
                Op::Cmd(self.argv(cl))
            }
            Instruction::Entrypoint(cl) => Op::Entrypoint {
                argv: self.argv(cl),
                clears_cmd: !self.state.cmd_set,
            },
            Instruction::Shell(shell) => {
                self.state.shell = shell.clone();
                Op::Shell(shell.clone())
            }
            Instruction::Healthcheck(h) => Op::Healthcheck(h.clone()),
            Instruction::OnBuild(ob) => Op::OnBuild(ob.expression.clone()),
            Instruction::Maintainer(m) => Op::Maintainer(m.clone()),
        })
    }

    /// `word` expanded with what the stage has set so far.
    pub fn word(&self, word: &Word) -> Result<String, ExpandError> {
        self.p.lexer.process_word(word.as_str(), &self.state.env)
    }

    pub fn env(&self) -> &EnvList {
        &self.state.env
    }

    /// The working directory, `/` when none was set.
    pub fn workdir(&self) -> String {
        match self.state.workdir.as_str() {
            "" => "/".to_string(),
            wd => wd.to_string(),
        }
    }

    pub fn user(&self) -> &str {
        &self.state.user
    }

    pub fn shell(&self) -> Vec<String> {
        match self.state.shell.is_empty() {
            true => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
            false => self.state.shell.clone(),
        }
    }

    /// The ARGs in scope with their current values (BuildKit's
    /// `runCommandString`: the environment's value, which an ENV of the
    /// same name overrides).
    pub fn build_args(&self) -> Vec<(String, String)> {
        self.state
            .args
            .iter()
            .map(|(k, v)| {
                let value = self
                    .state
                    .env
                    .get(k)
                    .map(str::to_string)
                    .or_else(|| v.clone());
                (k.clone(), value.unwrap_or_default())
            })
            .collect()
    }

    fn argv(&self, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(line) => self.shell().into_iter().chain([line.clone()]).collect(),
        }
    }

    /// Keys and values expanded with what was set before the instruction
    /// (`ENV A=1 B=$A` gives B the earlier A).
    fn pairs(&self, pairs: &[KeyValue]) -> Result<Vec<(String, String)>, PlanErrorKind> {
        pairs
            .iter()
            .map(|kv| Ok((self.word(&kv.key)?, self.word(&kv.value)?)))
            .collect()
    }

    fn env_op(&mut self, pairs: &[KeyValue]) -> Result<Op, PlanErrorKind> {
        let pairs = self.pairs(pairs)?;
        for (k, v) in &pairs {
            self.state.env.set(k, v);
            set_in_place(&mut self.state.config_env, k, v.clone());
        }
        Ok(Op::Env(pairs))
    }

    /// Each ARG in turn: a build argument wins, else its default expanded,
    /// else the global ARG of that name; a value joins the environment.
    fn arg_op(&mut self, decls: &[ArgDecl]) -> Result<Op, PlanErrorKind> {
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let value = match (self.p.opts.build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(self.word(default)?),
                (None, None) => self.p.globals.get(&d.name).map(str::to_string),
            };
            if let Some(v) = &value {
                self.state.env.set(&d.name, v);
            }
            set_in_place(&mut self.state.args, &d.name, value.clone());
            out.push((d.name.clone(), value));
        }
        Ok(Op::Arg(out))
    }

    fn ports(&self, words: &[Word]) -> Result<Vec<expose::Port>, PlanErrorKind> {
        let mut ports = Vec::new();
        for w in words {
            for spec in self.p.lexer.process_words(w.as_str(), &self.state.env)? {
                ports.extend(expose::ports(&spec)?);
            }
        }
        Ok(ports)
    }

    fn volumes(&self, words: &[Word]) -> Result<Vec<String>, PlanErrorKind> {
        words
            .iter()
            .map(|w| match self.word(w)? {
                v if v.is_empty() => Err(PlanErrorKind::EmptyVolume),
                v => Ok(v),
            })
            .collect()
    }

    fn signal(&self, w: &Word) -> Result<String, PlanErrorKind> {
        let s = self.word(w)?;
        crate::signals::parse(&s).map_err(|_| PlanErrorKind::Signal(s.clone()))?;
        Ok(s)
    }

    /// What a command reads, as the graph resolved it.
    fn edges(&self, c: &Command) -> Vec<commands::Edge> {
        commands::edges(self.p, self.stages, c).unwrap_or_default()
    }

    fn copy_origin(&self, c: &Command) -> Origin {
        self.edges(c)
            .into_iter()
            .next()
            .map_or(Origin::Context, |e| e.origin)
    }
}

/// BuildKit's `NormalizeWorkdir`: a relative directory is joined to the
/// current one (and cleaned), an absolute one taken as written.
fn workdir(current: &str, new: &str) -> String {
    match new {
        "" => current.to_string(),
        abs if abs.starts_with('/') => abs.to_string(),
        rel => path::join(current, rel),
    }
}

/// Replace the value of `key` where it is, or append it.
fn set_in_place<V>(list: &mut Vec<(String, V)>, key: &str, value: V) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key.to_string(), value)),
    }
}
