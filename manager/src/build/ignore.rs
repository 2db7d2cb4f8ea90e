//! `.dockerignore` with Docker's rules (moby/patternmatcher and its
//! `ignorefile` reader, tonistiigi/fsutil's walker):
//!
//! - one pattern a line; a line starting with `#` is a comment; blanks
//!   around a pattern go; each pattern is cleaned like Go's `filepath.Clean`
//!   and a leading `/` is dropped (`/a` is `a`);
//! - `*` is any run of characters but `/`, `?` one character but `/`,
//!   `[...]` a class, `\` escapes; `**` any number of directories (`**/a`,
//!   `a/**`, `a/**/b`);
//! - `!pattern` re-includes what earlier patterns excluded; the last
//!   pattern that matches a path decides;
//! - a pattern matching a directory matches everything below it;
//! - a walk may skip an excluded directory unless an exception could match
//!   below it.
//!
//! `Dockerfile.dockerignore` beside a named Dockerfile (`-f
//! dir/Dockerfile` reads `dir/Dockerfile.dockerignore`) wins over the
//! context's `.dockerignore` ([`Ignore::for_build`]). The Dockerfile and the
//! ignore file themselves are read whatever the patterns say: they are not
//! taken from the filtered context.

use std::path::{Path, PathBuf};

use super::path;

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: illegal exclusion pattern: \"!\"")]
    LoneExclamation { file: String },
    #[error("{file}: bad pattern {pattern:?}: syntax error in pattern")]
    BadPattern { file: String, pattern: String },
}

/// The patterns of an ignore file, ready to match paths relative to the
/// context (`/`-separated, no leading `/`).
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// What a walk does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Include,
    /// Excluded; a directory is still entered (an exception may match
    /// below it).
    Exclude,
    /// An excluded directory nothing below which can be included.
    SkipTree,
}

/// Which patterns matched a directory, so that its entries need not check
/// the directory again (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirMatch(Vec<bool>);

impl Ignore {
    /// The ignore file for a build: `<dockerfile>.dockerignore` beside the
    /// Dockerfile if there is one, else `<context>/.dockerignore`, else
    /// nothing ignored.
    pub fn for_build(context: &Path, dockerfile: Option<&Path>) -> Result<Ignore, IgnoreError> {
        if let Some(df) = dockerfile {
            let mut name = df.as_os_str().to_owned();
            name.push(".dockerignore");
            let beside = PathBuf::from(name);
            if beside.is_file() {
                return Ignore::from_file(&beside);
            }
        }
        Ignore::from_file(&context.join(".dockerignore"))
    }

    /// The patterns of `path`; a missing file ignores nothing.
    pub fn from_file(path: &Path) -> Result<Ignore, IgnoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ignore::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ignore::default()),
            Err(source) => Err(IgnoreError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The patterns of an ignore file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Ignore, IgnoreError> {
        let lines = read_lines(text);
        Ignore::new(&lines, file)
    }

    /// Patterns as given (`--exclude` of COPY, or lines already read).
    pub fn new(patterns: &[String], file: &str) -> Result<Ignore, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            out.push(Pattern::new(&path::clean(p), file)?);
        }
        Ok(Ignore { patterns: out })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel` (relative to the context) is left out of it.
    pub fn excluded(&self, rel: &str) -> bool {
        self.matches_in(&normalize(rel), &DirMatch::default()).0
    }

    /// What a walk does with `rel`.
    pub fn check(&self, rel: &str, is_dir: bool) -> Verdict {
        self.check_in(rel, is_dir, &DirMatch::default()).0
    }

    /// What a walk does with `rel` inside a directory whose [`DirMatch`]
    /// it has; the match of `rel` for its own entries.
    pub fn check_in(&self, rel: &str, is_dir: bool, parent: &DirMatch) -> (Verdict, DirMatch) {
        let rel = normalize(rel);
        let (excluded, matches) = self.matches_in(&rel, parent);
        let verdict = match (excluded, is_dir) {
            (false, _) => Verdict::Include,
            (true, true) if self.may_skip(&rel) => Verdict::SkipTree,
            (true, _) => Verdict::Exclude,
        };
        (verdict, matches)
    }

    /// patternmatcher's `MatchesUsingParentResults`: the last pattern that
    /// matches `rel` (or, without the parent's matches, one of its
    /// directories) decides.
    fn matches_in(&self, rel: &str, parent: &DirMatch) -> (bool, DirMatch) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = parent.0.get(i).copied().unwrap_or(false);
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(rel) || (parent.0.is_empty() && p.matches_a_parent(rel));
            }
            info[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, DirMatch(info))
    }

    /// fsutil's test: no exception at all, or none that is a plain path
    /// below `dir` (an exception with wildcards may match anywhere).
    fn may_skip(&self, dir: &str) -> bool {
        let exceptions: Vec<&Pattern> = self.patterns.iter().filter(|p| p.exclusion).collect();
        if exceptions
            .iter()
            .any(|p| has_wildcards(p.without_trailing_glob()))
        {
            return false;
        }
        let below = format!("{dir}/");
        !exceptions
            .iter()
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&below))
    }
}

/// moby/patternmatcher's `ignorefile.ReadAll`: comments, blanks, `!`, and
/// each pattern cleaned with its leading `/` dropped.
fn read_lines(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = if pattern.is_empty() {
            String::new()
        } else {
            path::clean(pattern)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

fn normalize(rel: &str) -> String {
    let clean = path::clean(rel);
    clean.trim_start_matches('/').to_string()
}

fn has_wildcards(p: &str) -> bool {
    p.contains(['*', '[', ']', '?', '^', '\\'])
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

/// patternmatcher compiles each pattern to the cheapest test that does.
#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    /// `dir/**`: the text before `**`
    Prefix(String),
    /// `**/name`: the text after `**`
    Suffix(String),
    Regex(regex::Regex),
}

impl Pattern {
    fn new(cleaned: &str, file: &str) -> Result<Pattern, IgnoreError> {
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(IgnoreError::LoneExclamation {
                    file: file.to_string(),
                })
            }
            Some(rest) => (true, rest),
            None => (false, cleaned),
        };
        let bad = || IgnoreError::BadPattern {
            file: file.to_string(),
            pattern: text.to_string(),
        };
        if !go_pattern_is_valid(text) {
            return Err(bad());
        }
        let matcher = compile(text).ok_or_else(bad)?;
        Ok(Pattern {
            text: text.to_string(),
            exclusion,
            matcher,
        })
    }

    fn matches(&self, rel: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => rel == self.text,
            Matcher::Prefix(p) => rel.starts_with(p.as_str()),
            Matcher::Suffix(s) => rel.ends_with(s.as_str()) || s.strip_prefix('/') == Some(rel),
            Matcher::Regex(re) => re.is_match(rel),
        }
    }

    /// Whether the pattern matches one of `rel`'s directories.
    fn matches_a_parent(&self, rel: &str) -> bool {
        rel.match_indices('/').any(|(i, _)| self.matches(&rel[..i]))
    }

    /// fsutil's `patternWithoutTrailingGlob`.
    fn without_trailing_glob(&self) -> &str {
        let t = self.text.strip_suffix("/**").unwrap_or(&self.text);
        t.strip_suffix("/*").unwrap_or(t)
    }
}

/// patternmatcher's translation to a regular expression, and the
/// shortcuts it takes for exact names, `dir/**` and `**/name`.
fn compile(pattern: &str) -> Option<Matcher> {
    #[derive(PartialEq)]
    enum Found {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut found = Found::Exact;
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if found == Found::Exact {
                        found = Found::Prefix;
                    } else {
                        re.push_str(".*");
                        found = Found::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    found = Found::Regex;
                }
                if first {
                    found = Found::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                found = Found::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                found = Found::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    re.push('\\');
                    re.push(next);
                    i += 1;
                    found = Found::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(c);
                found = Found::Regex;
            }
            _ => re.push(c),
        }
        first = false;
    }
    Some(match found {
        Found::Exact => Matcher::Exact,
        Found::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Found::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Found::Regex => Matcher::Regex(regex::Regex::new(&format!("{re}$")).ok()?),
    })
}

/// Go's `filepath.Match` syntax: a class must be closed and not empty,
/// its ranges complete, and an escape must escape something.
fn go_pattern_is_valid(p: &str) -> bool {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 == chars.len() => return false,
            '\\' => i += 2,
            '[' => match class_end(&chars, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// The index after the `]` closing a class that starts at `i` (after `[`).
fn class_end(chars: &[char], mut i: usize) -> Option<usize> {
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        if chars.get(i) == Some(&']') && ranges > 0 {
            return Some(i + 1);
        }
        i = class_char(chars, i)?;
        if chars.get(i) == Some(&'-') {
            i = class_char(chars, i + 1)?;
        }
        ranges += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) character of a class, which must
/// not be `-` or `]` and must be followed by more of the class.
fn class_char(chars: &[char], mut i: usize) -> Option<usize> {
    match chars.get(i)? {
        '-' | ']' => return None,
        '\\' => i += 1,
        _ => {}
    }
    chars.get(i)?;
    (i + 1 < chars.len()).then_some(i + 1)
}

#[cfg(test)]
mod tests;
