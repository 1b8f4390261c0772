//! Callers branch on a refusal's reason (`service_kit::reason`: the
//! `google.rpc.ErrorInfo` in its details), never on its message, whose
//! words are written for people and may change: no code outside tests
//! looks into a status's message for a word. And every reason a service
//! may give is documented in docs/api.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::tree::{root, rust_sources};

#[test]
fn no_caller_branches_on_the_words_of_a_message() {
    let root = root();
    let mut files = Vec::new();
    for dir in [
        "services",
        "client",
        "projections/src",
        "read-kit/src",
        "pg/src",
        "settings/src",
        "event-store/src",
        "testkit",
    ] {
        rust_sources(&root.join(dir), &["tests", "benches"], &mut files);
    }
    assert!(files.len() > 50, "{} files", files.len());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // A crate's own unit tests may look at what a message says.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let names: Vec<String> = code
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("let ")?;
                let (name, value) = rest.split_once(" = ")?;
                value
                    .contains(".message()")
                    .then(|| name.trim().to_string())
            })
            .collect();
        for (n, line) in code.lines().enumerate() {
            let words = [".contains(", ".starts_with(", ".ends_with(", " == \""];
            let on_message = line.contains(".message()")
                && words.iter().any(|w| {
                    line.split(".message()")
                        .nth(1)
                        .is_some_and(|r| r.starts_with(w.trim_start()))
                });
            let on_copy = names.iter().any(|name| {
                words
                    .iter()
                    .any(|w| line.contains(&format!("{name}{}", w.trim_start())))
            });
            if on_message || on_copy {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(&root).unwrap().display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "branch on service_kit::reason, not on a message's words:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_reason_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/api.md")).unwrap();
    for reason in service_kit::reason::ALL {
        assert!(
            doc.contains(&format!("`{reason}`")),
            "{reason} is not in docs/api.md"
        );
    }
}
