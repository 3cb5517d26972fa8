//! Sampler chains and log-probabilities.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use modelrunner_chat::Constraint;
use modelrunner_protocol::{Logprob, RunnerError, SamplingParams, TokenLogprob};

/// Builds the chain for one request: grammar (strict, or lazy from a trigger on), bias,
/// penalties, then greedy or top-k/top-p/min-p/temperature/dist.
pub(crate) fn build(
    model: &LlamaModel,
    p: &SamplingParams,
    constraint: Option<&Constraint>,
) -> Result<LlamaSampler, RunnerError> {
    let n_vocab = model.n_vocab();
    let mut chain = Vec::new();
    if let Some(c) = constraint {
        let s = if c.lazy {
            LlamaSampler::grammar_lazy_patterns(model, &c.grammar, "root", &c.triggers, &[])
        } else {
            LlamaSampler::grammar(model, &c.grammar, "root")
        };
        let s = s.map_err(|e| {
            RunnerError::invalid("grammar", format!("the grammar does not parse: {e}"))
        })?;
        chain.push(s);
    }
    if !p.logit_bias.is_empty() {
        let biases: Vec<LlamaLogitBias> = p
            .logit_bias
            .iter()
            .map(|(t, b)| LlamaLogitBias::new(LlamaToken(*t), *b))
            .collect();
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
    Ok(LlamaSampler::chain_simple(chain))
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
