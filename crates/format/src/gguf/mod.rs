//! GGUF v2/v3: metadata and tensor infos (never tensor data), read defensively.
//!
//! Every count and length is bounded by the bytes left in the file before anything is
//! allocated, arithmetic on shapes, sizes and offsets is checked, and every tensor's data
//! must lie inside the file.

mod facts;
mod reader;
mod sanity;
mod types;

pub use facts::{format_bytes, format_parameters, Facts};
pub use reader::GgufFile;
pub use types::{ggml_type_name, ggml_type_size, Array, Value, ValueType};

/// `GGUF` in little-endian byte order.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest alignment accepted.
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Most dimensions a tensor may have.
pub const MAX_DIMS: u32 = 4;
/// Longest tensor name, in bytes (ggml's `GGML_MAX_NAME` less the terminator).
pub const MAX_TENSOR_NAME: u64 = 63;
/// Longest string accepted anywhere in the header.
pub const MAX_STRING: u64 = 16 << 20;
/// Most metadata key/value pairs.
pub const MAX_KV: u64 = 100_000;
/// Most tensors.
pub const MAX_TENSORS: u64 = 10_000_000;
/// Most elements in one metadata array.
pub const MAX_ARRAY: u64 = 64 << 20;
/// Deepest nesting of arrays.
pub const MAX_NESTING: u32 = 4;

/// One tensor's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (ggml's `ne`).
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Number of elements.
    pub elements: u64,
    /// Size of the data in bytes.
    pub bytes: u64,
}
