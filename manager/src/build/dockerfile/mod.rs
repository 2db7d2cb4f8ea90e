//! Dockerfiles as BuildKit's dockerfile frontend reads them, to typed
//! instructions: `lines` finds the logical lines (directives, comments,
//! continuations, heredoc bodies), `words` and `flags` split each,
//! `commands`, `copy`, `run` and `healthcheck` type them. Nothing is
//! expanded here: [`Word`]s are expanded by the planner.

mod commands;
mod copy;
mod errors;
mod flags;
mod healthcheck;
mod heredoc;
mod instruction;
mod lines;
mod mount;
mod run;
mod words;

pub use errors::{ParseError, ParseErrorKind, Warning};
pub use flags::FlagError;
pub use heredoc::Heredoc;
pub use instruction::{
    Add, ArgDecl, CommandLine, Copy, From, HealthConfig, Healthcheck, Instruction, KeyValue,
    Located, Network, OnBuild, Run, Security, Source, Word,
};
pub use mount::{Mount, MountError, MountField, MountKey, MountSpec, MountType, Sharing};

use commands::Parsed;

/// A parsed Dockerfile: the ARGs before the first FROM, then the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name errors give (`Dockerfile`, or the `-f` path).
    pub file: String,
    /// `# escape=` (a backslash by default).
    pub escape: char,
    /// `# syntax=` as written; rbox build is its own frontend and only
    /// records it.
    pub syntax: Option<String>,
    /// `# check=` as written.
    pub check: Option<String>,
    /// ARG instructions before the first FROM: usable in FROM lines, and in
    /// a stage that declares them again.
    pub meta_args: Vec<Located<Vec<ArgDecl>>>,
    pub stages: Vec<StageDef>,
    pub warnings: Vec<Warning>,
}

/// A FROM and the instructions after it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDef {
    pub from: Located<From>,
    pub instructions: Vec<Located<Instruction>>,
}

/// Parse the text of a Dockerfile; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let error = |line: usize, kind: ParseErrorKind| ParseError {
        file: file.to_string(),
        line,
        kind,
    };
    if text.is_empty() {
        return Err(error(1, ParseErrorKind::Empty));
    }
    let lines =
        lines::read(text, commands::may_open_heredocs).map_err(|(line, kind)| error(line, kind))?;
    if lines.lines.is_empty() {
        return Err(error(lines.count, ParseErrorKind::NoInstructions));
    }
    let mut df = Dockerfile {
        file: file.to_string(),
        escape: lines.escape,
        syntax: lines.syntax,
        check: lines.check,
        meta_args: Vec::new(),
        stages: Vec::new(),
        warnings: lines.warnings,
    };
    for line in lines.lines {
        let start = line.start;
        let parsed =
            commands::parse(&line.text, df.escape, line.heredocs).map_err(|k| error(start, k))?;
        let place = Place {
            line: line.start,
            end_line: line.end,
            source: line.text.trim().to_string(),
        };
        df.add(parsed, &place).map_err(|k| error(start, k))?;
    }
    Ok(df)
}

/// An ONBUILD trigger as an image config keeps it, read as one
/// instruction (with the default escape character, as BuildKit reads it).
pub fn parse_trigger(text: &str) -> Result<Instruction, ParseErrorKind> {
    let lines = lines::read(text, commands::may_open_heredocs).map_err(|(_, kind)| kind)?;
    let [line] = <[lines::Logical; 1]>::try_from(lines.lines)
        .map_err(|_| ParseErrorKind::TriggerNotSingle)?;
    match commands::parse(&line.text, '\\', line.heredocs)? {
        Parsed::Instruction(i) => Ok(i),
        Parsed::From(_) => Err(ParseErrorKind::OnBuildTrigger("FROM".to_string())),
    }
}

/// `word` as a heredoc marker (`<<EOF`, `<<-"EOF"`), if it is one.
pub fn heredoc_marker(word: &str) -> Option<Heredoc> {
    heredoc::marker(word).ok().flatten()
}

/// Where an instruction is.
struct Place {
    line: usize,
    end_line: usize,
    source: String,
}

impl Place {
    fn at<T>(&self, value: T) -> Located<T> {
        Located {
            line: self.line,
            end_line: self.end_line,
            source: self.source.clone(),
            value,
        }
    }
}

impl Dockerfile {
    /// A FROM starts a stage; an ARG before any is a meta ARG; anything
    /// else needs a stage.
    fn add(&mut self, parsed: Parsed, place: &Place) -> Result<(), ParseErrorKind> {
        let instruction = match parsed {
            Parsed::From(from) => {
                self.stages.push(StageDef {
                    from: place.at(from),
                    instructions: Vec::new(),
                });
                return Ok(());
            }
            Parsed::Instruction(i) => i,
        };
        match (self.stages.last_mut(), instruction) {
            (Some(stage), i) => stage.instructions.push(place.at(i)),
            (None, Instruction::Arg(decls)) => self.meta_args.push(place.at(decls)),
            (None, _) => return Err(ParseErrorKind::NoStage),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
