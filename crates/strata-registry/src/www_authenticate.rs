//! A parser for `WWW-Authenticate` headers (RFC 7235 challenges), robust to
//! what registries actually send: several challenges in one header, quoted
//! strings with escapes and commas, unquoted tokens, odd whitespace and case.
//!
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`

use std::collections::BTreeMap;

/// One challenge: a scheme (lower-cased) and its parameters (keys lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, keys lower-cased.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value (`key` lower-case).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses every challenge of a header value. Malformed parts are skipped,
/// never a panic.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_commas();
        if p.eof() {
            break;
        }
        let Some(scheme) = p.token() else {
            p.i += 1; // junk byte: skip it
            continue;
        };
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // Parameters: key=value pairs separated by commas, until the next
        // token that is not followed by '=' (which starts a new challenge).
        loop {
            p.skip_ws_commas();
            let save = p.i;
            let Some(key) = p.token() else { break };
            p.skip_ws();
            if p.peek() != Some(b'=') {
                p.i = save; // a new scheme (or token68) starts here
                break;
            }
            p.i += 1;
            // token68 padding: `abc==`
            if p.peek() == Some(b'=') {
                while p.peek() == Some(b'=') {
                    p.i += 1;
                }
                continue;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            ch.params.insert(key.to_ascii_lowercase(), value);
        }
        out.push(ch);
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b',')) {
            self.i += 1;
        }
    }
    /// RFC 7230 tchar run (plus '/' and ':' which some servers leave unquoted).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// A quoted string starting at '"'; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn multiple_scopes_with_commas_inside_quotes() {
        let c = parse(
            r#"Bearer realm="http://127.0.0.1:1/t", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope""#,
        );
        assert_eq!(
            c[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn several_challenges_case_and_unquoted() {
        let c = parse(r#"Basic realm="Registry Realm" , BEARER Realm=https://x/token,Service=reg"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://x/token"));
        assert_eq!(c[1].param("service"), Some("reg"));
    }

    #[test]
    fn escapes_and_garbage() {
        let c = parse(r#"Bearer realm="a\"b\\c""#);
        assert_eq!(c[0].param("realm"), Some(r#"a"b\c"#));
        for junk in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Negotiate abc==, Basic",
            "@@@ Basic realm=x",
        ] {
            let _ = parse(junk);
        }
        let c = parse("Negotiate abc==, Basic realm=x");
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["negotiate", "basic"]
        );
        assert_eq!(c[1].param("realm"), Some("x"));
        let c = parse("@@@ Basic realm=x");
        assert_eq!(c.last().unwrap().scheme, "basic");
    }
}
