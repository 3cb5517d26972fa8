//! Fill-in-the-middle: the prompt a code model completes between a prefix and a suffix,
//! built from the FIM tokens its GGUF names (`tokenizer.ggml.fim_pre_token_id`, `_suf_`,
//! `_mid_`, and `_rep_`/`_sep_` for repository context), as llama-server builds it:
//! `[BOS] [extra context] FIM_PRE prefix FIM_SUF suffix FIM_MID prompt`. With repository
//! tokens the extra chunks are `FIM_REP project FIM_SEP filename text ...`; without,
//! their text comes first as it is. Used by `/infill`, `suffix` on `/v1/completions` and
//! Ollama's `suffix`; a model without the tokens is a 400 naming the field.

use std::sync::LazyLock;

use modelrunner_format::gguf::{GgufFile, Value as Gv};
use modelrunner_protocol::TokenizeRequest;
use modelrunner_scheduler::ModelSpec;

use crate::id_cache::IdCache;
use crate::pipeline::on_runner;
use crate::{blocking, ApiError, AppState};

/// A model's FIM tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FimTokens {
    pre: i32,
    suf: i32,
    mid: i32,
    rep: Option<i32>,
    sep: Option<i32>,
    /// BOS, when the model adds one.
    bos: Option<i32>,
}

/// What to fill in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Infill {
    pub prefix: String,
    pub suffix: String,
    /// Extra context: (file name, text).
    pub extra: Vec<(String, String)>,
    /// Text after FIM_MID (the start of the middle).
    pub prompt: String,
}

fn id(g: &GgufFile, keys: &[&str]) -> Option<i32> {
    keys.iter()
        .find_map(|k| g.get(&format!("tokenizer.ggml.{k}")))
        .and_then(Gv::as_u64)
        .and_then(|v| i32::try_from(v).ok())
}

/// The FIM tokens in a GGUF header, when it has the three that FIM needs.
pub(crate) fn tokens_in(g: &GgufFile) -> Option<FimTokens> {
    let adds_bos = !matches!(g.get("tokenizer.ggml.add_bos_token"), Some(Gv::Bool(false)));
    Some(FimTokens {
        pre: id(g, &["fim_pre_token_id", "prefix_token_id"])?,
        suf: id(g, &["fim_suf_token_id", "suffix_token_id"])?,
        mid: id(g, &["fim_mid_token_id", "middle_token_id"])?,
        rep: id(g, &["fim_rep_token_id"]),
        sep: id(g, &["fim_sep_token_id"]),
        bos: id(g, &["bos_token_id"]).filter(|_| adds_bos),
    })
}

/// The model's FIM tokens (read once per model ID), or a 400 naming `param`.
async fn tokens_of(state: &AppState, spec: &ModelSpec, param: &str) -> Result<FimTokens, ApiError> {
    static CACHE: LazyLock<IdCache<Option<FimTokens>>> = LazyLock::new(IdCache::default);
    let store = state.store.clone();
    let id = spec.id.clone();
    let found = CACHE
        .get_or_read(&spec.id, async move {
            blocking(move || {
                let bundle = store.bundle(&id)?;
                Ok(tokens_in(&GgufFile::open(&bundle.gguf)?))
            })
            .await
        })
        .await?;
    found.ok_or_else(|| {
        ApiError::invalid(
            param,
            format!("{} has no fill-in-the-middle tokens (tokenizer.ggml.fim_pre_token_id, fim_suf_token_id, fim_mid_token_id); use a code model that has them", spec.name),
        )
    })
}

/// The tokens of the FIM prompt for `infill` on the model `spec`.
pub(crate) async fn prompt(
    state: &AppState,
    spec: &ModelSpec,
    infill: &Infill,
    param: &str,
) -> Result<Vec<i32>, ApiError> {
    let t = tokens_of(state, spec, param).await?;
    let tok = |text: String| async move {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let req = TokenizeRequest {
            content: text,
            add_special: false,
            chat: None,
        };
        let (_, ids) = on_runner(state, spec, None, |c| {
            let req = &req;
            async move { c.tokenize(req).await }
        })
        .await?;
        Ok::<_, ApiError>(ids)
    };
    let mut out: Vec<i32> = t.bos.into_iter().collect();
    match (t.rep, t.sep) {
        (Some(rep), Some(sep)) if !infill.extra.is_empty() => {
            out.push(rep);
            out.extend(tok("myproject\n".into()).await?);
            for (file, text) in &infill.extra {
                out.push(sep);
                out.extend(tok(format!("{file}\n{text}")).await?);
            }
            out.push(sep);
            out.extend(tok("filename\n".into()).await?);
        }
        _ => {
            for (_, text) in &infill.extra {
                out.extend(tok(text.clone()).await?);
            }
        }
    }
    out.push(t.pre);
    out.extend(tok(infill.prefix.clone()).await?);
    out.push(t.suf);
    out.extend(tok(infill.suffix.clone()).await?);
    out.push(t.mid);
    out.extend(tok(infill.prompt.clone()).await?);
    Ok(out)
}
