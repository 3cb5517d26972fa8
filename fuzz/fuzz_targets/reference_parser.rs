//! Model references on arbitrary text: an error or a reference whose normal form parses
//! back to itself, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelrunner_format::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = text.parse::<Reference>() {
        let normal = r.to_string();
        let again: Reference = normal.parse().expect("a normal form reparses");
        assert_eq!(again.to_string(), normal);
    }
});
