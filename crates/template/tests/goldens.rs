//! Golden renderings of real chat templates (`../shared/chat-templates/cases.json`):
//! every one byte for byte, and every case marked as an error must fail.

use chrono::NaiveDateTime;
use modelrunner_template::ChatTemplate;
use modelrunner_testkit::shared_dir;

#[test]
fn reproduces_real_templates() {
    let dir = shared_dir().join("chat-templates");
    let Ok(raw) = std::fs::read_to_string(dir.join("cases.json")) else {
        modelrunner_testkit::checks_less("../shared/chat-templates/cases.json is missing");
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let (mut pass, mut total) = (0usize, 0usize);
    let mut failures = Vec::new();
    for c in cases {
        let name = format!(
            "{} / {}",
            c["template"].as_str().unwrap(),
            c["case"].as_str().unwrap()
        );
        let src = std::fs::read_to_string(dir.join(c["template"].as_str().unwrap())).unwrap();
        let now =
            NaiveDateTime::parse_from_str(c["now"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap();
        let result = ChatTemplate::new(&src).and_then(|t| t.render_at(&c["context"], now));
        if c["error"].as_bool() == Some(true) {
            assert!(
                result.is_err(),
                "{name}: rendered although the template refuses it"
            );
            continue;
        }
        total += 1;
        match result {
            Ok(text) if text == c["expected"].as_str().unwrap() => pass += 1,
            Ok(text) => failures.push(format!(
                "{name}: output differs\n--- expected\n{}\n--- got\n{text}",
                c["expected"].as_str().unwrap()
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for f in &failures {
        eprintln!("{f}\n");
    }
    eprintln!("chat templates: {pass}/{total} byte-exact");
    assert_eq!(pass, total, "{} goldens not reproduced", failures.len());
    assert!(total >= 280, "only {total} goldens read");
}
