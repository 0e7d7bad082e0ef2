//! The pipeline validated once into typed, executable values ("parse, don't
//! validate twice"): identifier types with compiled normalizers and blocklists,
//! survivorship policies, the compiled template. Nothing downstream re-checks
//! what is checked here.

mod checkpoints;
mod identifiers;
mod survivorship;
mod variables;

pub use checkpoints::{parse_duration, Checkpoints};

pub use identifiers::{IdentifierType, IdentifierTypes, TypeId};
pub use survivorship::{AttributePolicy, Survivorship};
pub use variables::parse_with_variables;

use crate::normalize::Region;
use crate::resolution::{Model, Resolution, ResolutionConfig};
use crate::template::Template;
use kith_api::pipeline::{InputFormat, OutputsSpec, PipelineSpec, SourceSpec, SpecError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("pipeline file {path} is not valid YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("environment variable `{name}` used in the pipeline file is not set (write `$${{{name}}}` for a literal)")]
    MissingVariable { name: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("pipeline field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The most key groups a pipeline (and so a state) may have.
pub const MAX_KEY_GROUPS: u32 = 32768;

/// A validated pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub region: Region,
    pub identifiers: IdentifierTypes,
    pub survivorship: Survivorship,
    pub template: Option<Template>,
    pub sources: Vec<SourceSpec>,
    pub outputs: OutputsSpec,
    pub key_groups: u32,
    pub generic_detection: bool,
    /// Entity resolution, when the pipeline has a `resolution` section.
    pub resolution: Option<Resolution>,
    /// The model file resolution scores with, resolved against the pipeline's folder.
    pub model_path: Option<PathBuf>,
    pub checkpoints: Checkpoints,
    /// The stores the runner keeps up to date (`sinks`), validated.
    pub sinks: Vec<crate::sinks::SinkConfig>,
}

/// Where `resolution.model` is read from while a spec is compiled.
#[derive(Clone, Copy)]
enum ModelSource<'a> {
    /// Files, relative paths against this folder.
    Files(&'a Path),
    /// The content given (or none), no file read.
    Given(Option<&'a str>),
    /// Not read at all, paths relative to this folder: training writes the
    /// model, and a damaged old one must not stop it.
    Ignored(&'a Path),
}

impl Pipeline {
    /// Reads, expands `${VAR}` from the environment, and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (text, shown) = read_pipeline(path)?;
        Self::from_yaml(&text, &shown, &|name| std::env::var(name).ok())
    }

    /// As [`Pipeline::load`], without reading the model file it names:
    /// for `train`, which writes that file.
    pub fn load_for_training(path: &Path) -> Result<Self, ConfigError> {
        let (text, shown) = read_pipeline(path)?;
        let spec = Self::spec_from_yaml(&text, &shown, &|name| std::env::var(name).ok())?;
        let base = Path::new(&shown).parent().unwrap_or(Path::new("."));
        Self::compile(&spec, ModelSource::Ignored(base))
    }

    fn spec_from_yaml(
        text: &str,
        shown_path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineSpec, ConfigError> {
        let value = parse_with_variables(text, shown_path, env)?;
        Ok(PipelineSpec::from_value(value)?)
    }

    pub fn from_yaml(
        text: &str,
        shown_path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let spec = Self::spec_from_yaml(text, shown_path, env)?;
        let base = Path::new(shown_path).parent().unwrap_or(Path::new("."));
        Self::from_spec_at(&spec, base)
    }

    /// Reads a pipeline saved as JSON (already expanded) in a state directory,
    /// whose relative paths (the model) are relative to that directory.
    pub fn from_saved_json(text: &str, state_dir: &Path) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::invalid("(saved pipeline)", e.to_string()))?;
        Self::from_spec_at(&PipelineSpec::from_value(value)?, state_dir)
    }

    /// Validates a spec whose relative paths are relative to the current folder.
    pub fn from_spec(spec: &PipelineSpec) -> Result<Self, ConfigError> {
        Self::from_spec_at(spec, Path::new("."))
    }

    /// Validates a spec whose relative paths are relative to `base`.
    pub fn from_spec_at(spec: &PipelineSpec, base: &Path) -> Result<Self, ConfigError> {
        Self::compile(spec, ModelSource::Files(base))
    }

    /// Validates a spec without reading any file: `model` is the content of
    /// its `resolution.model` when the caller has it (the operator reads it
    /// from the ConfigMap the pods mount), checked as the runner would.
    pub fn from_spec_with_model(
        spec: &PipelineSpec,
        model: Option<&str>,
    ) -> Result<Self, ConfigError> {
        Self::compile(spec, ModelSource::Given(model))
    }

    fn compile(spec: &PipelineSpec, models: ModelSource<'_>) -> Result<Self, ConfigError> {
        if spec.name.trim().is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        let region = Region::parse(&spec.default_region).ok_or_else(|| {
            ConfigError::invalid(
                "defaultRegion",
                format!(
                    "`{}` is not a supported ISO 3166 region; accepted: {}",
                    spec.default_region,
                    Region::ACCEPTED
                ),
            )
        })?;
        if spec.key_groups == 0 || spec.key_groups > MAX_KEY_GROUPS {
            return Err(ConfigError::invalid(
                "keyGroups",
                format!("must be between 1 and {MAX_KEY_GROUPS}"),
            ));
        }
        let identifiers = IdentifierTypes::from_spec(&spec.identifiers)?;
        let survivorship = Survivorship::from_spec(&spec.survivorship)?;
        let template = match &spec.template {
            Some(t) => Some(Template::compile(t, &identifiers)?),
            None => None,
        };
        for (i, source) in spec.sources.iter().enumerate() {
            if source.format() == InputFormat::Template && template.is_none() {
                return Err(ConfigError::invalid(
                    format!("sources[{i}].format"),
                    "`template` needs a `template` section in the pipeline",
                ));
            }
            if let SourceSpec::Kafka(k) = source {
                validate_kafka(i, k)?;
            }
        }
        if spec.sources.len() > 1 {
            return Err(ConfigError::invalid(
                "sources",
                "one source per pipeline for now (list several topics in one kafka source)",
            ));
        }
        let checkpoints = Checkpoints::from_spec(&spec.checkpoints)?;
        let sinks = crate::sinks::SinkConfig::from_specs(&spec.sinks)?;
        if let Some((_, t)) = identifiers.iter().find(|(_, t)| t.name.contains('#')) {
            if !sinks.is_empty() {
                return Err(ConfigError::invalid(
                    "identifiers",
                    format!("identifier type `{}` contains `#`, which separates type and value in sink keys", t.name),
                ));
            }
        }
        let (resolution, model_path) = match &spec.resolution {
            None => (None, None),
            Some(r) => {
                let config = ResolutionConfig::compile(r, &identifiers)?;
                let invalid = |e: crate::resolution::model::ModelError| {
                    ConfigError::invalid("resolution.model", e.to_string())
                };
                let (model_path, model) = match models {
                    ModelSource::Files(base) => {
                        let path = r.model.as_ref().map(|m| base.join(m));
                        let model = match &path {
                            // A missing model is not an error here: `train` writes it.
                            Some(p) if p.exists() => Some(Model::load(p).map_err(invalid)?),
                            _ => None,
                        };
                        (path, model)
                    }
                    ModelSource::Ignored(base) => (r.model.as_ref().map(|m| base.join(m)), None),
                    ModelSource::Given(text) => {
                        let path = r.model.as_ref().map(PathBuf::from);
                        let shown = r.model.as_deref().unwrap_or("the model");
                        let model = text
                            .map(|t| Model::parse(t, shown))
                            .transpose()
                            .map_err(invalid)?;
                        (path, model)
                    }
                };
                let ignored = matches!(models, ModelSource::Ignored(_));
                let weights = if !ignored && (model.is_some() || r.prior.is_some()) {
                    Some(config.weights(r, model.as_ref())?)
                } else {
                    None
                };
                (Some(Resolution { config, weights }), model_path)
            }
        };
        Ok(Pipeline {
            name: spec.name.clone(),
            region,
            identifiers,
            survivorship,
            template,
            sources: spec.sources.clone(),
            outputs: spec.outputs.clone(),
            key_groups: spec.key_groups,
            generic_detection: spec.generic_detection.enabled,
            resolution,
            model_path,
            checkpoints,
            sinks,
        })
    }

    /// The format of the input: the first source's, canonical when none is set.
    pub fn input_format(&self) -> InputFormat {
        self.sources
            .first()
            .map(SourceSpec::format)
            .unwrap_or_default()
    }
}

/// A pipeline file's text and its path as shown in messages.
fn read_pipeline(path: &Path) -> Result<(String, String), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    Ok((text, shown))
}

fn validate_kafka(i: usize, k: &kith_api::pipeline::KafkaSourceSpec) -> Result<(), ConfigError> {
    if k.bootstrap_servers.trim().is_empty() {
        return Err(ConfigError::invalid(
            format!("sources[{i}].bootstrapServers"),
            "must name at least one broker, as host:port[,host:port...]",
        ));
    }
    if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
        return Err(ConfigError::invalid(
            format!("sources[{i}].topics"),
            "must list at least one topic name, none empty",
        ));
    }
    for reserved in ["enable.auto.commit", "group.id", "bootstrap.servers"] {
        if k.properties.contains_key(reserved) {
            return Err(ConfigError::invalid(
                format!("sources[{i}].properties.{reserved}"),
                "is set by the runner (offsets live in checkpoints; use `groupId` and `bootstrapServers`)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
