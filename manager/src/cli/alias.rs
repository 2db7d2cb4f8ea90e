//! Docker's management-command spellings of the verbs: `image ls`,
//! `container rm`, … are rewritten to rbox's verbs (`images`, `rm`, …)
//! before clap parses, so each verb keeps one definition and its help.
//! `image prune` and `container prune` are verbs of their own; `system
//! service` is `serve`.

use std::ffi::{OsStr, OsString};

/// `image X` → rbox's verb.
const IMAGE: &[(&str, &str)] = &[
    ("ls", "images"),
    ("list", "images"),
    ("rm", "rmi"),
    ("remove", "rmi"),
    ("inspect", "inspect"),
    ("pull", "pull"),
    ("push", "push"),
    ("tag", "tag"),
    ("history", "history"),
    ("save", "save"),
    ("load", "load"),
    ("import", "import"),
    ("build", "build"),
];

/// `container X` → rbox's verb.
const CONTAINER: &[(&str, &str)] = &[
    ("ls", "ps"),
    ("list", "ps"),
    ("ps", "ps"),
    ("rm", "rm"),
    ("remove", "rm"),
    ("run", "run"),
    ("create", "create"),
    ("start", "start"),
    ("stop", "stop"),
    ("restart", "restart"),
    ("kill", "kill"),
    ("inspect", "inspect"),
    ("logs", "logs"),
    ("exec", "exec"),
    ("attach", "attach"),
    ("wait", "wait"),
    ("pause", "pause"),
    ("unpause", "unpause"),
    ("rename", "rename"),
    ("port", "port"),
    ("top", "top"),
    ("stats", "stats"),
    ("cp", "cp"),
];

/// `system X` → rbox's verb (`system df|prune` are rbox's own).
const SYSTEM: &[(&str, &str)] = &[("service", "serve")];

/// Global flags that take a value (they may come before the verb).
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--config"];

/// The command line with a management-command alias replaced by its verb;
/// anything else is returned as it is.
pub fn rewrite(mut args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        if GLOBAL_WITH_VALUE.contains(&a) {
            i += 2;
        } else if a.starts_with("--")
            && GLOBAL_WITH_VALUE
                .iter()
                .any(|g| a.starts_with(&format!("{g}=")))
        {
            i += 1;
        } else {
            break;
        }
    }
    let table = match args.get(i).and_then(|a| a.to_str()) {
        Some("image") => IMAGE,
        Some("container") => CONTAINER,
        Some("system") => SYSTEM,
        _ => return args,
    };
    let verb = args.get(i + 1).map(OsString::as_os_str);
    if let Some((_, to)) = table
        .iter()
        .find(|(from, _)| verb == Some(OsStr::new(from)))
    {
        args.splice(i..i + 2, [OsString::from(to)]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(line: &str) -> String {
        let args = line.split(' ').map(OsString::from).collect();
        rewrite(args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn management_commands_become_verbs() {
        assert_eq!(r("rbox image ls -q"), "rbox images -q");
        assert_eq!(r("rbox image list"), "rbox images");
        assert_eq!(r("rbox image rm x"), "rbox rmi x");
        assert_eq!(r("rbox container ls -a"), "rbox ps -a");
        assert_eq!(r("rbox container list"), "rbox ps");
        assert_eq!(r("rbox container rm -f c"), "rbox rm -f c");
        assert_eq!(
            r("rbox --root /r container run --rm bb ls"),
            "rbox --root /r run --rm bb ls"
        );
        assert_eq!(r("rbox --root=/r image ls"), "rbox --root=/r images");
        assert_eq!(
            r("rbox system service -H unix:///x.sock"),
            "rbox serve -H unix:///x.sock"
        );
    }

    #[test]
    fn other_lines_are_left_alone() {
        for line in [
            "rbox run bb image ls",
            "rbox container prune -f",
            "rbox image prune",
            "rbox image",
            "rbox image nosuch",
            "rbox system df",
            "rbox ps",
            "rbox",
        ] {
            assert_eq!(r(line), line);
        }
    }
}
