//! Hostile templates fail cleanly; helpers behave as in transformers.

use modelrunner_template::{ChatTemplate, Limits, TemplateError, FALLBACK_TEMPLATE};
use serde_json::json;

fn ctx() -> serde_json::Value {
    json!({"messages": [{"role": "user", "content": "Hi ü"}], "add_generation_prompt": true, "bos_token": "<s>"})
}

#[test]
fn endless_loops_run_out_of_fuel() {
    let t = ChatTemplate::new(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    assert!(matches!(t.render(&ctx()), Err(TemplateError::Limit(_))));
}

#[test]
fn deep_recursion_is_refused() {
    let t = ChatTemplate::new("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").unwrap();
    let e = t.render(&ctx()).unwrap_err();
    assert!(
        matches!(e, TemplateError::Limit(_) | TemplateError::Render(_)),
        "{e}"
    );
}

#[test]
fn huge_output_is_capped() {
    let limits = Limits {
        fuel: 50_000_000,
        max_output: 1 << 20,
    };
    let t = ChatTemplate::with_limits(
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
        limits,
    )
    .unwrap();
    assert!(matches!(
        t.render(&ctx()),
        Err(TemplateError::TooLarge { .. })
    ));
}

#[test]
fn raise_exception_and_syntax_errors_are_distinct() {
    let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}").unwrap();
    match t.render(&ctx()) {
        Err(TemplateError::Raised(m)) => assert_eq!(m, "roles must alternate"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ChatTemplate::new("{% if %}"),
        Err(TemplateError::Syntax(_))
    ));
}

#[test]
fn tojson_matches_python() {
    let t = ChatTemplate::new(
        "{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ 'é' | tojson(ensure_ascii=True) }}",
    )
    .unwrap();
    let out = t
        .render(&json!({"x": {"b": [1, 2.5, "é<"], "a": null}}))
        .unwrap();
    assert_eq!(out, "{\"b\": [1, 2.5, \"é<\"], \"a\": null}|{\n  \"b\": [\n    1,\n    2.5,\n    \"é<\"\n  ],\n  \"a\": null\n}|\"\\u00e9\"");
}

#[test]
fn generation_blocks_and_strftime() {
    let t = ChatTemplate::new(
        "{%- generation -%} A {%- endgeneration %}{{ strftime_now('%Y-%m-%d') }}",
    )
    .unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2024, 7, 26)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    assert_eq!(t.render_at(&ctx(), now).unwrap(), "A2024-07-26");
}

#[test]
fn fallback_is_chatml() {
    let t = ChatTemplate::new(FALLBACK_TEMPLATE).unwrap();
    assert_eq!(
        t.render(&ctx()).unwrap(),
        "<|im_start|>user\nHi ü<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama_templates_see_todays_date_and_python_idioms_work() {
    let now = chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    // Llama 3.x falls back to a fixed date when strftime_now is not defined.
    let t = ChatTemplate::new(
        "{%- if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}{% else %}26 Jul 2024{% endif %}",
    )
    .unwrap();
    assert_eq!(t.render_at(&ctx(), now).unwrap(), "02 Jan 2025");
    // Jinja2's indent keeps a trailing newline (Command R+ relies on it).
    let t = ChatTemplate::new("{{ '{\\n' | indent(4, first=true) }}|{{ 'a\\n\\nb' | indent(2) }}")
        .unwrap();
    assert_eq!(t.render(&ctx()).unwrap(), "    {\n|a\n\n  b");
    // Kimi K2 keeps a queue with append and pop(0).
    let t = ChatTemplate::new(
        "{%- set ns = namespace(ids=[]) -%}{%- set _ = ns.ids.append('a') -%}{%- set _ = ns.ids.append('b') -%}{%- set x = ns.ids.pop(0) -%}{{ x }}{{ ns.ids | length }}",
    )
    .unwrap();
    assert_eq!(t.render(&ctx()).unwrap(), "a1");
}

/// Expected text rendered by Jinja2 3.1.6 in transformers' environment (sandboxed,
/// `trim_blocks`, `lstrip_blocks`, its `tojson`).
#[test]
fn safe_strings_escape_what_is_added_to_them_as_in_jinja2() {
    let src = concat!(
        r#"{% for t in tools %}{{ "Use '"|safe + t.name + "' for '"|safe + t.description + "'\n"|safe + t | tojson }}"#,
        "\n",
        r#"{% set line = "<b>"|safe + t.name %}{{ line ~ " & " ~ line + "<i>" }}"#,
        "\n",
        r#"{% endfor %}{{ "a<" + "b>" }}|{{ "a<" ~ "b>"|safe }}|{{ ("x"|safe + "&") ~ "<" }}|{{ [1] + [2] }}|{{ 1 + 2.5 }}"#,
    );
    let t = ChatTemplate::new(src).unwrap();
    let ctx = json!({"tools": [{"name": "say", "description": "Say \"hi\" & <wave>, it's fine"}]});
    assert_eq!(
        t.render(&ctx).unwrap(),
        concat!(
            "Use 'say' for 'Say &#34;hi&#34; &amp; &lt;wave&gt;, it&#39;s fine'\n",
            r#"{&#34;name&#34;: &#34;say&#34;, &#34;description&#34;: &#34;Say \&#34;hi\&#34; &amp; &lt;wave&gt;, it&#39;s fine&#34;}"#,
            "\n<b>say & <b>say<i>\n",
            "a<b>|a<b>|x&amp;<|[1, 2]|3.5",
        )
    );
}
