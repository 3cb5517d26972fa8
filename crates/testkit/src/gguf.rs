//! A minimal GGUF v3 writer.

use std::io::{self, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};

/// A metadata value to write.
#[derive(Debug, Clone)]
pub enum Kv {
    /// u32
    U32(u32),
    /// i32
    I32(i32),
    /// u64
    U64(u64),
    /// f32
    F32(f32),
    /// bool
    Bool(bool),
    /// string
    Str(String),
    /// array of strings
    Strs(Vec<String>),
    /// array of f32
    F32s(Vec<f32>),
    /// array of i32
    I32s(Vec<i32>),
    /// array of u8
    U8s(Vec<u8>),
}

/// Where a tensor's bytes come from.
#[derive(Debug, Clone)]
pub enum TensorData {
    /// Exactly these bytes.
    Bytes(Vec<u8>),
    /// F32 values drawn uniformly from (-scale, scale) with this seed.
    RandomF32 {
        /// Seed of the generator.
        seed: u64,
        /// Half-width of the range.
        scale: f32,
    },
    /// F32 ones (norm weights).
    OnesF32,
    /// Random values in (-scale, scale) quantized to Q8_0 (blocks of 32: an f16 scale and
    /// 32 signed bytes).
    RandomQ8 {
        /// Seed of the generator.
        seed: u64,
        /// Half-width of the range.
        scale: f32,
    },
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    bytes: u64,
    data: TensorData,
}

/// Builds a GGUF file in memory or on disk.
pub struct GgufWriter {
    alignment: u64,
    kvs: Vec<(String, Kv)>,
    tensors: Vec<Tensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter {
            alignment: 32,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key/value.
    pub fn kv(mut self, key: &str, value: Kv) -> Self {
        if key == "general.alignment" {
            if let Kv::U32(a) = value {
                self.alignment = a.into();
            }
        }
        self.kvs.push((key.to_string(), value));
        self
    }

    /// Removes a key.
    pub fn without(mut self, key: &str) -> Self {
        self.kvs.retain(|(k, _)| k != key);
        self
    }

    /// Replaces a key's value (or adds it).
    pub fn set(mut self, key: &str, value: Kv) -> Self {
        self.kvs.retain(|(k, _)| k != key);
        self.kv(key, value)
    }

    /// Adds an F32 tensor (dims innermost first).
    pub fn tensor_f32(mut self, name: &str, dims: &[u64], data: TensorData) -> Self {
        let n: u64 = dims.iter().product();
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type: 0,
            bytes: n * 4,
            data,
        });
        self
    }

    /// Adds a Q8_0 tensor of random values (the row length must be a multiple of 32).
    pub fn tensor_q8_0(mut self, name: &str, dims: &[u64], seed: u64, scale: f32) -> Self {
        let n: u64 = dims.iter().product();
        assert_eq!(dims[0] % 32, 0, "Q8_0 rows are multiples of 32");
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type: 8,
            bytes: n / 32 * 34,
            data: TensorData::RandomQ8 { seed, scale },
        });
        self
    }

    /// Adds a tensor of any ggml type with raw bytes.
    pub fn tensor_raw(mut self, name: &str, dims: &[u64], ggml_type: u32, bytes: Vec<u8>) -> Self {
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            bytes: bytes.len() as u64,
            data: TensorData::Bytes(bytes),
        });
        self
    }

    /// Writes the whole file.
    pub fn write_to(&self, mut w: impl Write) -> io::Result<()> {
        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(&mut head, k)?;
            write_kv(&mut head, v)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut head, &t.name)?;
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ggml_type.to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + t.bytes).next_multiple_of(self.alignment);
        }
        let pad = (head.len() as u64).next_multiple_of(self.alignment) - head.len() as u64;
        head.resize(head.len() + pad as usize, 0);
        w.write_all(&head)?;
        for t in &self.tensors {
            write_data(&mut w, t)?;
            let pad = t.bytes.next_multiple_of(self.alignment) - t.bytes;
            w.write_all(&vec![0u8; pad as usize])?;
        }
        Ok(())
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to memory");
        v
    }

    /// Writes the file at `path`.
    pub fn write_file(&self, path: &Path) -> io::Result<()> {
        let f = std::fs::File::create(path)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        self.write_to(&mut w)?;
        w.flush()
    }
}

fn write_kv(w: &mut Vec<u8>, v: &Kv) -> io::Result<()> {
    let arr = |w: &mut Vec<u8>, t: u32, n: usize| {
        w.extend_from_slice(&9u32.to_le_bytes());
        w.extend_from_slice(&t.to_le_bytes());
        w.extend_from_slice(&(n as u64).to_le_bytes());
    };
    match v {
        Kv::U32(x) => {
            w.extend_from_slice(&4u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Kv::I32(x) => {
            w.extend_from_slice(&5u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Kv::U64(x) => {
            w.extend_from_slice(&10u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Kv::F32(x) => {
            w.extend_from_slice(&6u32.to_le_bytes());
            w.extend_from_slice(&x.to_le_bytes());
        }
        Kv::Bool(x) => {
            w.extend_from_slice(&7u32.to_le_bytes());
            w.push(u8::from(*x));
        }
        Kv::Str(s) => {
            w.extend_from_slice(&8u32.to_le_bytes());
            put_str(w, s)?;
        }
        Kv::Strs(v) => {
            arr(w, 8, v.len());
            for s in v {
                put_str(w, s)?;
            }
        }
        Kv::F32s(v) => {
            arr(w, 6, v.len());
            v.iter().for_each(|x| w.extend_from_slice(&x.to_le_bytes()));
        }
        Kv::I32s(v) => {
            arr(w, 5, v.len());
            v.iter().for_each(|x| w.extend_from_slice(&x.to_le_bytes()));
        }
        Kv::U8s(v) => {
            arr(w, 0, v.len());
            w.extend_from_slice(v);
        }
    }
    Ok(())
}

fn write_data(w: &mut impl Write, t: &Tensor) -> io::Result<()> {
    match &t.data {
        TensorData::Bytes(b) => w.write_all(b),
        TensorData::OnesF32 => {
            let one = 1f32.to_le_bytes();
            let chunk: Vec<u8> = one.iter().copied().cycle().take(64 << 10).collect();
            write_repeated(w, &chunk, t.bytes)
        }
        TensorData::RandomQ8 { seed, scale } => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(*seed);
            let blocks = t.bytes / 34;
            let mut buf = Vec::with_capacity(34 * 1024);
            let mut done = 0;
            while done < blocks {
                buf.clear();
                for _ in 0..(blocks - done).min(1024) {
                    let vals: Vec<f32> =
                        (0..32).map(|_| rng.random_range(-*scale..*scale)).collect();
                    let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let d = amax / 127.0;
                    buf.extend_from_slice(&f32_to_f16(d).to_le_bytes());
                    for v in vals {
                        let q = if d == 0.0 {
                            0
                        } else {
                            (v / d).round().clamp(-127.0, 127.0) as i8
                        };
                        buf.push(q as u8);
                    }
                }
                w.write_all(&buf)?;
                done += (blocks - done).min(1024);
            }
            Ok(())
        }
        TensorData::RandomF32 { seed, scale } => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(*seed);
            let mut left = t.bytes / 4;
            let mut buf = Vec::with_capacity(64 << 10);
            while left > 0 {
                buf.clear();
                let n = left.min(16 << 10);
                for _ in 0..n {
                    let x: f32 = rng.random_range(-*scale..*scale);
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                w.write_all(&buf)?;
                left -= n;
            }
            Ok(())
        }
    }
}

/// A small valid GGUF (an architecture, string and integer arrays, two F32 tensors), the
/// starting point of parser tests that mutate or truncate files.
pub fn small_gguf() -> Vec<u8> {
    GgufWriter::new()
        .kv("general.architecture", Kv::Str("llama".into()))
        .kv("arr", Kv::Strs(vec!["a".into(), "bc".into()]))
        .kv("nums", Kv::I32s(vec![1, 2, 3]))
        .tensor_f32("t0", &[8, 2], TensorData::OnesF32)
        .tensor_f32(
            "t1",
            &[4],
            TensorData::RandomF32 {
                seed: 3,
                scale: 1.0,
            },
        )
        .to_bytes()
}

/// IEEE half from single precision (round to nearest even; no NaN inputs here).
fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = bits & 0x7f_ffff;
    if exp <= 0 {
        if exp < -10 {
            return sign;
        }
        let m = (mant | 0x80_0000) >> (1 - exp);
        let round = (m >> 12) & 1;
        return sign | ((m >> 13) + round) as u16;
    }
    if exp >= 31 {
        return sign | 0x7c00;
    }
    let round = (mant >> 12) & 1;
    let v = ((exp as u32) << 10 | (mant >> 13)) + round;
    sign | v as u16
}

fn write_repeated(w: &mut impl Write, chunk: &[u8], mut left: u64) -> io::Result<()> {
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}
