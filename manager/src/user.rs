//! An image's `User` (`name`, `uid`, `name:group`, `uid:gid`…) resolved
//! against the image's /etc/passwd and /etc/group, as Docker does (runc's
//! `GetExecUser` and the daemon's `getUser`): a name must exist; a numeric
//! uid need not (gid 0, home `/`); without an explicit group, the
//! supplementary groups are the /etc/group entries listing the user by
//! name; the primary gid is always one of them, then `--group-add`'s.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("user {0:?}: ids are 0 to 4294967294")]
    BadId(String),
    #[error("--group-add {0}: no such group in the image's /etc/group (a name must exist; a number need not)")]
    NoAddGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = Passwd<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if l.starts_with('#') || f.len() < 6 {
            return None;
        }
        Some(Passwd {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

/// (name, gid, members) of each /etc/group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if l.starts_with('#') || f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

fn numeric(s: &str) -> Result<Option<u32>, UserError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n != u32::MAX => Ok(Some(n)),
        _ => Err(UserError::BadId(s.to_string())),
    }
}

/// Resolve `user` (the image config's `User`, maybe empty) with the
/// contents of the image's /etc/passwd and /etc/group, if it has them.
pub fn resolve(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = passwd.unwrap_or("");
    let group_file = group.unwrap_or("");
    let (uid, mut gid, home, name) = match numeric(u)? {
        Some(uid) => match passwd_entries(passwd).find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, p.home.to_string(), Some(p.name)),
            None => (uid, 0, "/".to_string(), None),
        },
        None => match passwd_entries(passwd).find(|p| p.name == u) {
            Some(p) => (p.uid, p.gid, p.home.to_string(), Some(p.name)),
            None => return Err(UserError::NoUser(u.to_string())),
        },
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match numeric(g)? {
            Some(n) => n,
            None => group_entries(group_file)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        };
    }
    // Docker: the primary gid, then (implicit group only) the groups that
    // list the user
    let mut additional_gids = vec![gid];
    if let (Some(name), None | Some("")) = (name, g) {
        for (_, id, members) in group_entries(group_file) {
            if members.contains(&name) && !additional_gids.contains(&id) {
                additional_gids.push(id);
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

impl ExecUser {
    /// Add `--group-add` groups (names or numbers) resolved with the image's
    /// /etc/group: a name must exist there, a number need not.
    pub fn add_groups(&mut self, groups: &[String], group: Option<&str>) -> Result<(), UserError> {
        for g in groups {
            let id = match numeric(g)? {
                Some(n) => n,
                None => group_entries(group.unwrap_or(""))
                    .find(|(name, _, _)| name == g)
                    .map(|(_, id, _)| id)
                    .ok_or_else(|| UserError::NoAddGroup(g.clone()))?,
            };
            if !self.additional_gids.contains(&id) {
                self.additional_gids.push(id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nuser:x:1000:1000:user:/home/user:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nwheel:x:10:user,other\naudio:x:29:user\n";

    fn r(u: &str) -> Result<ExecUser, UserError> {
        resolve(u, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_user_is_root() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn names_come_from_passwd_with_supplementary_groups() {
        let u = r("user").unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![1000, 10, 29],
                home: "/home/user".into()
            }
        );
        assert_eq!(r("1000").unwrap(), u, "by uid: the same user");
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(r("user:wheel").unwrap().gid, 10);
        assert_eq!(r("user:5").unwrap().gid, 5);
        assert_eq!(r("1000:audio").unwrap().gid, 29);
        // an explicit group: no supplementary groups from /etc/group
        assert_eq!(r("1000:audio").unwrap().additional_gids, [29]);
    }

    #[test]
    fn group_add_by_name_or_number() {
        let mut u = r("4242").unwrap();
        u.add_groups(
            &["audio".into(), "10".into(), "777".into(), "29".into()],
            Some(GROUP),
        )
        .unwrap();
        assert_eq!(u.additional_gids, [0, 29, 10, 777]);
        assert_eq!(
            u.add_groups(&["staff".into()], Some(GROUP)),
            Err(UserError::NoAddGroup("staff".into()))
        );
    }

    #[test]
    fn unknown_numeric_uid_gets_gid_0_and_slash() {
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(u.additional_gids, [0]);
        let u = resolve("7:8", None, None).unwrap();
        assert_eq!((u.uid, u.gid), (7, 8));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(r("nobody"), Err(UserError::NoUser("nobody".into())));
        assert_eq!(r("user:staff"), Err(UserError::NoGroup("staff".into())));
        assert_eq!(
            resolve("user", None, None),
            Err(UserError::NoUser("user".into()))
        );
        assert!(matches!(r("99999999999"), Err(UserError::BadId(_))));
    }
}
