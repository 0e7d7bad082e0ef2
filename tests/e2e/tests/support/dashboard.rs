//! The metric names the chart's dashboard and alerts read, and the ones a
//! scrape of `/metrics` exports, so a scenario can check that every panel
//! and alert reads a metric the binaries really serve.

use super::services::workspace_root;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every `kith_*` name in the expressions of the dashboard's panels and of
/// the PrometheusRule's alerts.
pub fn referenced() -> BTreeSet<String> {
    let chart = workspace_root().join("charts/kith");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(chart.join("files/dashboards/kith.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(!exprs.is_empty(), "the dashboard has no query expressions");
    let rules = std::fs::read_to_string(chart.join("templates/prometheusrule.yaml")).unwrap();
    exprs.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:"))
            .map(str::to_string),
    );
    exprs.iter().flat_map(|e| names_in(e)).collect()
}

/// The series names a text exposition holds, histograms with their
/// `_bucket`, `_sum` and `_count` series.
pub fn exported(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                out.insert(name.to_string());
                if kind == "histogram" || kind == "summary" {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        out.insert(format!("{name}{suffix}"));
                    }
                }
            }
        } else if !line.starts_with('#') {
            if let Some(name) = line.split(['{', ' ']).next().filter(|n| !n.is_empty()) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names of a PromQL expression (label values in quotes left out).
pub fn names_in(expr: &str) -> Vec<String> {
    let expr: String = expr
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ");
    let expr = expr.as_str();
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("kith_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}
