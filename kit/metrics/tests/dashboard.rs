//! The Grafana dashboard in deploy/ queries only metrics that exist: every name it uses is in
//! docs/metrics.md, whose tables the scrape tests check against real series.

use std::{collections::BTreeSet, path::Path};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names a PromQL expression selects: identifiers right before a `{` selector.
fn metric_names(expr: &str) -> Vec<String> {
    expr.match_indices('{')
        .filter_map(|(at, _)| {
            let before = &expr[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let name = &before[start..];
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_dashboard_query_names_a_documented_metric() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/gochat-kit.json")).unwrap();
    let docs = read("docs/metrics.md");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let names = metric_names(target["expr"].as_str().unwrap());
            assert!(!names.is_empty(), "{target}");
            used.extend(names);
        }
    }
    for name in &used {
        let documented = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            docs.contains(&format!("`{documented}`")),
            "{name} is on the dashboard but not in docs/metrics.md"
        );
    }
}
