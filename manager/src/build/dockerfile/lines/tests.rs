use super::*;
use crate::build::dockerfile::commands::may_open_heredocs;

fn read_ok(text: &str) -> Lines {
    read(text, may_open_heredocs).unwrap()
}

fn texts(text: &str) -> Vec<String> {
    read_ok(text).lines.into_iter().map(|l| l.text).collect()
}

#[test]
fn continuation_lines_join_as_buildkit() {
    // BuildKit's parser/testfiles/continueIndent
    let text = "FROM ubuntu:14.04\n\nRUN echo hello\\\n  world\\\n  goodnight  \\\n  moon\\\n  light\\\nning\nRUN echo hello  \\\n  world\nRUN echo hello  \\\nworld\nRUN echo hello \\\ngoodbye\\\nfrog\nRUN echo hello  \\  \nworld\nRUN echo hi \\\n \\\n world \\\n\\\n good\\\n\\\nnight\nRUN echo goodbye\\\nfrog\n";
    assert_eq!(
        texts(text),
        [
            "FROM ubuntu:14.04",
            "RUN echo hello  world  goodnight    moon  lightning",
            "RUN echo hello    world",
            "RUN echo hello  world",
            "RUN echo hello goodbyefrog",
            "RUN echo hello  world",
            "RUN echo hi   world  goodnight",
            "RUN echo goodbyefrog",
        ]
    );
}

#[test]
fn tutorial_run_with_and_and_backslashes() {
    let text = "FROM debian\nRUN apt-get update && \\\n    apt-get install -y curl && \\\n    rm -rf /var/lib/apt/lists/*\n";
    let lines = read_ok(text).lines;
    assert_eq!(
        lines[1].text,
        "RUN apt-get update &&     apt-get install -y curl &&     rm -rf /var/lib/apt/lists/*"
    );
    assert_eq!((lines[1].start, lines[1].end), (2, 4));
}

#[test]
fn comments_and_empty_lines_inside_a_continuation() {
    let text = "RUN foo \\\n# a comment\n\nbar \\\n\n    \nbaz\n";
    let lines = read_ok(text);
    assert_eq!(lines.lines[0].text, "RUN foo bar baz");
    assert_eq!((lines.lines[0].start, lines.lines[0].end), (1, 7));
    assert_eq!(
        lines.warnings.len(),
        1,
        "empty continuation lines warn once"
    );
    assert!(lines.warnings[0]
        .message
        .starts_with("Empty continuation line found in: RUN foo"));
}

#[test]
fn escaped_escape_does_not_continue() {
    let text = "RUN echo a\\\\\nRUN echo b\n";
    assert_eq!(texts(text), ["RUN echo a\\\\", "RUN echo b"]);
}

#[test]
fn continuation_at_end_of_file() {
    assert_eq!(texts("FROM x\nRUN echo \\"), ["FROM x", "RUN echo "]);
}

#[test]
fn escape_directive_backtick() {
    // BuildKit's parser/testfiles/escape-nonewline
    let text = "# escape = `\n# no blank line after the directive\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go\n";
    let lines = read_ok(text);
    assert_eq!(lines.escape, '`');
    assert_eq!(lines.lines[2].text, "ENV GOPATH \\go");
    assert_eq!(lines.lines[2].start, 5);
}

#[test]
fn backtick_continuation_keeps_backslashes() {
    let text = "# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo done\n";
    assert_eq!(texts(text)[1], "RUN dir c:\\   && echo done");
}

#[test]
fn directives_only_at_the_top() {
    // BuildKit's parser/testfiles/escape-after-comment
    let text = "# Comment here.\n# escape = `\n\nFROM image\nENV GOPATH \\\n\\go\n";
    let lines = read_ok(text);
    assert_eq!(lines.escape, '\\');
    assert_eq!(lines.lines[1].text, "ENV GOPATH \\go");
    let text = "FROM a\n# escape=`\nRUN x `\n";
    assert_eq!(read_ok(text).escape, '\\');
    let text = "\n# syntax=docker/dockerfile:1\nFROM a\n";
    assert_eq!(
        read_ok(text).syntax,
        None,
        "a blank line ends the directives"
    );
}

#[test]
fn syntax_and_check_directives() {
    let text = "\u{feff}# syntax = docker/dockerfile:1.7\n#check=skip=all\n# escape=\\\nFROM a\n";
    let lines = read_ok(text);
    assert_eq!(lines.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(lines.check.as_deref(), Some("skip=all"));
    assert_eq!(lines.escape, '\\');
    assert_eq!(lines.lines[0].start, 4);
}

#[test]
fn bad_directives() {
    let err = read("# escape=x\nFROM a\n", may_open_heredocs).unwrap_err();
    assert_eq!(err, (1, ParseErrorKind::BadEscape("x".into())));
    let err = read("# syntax=a\n# SYNTAX=b\nFROM a\n", may_open_heredocs).unwrap_err();
    assert_eq!(
        err,
        (2, ParseErrorKind::DuplicateDirective("syntax".into()))
    );
}

#[test]
fn heredoc_bodies_follow_the_line() {
    let text = "FROM a\nRUN <<EOF\necho one\necho two\nEOF\nRUN true\n";
    let lines = read_ok(text).lines;
    assert_eq!(lines[1].text, "RUN <<EOF");
    assert_eq!(lines[1].heredocs[0].content, "echo one\necho two\n");
    assert_eq!((lines[1].start, lines[1].end), (2, 5));
    assert_eq!(lines[2].text, "RUN true");
    assert_eq!(lines[2].start, 6);
}

#[test]
fn several_heredocs_read_in_order() {
    let text = "COPY <<A <<B /dst/\na\nA\nb\nB\n";
    let docs = &read_ok(text).lines[0].heredocs;
    assert_eq!(
        (docs[0].name.as_str(), docs[0].content.as_str()),
        ("A", "a\n")
    );
    assert_eq!(
        (docs[1].name.as_str(), docs[1].content.as_str()),
        ("B", "b\n")
    );
}

#[test]
fn chomped_heredoc_terminator_may_be_indented_with_tabs() {
    let text = "RUN <<-EOF\n\techo hi\n\tEOF\n";
    let line = &read_ok(text).lines[0];
    assert_eq!(line.heredocs[0].content, "\techo hi\n");
    assert_eq!(line.heredocs[0].body(), "echo hi\n");
}

#[test]
fn heredoc_bodies_are_not_comments_or_continuations() {
    let text = "RUN <<EOF\n# not a comment \\\n\nEOF\n";
    assert_eq!(
        read_ok(text).lines[0].heredocs[0].content,
        "# not a comment \\\n\n"
    );
}

#[test]
fn heredocs_only_where_buildkit_reads_them() {
    let text = "FROM a\nRUN [\"cat\", \"<<EOF\"]\nEOF\n";
    let lines = read_ok(text).lines;
    assert!(lines[1].heredocs.is_empty(), "not in JSON form");
    assert_eq!(lines[2].text, "EOF");
    let text = "ENV A=<<EOF\n";
    assert!(read_ok(text).lines[0].heredocs.is_empty(), "not in ENV");
    let text = "ONBUILD RUN <<EOF\nx\nEOF\n";
    assert_eq!(
        read_ok(text).lines[0].heredocs[0].content,
        "x\n",
        "in ONBUILD RUN"
    );
}

#[test]
fn unterminated_heredoc() {
    let err = read("FROM a\nRUN <<EOF\necho\n", may_open_heredocs).unwrap_err();
    assert_eq!(err, (2, ParseErrorKind::UnterminatedHeredoc));
}

#[test]
fn crlf_line_endings() {
    let text = "FROM a\r\nRUN echo \\\r\n  b\r\n";
    assert_eq!(texts(text), ["FROM a", "RUN echo   b"]);
}
