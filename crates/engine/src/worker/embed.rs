//! Embeddings: each input decoded alone, mean-pooled by llama.cpp, normalised to a unit
//! vector.

use llama_cpp_2::context::LlamaContext;
use modelrunner_protocol::{Embedding, Prompt, RunnerError};

use super::Loop;

impl Loop<'_> {
    pub(super) fn embed(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        inputs: Vec<Prompt>,
    ) -> Result<Vec<Embedding>, RunnerError> {
        let limit = self.batch_size.min(self.slot_ctx as usize);
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Prompt::Tokens(t) = &input {
                self.check_vocab("input", t)?;
            }
            let tokens = self.tokens(&input, true, false);
            if tokens.is_empty() {
                return Err(RunnerError::invalid("input", "empty input"));
            }
            if tokens.len() > limit {
                return Err(RunnerError::ContextLength {
                    prompt: tokens.len() as u32,
                    context: limit as u32,
                });
            }
            ctx.clear_kv_cache();
            self.batch.clear();
            self.batch
                .add_sequence(&tokens, 0, true)
                .map_err(|e| RunnerError::internal(e.to_string()))?;
            ctx.decode(&mut self.batch)
                .map_err(|e| RunnerError::internal(format!("decode: {e}")))?;
            let v = ctx
                .embeddings_seq_ith(0)
                .map_err(|e| RunnerError::internal(format!("embeddings: {e}")))?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.push(Embedding {
                embedding: v.iter().map(|x| x / norm).collect(),
                tokens: tokens.len() as u32,
            });
        }
        for s in &mut self.slots {
            s.cache.clear();
        }
        Ok(out)
    }
}
