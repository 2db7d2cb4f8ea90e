//! The part of Go's text/template that `docker inspect --format` users
//! write: `{{.A.B}}`, `{{json .A}}`, `{{range .A}}…{{end}}` (over arrays
//! and over map values, in key order like Go), `{{index .A "key"}}`,
//! `{{upper …}}`/`{{lower …}}`/`{{title …}}`, Docker's `{{join .A ","}}`
//! and `{{truncate .A 12}}`, a listing's methods (`{{.Label "k"}}`), and
//! `{{.}}`. Anything else is an error naming the action, not a silently
//! empty output.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("template: unclosed action at byte {0}")]
    Unclosed(usize),
    #[error(
        "template: {{{{{0}}}}} is not supported (fields .A.B, json, range, index, upper, lower, title, join, truncate)"
    )]
    Unsupported(String),
    #[error("template: {{{{end}}}} without {{{{range}}}}")]
    StrayEnd,
    #[error("template: {{{{range}}}} without {{{{end}}}}")]
    MissingEnd,
}

#[derive(Debug, Clone, PartialEq)]
enum Pipe {
    /// `.A.B` (empty path: `.`)
    Field(Vec<String>),
    /// `index .A "k" "l"`
    Index(Vec<String>, Vec<String>),
    /// `.Label "k"`: Docker's methods of a listing's row, looked up in the
    /// `methods` value given to [`Template::render_with`] (else in `.`)
    Method(String, Vec<String>),
}

/// What a print action applies to its value.
#[derive(Debug, Clone, PartialEq)]
enum Func {
    Plain,
    Json,
    Upper,
    Lower,
    Title,
    /// `join .A ","`: an array's items, joined
    Join(String),
    /// `truncate .A 12`: at most that many characters
    Truncate(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Func, Pipe),
    Range(Pipe, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Node>);

fn parse_field(s: &str) -> Option<Vec<String>> {
    if s == "." {
        return Some(Vec::new());
    }
    let rest = s.strip_prefix('.')?;
    let parts: Vec<String> = rest.split('.').map(str::to_string).collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then_some(parts)
}

/// A word of an action: bare, or a Go string literal (`"a b"`, with `\"`
/// and `\\` escapes).
#[derive(Debug, PartialEq)]
enum Word {
    Bare(String),
    Quoted(String),
}

fn words(action: &str) -> Option<Vec<Word>> {
    let mut out = Vec::new();
    let mut chars = action.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else {
            return Some(out);
        };
        if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        e => s.push(e),
                    },
                    c => s.push(c),
                }
            }
            out.push(Word::Quoted(s));
        } else {
            let mut s = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                s.push(c);
            }
            out.push(Word::Bare(s));
        }
    }
}

fn quoted(words: &[Word]) -> Option<Vec<String>> {
    words
        .iter()
        .map(|w| match w {
            Word::Quoted(s) => Some(s.clone()),
            Word::Bare(_) => None,
        })
        .collect()
}

fn parse_pipe(words: &[Word]) -> Option<Pipe> {
    match words {
        [Word::Bare(f)] => parse_field(f).map(Pipe::Field),
        [Word::Bare(i), Word::Bare(f), keys @ ..] if i == "index" && !keys.is_empty() => {
            Some(Pipe::Index(parse_field(f)?, quoted(keys)?))
        }
        [Word::Bare(f), args @ ..] if !args.is_empty() => match parse_field(f)?.as_slice() {
            [name] => Some(Pipe::Method(name.clone(), quoted(args)?)),
            _ => None,
        },
        _ => None,
    }
}

fn parse_print(action: &str) -> Option<Node> {
    let w = words(action)?;
    let (func, rest) = match w.as_slice() {
        [Word::Bare(f), rest @ ..] if !rest.is_empty() => match f.as_str() {
            "json" => (Func::Json, rest),
            "upper" => (Func::Upper, rest),
            "lower" => (Func::Lower, rest),
            "title" => (Func::Title, rest),
            "join" => match rest {
                [pipe @ .., Word::Quoted(sep)] => (Func::Join(sep.clone()), pipe),
                _ => return None,
            },
            "truncate" => match rest {
                [pipe @ .., Word::Bare(n)] => (Func::Truncate(n.parse().ok()?), pipe),
                _ => return None,
            },
            _ => (Func::Plain, w.as_slice()),
        },
        _ => (Func::Plain, w.as_slice()),
    };
    Some(Node::Print(func, parse_pipe(rest)?))
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut stack: Vec<(Pipe, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                nodes.push(Node::Text(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find("}}")
                .ok_or(TemplateError::Unclosed(offset + start))?;
            let action = rest[start + 2..start + end].trim();
            let action = action.trim_start_matches('-').trim_end_matches('-').trim();
            let unsupported = || TemplateError::Unsupported(action.to_string());
            if action == "end" {
                let (pipe, outer) = stack.pop().ok_or(TemplateError::StrayEnd)?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(pipe, body));
            } else if let Some(arg) = action.strip_prefix("range ") {
                let pipe = words(arg)
                    .and_then(|w| parse_pipe(&w))
                    .ok_or_else(unsupported)?;
                stack.push((pipe, std::mem::take(&mut nodes)));
            } else {
                nodes.push(parse_print(action).ok_or_else(unsupported)?);
            }
            offset += start + end + 2;
            rest = &rest[start + end + 2..];
        }
        if !stack.is_empty() {
            return Err(TemplateError::MissingEnd);
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Template(nodes))
    }

    /// Render with `dot` as `.`.
    pub fn render(&self, dot: &Value) -> String {
        self.render_with(dot, dot)
    }

    /// Render with `dot` as `.`; methods (`.Label "k"`) are looked up in
    /// `methods` (`methods.Label.k`).
    pub fn render_with(&self, dot: &Value, methods: &Value) -> String {
        let mut out = String::new();
        render(&self.0, dot, methods, &mut out);
        out
    }

    /// The header row of a `table` format: each field and method prints its
    /// column title from `titles` (empty if it has none), functions change
    /// nothing, ranges print nothing (Docker's header functions).
    pub fn render_header(&self, titles: &Value) -> String {
        let mut out = String::new();
        for n in &self.0 {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Print(_, pipe) => {
                    let name = match pipe {
                        Pipe::Field(p) | Pipe::Index(p, _) => p.first(),
                        Pipe::Method(m, _) => Some(m),
                    };
                    if let Some(t) = name.and_then(|n| titles.get(n)).and_then(Value::as_str) {
                        out.push_str(t);
                    }
                }
                Node::Range(..) => {}
            }
        }
        out
    }

    /// The names of `.`'s fields and methods the template uses outside
    /// ranges (to check them against a listing's).
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for n in &self.0 {
            let pipe = match n {
                Node::Print(_, p) | Node::Range(p, _) => p,
                Node::Text(_) => continue,
            };
            let name = match pipe {
                Pipe::Field(p) | Pipe::Index(p, _) => p.first(),
                Pipe::Method(m, _) => Some(m),
            };
            out.extend(name.map(String::as_str));
        }
        out
    }
}

fn eval<'a>(pipe: &Pipe, dot: &'a Value, methods: &'a Value) -> Option<&'a Value> {
    let field = |path: &[String]| {
        path.iter()
            .try_fold(dot, |v, k| v.as_object().and_then(|o| o.get(k)))
    };
    let index = |v: &'a Value, keys: &[String]| {
        keys.iter().try_fold(v, |v, k| match v {
            Value::Object(o) => o.get(k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    };
    match pipe {
        Pipe::Field(path) => field(path),
        Pipe::Index(path, keys) => index(field(path)?, keys),
        Pipe::Method(name, args) => index(methods.get(name)?, args),
    }
}

/// Go's default formatting of a value (close enough for inspect output).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Go's strings.Title: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn render(nodes: &[Node], dot: &Value, methods: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(func, pipe) => {
                let v = eval(pipe, dot, methods);
                match (func, v) {
                    (Func::Json, v) => out.push_str(&v.unwrap_or(&Value::Null).to_string()),
                    // a method (Docker's `.Label "k"`) returns "" for nothing
                    (_, None) if matches!(pipe, Pipe::Method(..)) => {}
                    (_, None) => out.push_str("<no value>"),
                    (Func::Plain, Some(v)) => out.push_str(&plain(v)),
                    (Func::Upper, Some(v)) => out.push_str(&plain(v).to_uppercase()),
                    (Func::Lower, Some(v)) => out.push_str(&plain(v).to_lowercase()),
                    (Func::Title, Some(v)) => out.push_str(&title(&plain(v))),
                    (Func::Join(sep), Some(Value::Array(a))) => {
                        out.push_str(&a.iter().map(plain).collect::<Vec<_>>().join(sep))
                    }
                    (Func::Join(_), Some(v)) => out.push_str(&plain(v)),
                    (Func::Truncate(n), Some(v)) => out.extend(plain(v).chars().take(*n)),
                }
            }
            Node::Range(pipe, body) => match eval(pipe, dot, methods) {
                Some(Value::Array(a)) => a.iter().for_each(|v| render(body, v, methods, out)),
                Some(Value::Object(o)) => {
                    let mut keys: Vec<&String> = o.keys().collect();
                    keys.sort();
                    keys.into_iter()
                        .for_each(|k| render(body, &o[k], methods, out));
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v)
    }

    #[test]
    fn the_common_inspect_formats() {
        let c = json!({"Id": "abc", "State": {"Status": "running", "Pid": 42},
                       "NetworkSettings": {"IPAddress": "10.88.0.2",
                           "Networks": {"rbox": {"IPAddress": "10.88.0.2"}, "a": {"IPAddress": "10.89.0.3"}}},
                       "Config": {"Env": ["A=1", "B=2"], "Labels": {"x.y": "z"}}});
        assert_eq!(r("{{.NetworkSettings.IPAddress}}", &c), "10.88.0.2");
        assert_eq!(
            r(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &c
            ),
            "10.89.0.3 10.88.0.2 "
        );
        assert_eq!(r("{{ .State.Pid }}/{{.State.Status}}", &c), "42/running");
        assert_eq!(r("{{json .Config.Env}}", &c), r#"["A=1","B=2"]"#);
        assert_eq!(r(r#"{{index .Config.Labels "x.y"}}"#, &c), "z");
        assert_eq!(r("{{range .Config.Env}}{{.}};{{end}}", &c), "A=1;B=2;");
        assert_eq!(r("{{upper .State.Status}}", &c), "RUNNING");
        assert_eq!(r("{{.Nope}}", &c), "<no value>");
        assert_eq!(r("id={{.Id}}\n", &c), "id=abc\n");
    }

    #[test]
    fn what_is_not_supported_says_so() {
        assert_eq!(
            Template::parse("{{if .A}}x{{end}}").unwrap_err(),
            TemplateError::Unsupported("if .A".into())
        );
        assert!(Template::parse("{{.A").is_err());
        assert_eq!(
            Template::parse("{{end}}").unwrap_err(),
            TemplateError::StrayEnd
        );
        assert_eq!(
            Template::parse("{{range .A}}x").unwrap_err(),
            TemplateError::MissingEnd
        );
        let msg = Template::parse("{{printf \"%s\" .A}}")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("printf"), "{msg}");
        assert!(Template::parse("{{.A.B \"k\"}}").is_err());
        assert!(Template::parse("{{truncate .A x}}").is_err());
    }

    #[test]
    fn listing_formats() {
        let row = json!({"ID": "abcdef", "Names": "web", "Mounts": ["a", "b"], "S": "up and away"});
        let methods = json!({"Label": {"tier": "front", "a b": "c"}});
        let t = |src: &str| Template::parse(src).unwrap().render_with(&row, &methods);
        assert_eq!(t(r#"{{.Names}} {{.Label "tier"}}"#), "web front");
        assert_eq!(t(r#"{{.Label "a b"}}|{{.Label "none"}}"#), "c|");
        assert_eq!(t(r#"{{join .Mounts ", "}}"#), "a, b");
        assert_eq!(t("{{truncate .ID 3}}"), "abc");
        assert_eq!(t("{{title .S}}"), "Up And Away");
        let tpl = Template::parse(
            r#"{{.ID}}\t{{.Label "tier"}}\t{{json .Names}}{{range .Mounts}}{{.}}{{end}}"#,
        )
        .unwrap();
        assert_eq!(tpl.fields(), ["ID", "Label", "Names", "Mounts"]);
        let titles = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        assert_eq!(tpl.render_header(&titles), "CONTAINER ID\\t\\tNAMES");
    }
}
