//! The bounded GGUF header reader.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::types::{ggml_type_size, Array, Value, ValueType};
use super::*;
use crate::error::FormatError;

/// A parsed GGUF header: metadata and tensor infos.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment.
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Total file length.
    pub file_len: u64,
}

struct Cursor<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Cursor<R> {
    fn err(&self, what: impl Into<String>) -> FormatError {
        FormatError::Gguf {
            offset: self.pos,
            what: what.into(),
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FormatError> {
        if self.remaining() < N as u64 {
            return Err(self.err(format!("truncated {what}: need {N} bytes")));
        }
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| self.err(format!("reading {what}: {e}")))?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    fn string(&mut self, what: &str, max: u64) -> Result<String, FormatError> {
        self.string_as(what, max, false)
    }

    /// A name (metadata key, tensor name): UTF-8 and not empty, as llama.cpp requires.
    fn name(&mut self, what: &str, max: u64) -> Result<String, FormatError> {
        let start = self.pos;
        let s = self.string_as(what, max, true)?;
        if s.is_empty() {
            return Err(FormatError::Gguf {
                offset: start,
                what: format!("empty {what}"),
            });
        }
        Ok(s)
    }

    fn string_as(&mut self, what: &str, max: u64, strict: bool) -> Result<String, FormatError> {
        let start = self.pos;
        let n = self.u64(what)?;
        if n > max {
            self.pos = start;
            return Err(self.err(format!("{what} length {n} exceeds the limit of {max}")));
        }
        if n > self.remaining() {
            self.pos = start;
            return Err(self.err(format!(
                "{what} length {n} exceeds the {} bytes left in the file",
                self.remaining()
            )));
        }
        let mut buf = Vec::with_capacity(n as usize);
        (&mut self.inner)
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| self.err(format!("reading {what}: {e}")))?;
        if buf.len() as u64 != n {
            return Err(self.err(format!("truncated {what}")));
        }
        self.pos += n;
        match String::from_utf8(buf) {
            Ok(s) => Ok(s),
            Err(e) if strict => Err(FormatError::Gguf {
                offset: start,
                what: format!(
                    "{what} is not UTF-8: {:?}",
                    String::from_utf8_lossy(e.as_bytes())
                ),
            }),
            // Values (vocabulary pieces) may hold any bytes; they are kept readable.
            Err(e) => Ok(String::from_utf8_lossy(e.as_bytes()).into()),
        }
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType, FormatError> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or(FormatError::Gguf {
            offset: at,
            what: format!("unknown value type {id} for {what}"),
        })
    }

    fn value(&mut self, t: ValueType, key: &str, depth: u32) -> Result<Value, FormatError> {
        Ok(match t {
            ValueType::U8 => Value::U8(self.bytes::<1>(key)?[0]),
            ValueType::I8 => Value::I8(self.bytes::<1>(key)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.bytes(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.bytes(key)?)),
            ValueType::U32 => Value::U32(self.u32(key)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.bytes(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.bytes(key)?)),
            ValueType::Bool => Value::Bool(self.bool(key)?),
            ValueType::String => Value::String(self.string(key, MAX_STRING)?),
            ValueType::Array => Value::Array(self.array(key, depth + 1)?),
            ValueType::U64 => Value::U64(self.u64(key)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.bytes(key)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.bytes(key)?)),
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool, FormatError> {
        match self.bytes::<1>(key)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => {
                self.pos -= 1;
                Err(self.err(format!("bool {key} has value {b}")))
            }
        }
    }

    fn array(&mut self, key: &str, depth: u32) -> Result<Array, FormatError> {
        if depth > MAX_NESTING {
            return Err(self.err(format!("array {key} nested deeper than {MAX_NESTING}")));
        }
        let t = self.value_type(key)?;
        let at = self.pos;
        let n = self.u64(key)?;
        let need = n.checked_mul(t.min_size());
        if n > MAX_ARRAY || need.is_none_or(|need| need > self.remaining()) {
            self.pos = at;
            return Err(self.err(format!(
                "array {key} claims {n} elements, more than the {} bytes left can hold",
                self.remaining()
            )));
        }
        let n = n as usize;
        macro_rules! collect {
            ($variant:ident, $read:expr) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push($read);
                }
                Array::$variant(v)
            }};
        }
        Ok(match t {
            ValueType::U8 => collect!(U8, self.bytes::<1>(key)?[0]),
            ValueType::I8 => collect!(I8, self.bytes::<1>(key)?[0] as i8),
            ValueType::U16 => collect!(U16, u16::from_le_bytes(self.bytes(key)?)),
            ValueType::I16 => collect!(I16, i16::from_le_bytes(self.bytes(key)?)),
            ValueType::U32 => collect!(U32, self.u32(key)?),
            ValueType::I32 => collect!(I32, i32::from_le_bytes(self.bytes(key)?)),
            ValueType::F32 => collect!(F32, f32::from_le_bytes(self.bytes(key)?)),
            ValueType::Bool => collect!(Bool, self.bool(key)?),
            ValueType::String => collect!(String, self.string(key, MAX_STRING)?),
            ValueType::Array => collect!(Array, self.array(key, depth + 1)?),
            ValueType::U64 => collect!(U64, self.u64(key)?),
            ValueType::I64 => collect!(I64, i64::from_le_bytes(self.bytes(key)?)),
            ValueType::F64 => collect!(F64, f64::from_le_bytes(self.bytes(key)?)),
        })
    }

    fn tensor_info(&mut self) -> Result<TensorInfo, FormatError> {
        let start = self.pos;
        let name = self.name("tensor name", MAX_TENSOR_NAME)?;
        let n_dims = self.u32("tensor dimension count")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(FormatError::Gguf {
                offset: start,
                what: format!("tensor {name:?} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = self.u64("tensor dimension")?;
            elements = elements
                .checked_mul(d)
                .ok_or_else(|| self.err(format!("tensor {name:?} element count overflows")))?;
            dims.push(d);
        }
        let ggml_type = self.u32("tensor type")?;
        let (block, type_size) = ggml_type_size(ggml_type).ok_or_else(|| {
            self.err(format!("tensor {name:?} has unknown ggml type {ggml_type}"))
        })?;
        if dims[0] % block != 0 {
            return Err(self.err(format!(
                "tensor {name:?} row of {} elements is not a multiple of the block size {block}",
                dims[0]
            )));
        }
        let bytes = (elements / block)
            .checked_mul(type_size)
            .ok_or_else(|| self.err(format!("tensor {name:?} byte size overflows")))?;
        let offset = self.u64("tensor offset")?;
        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            elements,
            bytes,
        })
    }
}

impl GgufFile {
    /// Reads the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let file = File::open(path)
            .map_err(|e| FormatError::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| FormatError::io(format!("reading {}", path.display()), e))?
            .len();
        Self::read(BufReader::with_capacity(64 << 10, file), len)
    }

    /// Reads a GGUF header from bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::read(bytes, bytes.len() as u64)
    }

    /// Reads a GGUF header from `reader`, whose whole length is `file_len` bytes.
    pub fn read(reader: impl Read, file_len: u64) -> Result<Self, FormatError> {
        let mut c = Cursor {
            inner: reader,
            pos: 0,
            len: file_len,
        };
        let magic = c.bytes::<4>("magic")?;
        if magic != MAGIC {
            return Err(FormatError::Gguf {
                offset: 0,
                what: format!("bad magic {magic:02x?}: not a GGUF file"),
            });
        }
        let version = c.u32("version")?;
        match version {
            2 | 3 => {}
            1 => return Err(c.err("GGUF version 1 is not supported")),
            v if v.swap_bytes() <= 3 => {
                return Err(c.err("big-endian GGUF files are not supported"))
            }
            v => return Err(c.err(format!("unsupported GGUF version {v}"))),
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        if n_tensors > MAX_TENSORS || n_tensors.saturating_mul(32) > c.remaining() {
            return Err(c.err(format!(
                "tensor count {n_tensors} is impossible for the {} bytes left",
                c.remaining()
            )));
        }
        if n_kv > MAX_KV || n_kv.saturating_mul(20) > c.remaining() {
            return Err(c.err(format!(
                "metadata count {n_kv} is impossible for the {} bytes left",
                c.remaining()
            )));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut keys = std::collections::HashSet::new();
        for _ in 0..n_kv {
            let at = c.pos;
            let key = c.name("metadata key", 65_535)?;
            if !keys.insert(key.clone()) {
                return Err(FormatError::Gguf {
                    offset: at,
                    what: format!("duplicate metadata key {key:?}"),
                });
            }
            let t = c.value_type(&key)?;
            let v = c.value(t, &key, 0)?;
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, Value::U32(a))) if a.is_power_of_two() && u64::from(*a) <= MAX_ALIGNMENT => {
                u64::from(*a)
            }
            Some((_, v)) => {
                return Err(c.err(format!(
                    "general.alignment must be a u32 power of two up to 1 MiB, found {v:?}"
                )))
            }
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut names = std::collections::HashSet::new();
        for _ in 0..n_tensors {
            let at = c.pos;
            let t = c.tensor_info()?;
            if !names.insert(t.name.clone()) {
                return Err(FormatError::Gguf {
                    offset: at,
                    what: format!("duplicate tensor name {:?}", t.name),
                });
            }
            tensors.push(t);
        }
        let data_offset = c
            .pos
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| c.err("data offset overflows"))?;
        if data_offset > file_len {
            return Err(c.err("the file ends inside the padding before the tensor data"));
        }
        let data_len = file_len - data_offset;
        // As llama.cpp requires: each tensor's data starts where the previous one's
        // (padded to the alignment) ends, so no two overlap and none is out of order.
        let mut expected = 0u64;
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(c.err(format!(
                    "tensor {:?} offset {} is not aligned to {alignment}",
                    t.name, t.offset
                )));
            }
            if t.offset != expected {
                return Err(FormatError::Gguf {
                    offset: data_offset.saturating_add(t.offset),
                    what: format!(
                        "tensor {:?} data starts at data offset {}, expected {expected} (tensor data must follow in order, without overlap)",
                        t.name, t.offset
                    ),
                });
            }
            expected = t
                .offset
                .saturating_add(t.bytes)
                .checked_next_multiple_of(alignment)
                .unwrap_or(u64::MAX);
            let end = t.offset.checked_add(t.bytes);
            if end.is_none_or(|end| end > data_len) {
                return Err(FormatError::Gguf {
                    offset: data_offset.saturating_add(t.offset),
                    what: format!(
                        "tensor {:?} data ({} bytes at data offset {}) lies outside the file",
                        t.name, t.bytes, t.offset
                    ),
                });
            }
        }
        Ok(GgufFile {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            file_len,
        })
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}
