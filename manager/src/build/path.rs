//! Lexical path cleaning as Go's `path.Clean` does it, which BuildKit and
//! moby/patternmatcher apply to WORKDIR, mount targets and ignore patterns.

/// The shortest path equivalent to `p` by purely lexical processing: `//`
/// becomes `/`, `.` elements go, `x/..` goes, a leading `/..` is `/`, a
/// trailing slash goes; an empty result is `.`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => pop_parent(&mut parts, rooted),
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

/// `..` removes the last element, unless there is none to remove: at the
/// root it vanishes, in a relative path it stays.
fn pop_parent(parts: &mut Vec<&str>, rooted: bool) {
    match parts.last() {
        Some(&last) if last != ".." => {
            parts.pop();
        }
        _ if rooted => {}
        _ => parts.push(".."),
    }
}

/// `base` joined with `p` and cleaned; `p` wins when it is absolute.
pub fn join(base: &str, p: &str) -> String {
    if p.starts_with('/') || base.is_empty() {
        return clean(p);
    }
    clean(&format!("{base}/{p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // (input, Go's path.Clean)
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/..", "../.."),
            ("/../a", "/a"),
            ("/a/b/../../..", "/"),
            ("a/b/../../../c", "../c"),
            ("**/*.go", "**/*.go"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn join_relative_and_absolute() {
        assert_eq!(join("/app", "src"), "/app/src");
        assert_eq!(join("/app", "/etc"), "/etc");
        assert_eq!(join("/app", "../x"), "/x");
        assert_eq!(join("", "x"), "x");
    }
}
