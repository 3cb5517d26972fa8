//! Llama-architecture models with random weights and an SPM vocabulary.

use crate::gguf::{GgufWriter, Kv, TensorData};

/// Hyper-parameters of a generated llama model.
#[derive(Debug, Clone)]
pub struct LlamaSpec {
    /// Embedding width.
    pub n_embd: u64,
    /// Feed-forward width.
    pub n_ff: u64,
    /// Number of blocks.
    pub n_layer: u64,
    /// Attention heads.
    pub n_head: u64,
    /// Key/value heads.
    pub n_head_kv: u64,
    /// Trained context length.
    pub n_ctx: u64,
    /// Extra normal tokens beyond the 3 special and 256 byte tokens.
    pub n_extra_tokens: u64,
    /// Model name.
    pub name: String,
}

impl LlamaSpec {
    /// A very small model (about 100K parameters).
    pub fn tiny() -> Self {
        LlamaSpec {
            n_embd: 64,
            n_ff: 128,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ctx: 512,
            n_extra_tokens: 61,
            name: "testkit-tiny".into(),
        }
    }

    /// A stand-in for stories260K where `../shared` is missing: tiny weights with the
    /// same vocabulary size (512) and trained context (2048), so that tests written for
    /// stories260K's shape (token ids, long prompts, long generations) hold for it too.
    pub fn stand_in() -> Self {
        LlamaSpec {
            n_ctx: 2048,
            n_extra_tokens: 512 - 259,
            name: "testkit-stand-in".into(),
            ..Self::tiny()
        }
    }

    /// A model of about 100M parameters (400 MB of F32).
    pub fn about_100m() -> Self {
        LlamaSpec {
            n_embd: 768,
            n_ff: 2048,
            n_layer: 12,
            n_head: 12,
            n_head_kv: 12,
            n_ctx: 2048,
            n_extra_tokens: 31_744,
            name: "testkit-100m".into(),
        }
    }

    /// The vocabulary: `<unk>`, `<s>`, `</s>`, 256 byte tokens, then SPM pieces: the
    /// lower-case letters with and without a word start, a lone word start `▁` (so that
    /// text which starts with any other character detokenizes without a stray `▁`),
    /// the upper-case letters, punctuation, then filler words.
    pub fn vocab(&self) -> (Vec<String>, Vec<f32>, Vec<i32>) {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        for b in 0..=255u32 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        let lower = ('a'..='z').map(String::from);
        let mut pieces = lower.clone().map(|l| format!("\u{2581}{l}")).chain(lower);
        let mut more = std::iter::once("\u{2581}".to_string())
            .chain(('A'..='Z').map(String::from))
            .chain(".,!?'\":;-{}[]0123456789".chars().map(String::from));
        let mut i = 0u64;
        while (tokens.len() as u64) < 259 + self.n_extra_tokens {
            let piece = pieces
                .next()
                .or_else(|| more.next())
                .unwrap_or_else(|| format!("\u{2581}w{i}"));
            tokens.push(piece);
            types.push(1);
            i += 1;
        }
        let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
        (tokens, scores, types)
    }

    /// The full GGUF writer for this model, weights drawn from `seed` (F32).
    pub fn build(&self, seed: u64) -> GgufWriter {
        self.build_typed(seed, false)
    }

    /// Like [`LlamaSpec::build`], with fill-in-the-middle token IDs (prefix, suffix,
    /// middle: the vocabulary's last three pieces), as code models carry them.
    pub fn build_fim(&self, seed: u64) -> GgufWriter {
        let n = (259 + self.n_extra_tokens) as u32;
        self.build(seed)
            .set("tokenizer.ggml.fim_pre_token_id", Kv::U32(n - 3))
            .set("tokenizer.ggml.fim_suf_token_id", Kv::U32(n - 2))
            .set("tokenizer.ggml.fim_mid_token_id", Kv::U32(n - 1))
    }

    /// Like [`LlamaSpec::build`] with the matrices quantized to Q8_0 (norms stay F32),
    /// `general.file_type` 7.
    pub fn build_q8_0(&self, seed: u64) -> GgufWriter {
        self.build_typed(seed, true)
    }

    /// A cross-encoder reranker in Qwen3-Reranker's shape: the `qwen3` architecture (a
    /// llama with per-head query and key norms), rank pooling, a two-label classification
    /// head (`yes`, `no`; llama.cpp soft-maxes it, so the score is P(yes)) and the rerank
    /// prompt llama.cpp's converter writes for it. Without `prompt` the query and document
    /// are joined with the vocabulary's special tokens instead, as for BERT rerankers.
    pub fn build_reranker(&self, seed: u64, prompt: bool) -> GgufWriter {
        let head_dim = self.n_embd / self.n_head;
        let mut w = self
            .weights(seed, false, "qwen3")
            .kv("qwen3.pooling_type", Kv::U32(4))
            .kv(
                "qwen3.classifier.output_labels",
                Kv::Strs(vec!["yes".into(), "no".into()]),
            );
        if prompt {
            w = w.kv(
                "tokenizer.chat_template.rerank",
                Kv::Str(RERANK_PROMPT.into()),
            );
        }
        for l in 0..self.n_layer {
            for n in ["attn_q_norm", "attn_k_norm"] {
                let name = format!("blk.{l}.{n}.weight");
                w = w.tensor_f32(&name, &[head_dim], TensorData::OnesF32);
            }
        }
        w.tensor_f32(
            "cls.output.weight",
            &[self.n_embd, 2],
            TensorData::RandomF32 {
                seed: seed ^ 0x5eed,
                // Logits of about ±1 over unit-RMS states: scores spread over 0..1
                // instead of saturating the soft-max.
                scale: 0.15,
            },
        )
    }

    fn build_typed(&self, seed: u64, q8: bool) -> GgufWriter {
        self.weights(seed, q8, "llama")
    }

    /// The blocks of a llama-shaped model of architecture `arch` (its keys so prefixed).
    fn weights(&self, seed: u64, q8: bool, arch: &str) -> GgufWriter {
        let (tokens, scores, types) = self.vocab();
        let n_vocab = tokens.len() as u64;
        let head_dim = self.n_embd / self.n_head;
        let kv = head_dim * self.n_head_kv;
        let u32k = |v: u64| Kv::U32(v as u32);
        let key = |k: &str| format!("{arch}.{k}");
        let mut w = GgufWriter::new()
            .kv("general.architecture", Kv::Str(arch.into()))
            .kv("general.name", Kv::Str(self.name.clone()))
            .kv("general.file_type", Kv::U32(if q8 { 7 } else { 0 }))
            .kv(&key("context_length"), u32k(self.n_ctx))
            .kv(&key("embedding_length"), u32k(self.n_embd))
            .kv(&key("block_count"), u32k(self.n_layer))
            .kv(&key("feed_forward_length"), u32k(self.n_ff))
            .kv(&key("rope.dimension_count"), u32k(head_dim))
            .kv(&key("attention.head_count"), u32k(self.n_head))
            .kv(&key("attention.head_count_kv"), u32k(self.n_head_kv))
            .kv(&key("attention.layer_norm_rms_epsilon"), Kv::F32(1e-5))
            .kv("tokenizer.ggml.model", Kv::Str("llama".into()))
            .kv("tokenizer.ggml.tokens", Kv::Strs(tokens))
            .kv("tokenizer.ggml.scores", Kv::F32s(scores))
            .kv("tokenizer.ggml.token_type", Kv::I32s(types))
            .kv("tokenizer.ggml.unknown_token_id", Kv::U32(0))
            .kv("tokenizer.ggml.bos_token_id", Kv::U32(1))
            .kv("tokenizer.ggml.eos_token_id", Kv::U32(2));
        let scale = 1.0 / (self.n_embd as f32).sqrt();
        let mut s = seed;
        let mut next_seed = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s
        };
        let mut matrix = |w: GgufWriter, name: &str, dims: &[u64]| {
            let seed = next_seed();
            if q8 {
                w.tensor_q8_0(name, dims, seed, scale)
            } else {
                w.tensor_f32(name, dims, TensorData::RandomF32 { seed, scale })
            }
        };
        w = matrix(w, "token_embd.weight", &[self.n_embd, n_vocab]);
        w = w.tensor_f32("output_norm.weight", &[self.n_embd], TensorData::OnesF32);
        w = matrix(w, "output.weight", &[self.n_embd, n_vocab]);
        for l in 0..self.n_layer {
            let p = |n: &str| format!("blk.{l}.{n}.weight");
            w = w.tensor_f32(&p("attn_norm"), &[self.n_embd], TensorData::OnesF32);
            w = matrix(w, &p("attn_q"), &[self.n_embd, self.n_embd]);
            w = matrix(w, &p("attn_k"), &[self.n_embd, kv]);
            w = matrix(w, &p("attn_v"), &[self.n_embd, kv]);
            w = matrix(w, &p("attn_output"), &[self.n_embd, self.n_embd]);
            w = w.tensor_f32(&p("ffn_norm"), &[self.n_embd], TensorData::OnesF32);
            w = matrix(w, &p("ffn_gate"), &[self.n_embd, self.n_ff]);
            w = matrix(w, &p("ffn_down"), &[self.n_ff, self.n_embd]);
            w = matrix(w, &p("ffn_up"), &[self.n_embd, self.n_ff]);
        }
        w
    }
}

/// The prompt llama.cpp's converter gives Qwen3-Reranker (`tokenizer.chat_template.rerank`).
pub const RERANK_PROMPT: &str = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
