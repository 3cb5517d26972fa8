//! Pooled outputs: embeddings (each input decoded alone, pooled by llama.cpp as the
//! model says, normalised to a unit vector) and reranking scores (each query and document
//! pair decoded alone, scored by the model's classification head).

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;
use modelrunner_protocol::{Embedding, Prompt, RunnerError, Score};

use super::Loop;

/// The GGUF key of a reranker's prompt (`{query}` and `{document}` filled in), as
/// llama.cpp's converter writes it for rerankers that need one (Qwen3).
const RERANK_TEMPLATE: &str = "tokenizer.chat_template.rerank";

impl Loop<'_> {
    pub(super) fn embed(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        inputs: Vec<Prompt>,
    ) -> Result<Vec<Embedding>, RunnerError> {
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Prompt::Tokens(t) = &input {
                self.check_vocab("input", t)?;
            }
            self.check_fits(&input, self.batch_size.min(self.slot_ctx as usize) as u32)?;
            let tokens = self.tokens(&input, true, false);
            if tokens.is_empty() {
                return Err(RunnerError::invalid("input", "empty input"));
            }
            let v = self.pooled(ctx, &tokens)?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.push(Embedding {
                embedding: v.iter().map(|x| x / norm).collect(),
                tokens: tokens.len() as u32,
            });
        }
        self.forget_slots();
        Ok(out)
    }

    /// Scores each document against the query, in order.
    pub(super) fn rerank(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        query: &str,
        documents: &[String],
    ) -> Result<Vec<Score>, RunnerError> {
        let template = self.model.meta_val_str(RERANK_TEMPLATE).ok();
        let mut out = Vec::with_capacity(documents.len());
        let limit = self.batch_size.min(self.slot_ctx as usize) as u32;
        for doc in documents {
            self.check_bytes_fit(query.len() + doc.len(), limit)?;
            let tokens = match &template {
                Some(t) => self.tokenize(
                    &t.replace("{query}", query).replace("{document}", doc),
                    false,
                    true,
                ),
                None => self.pair(query, doc),
            };
            let v = self.pooled(ctx, &tokens)?;
            let score = *v.first().ok_or_else(|| {
                RunnerError::internal("the model's classification head gave no output")
            })?;
            out.push(Score {
                score,
                tokens: tokens.len() as u32,
            });
        }
        self.forget_slots();
        Ok(out)
    }

    /// A query and document as a cross-encoder reads them, as llama-server joins them:
    /// `[BOS] query [EOS] [SEP] document [EOS]`, each special token where the vocabulary
    /// asks for it (SEP stands in for a missing EOS).
    fn pair(&self, query: &str, doc: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let eos = match vocab.eos() {
            LlamaToken(-1) => vocab.sep(),
            t => t,
        };
        let mut t = Vec::new();
        if vocab.should_add_bos() {
            t.push(vocab.bos());
        }
        t.extend(self.tokenize(query, false, false));
        if vocab.should_add_eos() {
            t.push(eos);
        }
        if vocab.should_add_sep() {
            t.push(vocab.sep());
        }
        t.extend(self.tokenize(doc, false, false));
        if vocab.should_add_eos() {
            t.push(eos);
        }
        t
    }

    /// Decodes `tokens` as one sequence on an empty cache and reads its pooled output.
    fn pooled(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        tokens: &[LlamaToken],
    ) -> Result<Vec<f32>, RunnerError> {
        let limit = self.batch_size.min(self.slot_ctx as usize);
        if tokens.len() > limit {
            return Err(RunnerError::ContextLength {
                prompt: tokens.len() as u32,
                context: limit as u32,
                at_least: false,
            });
        }
        ctx.clear_kv_cache();
        self.batch.clear();
        self.batch
            .add_sequence(tokens, 0, true)
            .map_err(|e| RunnerError::internal(e.to_string()))?;
        ctx.decode(&mut self.batch)
            .map_err(|e| RunnerError::internal(format!("decode: {e}")))?;
        let v = ctx
            .embeddings_seq_ith(0)
            .map_err(|e| RunnerError::internal(format!("pooled output: {e}")))?;
        Ok(v.to_vec())
    }

    /// The cache was cleared under the slots: none of them may reuse a prefix.
    fn forget_slots(&mut self) {
        for s in &mut self.slots {
            s.cache.clear();
        }
    }
}
