//! The platforms this host runs natively, and the check that every stage
//! a build needs is one of them: rbox build runs RUN steps on the host's
//! CPU and has no emulation (BuildKit would need QEMU's binfmt handlers
//! for another architecture too).
//!
//! On amd64 the microarchitecture levels (`linux/amd64/v2`, `/v3`, `/v4`)
//! are native when the CPU has their instructions (the x86-64 psABI's
//! lists, read from /proc/cpuinfo's flags), as containerd matches them.

use super::errors::PlanErrorKind;
use super::{Plan, PlanError, Platform};

/// The CPU flags each x86-64 level adds (as /proc/cpuinfo names them:
/// `pni` is SSE3, `abm` LZCNT, `lahf_lm` LAHF-SAHF in 64-bit mode).
const AMD64_LEVELS: [&[&str]; 3] = [
    &[
        "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3",
    ],
    &[
        "abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave",
    ],
    &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
];

/// The platforms a linux host of architecture `arch` (Go's names:
/// `amd64`, `arm64`) whose CPU has `cpu_flags` (the `flags` line of
/// /proc/cpuinfo) runs without emulation.
pub fn native(arch: &str, cpu_flags: &str) -> Vec<Platform> {
    let p = |variant: Option<&str>| Platform {
        os: "linux".into(),
        arch: arch.to_string(),
        variant: variant.map(str::to_string),
    };
    let mut out = vec![p(None)];
    match arch {
        "amd64" => {
            out.push(p(Some("v1")));
            let flags: Vec<&str> = cpu_flags.split_whitespace().collect();
            for (i, needs) in AMD64_LEVELS.iter().enumerate() {
                if !needs.iter().all(|f| flags.contains(f)) {
                    break;
                }
                out.push(p(Some(&format!("v{}", i + 2))));
            }
        }
        "arm64" => out.push(p(Some("v8"))),
        _ => {}
    }
    out
}

/// This host's native platforms.
pub fn host_native() -> Vec<Platform> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "flags").then_some(v)
        })
        .unwrap_or_default();
    native(&crate::image::host_arch().to_string(), flags)
}

/// Whether `p` is one of `native` (a platform without a variant matches
/// its architecture).
pub fn runs_natively(p: &Platform, native: &[Platform]) -> bool {
    native.iter().any(|n| {
        n.os == p.os && n.arch == p.arch && (p.variant.is_none() || n.variant == p.variant)
    })
}

/// `native` as one line for messages: `linux/amd64 (v1, v2, v3)`.
pub fn describe(native: &[Platform]) -> String {
    let Some(first) = native.first() else {
        return "no platform".into();
    };
    let variants: Vec<&str> = native.iter().filter_map(|p| p.variant.as_deref()).collect();
    if variants.is_empty() {
        first.to_string()
    } else {
        format!("{}/{} ({})", first.os, first.arch, variants.join(", "))
    }
}

/// Every needed stage of `plan` runs on one of `native`; else an error at
/// the first foreign stage's FROM naming its platform.
pub fn check_platforms(plan: &Plan, native: &[Platform]) -> Result<(), PlanError> {
    for s in plan.stages.iter().filter(|s| s.needed) {
        if !runs_natively(&s.platform, native) {
            return Err(PlanError {
                file: plan.file.clone(),
                line: s.line,
                kind: Box::new(PlanErrorKind::ForeignPlatform {
                    platform: s.platform.to_string(),
                    native: describe(native),
                }),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Platform]) -> Vec<String> {
        v.iter().map(|p| p.to_string()).collect()
    }

    const V2: &str = "fpu sse sse2 pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm";
    const V3: &str = "fpu sse sse2 pni ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt xsave avx f16c lahf_lm abm bmi1 avx2 bmi2";

    #[test]
    fn amd64_levels_follow_the_cpu_flags() {
        assert_eq!(
            names(&native("amd64", "fpu sse sse2")),
            ["linux/amd64", "linux/amd64/v1"]
        );
        assert_eq!(
            names(&native("amd64", V2)),
            ["linux/amd64", "linux/amd64/v1", "linux/amd64/v2"]
        );
        assert_eq!(
            names(&native("amd64", V3)),
            [
                "linux/amd64",
                "linux/amd64/v1",
                "linux/amd64/v2",
                "linux/amd64/v3"
            ]
        );
        let v4 = format!("{V3} avx512f avx512dq avx512cd avx512bw avx512vl");
        assert_eq!(native("amd64", &v4).len(), 5);
        // a level needs every flag of the levels below it too
        let no_v2 = V3.replace("popcnt", "");
        assert_eq!(native("amd64", &no_v2).len(), 2);
        assert_eq!(
            names(&native("arm64", "")),
            ["linux/arm64", "linux/arm64/v8"]
        );
    }

    #[test]
    fn a_platform_without_a_variant_matches_its_architecture() {
        let n = native("amd64", V2);
        let ok = |s: &str| runs_natively(&Platform::parse(s).unwrap(), &n);
        assert!(ok("linux/amd64"));
        assert!(ok("linux/amd64/v1"));
        assert!(ok("linux/amd64/v2"));
        assert!(!ok("linux/amd64/v3"));
        assert!(!ok("linux/arm64"));
        assert!(!ok("windows/amd64"));
        assert_eq!(describe(&n), "linux/amd64 (v1, v2)");
    }
}
