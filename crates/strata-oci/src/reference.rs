//! Image references, parsed and normalised as Docker does
//! (`github.com/distribution/reference`'s `ParseNormalizedNamed`):
//! `busybox` → `docker.io/library/busybox:latest`.
//!
//! Grammar (from distribution/reference):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] path-component ["/" path-component]*
//! domain     := host [":" port]       host := domain-name | "[" ipv6 "]"
//! path-comp  := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
//! tag        := [\w][\w.-]{0,127}
//! ```
//! The first component is a domain when it contains `.` or `:`, is
//! `localhost`, or has an uppercase letter; otherwise the domain is
//! `docker.io`, and single-component names get `library/`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry of a reference that names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised image reference. The tag is `latest` when neither a tag nor
/// a digest was given.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A string that is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {why}")]
pub struct ReferenceError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

impl Reference {
    /// Parses and normalises as `docker pull` does; adds `:latest` when
    /// there is neither tag nor digest.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_without_default_tag(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        Ok(r)
    }

    /// Parses and normalises, but leaves the tag absent when none was given
    /// (for `docker image ls busybox`-style repository filters).
    pub fn parse_without_default_tag(input: &str) -> Result<Reference, ReferenceError> {
        let err = |why: &str| ReferenceError {
            input: input.to_string(),
            why: why.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(err(
                "a 64-digit hexadecimal string is an image ID, not a repository name",
            ));
        }
        let (domain, remainder) = split_docker_domain(input);

        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (name_and_tag, None),
        };
        if path.to_ascii_lowercase() != path {
            return Err(err(&format!("repository name {path:?} must be lowercase")));
        }
        if !valid_domain(&domain) {
            return Err(err(&format!("invalid registry host {domain:?}")));
        }
        if path.is_empty() {
            return Err(err("missing repository name"));
        }
        for comp in path.split('/') {
            if let Some(why) = invalid_path_component(comp) {
                return Err(err(&format!("path component {comp:?} {why}")));
            }
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(err("repository name longer than 255 characters"));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err(&format!(
                    "invalid tag {t:?} (tags are 1-128 characters of [A-Za-z0-9_.-], not starting with . or -)"
                )));
            }
        }
        let digest = match digest {
            None => None,
            Some(d) => Some(d.parse::<Digest>().map_err(|e| err(&e.to_string()))?),
        };
        Ok(Reference {
            registry: domain,
            repository: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from already-normalised parts (validated).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        let mut r = Reference::parse_without_default_tag(&s)?;
        r.digest = digest;
        Ok(r)
    }

    /// `docker.io`, `127.0.0.1:5000`, ...
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path within the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Registry and repository: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same name with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        Reference::from_parts(&self.registry, &self.repository, Some(tag), None)
    }

    /// The same name and tag pinned to a digest.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Docker's short name: `busybox` for `docker.io/library/busybox`,
    /// `user/repo` for Docker Hub users, the full name elsewhere. This is
    /// the REPOSITORY column of `docker image ls`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Docker's short display: `busybox:latest`, `user/repo@sha256:...`,
    /// `localhost:5000/x:1`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_digest(&mut s);
        s
    }

    /// The host to talk to for the registry API (`docker.io` →
    /// `registry-1.docker.io`).
    pub fn registry_api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    fn push_tag_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_REGISTRY {
        domain = DEFAULT_REGISTRY.to_string();
    }
    if domain == DEFAULT_REGISTRY && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn valid_domain(domain: &str) -> bool {
    // host [":" port]; host is dotted labels or a bracketed IPv6 address.
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(p) => ("x", Some(p)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`; returns why not.
fn invalid_path_component(comp: &str) -> Option<&'static str> {
    if comp.is_empty() {
        return Some("is empty (double or trailing slash?)");
    }
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Some("must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return Some("has an invalid separator (use one '.', one or two '_', or '-'s)");
        }
    }
    None
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_digest(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        // input, full form, familiar form, registry, repository
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "docker.io",
                "library/busybox",
            ),
            (
                "busybox:1.35",
                "docker.io/library/busybox:1.35",
                "busybox:1.35",
                "docker.io",
                "library/busybox",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "docker.io",
                "library/busybox",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "docker.io",
                "library/busybox",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
                "docker.io",
                "library/busybox",
            ),
            (
                "docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
                "busybox:1",
                "docker.io",
                "library/busybox",
            ),
            (
                "dmcgowan/myrepo",
                "docker.io/dmcgowan/myrepo:latest",
                "dmcgowan/myrepo:latest",
                "docker.io",
                "dmcgowan/myrepo",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
                "docker.io",
                "library/a/b",
            ),
            (
                "127.0.0.1:5000/x/y:tag",
                "127.0.0.1:5000/x/y:tag",
                "127.0.0.1:5000/x/y:tag",
                "127.0.0.1:5000",
                "x/y",
            ),
            (
                "localhost/foo",
                "localhost/foo:latest",
                "localhost/foo:latest",
                "localhost",
                "foo",
            ),
            (
                "localhost:5000/foo/bar:v1.0",
                "localhost:5000/foo/bar:v1.0",
                "localhost:5000/foo/bar:v1.0",
                "localhost:5000",
                "foo/bar",
            ),
            (
                "example.com/a__b/c-d--e/f.g:x_Y-1.z",
                "example.com/a__b/c-d--e/f.g:x_Y-1.z",
                "example.com/a__b/c-d--e/f.g:x_Y-1.z",
                "example.com",
                "a__b/c-d--e/f.g",
            ),
            (
                "[::1]:5000/foo",
                "[::1]:5000/foo:latest",
                "[::1]:5000/foo:latest",
                "[::1]:5000",
                "foo",
            ),
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest", "Foo", "bar"),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
                "docker.io",
                "library/localhost",
            ),
            (
                "ubuntu:_tag",
                "docker.io/library/ubuntu:_tag",
                "ubuntu:_tag",
                "docker.io",
                "library/ubuntu",
            ),
        ];
        for &(input, full, familiar, registry, repo) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repo, "{input}");
            // Normalisation is idempotent.
            assert_eq!(Reference::parse(full).unwrap(), r, "{full}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), format!("busybox@{D}"));

        let r = Reference::parse(&format!("example.com:443/a/b:v2@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.registry(), "example.com:443");
        assert_eq!(r.to_string(), format!("example.com:443/a/b:v2@{D}"));

        let r = Reference::parse_without_default_tag("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(
            r.with_tag("1").unwrap().to_string(),
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn api_host() {
        assert_eq!(
            Reference::parse("busybox").unwrap().registry_api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("localhost:5000/a")
                .unwrap()
                .registry_api_host(),
            "localhost:5000"
        );
    }

    #[test]
    fn rejects_bad_references() {
        let long = format!("a/{}", "b".repeat(260));
        let long_tag = format!("a:{}", "t".repeat(129));
        for bad in [
            "",
            "Busybox",
            "busybox:",
            ":tag",
            "busybox@",
            "busybox@sha256:abc",
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "a//b",
            "a/",
            "/a",
            "-foo",
            "foo-",
            "foo..bar",
            "foo___bar",
            "foo/../bar",
            "foo:tag!",
            "foo:-tag",
            "foo:.tag",
            "docker.io/Library/foo",
            "example.com:port/foo",
            "-example.com/foo",
            "[zz]/foo",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "foo bar",
            "foo/bär",
            long.as_str(),
            long_tag.as_str(),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = Reference::parse("Busybox").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
    }
}
