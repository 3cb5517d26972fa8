//! Writes a GGUF file for benchmarks and manual tests.
//!
//! `make_gguf OUT SIZE_MIB` writes a llama-architecture header and one F32 tensor of
//! about SIZE_MIB mebibytes of random data; `make_gguf OUT tiny|100m|100m-q8` writes the
//! corresponding generated model.

use modelrunner_testkit::{GgufWriter, Kv, LlamaSpec, TensorData};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(what)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: make_gguf OUT SIZE_MIB|tiny|100m|100m-q8");
        std::process::exit(2);
    };
    let path = std::path::Path::new(out);
    let w = match what.as_str() {
        "tiny" => LlamaSpec::tiny().build(1),
        "100m" => LlamaSpec::about_100m().build(1),
        "100m-q8" => LlamaSpec::about_100m().build_q8_0(1),
        n => {
            let mib: u64 = n.parse().expect("SIZE_MIB is a number");
            GgufWriter::new()
                .kv("general.architecture", Kv::Str("llama".into()))
                .kv("general.file_type", Kv::U32(0))
                .kv("llama.context_length", Kv::U32(4096))
                .tensor_f32(
                    "token_embd.weight",
                    &[1024, mib * 256],
                    TensorData::RandomF32 {
                        seed: 1,
                        scale: 1.0,
                    },
                )
        }
    };
    w.write_file(path).expect("writing the file");
}
