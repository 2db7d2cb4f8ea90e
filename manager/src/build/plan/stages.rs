//! Each FROM resolved in the global scope: the base (an earlier stage by
//! name, `scratch`, or an image), the platform, and the target stage.

use crate::build::dockerfile::{Located, StageDef};
use crate::reference::Reference;

use super::errors::{PlanError, PlanErrorKind};
use super::{Base, Planner, Platform, Stage};

/// Every stage with its base and platform; FROM lines see only the global
/// ARGs (BuildKit resolves all stages, needed or not).
pub(super) fn resolve(p: &Planner) -> Result<Vec<Stage>, PlanError> {
    if p.df.stages.is_empty() {
        let line = p.df.meta_args.last().map_or(1, |a| a.line);
        return Err(p.error(line, PlanErrorKind::NoStages));
    }
    check_duplicates(p, &p.df.stages)?;
    let mut stages: Vec<Stage> = Vec::with_capacity(p.df.stages.len());
    for (index, def) in p.df.stages.iter().enumerate() {
        let stage = one(p, index, def, &stages)?;
        stages.push(stage);
    }
    Ok(stages)
}

fn one(p: &Planner, index: usize, def: &StageDef, earlier: &[Stage]) -> Result<Stage, PlanError> {
    let from = &def.from;
    let at = |kind: PlanErrorKind| p.error(from.line, kind);
    let image = from.value.image.as_str();
    let name = p
        .lexer
        .process_word(image, &p.globals)
        .map_err(|e| at(e.into()))?;
    if name.is_empty() {
        return Err(at(PlanErrorKind::BlankBase(image.to_string())));
    }
    let mut platform = platform(p, from)?;
    let base = match earlier
        .iter()
        .position(|s| s.name.as_deref() == Some(name.as_str()))
    {
        Some(j) => {
            platform = earlier[j].platform.clone();
            Base::Stage(j)
        }
        None if name == "scratch" => Base::Scratch,
        None => Base::Image(normalize(&name).map_err(at)?),
    };
    Ok(Stage {
        index,
        name: from.value.name.clone(),
        line: from.line,
        base,
        platform,
        needed: false,
        deps: Vec::new(),
        env: Vec::new(),
        steps: Vec::new(),
    })
}

/// `--platform=` expanded in the global scope, else the target platform.
fn platform(
    p: &Planner,
    from: &Located<crate::build::dockerfile::From>,
) -> Result<Platform, PlanError> {
    let at = |kind: PlanErrorKind| p.error(from.line, kind);
    let Some(word) = &from.value.platform else {
        return Ok(p
            .opts
            .platform
            .clone()
            .unwrap_or_else(|| p.opts.build_platform.clone()));
    };
    let value = p
        .lexer
        .process_word(word.as_str(), &p.globals)
        .map_err(|e| at(e.into()))?;
    if value.is_empty() {
        return Err(at(PlanErrorKind::EmptyPlatform(word.0.clone())));
    }
    Platform::parse(&value).map_err(|_| at(PlanErrorKind::BadPlatform(value)))
}

/// An image reference as Docker normalizes it (`alpine` is
/// `docker.io/library/alpine:latest`).
pub(super) fn normalize(name: &str) -> Result<String, PlanErrorKind> {
    Reference::parse(name)
        .map(|r| r.to_string())
        .map_err(|e| PlanErrorKind::BadReference {
            name: name.to_string(),
            why: e.to_string(),
        })
}

/// Stage names must be unique (BuildKit only warns and takes the last).
fn check_duplicates(p: &Planner, defs: &[StageDef]) -> Result<(), PlanError> {
    for (i, def) in defs.iter().enumerate() {
        let Some(name) = &def.from.value.name else {
            continue;
        };
        let first = defs[..i]
            .iter()
            .find(|d| d.from.value.name.as_ref() == Some(name));
        if let Some(first) = first {
            return Err(p.error(
                def.from.line,
                PlanErrorKind::DuplicateStage {
                    name: name.clone(),
                    first: first.from.line,
                },
            ));
        }
    }
    Ok(())
}

/// The stage `--target` names (case-insensitively), else the last one.
pub(super) fn target(p: &Planner, stages: &[Stage]) -> Result<usize, PlanError> {
    let last = stages.len().saturating_sub(1);
    let Some(wanted) = &p.opts.target else {
        return Ok(last);
    };
    let lower = wanted.to_ascii_lowercase();
    let line = stages.last().map_or(1, |s| s.line);
    stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
        .ok_or_else(|| p.error(line, PlanErrorKind::TargetNotFound(wanted.clone())))
}
