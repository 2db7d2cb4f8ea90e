//! Splitting one logical line as BuildKit's `parser/split_command.go` and
//! `parser/line_parsers.go` do: the instruction word, its `--flags`, and the
//! rest as white-space separated words, quote-aware words (kept quoted for
//! the expansion to remove), or a JSON array of strings.

use super::errors::ParseErrorKind;

/// `INSTRUCTION [--flag...] rest`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Split {
    /// The instruction as written (BuildKit matches it case-insensitively).
    pub command: String,
    pub flags: Vec<String>,
    /// What follows the flags, trimmed.
    pub rest: String,
}

/// BuildKit's `[\t\v\f\r ]+`, the separator of instruction words.
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// The line's instruction word, flags and the rest.
pub(super) fn split_command(line: &str, escape: char) -> Split {
    let line = line.trim();
    let (command, args) = match line.find(is_separator) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_separator)),
        None => (line, ""),
    };
    let (rest, flags) = builder_flags(args, escape);
    Split {
        command: command.to_string(),
        flags,
        rest: rest.trim().to_string(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// The leading words that start with `--` (quotes and escapes removed) and
/// the text after them; a lone `--` ends the flags.
fn builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while i < chars.len() {
        let (pos, ch) = chars[i];
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match phase {
            Phase::Spaces if ch.is_whitespace() => {}
            Phase::Spaces if ch != '-' || next != Some('-') => return (&line[pos..], flags),
            Phase::Spaces => {
                phase = Phase::Word;
                continue;
            }
            Phase::Word if ch.is_whitespace() => {
                if word == "--" {
                    return (&line[pos..], flags);
                }
                if blank_ok || !word.is_empty() {
                    flags.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                phase = Phase::Spaces;
            }
            Phase::Word if ch == '\'' || ch == '"' => {
                blank_ok = true;
                phase = Phase::Quote(ch);
            }
            Phase::Quote(q) if ch == q => phase = Phase::Word,
            Phase::Word | Phase::Quote(_) if ch == escape => {
                // an escape at the very end is dropped
                if let Some(c) = next {
                    word.push(c);
                    i += 1;
                } else if matches!(phase, Phase::Quote(_)) {
                    phase = Phase::Word;
                }
            }
            Phase::Word | Phase::Quote(_) => word.push(ch),
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    ("", flags)
}

/// Words separated by white space, quotes and escapes kept (BuildKit's
/// `parseWords`, for ENV, LABEL and ARG): `a "b c"` is `a`, `"b c"`.
pub(super) fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        let next = chars.get(i + 1).copied();
        i += 1;
        match phase {
            Phase::Spaces if ch.is_whitespace() => continue,
            Phase::Word if ch.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                phase = Phase::Spaces;
                continue;
            }
            Phase::Spaces | Phase::Word if ch == '\'' || ch == '"' => {
                blank_ok = true;
                phase = Phase::Quote(ch);
            }
            Phase::Quote(q) if ch == q => phase = Phase::Word,
            Phase::Quote('\'') => {}
            _ if ch == escape => {
                // the escape and what it escapes stay together; at the
                // end of the line it is dropped
                let Some(c) = next else {
                    phase = Phase::Word;
                    continue;
                };
                word.push(ch);
                word.push(c);
                i += 1;
                if phase == Phase::Spaces {
                    phase = Phase::Word;
                }
                continue;
            }
            Phase::Spaces => phase = Phase::Word,
            _ => {}
        }
        word.push(ch);
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Words separated by `[\t\v\f\r ]+` (FROM, EXPOSE, and COPY, ADD and
/// VOLUME when not JSON); nothing for an empty rest.
pub(super) fn plain_words(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A JSON array of strings (the exec form), `None` when `rest` is not JSON;
/// a JSON array with something else than strings is an error.
pub(super) fn json_array(rest: &str) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> (String, Vec<String>, String) {
        let s = split_command(line, '\\');
        (s.command, s.flags, s.rest)
    }

    #[test]
    fn command_flags_and_rest() {
        assert_eq!(
            split("  COPY --from=build   --link a b  "),
            (
                "COPY".into(),
                vec!["--from=build".into(), "--link".into()],
                "a b".into()
            )
        );
        assert_eq!(split("RUN"), ("RUN".into(), vec![], "".into()));
        assert_eq!(
            split("RUN\techo -- x"),
            ("RUN".into(), vec![], "echo -- x".into())
        );
        // -- ends the flags; what follows is the rest even if it looks like one
        assert_eq!(
            split("RUN --network=none -- --version"),
            (
                "RUN".into(),
                vec!["--network=none".into()],
                "--version".into()
            )
        );
    }

    #[test]
    fn flag_values_lose_quotes_and_escapes() {
        let s = split_command(r#"RUN --mount="type=cache,target=/a b" --x=a\ b cmd"#, '\\');
        assert_eq!(s.flags, ["--mount=type=cache,target=/a b", "--x=a b"]);
        assert_eq!(s.rest, "cmd");
        let s = split_command("RUN --x=a` b cmd", '`');
        assert_eq!(s.flags, ["--x=a b"]);
        let s = split_command("RUN --x=''", '\\');
        assert_eq!(s.flags, ["--x="]);
    }

    #[test]
    fn quoted_words_keep_quotes_for_expansion() {
        assert_eq!(
            quoted_words(r#"A=1 B="x y" C='p q' D=a\ b"#, '\\'),
            ["A=1", "B=\"x y\"", "C='p q'", "D=a\\ b"]
        );
        assert_eq!(quoted_words(r#"A="" B"#, '\\'), ["A=\"\"", "B"]);
        assert_eq!(quoted_words(r#"A="a\"b" x"#, '\\'), ["A=\"a\\\"b\"", "x"]);
        assert_eq!(quoted_words("A=x\\", '\\'), ["A=x"]);
        assert_eq!(quoted_words("  ", '\\'), Vec::<String>::new());
    }

    #[test]
    fn plain_words_split_on_blanks() {
        assert_eq!(plain_words("a  b\tc"), ["a", "b", "c"]);
        assert!(plain_words("").is_empty());
    }

    #[test]
    fn json_arrays() {
        assert_eq!(
            json_array(r#" ["a", "b c"]"#),
            Ok(Some(vec!["a".into(), "b c".into()]))
        );
        assert_eq!(json_array("[]"), Ok(Some(vec![])));
        assert_eq!(json_array("echo [x]"), Ok(None));
        assert_eq!(json_array("['single']"), Ok(None));
        assert_eq!(json_array(r#"["a" "b"]"#), Ok(None));
        assert_eq!(
            json_array(r#"["a", 1]"#),
            Err(ParseErrorKind::NotStringArray)
        );
    }
}
