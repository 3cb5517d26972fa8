//! Tests of the native completion decoder.
use super::*;

fn dec(v: Value) -> Result<(Generation, Native), ApiError> {
    decode(&v, "m".into())
}

#[test]
fn native_fields_map_onto_the_request() {
    let (g, n) = dec(json!({"prompt": [1, 2, 3], "n_predict": 5, "n_probs": 2, "seed": 4294967295u64,
        "logit_bias": [[7, false], [8, 1.5]], "samplers": ["top_k", "temperature"], "return_tokens": true,
        "cache_prompt": false, "id_slot": 0, "stop": ["\n"]}))
    .unwrap();
    let o = &g.choices[0].options;
    assert_eq!(o.max_tokens, Some(5));
    assert_eq!(o.logprobs, Some(2));
    assert_eq!(o.sampling.seed, None);
    assert_eq!(o.sampling.logit_bias, vec![(7, -100.0), (8, 1.5)]);
    assert_eq!(
        (o.sampling.top_p, o.sampling.min_p),
        (1.0, 0.0),
        "samplers left out are off"
    );
    assert_eq!(o.stop, vec!["\n"]);
    assert!(n.return_tokens);
    assert_eq!(
        dec(json!({"prompt": ["a", "b"]})).unwrap().0.choices.len(),
        2
    );
    assert_eq!(
        dec(json!({"prompt": "a", "n_predict": -1}))
            .unwrap()
            .0
            .choices[0]
            .options
            .max_tokens,
        None
    );
}

#[test]
fn bad_fields_name_themselves() {
    for (body, param) in [
        (json!({}), "prompt"),
        (json!({"prompt": "a", "samplers": ["magic"]}), "samplers"),
        (json!({"prompt": "a", "n_predict": "many"}), "n_predict"),
        (json!({"prompt": "a", "n_probs": 99}), "n_probs"),
        (json!({"prompt": "a", "logit_bias": [[1]]}), "logit_bias"),
        (
            json!({"prompt": "a", "grammar": "root ::= \"x\"", "json_schema": {}}),
            "grammar",
        ),
        (json!({"prompt": "a", "n_cmpl": 2}), "n_cmpl"),
        (json!({"prompt": {"x": 1}}), "prompt"),
    ] {
        let e = dec(body.clone()).err().unwrap();
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
}

#[test]
fn stop_types() {
    assert_eq!(stop_type(FinishReason::Length, None), "limit");
    assert_eq!(stop_type(FinishReason::Stop, Some("\n")), "word");
    assert_eq!(stop_type(FinishReason::Stop, None), "eos");
}
