//! The part of Go's text/template that `docker inspect --format` users
//! write: `{{.A.B}}`, `{{json .A}}`, `{{range .A}}…{{end}}` (over arrays
//! and over map values, in key order like Go), `{{index .A "key"}}`,
//! `{{upper …}}`/`{{lower …}}`, and `{{.}}`. Anything else is an error
//! naming the action, not a silently empty output.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("template: unclosed action at byte {0}")]
    Unclosed(usize),
    #[error(
        "template: {{{{{0}}}}} is not supported (fields .A.B, json, range, index, upper, lower)"
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
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Option<&'static str>, Pipe),
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

fn parse_pipe(action: &str) -> Option<Pipe> {
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        [f] => parse_field(f).map(Pipe::Field),
        ["index", f, keys @ ..] if !keys.is_empty() => {
            let keys: Option<Vec<String>> = keys
                .iter()
                .map(|k| {
                    k.strip_prefix('"')
                        .and_then(|k| k.strip_suffix('"'))
                        .map(str::to_string)
                })
                .collect();
            Some(Pipe::Index(parse_field(f)?, keys?))
        }
        _ => None,
    }
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
                let pipe = parse_pipe(arg.trim()).ok_or_else(unsupported)?;
                stack.push((pipe, std::mem::take(&mut nodes)));
            } else {
                let (func, arg) = match action.split_once(' ') {
                    Some((f @ ("json" | "upper" | "lower"), a)) => {
                        let f: &'static str = match f {
                            "json" => "json",
                            "upper" => "upper",
                            _ => "lower",
                        };
                        (Some(f), a.trim())
                    }
                    _ => (None, action),
                };
                nodes.push(Node::Print(func, parse_pipe(arg).ok_or_else(unsupported)?));
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
        let mut out = String::new();
        render(&self.0, dot, &mut out);
        out
    }
}

fn eval<'a>(pipe: &Pipe, dot: &'a Value) -> Option<&'a Value> {
    let field = |path: &[String]| {
        path.iter()
            .try_fold(dot, |v, k| v.as_object().and_then(|o| o.get(k)))
    };
    match pipe {
        Pipe::Field(path) => field(path),
        Pipe::Index(path, keys) => keys.iter().try_fold(field(path)?, |v, k| match v {
            Value::Object(o) => o.get(k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }),
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

fn render(nodes: &[Node], dot: &Value, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(func, pipe) => {
                let v = eval(pipe, dot);
                match (*func, v) {
                    (Some("json"), v) => out.push_str(&v.unwrap_or(&Value::Null).to_string()),
                    (Some("upper"), Some(v)) => out.push_str(&plain(v).to_uppercase()),
                    (Some("lower"), Some(v)) => out.push_str(&plain(v).to_lowercase()),
                    (_, Some(v)) => out.push_str(&plain(v)),
                    (_, None) => out.push_str("<no value>"),
                }
            }
            Node::Range(pipe, body) => match eval(pipe, dot) {
                Some(Value::Array(a)) => a.iter().for_each(|v| render(body, v, out)),
                Some(Value::Object(o)) => {
                    let mut keys: Vec<&String> = o.keys().collect();
                    keys.sort();
                    keys.into_iter().for_each(|k| render(body, &o[k], out));
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
    }
}
