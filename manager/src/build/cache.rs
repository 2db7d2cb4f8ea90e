//! The build cache's keys, content-addressed as BuildKit's: a step's key
//! is the digest of its parent's key, the step as planned (every value
//! expanded, the build args it sees, RUN's environment; not its line or
//! spelling) and, for COPY and ADD, the content of what it copies (not
//! mtimes); for RUN, the images its `--mount from=`s show and the content
//! of the context a bind mount shows. Equal keys mean equal results, so a
//! hit reuses the image the step made before (the rows are in the store:
//! store/build_cache.rs).

use sha2::{Digest, Sha256};

use super::plan::Op;

/// Changes when what a key means changes: keys of another rbox's format
/// never match.
const FORMAT: &str = "rbox-build-cache-v1";

/// The key a stage starts from: its base image's id (or `scratch`).
pub fn base_key(base: &str) -> String {
    digest(&[FORMAT, "base", base])
}

/// The key of the step `op` after the step keyed `parent`; `inputs` is
/// what else it reads: the digest of the files a COPY or ADD reads, the
/// mounts' images and context digests of a RUN (empty for other steps).
pub fn step_key(parent: &str, op: &Op, inputs: &str) -> String {
    digest(&[FORMAT, parent, &format!("{op:?}"), inputs])
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    format!("sha256:{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_differ_by_step_and_input() {
        let b = base_key("sha256:abc");
        let a1 = step_key(&b, &Op::Workdir("/a".into()), "");
        assert_eq!(a1, step_key(&b, &Op::Workdir("/a".into()), ""));
        assert_ne!(a1, step_key(&b, &Op::Workdir("/b".into()), ""));
        assert_ne!(
            a1,
            step_key(&base_key("sha256:abd"), &Op::Workdir("/a".into()), "")
        );
        let c = Op::User("x".into());
        assert_ne!(step_key(&a1, &c, "d1"), step_key(&a1, &c, "d2"));
        // parts are length-prefixed: no two splits of one text collide
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
    }
}
