//! The OCI manifest parser on arbitrary bytes: an error or a manifest whose blobs all
//! carry a typed digest, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelrunner_format::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        for d in m.blobs() {
            let _ = d.kind();
            assert_eq!(d.digest.hex().len(), 64);
        }
        let again = Manifest::parse(&m.to_bytes()).expect("a parsed manifest reparses");
        assert_eq!(again, m);
    }
});
