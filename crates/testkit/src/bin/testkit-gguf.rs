//! Writes one of the testkit's generated models to a file, for harnesses outside Rust
//! (the llama-server test suite's adapter): `testkit-gguf KIND OUT`.
//!
//! Kinds: `tiny` (a llama, mean pooling), `fim` (with FIM tokens), `reranker` (Qwen3-
//! Reranker's shape with its rerank prompt), `reranker-plain` (without the prompt).

use modelrunner_testkit::LlamaSpec;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, out] = &args[..] else {
        eprintln!("usage: testkit-gguf tiny|fim|reranker|reranker-plain OUT");
        std::process::exit(2);
    };
    let spec = LlamaSpec::tiny();
    let w = match kind.as_str() {
        "tiny" => spec.build(1),
        "fim" => spec.build_fim(3),
        "reranker" => spec.build_reranker(5, true),
        "reranker-plain" => spec.build_reranker(5, false),
        other => {
            eprintln!("testkit-gguf: unknown kind {other:?}");
            std::process::exit(2);
        }
    };
    if let Err(e) = w.write_file(std::path::Path::new(out)) {
        eprintln!("testkit-gguf: writing {out}: {e}");
        std::process::exit(1);
    }
}
