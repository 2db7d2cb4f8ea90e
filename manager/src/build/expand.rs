//! Docker's word expansion, as BuildKit's shell lexer
//! (`frontend/dockerfile/shell/lex.go`) does it: quotes, the escape
//! character, `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
//! `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`, and BuildKit's
//! `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/repl}` and `${VAR//pat/repl}`.
//!
//! The planner applies it where BuildKit does (ADD, COPY, ENV, EXPOSE, FROM,
//! LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults and the flags of
//! those, RUN's `--mount` values), never to the command of RUN, CMD or
//! ENTRYPOINT, which the shell expands.
//!
//! As in BuildKit: positional (`$1`) and special (`$@`, `$$`, `$?`...)
//! parameters are never set; `$` before anything that is not a name stays
//! `$`; an escaped character is taken literally (the escape is dropped)
//! outside quotes; inside double quotes the escape only quotes `"`, `$` and
//! itself; nothing can be escaped inside single quotes.

use std::collections::{BTreeMap, BTreeSet};

/// The variables an expansion reads.
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {reason}")]
pub struct ExpandError {
    pub word: String,
    pub reason: ExpandErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${NAME?message}` or `${NAME:?message}`
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {why}")]
    BadPattern { pattern: String, why: String },
}

type Result<T> = std::result::Result<T, ExpandErrorKind>;

/// An expansion and the variables it looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// Variables that were set and used.
    pub matched: BTreeSet<String>,
    /// Variables that were referred to but not set.
    pub unmatched: BTreeSet<String>,
}

/// The lexer's settings; `Lexer::new(escape)` is the one Dockerfile
/// instructions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_quotes: bool,
    skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
        }
    }

    /// Keep quote characters in the result.
    pub fn raw_quotes(mut self) -> Lexer {
        self.raw_quotes = true;
        self
    }

    /// Keep escape characters in the result.
    pub fn raw_escapes(mut self) -> Lexer {
        self.raw_escapes = true;
        self
    }

    /// Treat quotes as ordinary characters (heredoc contents).
    pub fn skip_quotes(mut self) -> Lexer {
        self.skip_quotes = true;
        self
    }

    /// Leave references to unset variables as they are written.
    pub fn skip_unset(mut self) -> Lexer {
        self.skip_unset = true;
        self
    }

    /// `word` expanded as one word (spaces kept).
    pub fn process_word(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> std::result::Result<String, ExpandError> {
        self.process_word_with_matches(word, env).map(|e| e.value)
    }

    /// `word` expanded as one word, with the variables it used.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> std::result::Result<Expanded, ExpandError> {
        let mut scan = Scan::new(self, word, env);
        let (value, _) = scan.run(word)?;
        Ok(Expanded {
            value,
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }

    /// `word` expanded, then split into words at unquoted white space (the
    /// splitting happens after expansion, as in BuildKit).
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> std::result::Result<Vec<String>, ExpandError> {
        Scan::new(self, word, env).run(word).map(|(_, words)| words)
    }
}

/// Words being split: white space ends a word unless it came from quotes.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if !ch.is_whitespace() {
            self.add_raw_char(ch);
        } else if self.in_word && !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// One expansion in progress.
struct Scan<'a> {
    lexer: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Scan<'a> {
    fn new(lexer: &'a Lexer, word: &str, env: &'a dyn Env) -> Scan<'a> {
        Scan {
            lexer,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: lexer.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn run(&mut self, word: &str) -> std::result::Result<(String, Vec<String>), ExpandError> {
        let raw = self.lexer.raw_escapes;
        self.stop_on(None, raw).map_err(|reason| ExpandError {
            word: word.to_string(),
            reason,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Process up to `stop` (consumed) or the end; returns the text and its
    /// words. `raw_escapes` holds for this level only.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>)> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    words.add_string(&value);
                    result.push_str(&value);
                }
                '<' => {
                    let value = self.possible_heredoc();
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                '\'' | '"' if !self.lexer.skip_quotes => {
                    let value = self.quoted(ch)?;
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                _ => {
                    if !self.plain_char(&mut result, &mut words) {
                        break;
                    }
                }
            }
        }
        match stop {
            Some(c) => Err(ExpandErrorKind::Unterminated(c)),
            None => Ok((result, words.finish())),
        }
    }

    /// An ordinary character, or the escape character and the one it
    /// escapes; false at an escape that ends the input (it is dropped).
    fn plain_char(&mut self, result: &mut String, words: &mut Words) -> bool {
        let Some(ch) = self.next() else {
            return false;
        };
        if ch != self.lexer.escape {
            words.add_char(ch);
            result.push(ch);
            return true;
        }
        if self.raw_escapes {
            words.add_raw_char(ch);
            result.push(ch);
        }
        match self.next() {
            Some(escaped) => {
                words.add_raw_char(escaped);
                result.push(escaped);
                true
            }
            None => false,
        }
    }

    fn quoted(&mut self, quote: char) -> Result<String> {
        if quote == '\'' {
            self.single_quote()
        } else {
            self.double_quote()
        }
    }

    /// Everything up to the next `'` literally; nothing can be escaped.
    fn single_quote(&mut self) -> Result<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Up to the next unescaped `"`, expanding `$`; the escape character
    /// quotes only `"`, `$` and itself and stays before anything else.
    fn double_quote(&mut self) -> Result<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(_) => self.double_quoted_char(&mut out),
            }
        }
    }

    fn double_quoted_char(&mut self, out: &mut String) {
        let Some(mut ch) = self.next() else {
            return;
        };
        if ch == self.lexer.escape {
            if self.raw_escapes {
                out.push(ch);
            }
            match self.peek() {
                // the escape at the very end is dropped; the quote is then unterminated
                None => return,
                Some(c) if c == '"' || c == '$' || c == self.lexer.escape => {
                    self.next();
                    ch = c;
                }
                Some(_) => {}
            }
        }
        out.push(ch);
    }

    /// `<<` and the blanks after it stay together, so that a heredoc
    /// marker `<< EOF` is one word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn dollar(&mut self) -> Result<String> {
        self.next();
        if self.peek() != Some('{') {
            return Ok(self.simple_variable());
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(ExpandErrorKind::MissingBrace),
            Some('}') => Ok(self.braced_variable(&name)),
            Some(':') => {
                let modifier = self.next();
                let written = format!(":{}", modifier.map(String::from).unwrap_or_default());
                self.modifier(&name, modifier, written, true)
            }
            Some(m @ ('+' | '-' | '?' | '#' | '%')) => {
                self.modifier(&name, Some(m), m.to_string(), false)
            }
            Some('/') => self.replace(&name),
            Some(other) => Err(ExpandErrorKind::UnsupportedModifier(other.to_string())),
        }
    }

    /// `$NAME`; a `$` that no name follows is itself.
    fn simple_variable(&mut self) -> String {
        let name = self.name();
        if name.is_empty() {
            return "$".to_string();
        }
        match self.get_env(&name) {
            Some(v) => v,
            None if self.lexer.skip_unset => format!("${name}"),
            None => String::new(),
        }
    }

    fn braced_variable(&mut self, name: &str) -> String {
        match self.get_env(name) {
            Some(v) => v,
            None if self.lexer.skip_unset => format!("${{{name}}}"),
            None => String::new(),
        }
    }

    /// `${NAME<written>word}` where `written` is the modifier as written
    /// (`:-`, `-`, `:+`, `#`...) and `null_is_unset` says it had a colon.
    fn modifier(
        &mut self,
        name: &str,
        modifier: Option<char>,
        written: String,
        null_is_unset: bool,
    ) -> Result<String> {
        let trims = matches!(modifier, Some('#' | '%'));
        if null_is_unset && trims {
            return Err(ExpandErrorKind::UnsupportedModifier(written));
        }
        let word = self.word_until('}', trims, ExpandErrorKind::MissingBrace)?;
        let value = self.get_env(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{written}{word}}}"));
        }
        let empty = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
        match modifier {
            Some('-') if empty => Ok(word),
            Some('-') => Ok(value.unwrap_or_default()),
            Some('+') if empty => Ok(String::new()),
            Some('+') => Ok(word),
            Some('?') => required(name, value, null_is_unset, word),
            Some(c @ ('#' | '%')) => trim(c, &word, &value.unwrap_or_default()),
            _ => Err(ExpandErrorKind::UnsupportedModifier(written)),
        }
    }

    /// The text up to `stop`; at the end of input, `at_end` is the error.
    fn word_until(&mut self, stop: char, raw: bool, at_end: ExpandErrorKind) -> Result<String> {
        match self.stop_on(Some(stop), raw) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(at_end),
            Err(e) => Err(e),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Result<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = self.word_until('/', true, ExpandErrorKind::MissingSlash)?;
        let replacement = self.word_until('}', true, ExpandErrorKind::MissingBrace)?;
        let value = self.get_env(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = pattern_regex(&pattern, true, false)?;
        let with = regex::NoExpand(&replacement);
        Ok(if all {
            re.replace_all(&value, with).into_owned()
        } else {
            re.replace(&value, with).into_owned()
        })
    }

    /// A variable name: letters, digits and `_`; or all the digits of a
    /// positional parameter; or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// POSIX special parameters: never set in a Dockerfile.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn required(
    name: &str,
    value: Option<String>,
    null_is_unset: bool,
    word: String,
) -> Result<String> {
    let fail = |default: &str| {
        let message = if word.is_empty() {
            default.to_string()
        } else {
            word.clone()
        };
        Err(ExpandErrorKind::Required {
            name: name.to_string(),
            message,
        })
    };
    match value {
        None => fail("is not allowed to be unset"),
        Some(v) if null_is_unset && v.is_empty() => fail("is not allowed to be empty"),
        Some(v) => Ok(v),
    }
}

/// `#`/`##` removes the shortest/longest matching prefix, `%`/`%%` the
/// shortest/longest matching suffix.
fn trim(op: char, word: &str, value: &str) -> Result<String> {
    let (greedy, pattern) = match word.strip_prefix(op) {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    if op == '#' {
        return trim_prefix(pattern, value, greedy);
    }
    // a leftmost search over the reversed value finds the rightmost suffix
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String> {
    let re = pattern_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// The pattern reversed, an escape staying before the character it escapes.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            units.push(format!("\\{}", chars[i + 1]));
            i += 2;
        } else {
            units.push(chars[i].to_string());
            i += 1;
        }
    }
    units.into_iter().rev().collect()
}

/// A shell pattern (`*`, `?`, `\` escapes; no bracket expressions) as a
/// regular expression.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex> {
    let bad = |why: String| ExpandErrorKind::BadPattern {
        pattern: pattern.to_string(),
        why,
    };
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            // `\}` and `\/` are written to get past the ${} syntax only
            '\\' if matches!(chars.peek(), Some('}' | '/')) => {}
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => out.push_str(&regex::escape(&e.to_string())),
                other => {
                    return Err(bad(format!(
                        "invalid escape '\\{}'",
                        other.unwrap_or('\u{fffd}')
                    )))
                }
            },
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex::Regex::new(&out).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests;
