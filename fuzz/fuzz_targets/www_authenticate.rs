//! The registry client's `WWW-Authenticate` parser: whatever a (hostile)
//! registry sends must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_registry::www_authenticate::parse;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    for ch in parse(&header) {
        let _ = ch.param("realm");
        let _ = ch.param("service");
        let _ = ch.param("scope");
    }
});
