//! Build arguments as BuildKit scopes them: the predefined platform ARGs
//! and the ARGs before the first FROM make the global scope, which FROM
//! lines use; a stage sees a global ARG only when it declares it again
//! (`ARG NAME`). The proxy variables are passed to every RUN without being
//! declared, and are then not part of the step (history, cache key).

use std::collections::{BTreeMap, BTreeSet};

use crate::build::dockerfile::Dockerfile;
use crate::build::expand::{Env, Lexer};
use crate::registry::pull::Platform;

use super::errors::{PlanError, PlanErrorKind};

/// Variables in the order they were last set (BuildKit's `llb.EnvList`):
/// setting one again moves it to the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    pub fn set(&mut self, key: &str, value: &str) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.to_string()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        EnvList::get(self, name)
    }
}

/// The proxy variables Docker passes to RUN without an ARG (upper and
/// lower case).
const PROXY_ARGS: [&str; 5] = [
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
];

/// The platform ARGs every build defines (BuildKit's `defaultArgs`).
const PLATFORM_ARGS: [&str; 11] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// Build arguments that need no ARG to be consumed: the proxies, the
/// platform ARGs, BuildKit's own settings and `SOURCE_DATE_EPOCH`.
pub(super) fn is_predefined(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
        || PLATFORM_ARGS.contains(&name)
        || name.starts_with("BUILDKIT_")
        || name == "SOURCE_DATE_EPOCH"
}

/// `--build-arg K=V` and `--build-arg K` (the value of `K` in `env`; left
/// out when `K` is not set there), the last of a name winning.
pub fn build_args(
    specs: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for spec in specs {
        match spec.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Some(v) = env(spec) {
                    out.insert(spec.clone(), v);
                }
            }
        }
    }
    out
}

/// The environment every RUN gets from the proxy build arguments: each
/// under its upper- and lower-case name, as BuildKit's exec does.
pub(super) fn proxy_env(build_args: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for proxy in PROXY_ARGS {
        let found = build_args
            .iter()
            .rfind(|(k, _)| k.eq_ignore_ascii_case(proxy));
        if let Some((_, v)) = found {
            out.push((proxy.to_ascii_uppercase(), v.clone()));
            out.push((proxy.to_string(), v.clone()));
        }
    }
    out
}

/// The predefined global ARGs (BuildKit's `defaultArgs`), each overridden
/// by a build argument of the same name.
pub(super) fn predefined(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
    overrides: &BTreeMap<String, String>,
) -> EnvList {
    let variant = |p: &Platform| p.variant.clone().unwrap_or_default();
    let values: [(&str, String); PLATFORM_ARGS.len()] = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.arch.clone()),
        ("BUILDVARIANT", variant(build)),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.arch.clone()),
        ("TARGETVARIANT", variant(target)),
        ("TARGETSTAGE", target_stage.to_string()),
    ];
    let mut env = EnvList::default();
    for (k, v) in values {
        env.set(k, overrides.get(k).unwrap_or(&v));
    }
    env
}

/// The ARGs before the first FROM, added to `globals` in order: a build
/// argument wins, else the default expanded with the globals so far; an
/// ARG without either stays unset. Returns the names declared.
pub(super) fn meta_args(
    df: &Dockerfile,
    lexer: &Lexer,
    globals: &mut EnvList,
    build_args: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, PlanError> {
    let mut declared = BTreeSet::new();
    for located in &df.meta_args {
        for decl in &located.value {
            declared.insert(decl.name.clone());
            let value = match (build_args.get(&decl.name), &decl.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(
                    lexer
                        .process_word(default.as_str(), globals)
                        .map_err(|e| PlanError {
                            file: df.file.clone(),
                            line: located.line,
                            kind: Box::new(PlanErrorKind::Expand(e)),
                        })?,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                globals.set(&decl.name, &v);
            }
        }
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_list_moves_a_key_set_again_to_the_end() {
        let mut env = EnvList::default();
        env.set("A", "1");
        env.set("B", "2");
        env.set("A", "3");
        let pairs: Vec<_> = env
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(pairs, ["B=2", "A=3"]);
    }

    #[test]
    fn build_args_from_the_command_line_and_environment() {
        let specs = [
            "A=1".to_string(),
            "HOME".into(),
            "UNSET".into(),
            "A=2".into(),
            "E=".into(),
        ];
        let args = build_args(&specs, |k| (k == "HOME").then(|| "/root".to_string()));
        let got: Vec<_> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(got, ["A=2", "E=", "HOME=/root"]);
    }

    #[test]
    fn proxies_under_both_names() {
        let args = BTreeMap::from([
            ("HTTPS_PROXY".to_string(), "http://p:3128".to_string()),
            ("X".into(), "y".into()),
        ]);
        assert_eq!(
            proxy_env(&args),
            [
                ("HTTPS_PROXY".to_string(), "http://p:3128".to_string()),
                ("https_proxy".into(), "http://p:3128".into())
            ]
        );
        assert!(
            is_predefined("no_proxy")
                && is_predefined("BUILDKIT_INLINE_CACHE")
                && !is_predefined("X")
        );
    }

    #[test]
    fn platform_args() {
        let build = Platform::parse("linux/amd64").unwrap();
        let target = Platform::parse("linux/arm/v7").unwrap();
        let overrides = BTreeMap::from([("TARGETOS".to_string(), "freebsd".to_string())]);
        let env = predefined(&build, &target, "final", &overrides);
        assert_eq!(env.get("BUILDPLATFORM"), Some("linux/amd64"));
        assert_eq!(env.get("BUILDARCH"), Some("amd64"));
        assert_eq!(env.get("BUILDVARIANT"), Some(""));
        assert_eq!(env.get("TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(env.get("TARGETVARIANT"), Some("v7"));
        assert_eq!(env.get("TARGETOS"), Some("freebsd"));
        assert_eq!(env.get("TARGETSTAGE"), Some("final"));
    }
}
