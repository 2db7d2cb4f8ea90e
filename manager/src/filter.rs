//! `--filter KEY=VALUE` of `ps` and `images`, as Docker combines them:
//! values of one key are alternatives (OR), different keys must all match
//! (AND). A key the listing does not know is refused with Docker's
//! `invalid filter 'KEY'`.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("bad format of filter {0:?} (expected name=value)")]
    BadFormat(String),
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    #[error("invalid filter '{key}={value}'")]
    BadValue { key: String, value: String },
    #[error("invalid filter '{key}={value}': {why}")]
    BadPattern {
        key: String,
        value: String,
        why: String,
    },
}

pub type Result<T> = std::result::Result<T, FilterError>;

/// The keys `ps --filter` knows.
pub const CONTAINER_KEYS: &[&str] = &[
    "ancestor", "before", "exited", "id", "label", "name", "network", "publish", "since", "status",
    "volume",
];

/// The keys `images --filter` knows.
pub const IMAGE_KEYS: &[&str] = &["before", "dangling", "label", "reference", "since"];

/// Docker's container states, the values of `status=`.
pub const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Parsed `--filter` flags: key → its values, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// `args`: the `--filter` values; `keys`: those the listing knows.
    pub fn parse(args: &[String], keys: &[&str]) -> Result<Filters> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in args {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| FilterError::BadFormat(a.clone()))?;
            let k = k.trim().to_ascii_lowercase();
            if !keys.contains(&k.as_str()) {
                return Err(FilterError::UnknownKey(k));
            }
            map.entry(k).or_default().push(v.trim().to_string());
        }
        let f = Filters(map);
        for v in f.get("status") {
            if !STATES.contains(&v.as_str()) {
                return Err(f.bad("status", v));
            }
        }
        for v in f.get("exited") {
            v.parse::<i32>().map_err(|_| f.bad("exited", v))?;
        }
        for v in f.get("dangling") {
            if !matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0"
            ) {
                return Err(f.bad("dangling", v));
            }
        }
        for v in f.get("name") {
            regex::Regex::new(v).map_err(|e| FilterError::BadPattern {
                key: "name".into(),
                value: v.clone(),
                why: e.to_string(),
            })?;
        }
        for v in f.get("reference") {
            glob_match(v, "").map_err(|why| FilterError::BadPattern {
                key: "reference".into(),
                value: v.clone(),
                why: why.into(),
            })?;
        }
        Ok(f)
    }

    fn bad(&self, key: &str, value: &str) -> FilterError {
        FilterError::BadValue {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The values given for `key` (none: the key is not filtered on).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// True when `key` is not filtered on or one of its values satisfies
    /// `pred`.
    pub fn any(&self, key: &str, pred: impl FnMut(&str) -> bool) -> bool {
        let vals = self.get(key);
        vals.is_empty() || vals.iter().map(String::as_str).any(pred)
    }

    /// `name=`: Docker's regular-expression match, against the name with
    /// and without its leading `/`.
    pub fn name_matches(&self, name: &str) -> bool {
        self.any("name", |pat| {
            regex::Regex::new(pat)
                .is_ok_and(|re| re.is_match(name) || re.is_match(&format!("/{name}")))
        })
    }

    /// `label=KEY` (present) or `label=KEY=VALUE` (equal).
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        // every label= value must hold (Docker ANDs labels)
        self.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
    }

    /// `dangling=`: the wanted value, if given.
    pub fn dangling(&self) -> Option<bool> {
        self.get("dangling")
            .last()
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
    }

    /// `reference=`: a glob (Go's path.Match) against `repo:tag` or `repo`.
    pub fn reference_matches(&self, repository: &str, tag: &str) -> bool {
        self.any("reference", |pat| {
            (tag != "<none>" && glob_match(pat, &format!("{repository}:{tag}")) == Ok(true))
                || (repository != "<none>" && glob_match(pat, repository) == Ok(true))
        })
    }
}

/// Go's `path.Match`: `*` any run of non-`/` characters, `?` one, `[…]` a
/// class (`^`/`!` negates, ranges `a-z`), `\` escapes. An unclosed class
/// is an error (also when `name` is empty, so a pattern can be checked).
pub fn glob_match(pattern: &str, name: &str) -> std::result::Result<bool, &'static str> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // validate the whole pattern first (Go reports bad patterns)
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("trailing backslash");
                }
                i += 2;
            }
            '[' => i = class_end(&p, i)?,
            _ => i += 1,
        }
    }
    Ok(glob_at(&p, &n))
}

/// The index after the class that starts at `p[start] == '['`.
fn class_end(p: &[char], start: usize) -> std::result::Result<usize, &'static str> {
    let mut i = start + 1;
    if matches!(p.get(i), Some('^' | '!')) {
        i += 1;
    }
    let mut first = true;
    loop {
        match p.get(i) {
            None => return Err("unclosed character class"),
            Some(']') if !first => return Ok(i + 1),
            Some('\\') => i += 2,
            Some(_) => i += 1,
        }
        first = false;
    }
}

fn class_matches(p: &[char], start: usize, c: char) -> bool {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            break;
        }
        first = false;
        let (lo, next) = if x == '\\' {
            (p.get(i + 1).copied().unwrap_or('\\'), i + 2)
        } else {
            (x, i + 1)
        };
        if p.get(next) == Some(&'-') && p.get(next + 1).is_some_and(|&e| e != ']') {
            let (hi, after) = if p[next + 1] == '\\' {
                (p.get(next + 2).copied().unwrap_or('\\'), next + 3)
            } else {
                (p[next + 1], next + 2)
            };
            hit |= lo <= c && c <= hi;
            i = after;
        } else {
            hit |= lo == c;
            i = next;
        }
    }
    hit != negate
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // any run of non-separators, shortest first
            let rest = &p[1..];
            for k in 0..=n.len() {
                if glob_at(rest, &n[k..]) {
                    return true;
                }
                if k < n.len() && n[k] == '/' {
                    return false;
                }
            }
            false
        }
        Some('?') => n.first().is_some_and(|&c| c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Ok(end) = class_end(p, 0) else {
                return false;
            };
            n.first()
                .is_some_and(|&c| c != '/' && class_matches(p, 0, c))
                && glob_at(&p[end..], &n[1..])
        }
        Some('\\') => p.get(1).is_some_and(|c| n.first() == Some(c)) && glob_at(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && glob_at(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(args: &[&str]) -> Result<Filters> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Filters::parse(&args, CONTAINER_KEYS)
    }

    #[test]
    fn keys_and_values_are_checked_like_dockers() {
        assert_eq!(
            f(&["bogus=1"]).unwrap_err().to_string(),
            "invalid filter 'bogus'"
        );
        assert_eq!(
            f(&["status=sleeping"]).unwrap_err().to_string(),
            "invalid filter 'status=sleeping'"
        );
        assert!(matches!(f(&["name"]), Err(FilterError::BadFormat(_))));
        assert!(matches!(
            f(&["exited=x"]),
            Err(FilterError::BadValue { .. })
        ));
        assert!(matches!(
            f(&["name=("]),
            Err(FilterError::BadPattern { .. })
        ));
        let images = Filters::parse(&["reference=a[".into()], IMAGE_KEYS);
        assert!(matches!(images, Err(FilterError::BadPattern { .. })));
        assert!(Filters::parse(&["status=running".into()], IMAGE_KEYS).is_err());
    }

    #[test]
    fn same_key_or_other_keys_and() {
        let fl = f(&["name=web", "name=db", "label=tier=front"]).unwrap();
        assert!(fl.name_matches("web1") && fl.name_matches("db") && !fl.name_matches("cache"));
        assert!(f(&["name=^web1$"]).unwrap().name_matches("web1"));
        assert!(f(&["name=^/web1$"]).unwrap().name_matches("web1"));
        assert!(!f(&["name=^web$"]).unwrap().name_matches("web1"));
        let labels: BTreeMap<String, String> = [("tier".to_string(), "front".to_string())].into();
        assert!(fl.labels_match(&labels));
        assert!(f(&["label=tier"]).unwrap().labels_match(&labels));
        assert!(!f(&["label=tier=back"]).unwrap().labels_match(&labels));
        assert!(!f(&["label=tier", "label=x"]).unwrap().labels_match(&labels));
        assert!(f(&[]).unwrap().any("id", |_| false), "no filter: all match");
    }

    #[test]
    fn globs_like_go_path_match() {
        for (p, n, want) in [
            ("busybox", "busybox", true),
            ("busy*", "busybox", true),
            ("*", "library/busybox", false),
            ("*/*", "library/busybox", true),
            ("b?sybox:*", "busybox:1.36", true),
            ("[a-c]usybox", "busybox", true),
            ("[^a-c]usybox", "busybox", false),
            ("[!x]usybox", "busybox", true),
            ("bb\\*", "bb*", true),
            ("bb", "bbb", false),
        ] {
            assert_eq!(glob_match(p, n), Ok(want), "{p} {n}");
        }
        assert!(glob_match("a[b", "ab").is_err());
        let fl = Filters::parse(&["reference=bb*".into()], IMAGE_KEYS).unwrap();
        assert!(fl.reference_matches("bb", "latest"));
        assert!(!fl.reference_matches("<none>", "<none>"));
        let fl = Filters::parse(&["reference=bb:1".into()], IMAGE_KEYS).unwrap();
        assert!(fl.reference_matches("bb", "1") && !fl.reference_matches("bb", "2"));
    }
}
