//! Which stages read which: the base and the `--from`s of each stage, the
//! stages the target needs (BuildKit's reachable set; the others are not
//! built), cycles, and the waves in which needed stages can run.

use std::collections::BTreeSet;

use crate::build::dockerfile::Instruction;

use super::commands::{self, Command, Edge};
use super::errors::{PlanError, PlanErrorKind};
use super::{Base, Origin, Planner, Stage};

pub(super) struct Graph {
    /// Each stage's commands: triggers of its base, then its own.
    pub commands: Vec<Vec<Command>>,
    /// What each stage's commands read.
    pub edges: Vec<Vec<Edge>>,
    pub needed: Vec<bool>,
    /// ARG names the needed stages declare.
    pub declared_args: BTreeSet<String>,
    /// Each stage's base stage.
    bases: Vec<Option<usize>>,
}

impl Graph {
    pub fn build(p: &Planner, stages: &[Stage], target: usize) -> Result<Graph, PlanError> {
        let mut graph = Graph {
            commands: Vec::with_capacity(stages.len()),
            edges: Vec::with_capacity(stages.len()),
            needed: vec![false; stages.len()],
            declared_args: BTreeSet::new(),
            bases: stages.iter().map(base_stage).collect(),
        };
        for stage in stages {
            let mut cmds = match stage.base {
                Base::Stage(j) => commands::stage_triggers(p, j, stage.line),
                _ => Vec::new(),
            };
            cmds.extend(commands::own(p, stage.index));
            graph.edges.push(edges_of(p, stages, &cmds)?);
            graph.commands.push(cmds);
        }
        graph.add_image_triggers(p, stages, target)?;
        graph.check_cycles(p, stages)?;
        graph.check_order(p, stages)?;
        graph.declared_args = graph.args_declared();
        Ok(graph)
    }

    /// BuildKit's loop: the triggers of the needed stages' base images may
    /// read stages, which may need more images.
    fn add_image_triggers(
        &mut self,
        p: &Planner,
        stages: &[Stage],
        target: usize,
    ) -> Result<(), PlanError> {
        let mut done = vec![false; stages.len()];
        loop {
            self.needed = self.reachable(target);
            let mut grew = false;
            for stage in stages {
                if !self.needed[stage.index] || std::mem::replace(&mut done[stage.index], true) {
                    continue;
                }
                let Base::Image(r) = &stage.base else {
                    continue;
                };
                let Some(image) = p.opts.images.get(r) else {
                    continue;
                };
                let triggers = commands::image_triggers(p, image, stage.line)?;
                let edges = edges_of(p, stages, &triggers)?;
                grew |= !edges.is_empty();
                self.edges[stage.index].splice(0..0, edges);
                self.commands[stage.index].splice(0..0, triggers);
            }
            if !grew {
                return Ok(());
            }
        }
    }

    /// The stages `target` needs, itself included.
    fn reachable(&self, target: usize) -> Vec<bool> {
        let mut seen = vec![false; self.bases.len()];
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            todo.extend(self.stage_deps(i));
        }
        seen
    }

    /// The stages stage `i` reads, its base included, sorted
    /// ([`super::Stage::deps`]).
    pub fn stage_deps(&self, i: usize) -> Vec<usize> {
        let from_edges = self.edges[i].iter().filter_map(|e| match e.origin {
            Origin::Stage(j) => Some(j),
            _ => None,
        });
        let mut deps: Vec<usize> = self.bases[i].into_iter().chain(from_edges).collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// BuildKit's `validateCircularDependency`, over every stage.
    fn check_cycles(&self, p: &Planner, stages: &[Stage]) -> Result<(), PlanError> {
        let mut done = vec![false; stages.len()];
        for stage in stages {
            let mut path = vec![false; stages.len()];
            if let Some(line) = self.cycle_from(stage.index, &mut path, &mut done) {
                return Err(p.error(line, PlanErrorKind::Circular(stage.display_name())));
            }
        }
        Ok(())
    }

    /// The line of a `--from` that closes a cycle through `i`, if any.
    fn cycle_from(&self, i: usize, path: &mut [bool], done: &mut [bool]) -> Option<usize> {
        if done[i] {
            return None;
        }
        done[i] = true;
        path[i] = true;
        for e in &self.edges[i] {
            let Origin::Stage(j) = e.origin else { continue };
            if path[j] {
                return Some(e.line);
            }
            if let Some(line) = self.cycle_from(j, path, done) {
                return Some(line);
            }
        }
        path[i] = false;
        None
    }

    /// Stages are built in the Dockerfile's order: a needed stage cannot
    /// read one defined after it.
    fn check_order(&self, p: &Planner, stages: &[Stage]) -> Result<(), PlanError> {
        for stage in stages.iter().filter(|s| self.needed[s.index]) {
            for e in &self.edges[stage.index] {
                let Origin::Stage(j) = e.origin else { continue };
                if j <= stage.index {
                    continue;
                }
                let kind = match &e.mount_target {
                    None => PlanErrorKind::CopyFromLater {
                        from: e.from.clone(),
                        stage: stage.display_name(),
                    },
                    Some(target) => PlanErrorKind::MountFromLater {
                        from: e.from.clone(),
                        target: target.clone(),
                    },
                };
                return Err(p.error(e.line, kind));
            }
        }
        Ok(())
    }

    fn args_declared(&self) -> BTreeSet<String> {
        let needed = self.commands.iter().zip(&self.needed).filter(|(_, n)| **n);
        needed
            .flat_map(|(cmds, _)| cmds)
            .filter_map(|c| match &c.instruction {
                Instruction::Arg(decls) => Some(decls.iter().map(|d| d.name.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The needed stages in waves: a stage comes one wave after the last
    /// of the stages it reads.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let mut wave = vec![0usize; self.needed.len()];
        let mut out: Vec<Vec<usize>> = Vec::new();
        for i in (0..self.needed.len()).filter(|&i| self.needed[i]) {
            let w = self
                .stage_deps(i)
                .iter()
                .map(|&j| wave[j] + 1)
                .max()
                .unwrap_or(0);
            wave[i] = w;
            if out.len() <= w {
                out.resize(w + 1, Vec::new());
            }
            out[w].push(i);
        }
        out
    }

    /// The images the needed stages use, in order, each once.
    pub fn images(&self, stages: &[Stage]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for stage in stages.iter().filter(|s| self.needed[s.index]) {
            let base = match &stage.base {
                Base::Image(r) => Some(r),
                _ => None,
            };
            let froms = self.edges[stage.index]
                .iter()
                .filter_map(|e| match &e.origin {
                    Origin::Image(r) => Some(r),
                    _ => None,
                });
            for r in base.into_iter().chain(froms) {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }
}

fn base_stage(stage: &Stage) -> Option<usize> {
    match stage.base {
        Base::Stage(j) => Some(j),
        _ => None,
    }
}

fn edges_of(p: &Planner, stages: &[Stage], cmds: &[Command]) -> Result<Vec<Edge>, PlanError> {
    let mut out = Vec::new();
    for c in cmds {
        out.extend(commands::edges(p, stages, c)?);
    }
    Ok(out)
}
