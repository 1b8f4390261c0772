//! The operator's reference (`docs/operations.md`) names every setting
//! any Careline process reads: each variable named in the source of the
//! services and the crates they run on, and each read service's own
//! (`CARELINE_<NAME>_ADDR` and the rest, made from its name), must appear
//! there in backticks. A new setting without its line fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use tests::tree::{root, rust_sources};

/// The quoted names in `text` that start with one of `prefixes` and go on
/// in capitals, digits and underscores.
fn quoted_names(text: &str, prefixes: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices('"') {
        let rest = &text[i + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if rest[name.len()..].starts_with('"') && prefixes.iter().any(|p| name.starts_with(p)) {
            found.push(name);
        }
    }
    found
}

/// The settings read by the product's code (not its tests' helpers).
fn settings_read() -> BTreeSet<String> {
    let root = root();
    let mut files = Vec::new();
    for dir in [
        "services",
        "event-store/src",
        "projections/src",
        "read-kit/src",
        "pg/src",
        "settings/src",
        "client/src",
    ] {
        rust_sources(&root.join(dir), &[], &mut files);
    }
    let test_support = ["testing.rs", "conformance.rs", "world.rs"];
    let mut names = BTreeSet::new();
    for file in files {
        let path = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if path.contains("/tests/")
            || path.contains("/benches/")
            || test_support.iter().any(|t| path.ends_with(t))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // A crate's `#[cfg(test)]` module reads nothing in production.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        names.extend(quoted_names(
            code,
            &["CARELINE_", "NATS_", "DATABASE_URL", "RUST_LOG"],
        ));
    }
    // Each read service's own settings: the scaffold's suffixes under the
    // name its configuration gives.
    let scaffold = std::fs::read_to_string(root.join("read-kit/src/read_server.rs")).unwrap();
    let suffixes: Vec<String> = scaffold
        .match_indices("var(\"")
        .map(|(i, _)| {
            scaffold[i + 5..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect();
    assert!(suffixes.contains(&"ADDR".to_string()), "{suffixes:?}");
    for service in ["inbox", "audit", "notify"] {
        let config =
            std::fs::read_to_string(root.join(format!("services/{service}-service/src/config.rs")))
                .unwrap();
        let name = config
            .split("name: \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{service}: no name in its defaults"));
        for suffix in &suffixes {
            names.insert(format!("CARELINE_{name}_{suffix}"));
        }
    }
    names
}

#[test]
fn every_setting_is_in_the_operators_reference() {
    let names = settings_read();
    assert!(names.len() > 60, "too few settings found: {names:?}");
    let doc = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "settings read by the code but not in docs/operations.md: {missing:?}"
    );
}

#[test]
fn the_front_door_is_short_and_its_links_lead_somewhere() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 260,
        "README.md has {lines} lines: move detail to docs/"
    );
    for doc in [
        "README.md",
        "ARCHITECTURE.md",
        "docs/api.md",
        "docs/rules.md",
        "docs/operations.md",
        "docs/security.md",
        "docs/performance.md",
        "docs/internals.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let base = root.join(doc).parent().unwrap().to_path_buf();
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|c| *c != ')').collect();
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                base.join(file).exists(),
                "{doc} links to {target}, which does not exist"
            );
        }
    }
}

/// `deploy/run.sh` builds exactly as a release build of the workspace
/// does (`cargo build --release --workspace`): the same package selection
/// unifies features the same way, so after one the other is a no-op.
/// Building some packages alone (`-p`) would unify them differently and
/// build the service crates again.
#[test]
fn the_demo_builds_the_whole_workspace_once() {
    let script = std::fs::read_to_string(root().join("deploy/run.sh")).unwrap();
    let builds: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    let build = builds[0];
    assert!(
        build.contains("--release") && build.contains("--workspace"),
        "{build}"
    );
    assert!(
        !build.contains(" -p ") && !build.contains("--package"),
        "{build}"
    );
}
