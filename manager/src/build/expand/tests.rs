use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn home() -> BTreeMap<String, String> {
    env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ])
}

/// (word, expected result or None for an error), expanded with `home()`:
/// the behaviour of BuildKit's shell/envVarTest on Linux.
const WORDS: &[(&str, Option<&str>)] = &[
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    ("he\\'llo", Some("he'llo")),
    ("he\\\\'llo", None),
    ("abc\\tdef", Some("abctdef")),
    ("\"abc\\tdef\"", Some("abc\\tdef")),
    ("\"abc\\\\tdef\"", Some("abc\\tdef")),
    ("'abc\\tdef'", Some("abc\\tdef")),
    ("hello\\", Some("hello")),
    ("hello\\\\", Some("hello\\")),
    ("\"hello", None),
    ("\"hello\\\"", None),
    ("\"hel'lo\"", Some("hel'lo")),
    ("'hello\\'", Some("hello\\")),
    ("\"''\"", Some("''")),
    ("$.", Some("$.")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    ("he\\$PWD", Some("he$PWD")),
    ("he\\\\$PWD", Some("he\\/home")),
    ("\"he\\$PWD\"", Some("he$PWD")),
    ("\"he\\\\$PWD\"", Some("he\\/home")),
    ("\\${}", Some("${}")),
    ("he\\${}xx", Some("he${}xx")),
    ("${}", None),
    ("he${}xx", None),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", Some("he/home")),
    ("he${PWD:?}", Some("he/home")),
    ("he${NULL?}", Some("he")),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${XXX:+000}xx", Some("hexx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("'he${XX}'", Some("he${XX}")),
    ("\"he${PWD}\"", Some("he/home")),
    ("\"he'$PWD'\"", Some("he'/home'")),
    ("'$PWD'", Some("$PWD")),
    ("'\\$PWD'", Some("\\$PWD")),
    ("'\"hello\"'", Some("\"hello\"")),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안녕$KOREAN", Some("안녕한국어")),
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa:-bbb}}", Some("bbb}")),
    ("${aaa:-bbb", None),
    ("${aaa:-bbb {foo}", Some("bbb {foo")),
    ("${:}", None),
    ("${:-bbb}", None),
    ("$1", Some("")),
    ("${1:-bbb}", Some("bbb")),
    ("$999aaa", Some("aaa")),
    ("${001:-bbb}aaa", Some("bbbaaa")),
    ("$@@@", Some("@@")),
    ("${@:-bbb}aaa", Some("bbbaaa")),
    ("$$", Some("")),
    ("${#:+bbb}", Some("")),
    ("${-:-bbb}", Some("bbb")),
    ("${!}", Some("")),
    ("$0", Some("")),
];

#[test]
fn words_expand_as_buildkit() {
    let lexer = Lexer::new('\\');
    let env = home();
    for (word, want) in WORDS {
        let got = lexer.process_word(word, &env);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "word {word:?}"),
            None => assert!(got.is_err(), "word {word:?} gave {got:?}"),
        }
    }
}

#[test]
fn modifiers_distinguish_unset_from_empty() {
    let lexer = Lexer::new('\\');
    let e = env(&[("EMPTY", "")]);
    let cases = [
        (
            "${EMPTY-d}",
            "",
            "set but empty: no default without the colon",
        ),
        ("${EMPTY:-d}", "d", "the colon treats empty as unset"),
        ("${UNSET-d}", "d", "unset"),
        ("${EMPTY+a}", "a", "set: alternative without the colon"),
        ("${EMPTY:+a}", "", "empty counts as unset with the colon"),
    ];
    for (word, want, why) in cases {
        assert_eq!(
            lexer.process_word(word, &e).as_deref(),
            Ok(want),
            "{word}: {why}"
        );
    }
}

#[test]
fn required_message_names_the_variable() {
    let lexer = Lexer::new('\\');
    let err = lexer.process_word("${TAG:?set TAG}", &NoEnv).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"${TAG:?set TAG}\": TAG: set TAG"
    );
    let err = lexer.process_word("${TAG?}", &NoEnv).unwrap_err();
    assert_eq!(
        err.reason,
        ExpandErrorKind::Required {
            name: "TAG".into(),
            message: "is not allowed to be unset".into()
        }
    );
}

#[test]
fn errors_name_the_problem() {
    let lexer = Lexer::new('\\');
    let reason = |w: &str| lexer.process_word(w, &NoEnv).unwrap_err().reason;
    assert_eq!(reason("'a"), ExpandErrorKind::UnterminatedSingleQuote);
    assert_eq!(reason("\"a"), ExpandErrorKind::UnterminatedDoubleQuote);
    assert_eq!(reason("${a"), ExpandErrorKind::MissingBrace);
    assert_eq!(reason("${}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(
        reason("${a:=b}"),
        ExpandErrorKind::UnsupportedModifier(":=".into())
    );
    assert_eq!(
        reason("${a:#b}"),
        ExpandErrorKind::UnsupportedModifier(":#".into())
    );
    assert_eq!(
        reason("${a!}"),
        ExpandErrorKind::UnsupportedModifier("!".into())
    );
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let e = env(&[("A", "x")]);
    assert_eq!(
        lexer.process_word("c:\\dir\\$A", &e).as_deref(),
        Ok("c:\\dir\\x")
    );
    assert_eq!(lexer.process_word("`$A", &e).as_deref(), Ok("$A"));
    assert_eq!(lexer.process_word("\"`\"q\"", &e).as_deref(), Ok("\"q"));
}

#[test]
fn pattern_trims_and_replacements() {
    let lexer = Lexer::new('\\');
    let e = env(&[("P", "a/b/c.tar.gz")]);
    let cases = [
        ("${P#*/}", "b/c.tar.gz"),
        ("${P##*/}", "c.tar.gz"),
        ("${P%.*}", "a/b/c.tar"),
        ("${P%%.*}", "a/b/c"),
        ("${P#x}", "a/b/c.tar.gz"),
        ("${P/\\//-}", "a-b/c.tar.gz"),
        ("${P//\\//-}", "a-b-c.tar.gz"),
        ("${P/?/Z}", "Z/b/c.tar.gz"),
        ("${P%\\*}", "a/b/c.tar.gz"),
    ];
    for (word, want) in cases {
        assert_eq!(lexer.process_word(word, &e).as_deref(), Ok(want), "{word}");
    }
}

#[test]
fn words_split_after_expansion() {
    let lexer = Lexer::new('\\');
    let e = env(&[
        ("space", "abc  def"),
        ("leading", "  ab c"),
        ("trailing", "ab c   "),
    ]);
    let cases: &[(&str, &[&str])] = &[
        ("hello${space}bye", &["helloabc", "defbye"]),
        ("hello\"${space}\"bye", &["helloabc  defbye"]),
        ("hello${leading}def", &["hello", "ab", "cdef"]),
        ("hello${trailing}d", &["helloab", "c", "d"]),
        ("hello there", &["hello", "there"]),
        ("hello\\ there", &["hello there"]),
        ("hello\\\" there", &["hello\"", "there"]),
        ("hello'$there'", &["hello$there"]),
        ("80/tcp 53/udp", &["80/tcp", "53/udp"]),
        ("a \"\" b", &["a", "b"]),
    ];
    for (word, want) in cases {
        assert_eq!(lexer.process_words(word, &e).unwrap(), *want, "{word}");
    }
    assert!(lexer.process_words("hello\" there", &e).is_err());
}

#[test]
fn matches_record_used_and_missing_variables() {
    let lexer = Lexer::new('\\');
    let e = env(&[("A", "1")]);
    let got = lexer.process_word_with_matches("$A-${B:-x}", &e).unwrap();
    assert_eq!(got.value, "1-x");
    assert_eq!(got.matched.into_iter().collect::<Vec<_>>(), ["A"]);
    assert_eq!(got.unmatched.into_iter().collect::<Vec<_>>(), ["B"]);
}

#[test]
fn raw_modes_keep_what_they_say() {
    let e = env(&[("A", "1")]);
    let raw = Lexer::new('\\').raw_quotes().raw_escapes().skip_unset();
    assert_eq!(
        raw.process_word("'a'\\b$A$B${C:-d}", &e).as_deref(),
        Ok("'a'\\b1$B${C:-d}")
    );
    let heredoc_body = Lexer::new('\\').skip_quotes();
    assert_eq!(
        heredoc_body.process_word("say \"$A\" 'x'", &e).as_deref(),
        Ok("say \"1\" 'x'")
    );
}

#[test]
fn heredoc_marker_is_one_word() {
    let lexer = Lexer::new('\\').raw_quotes().raw_escapes().skip_unset();
    let words = lexer.process_words("cat << EOF > /x", &NoEnv).unwrap();
    assert_eq!(words, ["cat", "<< EOF", ">", "/x"]);
}
