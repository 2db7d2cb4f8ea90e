//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) as BuildKit's
//! parser finds them: the line is split into words with quotes and escapes
//! kept, and each word of the form `[fd]<<[-]NAME` is a heredoc. A quoted
//! name (or any quote in it) turns off expansion of the body; `-` strips
//! leading tabs from the body and the terminator.

use crate::build::expand::{ExpandError, Lexer, NoEnv};

/// A heredoc: its name, its body (each line with its newline), and how to
/// treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// Expand variables in the body (the name was not quoted; COPY only,
    /// RUN leaves that to the shell).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from each line of the body.
    pub chomp: bool,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
}

impl Heredoc {
    /// The body with leading tabs removed from each line when `<<-`.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|line| line.trim_start_matches('\t'))
            .collect()
    }
}

/// The heredocs a line opens, in order; their bodies are still empty.
pub(super) fn markers_in_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let lexer = Lexer::new('\\').raw_quotes().raw_escapes().skip_unset();
    // a line that does not split (an open quote) has no heredocs, as in BuildKit
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        docs.extend(marker(&word)?);
    }
    Ok(docs)
}

/// `word` as a heredoc marker, if it is one.
pub(super) fn marker(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let Some((name, expand)) = name(rest)? else {
        return Ok(None);
    };
    Ok(Some(Heredoc {
        name,
        content: String::new(),
        expand,
        chomp,
        fd: word[..digits].parse().unwrap_or(0),
    }))
}

/// The heredoc's name without quotes, and whether it had none.
fn name(rest: &str) -> Result<Option<(String, bool)>, ExpandError> {
    let plain = Lexer::new('\\').skip_unset();
    let words = plain.process_words(rest, &NoEnv)?;
    let [word] = words.as_slice() else {
        return Ok(None);
    };
    let raw = plain.raw_quotes().process_words(rest, &NoEnv)?;
    let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
    let raw_quotes = raw.first().map_or(0, |w| quotes(w));
    Ok(Some((word.clone(), quotes(word) == raw_quotes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<(String, bool, bool, u32)> {
        markers_in_line(line)
            .unwrap()
            .into_iter()
            .map(|h| (h.name, h.expand, h.chomp, h.fd))
            .collect()
    }

    #[test]
    fn markers_and_their_options() {
        assert_eq!(names("RUN <<EOF"), [("EOF".into(), true, false, 0)]);
        assert_eq!(names("RUN <<-EOT"), [("EOT".into(), true, true, 0)]);
        assert_eq!(names(r#"RUN <<"EOF""#), [("EOF".into(), false, false, 0)]);
        assert_eq!(names("RUN <<'EOF'"), [("EOF".into(), false, false, 0)]);
        assert_eq!(names("RUN <<E\"O\"F"), [("EOF".into(), false, false, 0)]);
        assert_eq!(names("RUN cat 3<<EOF"), [("EOF".into(), true, false, 3)]);
        assert_eq!(names("RUN cat << EOF"), [("EOF".into(), true, false, 0)]);
    }

    #[test]
    fn several_markers_on_one_line() {
        let got = names("RUN cat <<A /dev/stdin <<-B > /x");
        assert_eq!(
            got,
            [("A".into(), true, false, 0), ("B".into(), true, true, 0)]
        );
    }

    #[test]
    fn not_markers() {
        assert!(names("RUN echo a<<b").is_empty());
        assert!(names("RUN echo << ").is_empty());
        assert!(names("RUN echo <<a<b").is_empty());
        assert!(names("RUN echo '<<EOF'").is_empty());
        assert!(names("RUN echo \"unterminated <<EOF").is_empty());
    }

    #[test]
    fn chomp_strips_leading_tabs_only() {
        let h = Heredoc {
            name: "EOF".into(),
            content: "\t\ta\n  b\n\tc".into(),
            expand: true,
            chomp: true,
            fd: 0,
        };
        assert_eq!(h.body(), "a\n  b\nc");
    }
}
