//! A stage's commands: its base's ONBUILD triggers, then its own
//! instructions; and what each reads from other stages or images.

use crate::build::dockerfile::{self, Instruction, Located, OnBuild};
use crate::build::expand::NoEnv;

use super::errors::{PlanError, PlanErrorKind};
use super::{stages, BaseImage, Origin, Planner, Stage};

/// An instruction to run in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Command {
    pub line: usize,
    pub source: String,
    /// A trigger of the base (its line is the stage's FROM).
    pub on_build: bool,
    pub instruction: Instruction,
}

impl Command {
    fn own(located: &Located<Instruction>) -> Command {
        Command {
            line: located.line,
            source: located.source.clone(),
            on_build: false,
            instruction: located.value.clone(),
        }
    }
}

/// What a command reads from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Edge {
    pub origin: Origin,
    pub line: usize,
    /// As written (`--from=` or `from=`).
    pub from: String,
    /// The mount target, for RUN mounts.
    pub mount_target: Option<String>,
}

/// The stage's own instructions.
pub(super) fn own(p: &Planner, index: usize) -> Vec<Command> {
    p.df.stages[index]
        .instructions
        .iter()
        .map(Command::own)
        .collect()
}

/// The triggers an earlier stage used as a base leaves: its ONBUILD
/// instructions, in order.
pub(super) fn stage_triggers(p: &Planner, base: usize, line: usize) -> Vec<Command> {
    p.df.stages[base]
        .instructions
        .iter()
        .filter_map(|i| match &i.value {
            Instruction::OnBuild(OnBuild {
                expression,
                trigger,
            }) => Some(Command {
                line,
                source: expression.clone(),
                on_build: true,
                instruction: (**trigger).clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The triggers of a base image's config.
pub(super) fn image_triggers(
    p: &Planner,
    image: &BaseImage,
    line: usize,
) -> Result<Vec<Command>, PlanError> {
    image
        .on_build
        .iter()
        .map(|trigger| {
            let instruction = dockerfile::parse_trigger(trigger).map_err(|error| {
                p.error(
                    line,
                    PlanErrorKind::Trigger {
                        trigger: trigger.clone(),
                        error,
                    },
                )
            })?;
            Ok(Command {
                line,
                source: trigger.clone(),
                on_build: true,
                instruction,
            })
        })
        .collect()
}

/// What `command` reads: COPY's `--from` (a stage by name or index, or an
/// image, never a variable) and each RUN mount's `from=` (a stage by name,
/// or an image).
pub(super) fn edges(
    p: &Planner,
    stages: &[Stage],
    command: &Command,
) -> Result<Vec<Edge>, PlanError> {
    let at = |kind: PlanErrorKind| p.error(command.line, kind);
    match &command.instruction {
        Instruction::Copy(c) => match &c.from {
            Some(from) => {
                let origin = copy_origin(p, stages, from).map_err(at)?;
                Ok(vec![edge(origin, command.line, from, None)])
            }
            None => Ok(Vec::new()),
        },
        Instruction::Run(r) => r
            .mounts
            .iter()
            .filter_map(|m| m.from().map(|from| (m, from)))
            .map(|(m, from)| {
                let origin = by_name(stages, from)
                    .map_or_else(|| image(from), Ok)
                    .map_err(at)?;
                Ok(edge(origin, command.line, from, Some(mount_target(m))))
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn edge(origin: Origin, line: usize, from: &str, mount_target: Option<String>) -> Edge {
    Edge {
        origin,
        line,
        from: from.to_string(),
        mount_target,
    }
}

fn mount_target(m: &dockerfile::MountSpec) -> String {
    m.fields
        .iter()
        .rev()
        .find(|f| f.key == dockerfile::MountKey::Target)
        .and_then(|f| f.value.as_ref())
        .map(|w| w.0.clone())
        .unwrap_or_default()
}

fn copy_origin(p: &Planner, stages: &[Stage], from: &str) -> Result<Origin, PlanErrorKind> {
    if p.lexer.process_word(from, &NoEnv)? != from {
        return Err(PlanErrorKind::FromExpansion);
    }
    if let Ok(index) = from.parse::<i64>() {
        return match usize::try_from(index) {
            Ok(i) if i < stages.len() => Ok(Origin::Stage(i)),
            _ => Err(PlanErrorKind::StageIndex(index)),
        };
    }
    by_name(stages, from).map_or_else(|| image(from), Ok)
}

/// A stage by name, case-insensitively.
fn by_name(stages: &[Stage], name: &str) -> Option<Origin> {
    let lower = name.to_ascii_lowercase();
    stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(Origin::Stage)
}

fn image(name: &str) -> Result<Origin, PlanErrorKind> {
    if name == "scratch" {
        return Ok(Origin::Scratch);
    }
    stages::normalize(name).map(Origin::Image)
}
