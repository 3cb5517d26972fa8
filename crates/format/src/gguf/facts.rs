//! Facts derived from a GGUF header the way Docker Model Runner derives them.

use std::collections::BTreeMap;

use super::reader::GgufFile;
use super::types::Value;

/// Arrays longer than this are left out of the stringified metadata map, as Docker does.
const MAX_ARRAY_IN_MAP: usize = 50;

/// What a model config says about a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// `general.architecture` (llama when absent).
    pub architecture: String,
    /// Total number of tensor elements.
    pub parameter_count: u64,
    /// Parameters in Docker's style, e.g. `260.00K`.
    pub parameters: String,
    /// File type, e.g. `F32` or `Q4_K_M`; `Unknown` when it cannot be told.
    pub quantization: String,
    /// Bytes of tensor data.
    pub size_bytes: u64,
    /// Size in Docker's style, e.g. `1.13MiB`.
    pub size: String,
    /// `<arch>.context_length`, the trained context.
    pub context_length: Option<u64>,
    /// Every key/value as a string (long arrays skipped).
    pub metadata: BTreeMap<String, String>,
}

/// Formats a parameter count: two decimals and K, M, B, T or Q, glued.
pub fn format_parameters(n: u64) -> String {
    const UNITS: [(f64, &str); 5] = [(1e15, "Q"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    let v = n as f64;
    for (base, unit) in UNITS {
        if v >= base {
            return format!("{:.2}{unit}", v / base);
        }
    }
    n.to_string()
}

/// Formats a byte count: two decimals and the largest binary or decimal unit it reaches,
/// glued, e.g. `1.13MiB`.
pub fn format_bytes(n: u64) -> String {
    const KI: f64 = 1024.0;
    const UNITS: [(f64, &str); 10] = [
        (KI * KI * KI * KI * KI, "PiB"),
        (1e15, "PB"),
        (KI * KI * KI * KI, "TiB"),
        (1e12, "TB"),
        (KI * KI * KI, "GiB"),
        (1e9, "GB"),
        (KI * KI, "MiB"),
        (1e6, "MB"),
        (KI, "KiB"),
        (1e3, "KB"),
    ];
    let v = n as f64;
    for (base, unit) in UNITS {
        if v >= base {
            return format!("{:.2}{unit}", v / base);
        }
    }
    format!("{n}B")
}

/// llama.cpp file type names by `general.file_type`.
fn file_type_name(ft: u64) -> Option<&'static str> {
    const NAMES: [&str; 39] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_1_SOME_F16",
        "Q4_2",
        "Q4_3",
        "Q8_0",
        "Q5_0",
        "Q5_1",
        "Q2_K",
        "Q3_K_S",
        "Q3_K_M",
        "Q3_K_L",
        "Q4_K_S",
        "Q4_K_M",
        "Q5_K_S",
        "Q5_K_M",
        "Q6_K",
        "IQ2_XXS",
        "IQ2_XS",
        "Q2_K_S",
        "IQ3_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ3_M",
        "IQ2_S",
        "IQ2_M",
        "IQ4_XS",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "MXFP4",
    ];
    NAMES.get(usize::try_from(ft).ok()?).copied()
}

/// Guesses the file type from the most common weight tensor type, as gguf-parser does.
fn guess_file_type(file: &GgufFile) -> Option<&'static str> {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for t in &file.tensors {
        let n = &t.name;
        let weight = n.starts_with("token_embd")
            || n.starts_with("blk.")
            || n.contains("_norm")
            || n.ends_with(".weight");
        if weight {
            *counts.entry(t.ggml_type).or_default() += 1;
        }
    }
    let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut top = by_count.first()?.0;
    if top == 0 {
        match by_count.get(1) {
            None => return Some("F32"),
            Some((t, _)) => top = *t,
        }
    }
    let count = |t: u32| {
        by_count
            .iter()
            .find(|(k, _)| *k == t)
            .map_or(0, |(_, c)| *c)
    };
    Some(match top {
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        10 => "Q2_K",
        11 if count(8) > 0 || (count(13) > 1 && count(12) == 0) => "Q3_K_L",
        11 if count(12) > 1 => "Q3_K_M",
        11 => "Q3_K_S",
        12 if count(14) > 1 => "Q4_K_M",
        12 if count(11) > 1 => "Q3_K_M",
        12 => "Q4_K_S",
        13 if count(14) > 1 => "Q5_K_M",
        13 => "Q5_K_S",
        14 => "Q6_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_M",
        23 => "IQ4_XS",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

impl GgufFile {
    /// Derives the facts Docker Model Runner writes into a model config.
    pub fn facts(&self) -> Facts {
        let architecture = self
            .get("general.architecture")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "llama".to_string());
        let parameter_count = self
            .tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.elements));
        let size_bytes = self
            .tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.bytes));
        let quantization = self
            .get("general.file_type")
            .and_then(Value::as_u64)
            .and_then(file_type_name)
            .or_else(|| guess_file_type(self))
            .unwrap_or("Unknown")
            .to_string();
        let context_length = self
            .get(&format!("{architecture}.context_length"))
            .and_then(Value::as_u64);
        let metadata = self
            .metadata
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Array(a) if a.len() > MAX_ARRAY_IN_MAP))
            .map(|(k, v)| (k.clone(), v.to_display_string()))
            .collect();
        Facts {
            architecture,
            parameter_count,
            parameters: format_parameters(parameter_count),
            quantization,
            size_bytes,
            size: format_bytes(size_bytes),
            context_length,
            metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_docker() {
        assert_eq!(format_parameters(260_000), "260.00K");
        assert_eq!(format_parameters(361_820_000), "361.82M");
        assert_eq!(format_parameters(8_030_000_000), "8.03B");
        assert_eq!(format_parameters(999), "999");
        assert_eq!(format_bytes(1_184_890), "1.13MiB");
        assert_eq!(format_bytes(268_802_048), "256.35MiB");
        assert_eq!(format_bytes(1_000_000), "1.00MB");
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(4 << 30), "4.00GiB");
    }

    #[test]
    fn file_type_names_follow_llama_cpp() {
        assert_eq!(file_type_name(0), Some("F32"));
        assert_eq!(file_type_name(15), Some("Q4_K_M"));
        assert_eq!(file_type_name(32), Some("BF16"));
        assert_eq!(file_type_name(38), Some("MXFP4"));
        assert_eq!(file_type_name(39), None);
    }
}
