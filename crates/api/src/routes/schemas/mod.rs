//! The JSON Schemas of request and response bodies, by component name, for
//! `/openapi.json`. Each route names its schemas in the table (`Route::takes`,
//! `Route::gives`); a test checks that every name it uses is defined here.
//!
//! Request schemas describe what the decoders read (unknown fields are ignored, as
//! every dialect's reference server does); response schemas require what the encoders
//! always write, so that a client generated from the document can rely on it.

use serde_json::{json, Map, Value};

mod daemon;
mod messages;
mod ollama;
mod openai;

/// Every component schema.
pub(crate) fn components() -> Map<String, Value> {
    let mut all = Map::new();
    for (name, schema) in openai::schemas()
        .into_iter()
        .chain(messages::schemas())
        .chain(ollama::schemas())
        .chain(daemon::schemas())
    {
        let old = all.insert(name.to_string(), schema);
        assert!(old.is_none(), "schema {name} is defined twice");
    }
    all
}

/// An object with these required properties.
pub(super) fn obj(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// An array of `items`.
pub(super) fn arr(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// `schema` or null.
pub(super) fn or_null(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// A reference to another component.
pub(super) fn to(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Any of these schemas.
pub(super) fn any(of: Value) -> Value {
    json!({ "anyOf": of })
}

/// The JSON Schema types, for [`t`].
pub(super) const S: &str = "string";
pub(super) const I: &str = "integer";
pub(super) const N: &str = "number";
pub(super) const B: &str = "boolean";

/// `{"type": t}`.
pub(super) fn t(t: &str) -> Value {
    json!({ "type": t })
}

/// `base` with the properties of `extra` added (or replaced).
pub(super) fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().expect("an object") {
        base[k] = v.clone();
    }
    base
}

/// One `item`, or a list of them.
pub(super) fn one_or_many(item: Value) -> Value {
    any(json!([item.clone(), arr(item)]))
}

/// A sampling parameter with the bounds every request is held to
/// (`modelrunner_protocol::request::limits`), so that the document cannot promise more
/// than the validation accepts.
pub(super) fn bounded(param: &str) -> Value {
    use modelrunner_protocol::request::limits as l;
    let number = |(lo, hi): (f32, f32)| json!({"type": "number", "minimum": lo, "maximum": hi});
    let whole = |(lo, hi): (i32, i32)| json!({"type": "integer", "minimum": lo, "maximum": hi});
    match param {
        "temperature" => number(l::TEMPERATURE),
        "top_p" => number(l::TOP_P),
        "min_p" => number(l::MIN_P),
        "repeat_penalty" => number(l::REPEAT_PENALTY),
        "presence_penalty" | "frequency_penalty" => number(l::PENALTY),
        "top_k" => whole(l::TOP_K),
        "repeat_last_n" => whole(l::REPEAT_LAST_N),
        "logprobs" => whole((0, l::LOGPROBS as i32)),
        "stop" => {
            one_or_many(json!({"type": "string", "minLength": 1, "maxLength": l::STOP_BYTES}))
        }
        // Generation lengths: at least one token.
        _ => json!({"type": "integer", "minimum": 1}),
    }
}
