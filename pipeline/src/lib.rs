//! A Kith pipeline compiled from its specification ("parse, don't validate
//! twice"): everything a runner needs to know about a pipeline before it
//! reads a single line, and everything the operator needs to refuse a spec
//! the runner would refuse. Both binaries compile pipelines with this crate,
//! so what the operator accepts is exactly what a runner starts with.
//!
//! - `config`: the pipeline file read, `${VAR}` expanded, validated into
//!   typed values (identifier types, survivorship, checkpoints, sources)
//! - `normalize`: identifier normalizers (presets, rules, phone numbers)
//! - `template`: the declarative mapping from raw events to observations
//! - `observation`: the canonical observation and its JSON line form
//! - `resolution`: the `resolution` section, its comparators and the model
//!   file (the streaming index that uses them lives in the runner)
//! - `sinks`: the settings of each store a runner keeps up to date
//!
//! Nothing here does I/O beyond reading the files a pipeline names.

pub mod config;
pub mod normalize;
pub mod observation;
pub mod resolution;
pub mod sinks;
pub mod template;
