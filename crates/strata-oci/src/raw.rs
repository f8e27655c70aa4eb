//! `Raw<T>`: a parsed document together with the exact bytes it was parsed
//! from and their digest, so that anything hashed is never re-serialised.
//! Also the canonical serialisation for documents we create (compact JSON,
//! Go's escaping of `<`, `>`, `&`, U+2028 and U+2029, as Docker writes).

use std::io;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::digest::Digest;
use crate::error::Error;

/// A parsed value plus its exact bytes and their sha256 digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw<T> {
    value: T,
    bytes: Vec<u8>,
    digest: Digest,
}

impl<T: DeserializeOwned> Raw<T> {
    /// Parses `bytes` (read from outside: an archive, a registry, the store),
    /// keeping them as they are. `what` names the document in errors.
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Raw<T>, Error> {
        let value = serde_json::from_slice(&bytes).map_err(|e| Error::json(what, e))?;
        let digest = Digest::sha256_of(&bytes);
        Ok(Raw {
            value,
            bytes,
            digest,
        })
    }
}

impl<T: CanonicalJson> Raw<T> {
    /// Serialises a value we created, canonically.
    pub fn from_value(value: T) -> Raw<T> {
        let bytes = value.to_canonical_json();
        let digest = Digest::sha256_of(&bytes);
        Raw {
            value,
            bytes,
            digest,
        }
    }
}

impl<T> Raw<T> {
    /// The parsed document.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
    /// The size of the bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

impl<T> Deref for Raw<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Documents with one canonical byte form.
pub trait CanonicalJson {
    /// The document's canonical bytes.
    fn to_canonical_json(&self) -> Vec<u8>;
}

impl CanonicalJson for crate::ImageManifest {
    fn to_canonical_json(&self) -> Vec<u8> {
        to_go_json(self)
    }
}

impl CanonicalJson for crate::ImageIndex {
    fn to_canonical_json(&self) -> Vec<u8> {
        to_go_json(self)
    }
}

impl CanonicalJson for serde_json::Value {
    fn to_canonical_json(&self) -> Vec<u8> {
        to_go_json(self)
    }
}

/// Compact JSON, escaped as Go's `encoding/json` escapes strings.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Our types have string keys only and serialise infallibly.
    value
        .serialize(&mut ser)
        .expect("serialising to a Vec cannot fail for string-keyed JSON");
    out
}

struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"created_by": "a && b <c> \u{2028}", "n": 1});
        assert_eq!(
            String::from_utf8(to_go_json(&v)).unwrap(),
            r#"{"created_by":"a \u0026\u0026 b \u003cc\u003e \u2028","n":1}"#
        );
    }
}
