//! The model file a pipeline names (`spec.resolutionModel`), read so that
//! validation checks it as the runner will: a ConfigMap key must exist and
//! hold a model the pipeline can use. The operator may not read Secrets
//! (least privilege): a Secret's model is the kubelet's to find, and a
//! missing one holds the runner pod back.

use super::Context;
use crate::error::Error;
use k8s_openapi::api::core::v1::ConfigMap;
use kith_api::crd::ProfilePipelineSpec;
use kube::Api;

/// The model's text when it could be read (`Ok(None)`: none named, or in a
/// Secret); `Err` says, for the Degraded condition, what is missing.
pub async fn read(
    ctx: &Context,
    spec: &ProfilePipelineSpec,
    namespace: &str,
) -> Result<Result<Option<String>, String>, Error> {
    let Some(r) = spec
        .resolution_model
        .as_ref()
        .and_then(|m| m.config_map_key_ref.as_ref())
    else {
        return Ok(Ok(None));
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(cm) = api
        .get_opt(&r.name)
        .await
        .map_err(Error::kube("get", "ConfigMap"))?
    else {
        return Ok(Err(format!(
            "spec.resolutionModel.configMapKeyRef: ConfigMap {} not found in namespace {namespace}",
            r.name
        )));
    };
    if let Some(text) = cm.data.as_ref().and_then(|d| d.get(&r.key)) {
        return Ok(Ok(Some(text.clone())));
    }
    if let Some(bytes) = cm.binary_data.as_ref().and_then(|d| d.get(&r.key)) {
        return Ok(match String::from_utf8(bytes.0.clone()) {
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(format!(
                "spec.resolutionModel.configMapKeyRef: key {} of ConfigMap {} is not UTF-8 JSON",
                r.key, r.name
            )),
        });
    }
    let mut keys: Vec<&String> = cm
        .data
        .iter()
        .flat_map(|d| d.keys())
        .chain(cm.binary_data.iter().flat_map(|d| d.keys()))
        .collect();
    keys.sort();
    Ok(Err(format!(
        "spec.resolutionModel.configMapKeyRef: ConfigMap {} has no key {} (it has {keys:?})",
        r.name, r.key
    )))
}
