//! COPY and ADD: flags, sources (paths, URLs, heredocs) and destination.

use super::commands::Request;
use super::errors::ParseErrorKind;
use super::flags::{self, spec, Kind, Spec, Value};
use super::heredoc::{self, Heredoc};
use super::instruction::{Add, Copy, Instruction, Source, Word};
use super::words;

type Result<T> = std::result::Result<T, ParseErrorKind>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyFlag {
    From,
    Chown,
    Chmod,
    Link,
    Exclude,
    Parents,
}

const COPY_FLAGS: &[Spec<CopyFlag>] = &[
    spec("chown", CopyFlag::Chown, Kind::Text),
    spec("from", CopyFlag::From, Kind::Text),
    spec("chmod", CopyFlag::Chmod, Kind::Text),
    spec("link", CopyFlag::Link, Kind::Bool),
    spec("exclude", CopyFlag::Exclude, Kind::List),
    spec("parents", CopyFlag::Parents, Kind::Bool),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddFlag {
    Chown,
    Chmod,
    Link,
    KeepGitDir,
    Checksum,
    Unpack,
    Exclude,
}

const ADD_FLAGS: &[Spec<AddFlag>] = &[
    spec("chown", AddFlag::Chown, Kind::Text),
    spec("chmod", AddFlag::Chmod, Kind::Text),
    spec("link", AddFlag::Link, Kind::Bool),
    spec("keep-git-dir", AddFlag::KeepGitDir, Kind::Bool),
    spec("checksum", AddFlag::Checksum, Kind::Text),
    spec("unpack", AddFlag::Unpack, Kind::Bool),
    spec("exclude", AddFlag::Exclude, Kind::List),
];

pub(super) fn copy(req: Request) -> Result<Instruction> {
    let args = arguments(&req, "COPY")?;
    let flags = flags::parse(&req.flags, COPY_FLAGS)?;
    let (sources, dest) = sources_and_dest(args, &req.heredocs, "COPY")?;
    let mut copy = Copy {
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        excludes: Vec::new(),
        sources,
        dest,
    };
    for (flag, value) in flags {
        match flag {
            CopyFlag::From => copy.from = Some(value.text()),
            CopyFlag::Chown => copy.chown = Some(Word(value.text())),
            CopyFlag::Chmod => copy.chmod = Some(Word(value.text())),
            CopyFlag::Link => copy.link = value.is_true(),
            CopyFlag::Exclude => copy.excludes.push(value.text()),
            CopyFlag::Parents => copy.parents = value.is_true(),
        }
    }
    Ok(Instruction::Copy(copy))
}

pub(super) fn add(req: Request) -> Result<Instruction> {
    let args = arguments(&req, "ADD")?;
    let flags = flags::parse(&req.flags, ADD_FLAGS)?;
    let (sources, dest) = sources_and_dest(args, &req.heredocs, "ADD")?;
    let mut add = Add {
        chown: None,
        chmod: None,
        link: false,
        checksum: None,
        unpack: None,
        excludes: Vec::new(),
        sources,
        dest,
    };
    for (flag, value) in flags {
        add_flag(&mut add, flag, value)?;
    }
    Ok(Instruction::Add(add))
}

fn add_flag(add: &mut Add, flag: AddFlag, value: Value) -> Result<()> {
    match flag {
        AddFlag::Chown => add.chown = Some(Word(value.text())),
        AddFlag::Chmod => add.chmod = Some(Word(value.text())),
        AddFlag::Link => add.link = value.is_true(),
        AddFlag::KeepGitDir if value.is_true() => return Err(ParseErrorKind::KeepGitDir),
        AddFlag::KeepGitDir => {}
        AddFlag::Checksum => add.checksum = Some(Word(value.text())),
        AddFlag::Unpack => add.unpack = Some(value.is_true()),
        AddFlag::Exclude => add.excludes.push(value.text()),
    }
    Ok(())
}

/// The JSON list or the white-space separated words; at least a source
/// and a destination.
fn arguments(req: &Request, name: &'static str) -> Result<Vec<String>> {
    let args = match words::json_array(&req.rest)? {
        Some(list) => list,
        None => words::plain_words(&req.rest),
    };
    if args.len() < 2 {
        return Err(ParseErrorKind::NoDestination(name));
    }
    Ok(args)
}

/// The sources (heredoc markers become inline files with the bodies read
/// after the line) and the destination, which cannot be a heredoc.
fn sources_and_dest(
    mut args: Vec<String>,
    heredocs: &[Heredoc],
    name: &'static str,
) -> Result<(Vec<Source>, Word)> {
    let dest = args.pop().unwrap_or_default();
    if matches!(heredoc::marker(&dest), Ok(Some(_))) {
        return Err(ParseErrorKind::HeredocDestination(name));
    }
    let sources = args.into_iter().map(|src| source(src, heredocs)).collect();
    Ok((sources, Word(dest)))
}

fn source(src: String, heredocs: &[Heredoc]) -> Source {
    let Ok(Some(marker)) = heredoc::marker(&src) else {
        return Source::Path(Word(src));
    };
    let content = heredocs
        .iter()
        .find(|h| h.name == marker.name)
        .map(|h| h.content.clone())
        .unwrap_or_default();
    Source::Heredoc(Heredoc { content, ..marker })
}
