//! `--chown=user[:group]` resolved as BuildKit's file backend does, in the
//! stage's /etc/passwd and /etc/group: a name is looked up (its primary
//! group unless a group is given), a number is taken as it is and, alone,
//! is the group too (`--chown=1000` is 1000:1000).
//!
//! BuildKit silently uses 0 for a name the files lack; rbox refuses it, as
//! Docker's classic builder did: a typo should not give root's files.

use crate::rootfs::IdFiles;
use crate::user;

use super::error::CopyStepError;

pub fn resolve(chown: &str, files: &IdFiles) -> Result<(u32, u32), CopyStepError> {
    let err = |source| CopyStepError::Chown {
        chown: chown.to_string(),
        source,
    };
    let passwd = files.passwd.as_deref();
    let groups = files.group.as_deref();
    let (u, g) = match chown.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (chown, None),
    };
    let (uid, mut gid) = match number(u) {
        Some(n) => (n, n),
        None => {
            let eu = user::resolve(u, passwd, groups).map_err(err)?;
            (eu.uid, eu.gid)
        }
    };
    if let Some(g) = g {
        gid = match number(g) {
            Some(n) => n,
            None => {
                user::resolve(&format!("0:{g}"), passwd, groups)
                    .map_err(err)?
                    .gid
            }
        };
    }
    Ok((uid, gid))
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserError;

    fn files() -> IdFiles {
        IdFiles {
            passwd: Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n".into()),
            group: Some("root:x:0:\nstaff:x:50:\napp:x:1001:\n".into()),
        }
    }

    #[test]
    fn names_and_numbers() {
        let f = files();
        assert_eq!(resolve("app", &f).unwrap(), (1000, 1001));
        assert_eq!(resolve("app:staff", &f).unwrap(), (1000, 50));
        assert_eq!(resolve("1000", &f).unwrap(), (1000, 1000));
        assert_eq!(resolve("123:456", &f).unwrap(), (123, 456));
        assert_eq!(resolve("123:staff", &f).unwrap(), (123, 50));
        assert_eq!(resolve("app:", &f).unwrap(), (1000, 1001));
    }

    #[test]
    fn unknown_names_are_errors() {
        let f = files();
        assert!(matches!(
            resolve("nobody", &f),
            Err(CopyStepError::Chown {
                source: UserError::NoUser(_),
                ..
            })
        ));
        assert!(matches!(
            resolve("app:nogroup", &f),
            Err(CopyStepError::Chown {
                source: UserError::NoGroup(_),
                ..
            })
        ));
        let msg = resolve("nobody", &IdFiles::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("--chown=nobody"), "{msg}");
    }
}
