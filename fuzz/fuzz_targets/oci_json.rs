//! Manifest, index and image config JSON through `Raw` (exact bytes kept),
//! plus image references and digests. A document that parses must
//! serialise and parse again (what we write, we can read). Any panic is a
//! bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_oci::{
    to_go_json, CanonicalJson, Digest, ImageConfig, ImageIndex, ImageManifest, Raw, Reference,
};

fn round_trip<T>(data: &[u8], what: &str)
where
    T: serde::de::DeserializeOwned + serde::Serialize + CanonicalJson,
{
    if let Ok(raw) = Raw::<T>::from_bytes(data.to_vec(), what) {
        assert_eq!(raw.bytes(), data);
        let again = raw.value().to_canonical_json();
        serde_json::from_slice::<T>(&again).expect("canonical JSON parses again");
        let go = to_go_json(raw.value());
        serde_json::from_slice::<T>(&go).expect("Go-style JSON parses again");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ImageManifest>(data, "manifest");
    round_trip::<ImageIndex>(data, "index");
    round_trip::<ImageConfig>(data, "config");
    if let Ok(raw) = Raw::<ImageConfig>::from_bytes(data.to_vec(), "config") {
        let _ = raw.value().diff_ids();
        let _ = raw.value().chain_ids();
        let _ = raw.value().platform();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = Reference::parse(s) {
            let shown = r.to_string();
            let _ = Reference::parse(&shown).expect("a reference's display parses again");
            let _ = (r.registry(), r.repository(), r.name(), r.tag(), r.digest());
        }
        let _ = Reference::parse_without_default_tag(s);
        if let Ok(d) = s.parse::<Digest>() {
            assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
            let _ = d.short();
        }
    }
});
