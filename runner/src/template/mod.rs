//! The mapping template compiled for execution (see `kith_api::pipeline::TemplateSpec`).

use crate::config::{ConfigError, IdentifierTypes};
use kith_api::pipeline::TemplateSpec;

#[derive(Debug)]
pub struct Template {}

impl Template {
    pub fn compile(_spec: &TemplateSpec, _types: &IdentifierTypes) -> Result<Self, ConfigError> {
        Ok(Template {})
    }
}
