//! Instruction flags (`COPY --from=x --link`), checked as BuildKit's
//! `instructions/bflag.go` checks them: each instruction lists its flags
//! with their kind, and the words before the arguments must all be flags
//! it knows, each given once (except list flags such as `--mount`).

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `--link`, `--link=true`, `--link=false`
    Bool,
    /// `--from=x`, once
    Text,
    /// `--exclude=x`, any number of times
    List,
}

/// One flag an instruction accepts, named by the instruction's own key type.
pub(super) struct Spec<K> {
    pub name: &'static str,
    pub key: K,
    pub kind: Kind,
}

pub(super) const fn spec<K>(name: &'static str, key: K, kind: Kind) -> Spec<K> {
    Spec { name, key, kind }
}

/// A flag's value: `true`/`false` for booleans, the text for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Bool(bool),
    Text(String),
}

impl Value {
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn text(self) -> String {
        match self {
            Value::Text(s) => s,
            Value::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("arg should start with -- : {0}")]
    NotAFlag(String),
    #[error("unknown flag: {0}")]
    Unknown(String),
    #[error("duplicate flag specified: {0}")]
    Duplicate(String),
    #[error("missing a value on flag: {0}")]
    MissingValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    NotBool { flag: String, value: String },
}

/// The flags in `words` (as the line splitter found them), in order; `--`
/// ends them.
pub(super) fn parse<K: Copy + PartialEq>(
    words: &[String],
    specs: &[Spec<K>],
) -> Result<Vec<(K, Value)>, FlagError> {
    let mut out: Vec<(K, Value)> = Vec::new();
    for word in words {
        if word == "--" {
            break;
        }
        let (spec, value) = one(word, specs)?;
        if spec.kind != Kind::List && out.iter().any(|(k, _)| *k == spec.key) {
            return Err(FlagError::Duplicate(flag_name(word).to_string()));
        }
        out.push((spec.key, value));
    }
    Ok(out)
}

fn flag_name(word: &str) -> &str {
    word.split_once('=').map_or(word, |(name, _)| name)
}

fn one<'s, K>(word: &str, specs: &'s [Spec<K>]) -> Result<(&'s Spec<K>, Value), FlagError> {
    let Some(body) = word.strip_prefix("--") else {
        return Err(FlagError::NotAFlag(word.to_string()));
    };
    let (name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let flag = format!("--{name}");
    let spec = specs
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| FlagError::Unknown(flag.clone()))?;
    let value = match (spec.kind, value) {
        (Kind::Bool, v) => Value::Bool(boolean(&flag, v)?),
        (_, Some(v)) => Value::Text(v.to_string()),
        (_, None) => return Err(FlagError::MissingValue(flag)),
    };
    Ok((spec, value))
}

/// `--x` and `--x=true` are true, `--x=false` false; `--x=` has no value.
fn boolean(flag: &str, value: Option<&str>) -> Result<bool, FlagError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some("") => Err(FlagError::MissingValue(flag.to_string())),
        Some(_) => Err(FlagError::NotBool {
            flag: flag.to_string(),
            value: value.unwrap_or_default().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum F {
        From,
        Link,
        Exclude,
    }

    const SPECS: &[Spec<F>] = &[
        spec("from", F::From, Kind::Text),
        spec("link", F::Link, Kind::Bool),
        spec("exclude", F::Exclude, Kind::List),
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_flags_parse_in_order() {
        let got = parse(
            &words(&["--from=build", "--link", "--exclude=*.md", "--exclude=x"]),
            SPECS,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                (F::From, Value::Text("build".into())),
                (F::Link, Value::Bool(true)),
                (F::Exclude, Value::Text("*.md".into())),
                (F::Exclude, Value::Text("x".into())),
            ]
        );
    }

    #[test]
    fn booleans_take_true_or_false_in_any_case() {
        let got = parse(&words(&["--link=FALSE"]), SPECS).unwrap();
        assert_eq!(got, [(F::Link, Value::Bool(false))]);
        let err = parse(&words(&["--link=yes"]), SPECS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expecting boolean value for flag --link, not: yes"
        );
        let err = parse(&words(&["--link="]), SPECS).unwrap_err();
        assert_eq!(err, FlagError::MissingValue("--link".into()));
    }

    #[test]
    fn bad_flags_are_named() {
        let err = |w: &[&str]| parse(&words(w), SPECS).unwrap_err().to_string();
        assert_eq!(err(&["--form=x"]), "unknown flag: --form");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["-from=x"]), "arg should start with -- : -from=x");
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let got = parse(&words(&["--link", "--", "--nonsense"]), SPECS).unwrap();
        assert_eq!(got, [(F::Link, Value::Bool(true))]);
    }
}
