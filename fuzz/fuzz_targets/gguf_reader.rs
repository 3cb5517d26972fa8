//! The GGUF header reader on arbitrary bytes: an error or a header, never a panic, an
//! abort or an allocation the file's size does not bound; a header that parses gives its
//! facts and its runnability verdict without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelrunner_format::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = GgufFile::parse(data) {
        let _ = g.facts();
        let _ = g.check_loadable();
        for t in &g.tensors {
            assert!(g.data_offset + t.offset + t.bytes <= g.file_len);
        }
    }
});
