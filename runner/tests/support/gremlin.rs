//! Reading the graph (a Gremlin Server standing in for Neptune) with raw
//! HTTP queries, as a person checking the sink would.

use std::collections::BTreeSet;
use std::io::{Read, Write};

/// Sends one query (`language`: `None` for the server's default Groovy,
/// `Some("gremlin-lang")` for the grammar Neptune parses) and returns the
/// result's data with GraphSON's type wrappers taken off.
pub fn query(endpoint: &str, script: &str, language: Option<&str>) -> serde_json::Value {
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut body = serde_json::json!({ "gremlin": script });
    if let Some(l) = language {
        body["language"] = serde_json::Value::String(l.to_string());
    }
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(authority).expect("the Gremlin Server answers");
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        s,
        "POST /gremlin HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "query {script}: {head}\n{payload}"
    );
    let v: serde_json::Value = serde_json::from_str(payload).expect("JSON");
    untyped(&v["result"]["data"])
}

/// GraphSON 3 to plain JSON: `{"@type": "g:List", "@value": [...]}` to an
/// array, `g:Map`'s flat key-value list to an object, numbers unwrapped.
pub fn untyped(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(o) if o.contains_key("@type") => {
            let inner = &o["@value"];
            match o["@type"].as_str() {
                Some("g:Map") => {
                    let items = inner.as_array().cloned().unwrap_or_default();
                    let mut map = serde_json::Map::new();
                    for pair in items.chunks(2) {
                        let key = match untyped(&pair[0]) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        map.insert(key, untyped(&pair[1]));
                    }
                    Value::Object(map)
                }
                _ => untyped(inner),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(untyped).collect()),
        other => other.clone(),
    }
}

/// Elements as `(id, label, profile_id or type:value)` (vertices) or
/// `(label, from, to)` (edges).
pub type Elements = BTreeSet<(String, String, String)>;

/// The graph of one id prefix: vertices `(id, label, profile_id or
/// type:value)` and edges `(label, from, to)`.
pub fn graph(endpoint: &str, prefix: &str) -> (Elements, Elements) {
    let p = serde_json::to_string(prefix).unwrap().replace('"', "'");
    let vertices = query(
        endpoint,
        &format!("g.V().filter(__.id().is(TextP.startingWith({p}))).hasLabel(P.neq('kith_writer')).project('id','label','profile_id','type','value').by(T.id).by(T.label).by(__.coalesce(__.values('profile_id'),__.constant(''))).by(__.coalesce(__.values('type'),__.constant(''))).by(__.coalesce(__.values('value'),__.constant('')))"),
        None,
    );
    let edges = query(
        endpoint,
        &format!("g.E().filter(__.id().is(TextP.startingWith({p}))).project('label','from','to').by(T.label).by(__.outV().id()).by(__.inV().id())"),
        None,
    );
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    (
        vertices
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let key = match s(&v["profile_id"]) {
                    id if !id.is_empty() => id,
                    _ => format!("{}:{}", s(&v["type"]), s(&v["value"])),
                };
                (s(&v["id"]), s(&v["label"]), key)
            })
            .collect(),
        edges
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (s(&e["label"]), s(&e["from"]), s(&e["to"])))
            .collect(),
    )
}
