//! `--chmod` for COPY/ADD: an octal mode (`755`, `0644`) replaces the
//! source's permissions; a symbolic one (`u+x,g-w,o=r`, `a+X`), as BuildKit
//! accepts since Dockerfile 1.14, is applied to each source's own mode.

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chmod {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    /// Bit mask of the classes (u = 0o4700, g = 0o2070, o = 0o1007).
    who: u32,
    op: char,
    /// rwx as 0o7 (per class, shifted when applied), plus s and t.
    perms: Perms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Perms {
    r: bool,
    w: bool,
    x: bool,
    /// `X`: execute only for directories or when someone may execute already.
    big_x: bool,
    s: bool,
    t: bool,
}

/// A `--chmod` value that is neither octal nor symbolic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --chmod={0}: use an octal mode such as 755 or a symbolic one such as u+x,g-w")]
pub struct InvalidChmod(pub String);

impl Chmod {
    /// Parses `--chmod=VALUE`; the error says which forms are accepted.
    pub(crate) fn parse(v: &str) -> Result<Chmod, InvalidChmod> {
        let bad = || InvalidChmod(v.to_string());
        if !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            let m = u32::from_str_radix(v, 8).map_err(|_| bad())?;
            return if m <= 0o7777 {
                Ok(Chmod::Octal(m))
            } else {
                Err(bad())
            };
        }
        let mut clauses = Vec::new();
        for part in v.split(',') {
            let op_at = part.find(['+', '-', '=']).ok_or_else(bad)?;
            let (who_s, rest) = part.split_at(op_at);
            let mut who = 0;
            for c in who_s.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(bad()),
                };
            }
            if who == 0 {
                who = 0o7777;
            }
            let op = rest.chars().next().ok_or_else(bad)?;
            let mut perms = Perms::default();
            for c in rest[1..].chars() {
                match c {
                    'r' => perms.r = true,
                    'w' => perms.w = true,
                    'x' => perms.x = true,
                    'X' => perms.big_x = true,
                    's' => perms.s = true,
                    't' => perms.t = true,
                    _ => return Err(bad()),
                }
            }
            clauses.push(Clause { who, op, perms });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The resulting permission bits for an entry whose mode is `mode`.
    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut m = mode & 0o7777;
                for c in clauses {
                    let x = c.perms.x || (c.perms.big_x && (is_dir || m & 0o111 != 0));
                    let mut bits = 0;
                    if c.perms.r {
                        bits |= 0o444;
                    }
                    if c.perms.w {
                        bits |= 0o222;
                    }
                    if x {
                        bits |= 0o111;
                    }
                    if c.perms.s {
                        bits |= 0o6000;
                    }
                    if c.perms.t {
                        bits |= 0o1000;
                    }
                    let bits = bits & c.who;
                    m = match c.op {
                        '+' => m | bits,
                        '-' => m & !bits,
                        // `=` clears the class's rwx (and its special bit) first.
                        _ => (m & !(c.who & 0o7777)) | bits,
                    };
                }
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("0640").unwrap().apply(0o777, true), 0o640);
        let s = Chmod::parse("u+x,g-w").unwrap();
        assert_eq!(s.apply(0o664, false), 0o744);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, false), 0o644);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(Chmod::parse("go=r").unwrap().apply(0o777, false), 0o744);
        assert_eq!(Chmod::parse("+x").unwrap().apply(0o600, false), 0o711);
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("99").is_err());
    }
}
