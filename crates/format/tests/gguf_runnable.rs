//! What `package` must refuse because llama.cpp would: names that are not UTF-8, empty
//! or repeated, tensor data out of order or overlapping, and impossible hyper-parameters.
//! Each error says where (the byte offset) or which key, and why.

use modelrunner_format::gguf::GgufFile;
use modelrunner_testkit::{stories260k, GgufWriter, Kv, LlamaSpec, TensorData};

fn parse_err(bytes: &[u8]) -> String {
    GgufFile::parse(bytes).unwrap_err().to_string()
}

fn two_tensors() -> GgufWriter {
    GgufWriter::new()
        .tensor_f32("a", &[8], TensorData::OnesF32)
        .tensor_f32("b", &[8], TensorData::OnesF32)
}

/// Offsets of the two tensors' `offset` fields in [`two_tensors`]' bytes: after the
/// 24-byte preamble, each info is an 8-byte length, a 1-byte name, 4 + 8 bytes of
/// dimensions and 4 of type.
const A_OFFSET: usize = 24 + 25;
const B_OFFSET: usize = A_OFFSET + 8 + 25;

#[test]
fn names_must_be_utf8_non_empty_and_unique() {
    let mut bad = GgufWriter::new().kv("k\u{e9}y", Kv::U32(1)).to_bytes();
    let at = bad.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    bad[at] = 0xff;
    let e = parse_err(&bad);
    assert!(
        e.contains("metadata key is not UTF-8") && e.contains("at byte 24"),
        "{e}"
    );
    let e = parse_err(&GgufWriter::new().kv("", Kv::U32(1)).to_bytes());
    assert!(e.contains("empty metadata key"), "{e}");
    let twice = GgufWriter::new()
        .kv("general.name", Kv::Str("a".into()))
        .kv("general.name", Kv::Str("b".into()))
        .to_bytes();
    let e = parse_err(&twice);
    assert!(e.contains("duplicate metadata key \"general.name\""), "{e}");
    let e = parse_err(
        &GgufWriter::new()
            .tensor_f32("w", &[8], TensorData::OnesF32)
            .tensor_f32("w", &[8], TensorData::OnesF32)
            .to_bytes(),
    );
    assert!(e.contains("duplicate tensor name \"w\""), "{e}");
    // Values may hold any bytes (vocabulary pieces do).
    let mut value = GgufWriter::new()
        .kv("v", Kv::Str("\u{e9}".into()))
        .to_bytes();
    let at = value.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    value[at] = 0xff;
    GgufFile::parse(&value).unwrap();
}

#[test]
fn tensor_data_must_follow_in_order_without_overlap() {
    let good = two_tensors().to_bytes();
    let f = GgufFile::parse(&good).unwrap();
    assert_eq!((f.tensors[0].offset, f.tensors[1].offset), (0, 32));
    let mut overlap = good.clone();
    overlap[B_OFFSET..B_OFFSET + 8].copy_from_slice(&0u64.to_le_bytes());
    let e = parse_err(&overlap);
    assert!(
        e.contains("tensor \"b\" data starts at data offset 0, expected 32"),
        "{e}"
    );
    let mut swapped = good.clone();
    swapped[A_OFFSET..A_OFFSET + 8].copy_from_slice(&32u64.to_le_bytes());
    swapped[B_OFFSET..B_OFFSET + 8].copy_from_slice(&0u64.to_le_bytes());
    let e = parse_err(&swapped);
    assert!(
        e.contains("tensor \"a\" data starts at data offset 32, expected 0"),
        "{e}"
    );
    assert!(e.contains("at byte"), "{e}");
}

#[test]
fn impossible_hyper_parameters_are_named() {
    let spec = LlamaSpec::tiny();
    let check = |w: GgufWriter| GgufFile::parse(&w.to_bytes()).unwrap().check_loadable();
    check(spec.build(1)).unwrap();
    for (w, needle) in [
        (
            spec.build(1).set("llama.block_count", Kv::U32(0)),
            "llama.block_count is 0",
        ),
        (
            spec.build(1).set("llama.context_length", Kv::U32(0)),
            "llama.context_length is 0",
        ),
        (
            spec.build(1).set("llama.embedding_length", Kv::I32(-4)),
            "llama.embedding_length is 0",
        ),
        (
            spec.build(1)
                .set("tokenizer.ggml.scores", Kv::F32s(vec![0.0; 3])),
            "tokenizer.ggml.scores has 3 entries but tokenizer.ggml.tokens has",
        ),
        (
            spec.build(1)
                .set("tokenizer.ggml.eos_token_id", Kv::U32(1 << 30)),
            "tokenizer.ggml.eos_token_id is 1073741824, outside the vocabulary",
        ),
        (
            spec.build(1).set("tokenizer.ggml.tokens", Kv::Strs(vec![])),
            "tokenizer.ggml.tokens is empty",
        ),
    ] {
        let e = check(w).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        assert!(e.starts_with("the model cannot run: "), "{e}");
    }
    // An absent key is left to llama.cpp (an unknown architecture has no keys we know).
    check(spec.build(1).without("llama.block_count")).unwrap();
    // A padding id outside the vocabulary is only warned about by llama.cpp.
    check(
        spec.build(1)
            .set("tokenizer.ggml.padding_token_id", Kv::U32(1 << 30)),
    )
    .unwrap();
    if let Some(p) = stories260k() {
        GgufFile::open(&p).unwrap().check_loadable().unwrap();
    }
}
