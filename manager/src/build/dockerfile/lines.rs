//! From the text of a Dockerfile to its logical lines, as BuildKit's
//! `parser/parser.go` reads it: parser directives at the top (`# syntax=`,
//! `# escape=`, `# check=`), comments, the escape character ending a line to
//! continue it (also on a line of its own), comments and empty lines inside
//! a continuation skipped (the empty ones with a warning), and the bodies of
//! the heredocs an instruction opens.

use super::errors::{ParseErrorKind, Warning};
use super::heredoc::{self, Heredoc};

/// One instruction's text and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Logical {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// The logical lines and the directives that came before them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lines {
    pub escape: char,
    pub syntax: Option<String>,
    pub check: Option<String>,
    pub lines: Vec<Logical>,
    pub warnings: Vec<Warning>,
    /// Number of physical lines.
    pub count: usize,
}

/// An error and the line it is on.
pub(super) type LineError = (usize, ParseErrorKind);

/// The logical lines of `text`; `wants_heredocs(line, escape)` says whether
/// an instruction may open heredocs (RUN, COPY, ADD, not in JSON form).
pub(super) fn read(text: &str, wants_heredocs: fn(&str, char) -> bool) -> Result<Lines, LineError> {
    let mut reader = Reader {
        physical: text.split_inclusive('\n').collect(),
        next: 0,
        directives: Directives::default(),
        out: Lines {
            escape: '\\',
            syntax: None,
            check: None,
            lines: Vec::new(),
            warnings: Vec::new(),
            count: 0,
        },
    };
    while reader.next < reader.physical.len() {
        reader.logical(wants_heredocs)?;
    }
    reader.out.count = reader.physical.len();
    Ok(reader.out)
}

struct Reader<'a> {
    physical: Vec<&'a str>,
    /// index of the next physical line; also the number of lines read
    next: usize,
    directives: Directives,
    out: Lines,
}

impl<'a> Reader<'a> {
    fn take(&mut self) -> Option<&'a str> {
        let line = self.physical.get(self.next).copied()?;
        self.next += 1;
        Some(line)
    }

    /// Reads the next instruction (and what precedes it) if there is one.
    fn logical(&mut self, wants_heredocs: fn(&str, char) -> bool) -> Result<(), LineError> {
        let Some(raw) = self.take() else {
            return Ok(());
        };
        let raw = if self.next == 1 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let first = self.process(raw, true)?;
        let start = self.next;
        let (first, mut done) = trim_continuation(first, self.out.escape);
        if done && first.is_empty() {
            return Ok(());
        }
        let mut text = first.to_string();
        let mut empty_continuation = false;
        while !done {
            let Some(raw) = self.take() else { break };
            let line = self.process(raw, false)?;
            if is_comment(raw) {
                continue;
            }
            if line.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = trim_continuation(line, self.out.escape);
            text.push_str(part);
            done = end;
        }
        if empty_continuation {
            self.out.warnings.push(Warning {
                line: self.next,
                message: format!("Empty continuation line found in: {text}"),
            });
        }
        let heredocs = self.heredocs(&text, start, wants_heredocs)?;
        self.out.lines.push(Logical {
            start,
            end: self.next,
            text,
            heredocs,
        });
        Ok(())
    }

    /// The line without its newline (and its leading blanks when it starts
    /// an instruction), checked for a directive; empty if a comment.
    fn process(&mut self, raw: &'a str, strip_left: bool) -> Result<&'a str, LineError> {
        let mut line = raw.trim_end_matches(['\r', '\n']);
        if strip_left {
            line = line.trim_start();
        }
        let at = self.next;
        if let Some((key, value)) = self.directives.parse(line).map_err(|e| (at, e))? {
            self.directive(&key, value).map_err(|e| (at, e))?;
        }
        Ok(if is_comment(line) { "" } else { line })
    }

    fn directive(&mut self, key: &str, value: String) -> Result<(), ParseErrorKind> {
        match key {
            "escape" => self.out.escape = escape_token(&value)?,
            "syntax" => self.out.syntax = Some(value),
            _ => self.out.check = Some(value),
        }
        Ok(())
    }

    /// The heredocs `text` opens, with their bodies read from the lines
    /// that follow.
    fn heredocs(
        &mut self,
        text: &str,
        start: usize,
        wants: fn(&str, char) -> bool,
    ) -> Result<Vec<Heredoc>, LineError> {
        if !text.contains("<<") || !wants(text, self.out.escape) {
            return Ok(Vec::new());
        }
        let mut docs =
            heredoc::markers_in_line(text).map_err(|e| (start, ParseErrorKind::Heredoc(e)))?;
        for doc in &mut docs {
            doc.content = self
                .body(doc)
                .ok_or((start, ParseErrorKind::UnterminatedHeredoc))?;
        }
        Ok(docs)
    }

    /// The lines up to the heredoc's terminator (with `<<-`, tabs before
    /// it are ignored); `None` at the end of the file.
    fn body(&mut self, doc: &Heredoc) -> Option<String> {
        let mut content = String::new();
        loop {
            let raw = self.take()?;
            let mut candidate = raw.trim_end_matches(['\r', '\n']);
            if doc.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == doc.name {
                return Some(content);
            }
            content.push_str(raw);
        }
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A line ending with the escape character (and blanks) continues on the
/// next one: the escape and blanks go. An escaped escape does not continue.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

fn escape_token(value: &str) -> Result<char, ParseErrorKind> {
    match value {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        _ => Err(ParseErrorKind::BadEscape(value.to_string())),
    }
}

/// BuildKit's directive parser: `# key=value` lines count only before
/// anything else (a blank line, another comment or an instruction ends
/// them), each key at most once.
#[derive(Default)]
struct Directives {
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    fn parse(&mut self, line: &str) -> Result<Option<(String, String)>, ParseErrorKind> {
        if self.done {
            return Ok(None);
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(None);
        };
        if self.seen.contains(&key) {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        self.seen.push(key.clone());
        Ok(Some((key, value)))
    }
}

/// `#` `key` `=` `value` with a known key (syntax, escape, check).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    let (name, after) = rest.split_at(name_len);
    let go_space = ['\t', '\n', '\x0c', '\r', ' '];
    let value = after.trim_start_matches(go_space).strip_prefix('=')?;
    let value = value.trim_matches(go_space);
    let key = name.to_ascii_lowercase();
    let known = matches!(key.as_str(), "syntax" | "escape" | "check");
    (known && !value.is_empty()).then(|| (key, value.to_string()))
}

#[cfg(test)]
mod tests;
