//! Gremlin requests from a flush, pure.
//!
//! The graph: a vertex per profile, labelled with its kind, id the profile
//! id, with `profile_id` and `version`; a vertex per identifier, labelled
//! `identifier`, with `type` and `value`, its id a hash of both (values can
//! be 10,000 characters); edges `has_identifier` from a profile to each
//! identifier it holds and one per relationship (`uses`, `owns`,
//! `member_of`, ...) from a profile to the related profile, with ids
//! derived from their ends. Every id carries the sink's prefix.
//!
//! A flush is written in two phases of requests sent in parallel: first
//! every vertex it touches, each once (upserts with `mergeV`, removals with
//! `drop`), then per profile its out-edges (`mergeE` for the current ones, a
//! `drop` of the others). Each request is one traversal, and so one
//! transaction: it starts at the writer fence vertex, and does nothing when
//! the fence holds another writer epoch (see [`fence_id`]). Values enter a
//! query only through [`super::literal`].

use super::literal::push_quoted;
use crate::engine::ProfileView;
use crate::sink::flush::{Flush, ProfileOp};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The largest number of traversal steps a request is given: Neptune
/// advises staying under about 1,500, and Gremlin Server's Groovy engine
/// (what a request without a language runs on) cannot compile a traversal
/// of about 600 chained steps ("Method too large").
pub const MAX_STEPS: usize = 480;

/// One request: a script and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub script: String,
    /// Operations in it (vertices, or one profile's edges each).
    pub operations: usize,
}

/// Ids in the graph, with the sink's prefix.
#[derive(Debug, Clone)]
pub struct Ids {
    pub prefix: String,
}

impl Ids {
    pub fn profile(&self, profile_id: &str) -> String {
        format!("{}{profile_id}", self.prefix)
    }

    pub fn identifier(&self, type_name: &str, value: &str) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(type_name.as_bytes());
        h.update(&[0]);
        h.update(value.as_bytes());
        format!("{}id-{:032x}", self.prefix, h.digest128())
    }

    pub fn has_identifier(&self, profile_id: &str, identifier: &str) -> String {
        format!("{}hi:{profile_id}:{identifier}", self.prefix)
    }

    pub fn relationship(&self, rel_type: &str, from: &str, to: &str) -> String {
        format!("{}rel:{rel_type}:{from}:{to}", self.prefix)
    }
}

/// The vertex holding the writer epoch allowed to write this graph.
pub fn fence_id(ids: &Ids, pipeline: &str) -> String {
    format!("{}kith-writer:{pipeline}", ids.prefix)
}

/// A request under construction: the fence, then side effects, then a count
/// that tells whether the fence let it through (1) or not (0).
struct Builder {
    script: String,
    steps: usize,
    operations: usize,
}

impl Builder {
    fn new(fence: &str, epoch: u32) -> Self {
        let mut head = String::from("g.V(");
        push_quoted(&mut head, fence);
        let _ = write!(head, ").has('epoch',{epoch}L)");
        Builder {
            script: head,
            steps: 2,
            operations: 0,
        }
    }

    fn push(&mut self, part: &str, steps: usize) {
        self.script.push_str(".sideEffect(");
        self.script.push_str(part);
        self.script.push(')');
        self.steps += steps + 1;
        self.operations += 1;
    }

    fn finish(mut self) -> Request {
        self.script.push_str(".count()");
        Request {
            script: self.script,
            operations: self.operations,
        }
    }

    fn is_empty(&self) -> bool {
        self.operations == 0
    }
}

/// Packs parts into requests of at most `batch` operations and [`MAX_STEPS`].
fn pack(parts: Vec<(String, usize)>, fence: &str, epoch: u32, batch: usize) -> Vec<Request> {
    let mut out = Vec::new();
    let mut b = Builder::new(fence, epoch);
    for (part, steps) in parts {
        if !b.is_empty() && (b.operations >= batch || b.steps + steps + 1 > MAX_STEPS) {
            out.push(std::mem::replace(&mut b, Builder::new(fence, epoch)).finish());
        }
        b.push(&part, steps);
    }
    if !b.is_empty() {
        out.push(b.finish());
    }
    out
}

fn upsert_profile_vertex(ids: &Ids, profile_id: &str, kind: &str, version: Option<u64>) -> String {
    let id = ids.profile(profile_id);
    let mut s = String::from("__.mergeV([(T.id):");
    push_quoted(&mut s, &id);
    s.push_str("]).option(Merge.onCreate,[(T.label):");
    push_quoted(&mut s, kind);
    s.push_str(",'profile_id':");
    push_quoted(&mut s, profile_id);
    if let Some(v) = version {
        let _ = write!(s, ",'version':{v}L])");
        let _ = write!(
            s,
            ".option(Merge.onMatch,['version':Cardinality.single({v}L)])"
        );
    } else {
        s.push_str("])");
    }
    s
}

fn upsert_identifier_vertex(ids: &Ids, type_name: &str, value: &str) -> String {
    let mut s = String::from("__.mergeV([(T.id):");
    push_quoted(&mut s, &ids.identifier(type_name, value));
    s.push_str("]).option(Merge.onCreate,[(T.label):'identifier','type':");
    push_quoted(&mut s, type_name);
    s.push_str(",'value':");
    push_quoted(&mut s, value);
    s.push_str("])");
    s
}

fn drop_vertex(id: &str) -> String {
    let mut s = String::from("__.V(");
    push_quoted(&mut s, id);
    s.push_str(").drop()");
    s
}

/// The out-edges one profile has now, and the removal of any other.
fn profile_edges(ids: &Ids, view: &ProfileView) -> (String, usize) {
    let from = ids.profile(&view.profile_id);
    let mut s = String::new();
    let mut steps = 0;
    let mut current: Vec<String> = Vec::new();
    let edge = |s: &mut String, id: &str, label: &str, to: &str| {
        s.push_str("__.mergeE([(T.id):");
        push_quoted(s, id);
        s.push_str(",(T.label):");
        push_quoted(s, label);
        s.push_str(",(Direction.OUT):");
        push_quoted(s, &from);
        s.push_str(",(Direction.IN):");
        push_quoted(s, to);
        s.push_str("])");
    };
    let mut parts: Vec<String> = Vec::new();
    for i in &view.identifiers {
        let to = ids.identifier(&i.type_name, &i.value);
        let id = ids.has_identifier(&view.profile_id, &to);
        let mut p = String::new();
        edge(&mut p, &id, "has_identifier", &to);
        parts.push(p);
        current.push(id);
    }
    for r in &view.relationships {
        let to = ids.profile(&r.profile_id);
        let id = ids.relationship(&r.rel_type, &view.profile_id, &r.profile_id);
        let mut p = String::new();
        edge(&mut p, &id, &r.rel_type, &to);
        parts.push(p);
        current.push(id);
    }
    // Stale edges first, then the current ones, all as side effects of one
    // inject so that the part is a single traversal.
    s.push_str("__.V(");
    push_quoted(&mut s, &from);
    s.push_str(").sideEffect(__.outE()");
    if !current.is_empty() {
        s.push_str(".not(__.hasId(P.within(");
        for (k, id) in current.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            push_quoted(&mut s, id);
        }
        s.push_str(")))");
    }
    s.push_str(".drop())");
    steps += 5;
    for p in parts {
        s.push_str(".sideEffect(");
        s.push_str(&p);
        s.push(')');
        steps += 2;
    }
    (s, steps)
}

/// The two phases of requests that write `flush`.
pub fn requests(
    flush: &Flush,
    ids: &Ids,
    fence: &str,
    epoch: u32,
    batch: usize,
) -> (Vec<Request>, Vec<Request>) {
    let mut vertices: Vec<(String, usize)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // Identifier vertices: those the flush reindexes, and those the
    // written profiles hold (their edges need them), each once.
    for op in &flush.identifiers {
        let id = ids.identifier(&op.type_name, &op.value);
        if seen.insert(id.clone()) {
            if op.profile_ids.is_empty() {
                vertices.push((drop_vertex(&id), 3));
            } else {
                vertices.push((upsert_identifier_vertex(ids, &op.type_name, &op.value), 3));
            }
        }
    }
    let mut related: Vec<(&str, &str)> = Vec::new();
    let mut edges: Vec<(String, usize)> = Vec::new();
    for op in &flush.profiles {
        match op {
            ProfileOp::Upsert(view) => {
                seen.insert(ids.profile(&view.profile_id));
                vertices.push((
                    upsert_profile_vertex(ids, &view.profile_id, view.kind, Some(flush.version)),
                    3,
                ));
                for i in &view.identifiers {
                    let id = ids.identifier(&i.type_name, &i.value);
                    if seen.insert(id) {
                        vertices.push((upsert_identifier_vertex(ids, &i.type_name, &i.value), 3));
                    }
                }
                for r in &view.relationships {
                    related.push((&r.profile_id, r.kind));
                }
                edges.push(profile_edges(ids, view));
            }
            ProfileOp::Delete { profile_id, .. } => {
                seen.insert(ids.profile(profile_id));
                vertices.push((drop_vertex(&ids.profile(profile_id)), 3));
            }
        }
    }
    // A related profile not in this flush exists already; its vertex is
    // made sure of (without touching its version) so the edge has an end.
    for (profile_id, kind) in related {
        if seen.insert(ids.profile(profile_id)) {
            vertices.push((upsert_profile_vertex(ids, profile_id, kind, None), 3));
        }
    }
    (
        pack(vertices, fence, epoch, batch),
        pack(edges, fence, epoch, batch),
    )
}
