//! `--chmod`: an octal mode replaces the copied entries' permissions; a
//! symbolic one (`u+x,go-w`, `a=rX`) changes each entry's own mode as
//! chmod(1) does (`X`: execute for directories and for what some class may
//! execute already).

use crate::build::plan::Chmod;

/// The mode `c` gives an entry whose mode is `mode`.
pub fn apply(c: &Chmod, mode: u32, dir: bool) -> u32 {
    match c {
        Chmod::Octal(m) => *m & 0o7777,
        Chmod::Symbolic(s) => symbolic(s, mode & 0o7777, dir),
    }
}

fn symbolic(s: &str, mut mode: u32, dir: bool) -> u32 {
    for clause in s.split(',') {
        let ops_at = clause.find(['+', '-', '=']).unwrap_or(clause.len());
        let who = who_mask(&clause[..ops_at]);
        let mut rest = &clause[ops_at..];
        while let Some(op) = rest.chars().next() {
            rest = &rest[1..];
            let end = rest.find(['+', '-', '=']).unwrap_or(rest.len());
            let bits = perm_bits(&rest[..end], mode, dir) & who;
            rest = &rest[end..];
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !who) | bits,
            }
        }
    }
    mode
}

/// The bits `u`, `g`, `o`, `a` (or nothing: all) may change.
fn who_mask(who: &str) -> u32 {
    if who.is_empty() {
        return 0o7777;
    }
    who.chars().fold(0, |m, c| {
        m | match c {
            'u' => 0o4700,
            'g' => 0o2070,
            'o' => 0o1007,
            _ => 0o7777,
        }
    })
}

fn perm_bits(perms: &str, mode: u32, dir: bool) -> u32 {
    // copying a class: its rwx in every class (masked by the caller)
    let copy = |shift: u32| ((mode >> shift) & 0o7) * 0o111;
    match perms {
        "u" => return copy(6),
        "g" => return copy(3),
        "o" => return copy(0),
        _ => {}
    }
    perms.chars().fold(0, |b, c| {
        b | match c {
            'r' => 0o444,
            'w' => 0o222,
            'x' => 0o111,
            'X' if dir || mode & 0o111 != 0 => 0o111,
            's' => 0o6000,
            't' => 0o1000,
            _ => 0,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32, dir: bool) -> u32 {
        apply(&Chmod::Symbolic(s.into()), mode, dir)
    }

    #[test]
    fn octal_replaces() {
        assert_eq!(apply(&Chmod::Octal(0o755), 0o600, false), 0o755);
        assert_eq!(apply(&Chmod::Octal(0o4711), 0o600, true), 0o4711);
    }

    #[test]
    fn symbolic_as_chmod_does() {
        assert_eq!(sym("u+x", 0o644, false), 0o744);
        assert_eq!(sym("go-w", 0o666, false), 0o644);
        assert_eq!(sym("u+x,go-w", 0o666, false), 0o744);
        assert_eq!(sym("a=rX", 0o640, false), 0o444);
        assert_eq!(sym("a=rX", 0o640, true), 0o555);
        assert_eq!(sym("a=rX", 0o740, false), 0o555);
        assert_eq!(sym("+x", 0o600, false), 0o711);
        assert_eq!(sym("o=u", 0o750, false), 0o757);
        assert_eq!(sym("u+s", 0o755, false), 0o4755);
        assert_eq!(sym("g+s", 0o755, false), 0o2755);
        assert_eq!(sym("o+t", 0o777, true), 0o1777);
        assert_eq!(sym("u=rw,g=r,o=", 0o777, false), 0o640);
        assert_eq!(sym("u+r-w", 0o200, false), 0o400);
    }
}
