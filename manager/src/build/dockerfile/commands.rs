//! One logical line to a typed instruction, as BuildKit's
//! `instructions/parse.go` reads each: FROM, ARG, ENV, LABEL, EXPOSE,
//! VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER and ONBUILD here; COPY and
//! ADD in `copy.rs`; RUN, CMD, ENTRYPOINT and SHELL in `run.rs`;
//! HEALTHCHECK in `healthcheck.rs`.

use super::errors::ParseErrorKind;
use super::flags::{self, Kind};
use super::heredoc::Heredoc;
use super::instruction::{ArgDecl, From, Instruction, KeyValue, OnBuild, Word};
use super::words::{self, Split};
use super::{copy, healthcheck, run};

type Result<T> = std::result::Result<T, ParseErrorKind>;

/// A line split into instruction, flags and the rest, with what the rest
/// may need.
pub(super) struct Request {
    pub command: String,
    pub flags: Vec<String>,
    pub rest: String,
    pub escape: char,
    pub heredocs: Vec<Heredoc>,
    /// The line as written.
    pub original: String,
}

impl Request {
    fn new(line: &str, escape: char, heredocs: Vec<Heredoc>) -> Request {
        let Split {
            command,
            flags,
            rest,
        } = words::split_command(line, escape);
        Request {
            command,
            flags,
            rest,
            escape,
            heredocs,
            original: line.to_string(),
        }
    }

    /// The rest as one literal argument, for the instructions that take
    /// exactly one.
    fn single(&self, name: &'static str) -> Result<Word> {
        if self.rest.is_empty() {
            return Err(ParseErrorKind::ExactlyOneArgument(name));
        }
        Ok(Word(self.rest.clone()))
    }

    /// The instruction takes no flags.
    pub fn no_flags(&self) -> Result<()> {
        flags::parse::<()>(&self.flags, &[])?;
        Ok(())
    }
}

/// What a line is: the start of a stage, or an instruction in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Parsed {
    From(From),
    Instruction(Instruction),
}

pub(super) fn parse(line: &str, escape: char, heredocs: Vec<Heredoc>) -> Result<Parsed> {
    let req = Request::new(line, escape, heredocs);
    if req.command.eq_ignore_ascii_case("from") {
        return from(&req).map(Parsed::From);
    }
    instruction(req).map(Parsed::Instruction)
}

/// Whether a line may open heredocs: RUN, COPY and ADD (also as ONBUILD
/// triggers), not in JSON form.
pub(super) fn may_open_heredocs(line: &str, escape: char) -> bool {
    let split = words::split_command(line, escape);
    match split.command.to_ascii_lowercase().as_str() {
        "onbuild" => may_open_heredocs(&split.rest, escape),
        "run" | "copy" | "add" => !matches!(words::json_array(&split.rest), Ok(Some(_))),
        _ => false,
    }
}

fn instruction(req: Request) -> Result<Instruction> {
    match req.command.to_ascii_lowercase().as_str() {
        "add" => copy::add(req),
        "arg" => arg(&req),
        "cmd" => run::cmd(&req).map(Instruction::Cmd),
        "copy" => copy::copy(req),
        "entrypoint" => run::cmd(&req).map(Instruction::Entrypoint),
        "env" => name_values(&req, "ENV").map(Instruction::Env),
        "expose" => expose(&req),
        "healthcheck" => healthcheck::parse(&req),
        "label" => name_values(&req, "LABEL").map(Instruction::Label),
        "maintainer" => maintainer(&req),
        "onbuild" => onbuild(req),
        "run" => run::run(req),
        "shell" => run::shell(&req),
        "stopsignal" => simple(&req, "STOPSIGNAL").map(Instruction::StopSignal),
        "user" => simple(&req, "USER").map(Instruction::User),
        "volume" => volume(&req),
        "workdir" => simple(&req, "WORKDIR").map(Instruction::Workdir),
        _ => Err(ParseErrorKind::UnknownInstruction(req.command)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FromFlag;

fn from(req: &Request) -> Result<From> {
    let args = words::plain_words(&req.rest);
    let name = match args.as_slice() {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(stage_name(name)?),
        _ => return Err(ParseErrorKind::FromArguments),
    };
    let flags = flags::parse(&req.flags, &[flags::spec("platform", FromFlag, Kind::Text)])?;
    Ok(From {
        image: Word(args[0].clone()),
        platform: flags.into_iter().next().map(|(_, v)| Word(v.text())),
        name,
    })
}

/// `^[a-z][a-z0-9-_.]*$` after lowercasing.
fn stage_name(name: &str) -> Result<String> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !(first_ok && rest_ok) {
        return Err(ParseErrorKind::StageName(name.to_string()));
    }
    Ok(lower)
}

/// `ARG A B=2 C="x y"`: names alone or with a default.
fn arg(req: &Request) -> Result<Instruction> {
    let words = words::quoted_words(&req.rest, req.escape);
    if words.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument("ARG"));
    }
    req.no_flags()?;
    let decl = |w: String| match w.split_once('=') {
        Some(("", _)) => Err(ParseErrorKind::BlankName("ARG")),
        Some((name, value)) => Ok(ArgDecl {
            name: name.to_string(),
            default: Some(Word(value.to_string())),
        }),
        None => Ok(ArgDecl {
            name: w,
            default: None,
        }),
    };
    words
        .into_iter()
        .map(decl)
        .collect::<Result<_>>()
        .map(Instruction::Arg)
}

/// ENV and LABEL: `KEY value` (the old form: one pair, the value is the rest
/// of the line) or `K=V K2="v 2"...`.
fn name_values(req: &Request, name: &'static str) -> Result<Vec<KeyValue>> {
    let words = words::quoted_words(&req.rest, req.escape);
    let pairs = match words.first() {
        None => Vec::new(),
        Some(first) if first.contains('=') => {
            words.iter().map(|w| pair(w)).collect::<Result<_>>()?
        }
        Some(_) => vec![legacy_pair(&req.rest, name)?],
    };
    req.no_flags()?;
    if pairs.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument(name));
    }
    if pairs.iter().any(|p| p.key.0.is_empty()) {
        return Err(ParseErrorKind::BlankName(name));
    }
    Ok(pairs)
}

fn pair(word: &str) -> Result<KeyValue> {
    let (key, value) = word
        .split_once('=')
        .ok_or_else(|| ParseErrorKind::MissingEquals(word.to_string()))?;
    Ok(KeyValue {
        key: Word(key.to_string()),
        value: Word(value.to_string()),
        legacy: false,
    })
}

fn legacy_pair(rest: &str, name: &'static str) -> Result<KeyValue> {
    let sep = |c: char| matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ');
    let Some(i) = rest.find(sep) else {
        return Err(ParseErrorKind::TwoArguments(name));
    };
    Ok(KeyValue {
        key: Word(rest[..i].to_string()),
        value: Word(rest[i..].trim_start_matches(sep).to_string()),
        legacy: true,
    })
}

/// `EXPOSE 80 443/tcp 53/udp`, kept in BuildKit's (sorted) order.
fn expose(req: &Request) -> Result<Instruction> {
    let mut ports = words::plain_words(&req.rest);
    if ports.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument("EXPOSE"));
    }
    req.no_flags()?;
    ports.sort();
    Ok(Instruction::Expose(ports.into_iter().map(Word).collect()))
}

/// `VOLUME /a /b` or `VOLUME ["/a", "/b"]`
fn volume(req: &Request) -> Result<Instruction> {
    let paths = match words::json_array(&req.rest)? {
        Some(list) => list,
        None => words::plain_words(&req.rest),
    };
    if paths.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument("VOLUME"));
    }
    req.no_flags()?;
    let trimmed = |p: String| match p.trim() {
        "" => Err(ParseErrorKind::EmptyVolume),
        t => Ok(Word(t.to_string())),
    };
    paths
        .into_iter()
        .map(trimmed)
        .collect::<Result<_>>()
        .map(Instruction::Volume)
}

/// USER, WORKDIR, STOPSIGNAL: the rest of the line is the one argument.
fn simple(req: &Request, name: &'static str) -> Result<Word> {
    let word = req.single(name)?;
    req.no_flags()?;
    Ok(word)
}

fn maintainer(req: &Request) -> Result<Instruction> {
    let word = req.single("MAINTAINER")?;
    req.no_flags()?;
    Ok(Instruction::Maintainer(word.0))
}

/// `ONBUILD INSTRUCTION`: ONBUILD, FROM and MAINTAINER cannot be triggers.
/// The trigger is parsed now (BuildKit only parses it in the build that
/// uses the image, so a bad trigger fails there instead of here).
fn onbuild(req: Request) -> Result<Instruction> {
    if req.rest.is_empty() {
        return Err(ParseErrorKind::AtLeastOneArgument("ONBUILD"));
    }
    req.no_flags()?;
    let trigger = Request::new(&req.rest, req.escape, req.heredocs.clone());
    match trigger.command.to_ascii_uppercase().as_str() {
        "ONBUILD" => return Err(ParseErrorKind::OnBuildChain),
        t @ ("FROM" | "MAINTAINER") => return Err(ParseErrorKind::OnBuildTrigger(t.to_string())),
        _ => {}
    }
    let expression = onbuild_expression(&req.original, &req.heredocs);
    Ok(Instruction::OnBuild(OnBuild {
        expression,
        trigger: Box::new(instruction(trigger)?),
    }))
}

/// The line without `ONBUILD`, heredoc bodies appended as the image config
/// keeps them.
fn onbuild_expression(original: &str, heredocs: &[Heredoc]) -> String {
    let trimmed = original.trim_start();
    let after = trimmed
        .get(..7)
        .filter(|w| w.eq_ignore_ascii_case("onbuild"))
        .map_or(trimmed, |_| &trimmed[7..]);
    let mut expression = after.trim_start().to_string();
    for doc in heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    expression
}
