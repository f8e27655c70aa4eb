//! A syntax check for image references (`busybox`, `quay.io/a/b:tag`,
//! `name@sha256:...`), Docker's grammar without the registry lookup. Used to
//! tell a stage name from an image in `FROM` and `--from`.

fn is_path_component(s: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (s, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// Whether `r` is a syntactically valid image reference.
pub fn is_valid_reference(r: &str) -> bool {
    if r.is_empty() || r.len() > 512 {
        return false;
    }
    let (rest, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        if alg.is_empty() || !alg.starts_with(|c: char| c.is_ascii_alphabetic()) || hex.len() < 32 {
            return false;
        }
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !ok {
            return false;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase())
        {
            if !is_domain(first) {
                return false;
            }
            parts.remove(0);
        }
    }
    parts.iter().all(|p| is_path_component(p))
}

#[cfg(test)]
mod tests {
    use super::is_valid_reference as ok;

    #[test]
    fn references() {
        for good in [
            "busybox",
            "alpine:3.6",
            "quay.io/libpod/testimage:20221018",
            "localhost:5000/a/b",
            "registry.com/missing-equals/causes:error",
            "a__b",
            "a---b",
            "fedora@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "",
            "platform-",
            "Upper",
            "a:",
            ":tag",
            "a//b",
            "-a",
            "a b",
            "stage_${x}",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }
}
