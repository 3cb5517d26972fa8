//! The facts llama.cpp needs from a model's GGUF, checked before it is loaded: a header
//! that parses can still describe an impossible model (no layers, no context, vocabulary
//! arrays that disagree, special tokens outside the vocabulary), on which llama.cpp
//! aborts or loads something meaningless.

use super::reader::GgufFile;
use super::types::{Array, Value};
use crate::error::FormatError;

/// Special tokens llama.cpp uses to run the model: they must be in the vocabulary.
/// (Padding, separator and the like are only warned about by llama.cpp, and real models
/// ship out-of-range ones, so they are not refused here.)
const REQUIRED_SPECIAL: [&str; 3] = [
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
];

impl GgufFile {
    /// Refuses a model llama.cpp cannot run sensibly, naming the key and its value.
    /// Split files are checked by their first shard; projector (`clip`) files, whose
    /// keys differ, are not checked here.
    pub fn check_loadable(&self) -> Result<(), FormatError> {
        let split = self.get("split.no").and_then(Value::as_u64).unwrap_or(0);
        let arch = self
            .get("general.architecture")
            .and_then(Value::as_str)
            .unwrap_or("llama");
        if split > 0 || arch == "clip" {
            return Ok(());
        }
        let bad = |key: &str, why: String| FormatError::Unrunnable(format!("{key} {why}"));
        let positive = |key: String| -> Result<(), FormatError> {
            match self.get(&key) {
                None => Ok(()),
                Some(v) => match whole(v) {
                    Some(0) => Err(bad(&key, "is 0: the model cannot run".into())),
                    Some(_) => Ok(()),
                    None => Err(bad(&key, format!("is not a whole number ({v:?})"))),
                },
            }
        };
        // Absent keys are left to llama.cpp, whose message says which key of which
        // architecture it wanted (an unknown architecture has none we could ask for).
        positive(format!("{arch}.block_count"))?;
        positive(format!("{arch}.context_length"))?;
        positive(format!("{arch}.embedding_length"))?;
        let Some(tokens) = self.get("tokenizer.ggml.tokens") else {
            return Ok(());
        };
        let n = match tokens {
            Value::Array(a) if !a.is_empty() => a.len(),
            _ => {
                return Err(bad(
                    "tokenizer.ggml.tokens",
                    "is empty or not an array".into(),
                ))
            }
        };
        for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
            if let Some(v) = self.get(key) {
                let len = match v {
                    Value::Array(a) => a.len(),
                    _ => return Err(bad(key, "is not an array".into())),
                };
                if len != n {
                    return Err(bad(
                        key,
                        format!("has {len} entries but tokenizer.ggml.tokens has {n}"),
                    ));
                }
            }
        }
        for key in REQUIRED_SPECIAL {
            if let Some(id) = self.get(key).and_then(Value::as_u64) {
                if id >= n as u64 {
                    return Err(bad(
                        key,
                        format!("is {id}, outside the vocabulary of {n} tokens"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A whole number's value (a negative one counts as 0), or the largest of a per-layer
/// array of them (hybrid models leave some layers without attention).
fn whole(v: &Value) -> Option<u64> {
    let clamp = |x: i64| u64::try_from(x).unwrap_or(0);
    match v {
        Value::Array(a) => match a {
            Array::U32(x) => x.iter().max().map(|m| u64::from(*m)),
            Array::I32(x) => x.iter().max().map(|m| clamp(i64::from(*m))),
            Array::U64(x) => x.iter().max().copied(),
            Array::I64(x) => x.iter().max().map(|m| clamp(*m)),
            _ => None,
        },
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => v.as_u64().or(Some(0)),
        other => other.as_u64(),
    }
}
