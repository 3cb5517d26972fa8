//! GGUF reader: real files, generated files, malformed files, and a mutation property test.

use modelrunner_format::gguf::{GgufFile, Value};
use modelrunner_testkit::{stories260k, GgufWriter, Kv, LlamaSpec, TensorData};

#[test]
fn reads_generated_llama() {
    let bytes = LlamaSpec::tiny().build(1).to_bytes();
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.tensors.len(), 3 + 2 * 9);
    assert_eq!(
        f.get("general.architecture").unwrap().as_str(),
        Some("llama")
    );
    let facts = f.facts();
    assert_eq!(facts.architecture, "llama");
    assert_eq!(facts.quantization, "F32");
    assert_eq!(facts.context_length, Some(512));
    assert_eq!(facts.size_bytes, facts.parameter_count * 4);
    // The 320-token vocabulary is longer than 50 entries, so it is left out of the map.
    assert!(!facts.metadata.contains_key("tokenizer.ggml.tokens"));
    assert_eq!(facts.metadata["llama.block_count"], "2");
    assert_eq!(
        facts.metadata["llama.attention.layer_norm_rms_epsilon"],
        "0.000010"
    );
}

#[test]
fn stories260k_facts_match_docker() {
    let Some(path) = stories260k() else { return };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.tensors.len(), 48);
    let facts = f.facts();
    assert_eq!(facts.architecture, "llama");
    assert_eq!(facts.quantization, "F32");
    assert_eq!(facts.context_length, Some(2048));
    // Counted independently with llama.cpp's gguf-py 0.17.1 (`GGUFReader`: the sums of
    // the tensors' `n_elements` and `n_bytes`), and written as Docker Model Runner
    // writes them (gguf-parser-go's counts, "%.2f" with K/M/B and KiB/MiB/GiB units).
    assert_eq!(facts.parameter_count, 292_800);
    assert_eq!(facts.size_bytes, 1_171_200);
    assert_eq!(facts.parameters, "292.80K");
    assert_eq!(facts.size, "1.12MiB");
    println!(
        "stories260K: {} parameters, {}",
        facts.parameters, facts.size
    );
}

#[test]
fn reads_docker_dummy() {
    let p = modelrunner_testkit::shared_dir().join("reference/dmr-testdata/dummy.gguf");
    if !p.exists() {
        modelrunner_testkit::checks_less(&format!("{} is missing", p.display()));
        return;
    }
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.tensors.len(), 10);
    assert_eq!(
        f.metadata.len(),
        15 + usize::from(f.get("general.alignment").is_some())
    );
}

fn tiny() -> Vec<u8> {
    modelrunner_testkit::small_gguf()
}

fn expect_err(bytes: &[u8], needle: &str) {
    let e = GgufFile::parse(bytes).unwrap_err().to_string();
    assert!(e.contains(needle), "error {e:?} lacks {needle:?}");
    assert!(e.contains("at byte"), "error {e:?} does not say where");
}

#[test]
fn malformed_files_are_named_errors() {
    let good = tiny();
    assert!(GgufFile::parse(&good).is_ok());
    expect_err(b"GGML\x03\0\0\0", "not a GGUF file");
    expect_err(&good[..3], "truncated magic");
    let mut v1 = good.clone();
    v1[4] = 1;
    expect_err(&v1, "version 1");
    let mut be = good.clone();
    be[4..8].copy_from_slice(&3u32.to_be_bytes());
    expect_err(&be, "big-endian");
    let mut many = good.clone();
    many[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_err(&many, "tensor count");
    let mut kvs = good.clone();
    kvs[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_err(&kvs, "metadata count");
    // First key length: claim more bytes than the file has.
    let mut key = good.clone();
    key[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
    expect_err(&key, "exceeds");
    // Truncated in the tensor data: the last tensor lies outside the file.
    expect_err(&good[..good.len() - 40], "outside the file");
}

#[test]
fn bad_alignment_dims_and_types_are_refused() {
    let w = |a: u32| {
        GgufWriter::new()
            .kv("general.alignment", Kv::U32(a))
            .tensor_f32("t", &[4], TensorData::OnesF32)
            .to_bytes()
    };
    assert!(GgufFile::parse(&w(64)).is_ok());
    expect_err(&w(48), "alignment");
    expect_err(&w(1 << 21), "alignment");
    let five = GgufWriter::new()
        .tensor_raw("t", &[1, 1, 1, 1, 1], 0, vec![0; 4])
        .to_bytes();
    expect_err(&five, "5 dimensions");
    let unknown = GgufWriter::new()
        .tensor_raw("t", &[4], 99, vec![0; 4])
        .to_bytes();
    expect_err(&unknown, "unknown ggml type 99");
    let block = GgufWriter::new()
        .tensor_raw("t", &[31], 2, vec![0; 18])
        .to_bytes();
    expect_err(&block, "block size");
    let huge = GgufWriter::new()
        .tensor_raw("t", &[u64::MAX / 2, 4], 0, vec![0; 4])
        .to_bytes();
    expect_err(&huge, "overflows");
    let name = GgufWriter::new()
        .tensor_f32(&"n".repeat(64), &[4], TensorData::OnesF32)
        .to_bytes();
    expect_err(&name, "tensor name length 64");
}

#[test]
fn value_types_round_trip() {
    let bytes = GgufWriter::new()
        .kv("u", Kv::U64(1 << 40))
        .kv("b", Kv::Bool(true))
        .kv("bytes", Kv::U8s(vec![1, 2]))
        .to_bytes();
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.get("u"), Some(&Value::U64(1 << 40)));
    assert_eq!(f.get("b"), Some(&Value::Bool(true)));
    assert_eq!(f.facts().metadata["bytes"], "1, 2");
}
