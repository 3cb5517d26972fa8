//! Sampler chains and log-probabilities.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use modelrunner_chat::Constraint;
use modelrunner_protocol::{Logprob, RunnerError, SamplingParams, TokenLogprob};

/// One request's sampler: the chain, and the grammar checked apart from it.
pub(crate) struct Sampler {
    chain: LlamaSampler,
    /// Strict, or lazy from a trigger on.
    grammar: Option<LlamaSampler>,
}

impl Sampler {
    /// The next token from the logits at `idx`. With a grammar, as llama.cpp's own
    /// sampler does: the chain picks a token, the grammar only checks that one (a grammar
    /// over the whole vocabulary costs about as much as the rest of a small model's step),
    /// and only a token it refuses makes the grammar filter every candidate and the chain
    /// pick again.
    pub(crate) fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else {
            return self.chain.sample(ctx, idx);
        };
        let mut data = ctx.token_data_array_ith(idx);
        self.chain.apply(&mut data);
        let picked = data.selected_token().unwrap_or(LlamaToken(0));
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(picked, 1.0, 0.0)], false);
        grammar.apply(&mut one);
        let token = if one.data[0].logit().is_finite() {
            picked
        } else {
            let mut data = ctx.token_data_array_ith(idx);
            grammar.apply(&mut data);
            self.chain.apply(&mut data);
            data.selected_token().unwrap_or(picked)
        };
        grammar.accept(token);
        self.chain.accept(token);
        token
    }
}

/// Builds the sampler for one request: grammar (strict, or lazy from a trigger on; a
/// grammar llama.cpp refuses is an error naming `source`, the parameter it came from), then
/// the chain of bias (with end-of-generation tokens banned under `ignore_eos`), penalties, then greedy or top-k/top-p/min-p/temperature/dist.
pub(crate) fn build(
    model: &LlamaModel,
    p: &SamplingParams,
    constraint: Option<&Constraint>,
    source: &str,
) -> Result<Sampler, RunnerError> {
    let n_vocab = model.n_vocab();
    let grammar = match constraint {
        None => None,
        Some(c) => Some(
            if c.lazy {
                LlamaSampler::grammar_lazy_patterns(model, &c.grammar, "root", &c.triggers, &[])
            } else {
                LlamaSampler::grammar(model, &c.grammar, "root")
            }
            .map_err(|e| {
                RunnerError::invalid(source, format!("llama.cpp refuses the grammar: {e}"))
            })?,
        ),
    };
    let mut chain = Vec::new();
    let mut biases: Vec<LlamaLogitBias> = p
        .logit_bias
        .iter()
        .map(|(t, b)| LlamaLogitBias::new(LlamaToken(*t), *b))
        .collect();
    if p.ignore_eos {
        // After the request's own biases: a ban outweighs any of them.
        let vocab = model.vocab();
        biases.extend(
            (0..n_vocab)
                .map(LlamaToken)
                .filter(|t| vocab.is_eog(*t))
                .map(|t| LlamaLogitBias::new(t, f32::NEG_INFINITY)),
        );
    }
    if !biases.is_empty() {
        chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
    }
    if p.repeat_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            p.repeat_last_n,
            p.repeat_penalty,
            p.frequency_penalty,
            p.presence_penalty,
        ));
    }
    if p.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if p.top_k > 0 {
            chain.push(LlamaSampler::top_k(p.top_k));
        }
        if p.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(p.top_p, 1));
        }
        if p.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(p.min_p, 1));
        }
        chain.push(LlamaSampler::temp(p.temperature));
        let seed = p.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            t ^ std::process::id().rotate_left(16)
        });
        chain.push(LlamaSampler::dist(seed));
    }
    Ok(Sampler {
        chain: LlamaSampler::chain_simple(chain),
        grammar,
    })
}

/// Log-probability of `chosen` and the `top` most likely tokens, from raw logits.
pub(crate) fn logprobs(
    logits: &[f32],
    chosen: LlamaToken,
    top: u32,
    piece: impl Fn(LlamaToken) -> String,
) -> Logprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|l| f64::from(l - max).exp()).sum();
    let log_z = max + sum.ln() as f32;
    let lp = |i: usize| logits[i] - log_z;
    let chosen_lp = logits
        .get(chosen.0 as usize)
        .map_or(f32::NEG_INFINITY, |_| lp(chosen.0 as usize));
    let mut best: Vec<usize> = Vec::with_capacity(top as usize + 1);
    if top > 0 {
        for i in 0..logits.len() {
            if best.len() < top as usize {
                best.push(i);
                best.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
            } else if logits[i] > logits[*best.last().expect("non-empty")] {
                *best.last_mut().expect("non-empty") = i;
                best.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
            }
        }
    }
    let top = best
        .into_iter()
        .map(|i| TokenLogprob {
            token: i as i32,
            text: piece(LlamaToken(i as i32)),
            logprob: lp(i),
        })
        .collect();
    Logprob {
        logprob: chosen_lp,
        top,
    }
}
