//! Who may read profiles and take savepoints through the admin port.
//!
//! Probes and `/metrics` are open: kubelets and Prometheus must reach them
//! and they carry no personal data. Profile lookups (personal data) and
//! savepoints (a full copy of the state written on demand) need a bearer
//! token, checked one of two ways:
//!
//! - **Kubernetes** (`--admin-auth kubernetes`, what the operator sets): the
//!   token's user must be allowed `get` on the subresource
//!   `profilepipelines/profiles` of this pipeline (lookups) or `create` on
//!   `profilesnapshots` in its namespace (savepoints): the same RBAC that
//!   governs `kubectl` governs the admin port. The runner asks the API
//!   server with the caller's token (a SelfSubjectAccessReview, see
//!   `KubernetesAuth::review`), so it needs no permission to review others.
//!   Answers are remembered for a few seconds, by a hash of the token, so a
//!   busy client does not cost a review per request.
//! - **A token file** (`--admin-token-file`): outside a cluster, one secret
//!   shared by the callers, compared in constant time.
//!
//! With neither, the admin port may only listen on a loopback address
//! (checked at start by [`AdminAuth::check_address`]), where only this
//! machine's users reach it: the quickstart's way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer of the API server about one token is reused.
const REVIEW_TTL: Duration = Duration::from_secs(10);
/// Remembered answers at most (an attacker sending random tokens must not
/// grow memory).
const REVIEW_CACHE_ENTRIES: usize = 1024;
/// The longest token accepted (service-account tokens are about 1 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the admin token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the admin token file {path} is empty; write one line with the token")]
    EmptyToken { path: String },
    #[error(
        "the admin port would listen on {addr} without authentication: profiles and savepoints \
         would be open to the network. Give --admin-token-file FILE, or --admin-auth kubernetes \
         in a cluster, or listen on a loopback address such as 127.0.0.1:9249"
    )]
    OpenOnNetwork { addr: SocketAddr },
    #[error(
        "--admin-auth kubernetes needs KITH_NAMESPACE and KITH_PIPELINE (the operator sets them)"
    )]
    NoPipelineIdentity,
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ReadProfiles,
    TakeSavepoint,
}

/// Why a request is refused; `status` is its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: u16,
    pub message: String,
}

impl Denied {
    fn unauthenticated(message: impl Into<String>) -> Self {
        Denied {
            status: 401,
            message: message.into(),
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Denied {
            status: 403,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Denied {
            status: 503,
            message: message.into(),
        }
    }

    /// The API server could not be asked: the caller may retry.
    fn api_unreachable() -> Self {
        Self::unavailable("cannot reach the Kubernetes API to check the token; retry later")
    }
}

/// How the admin port authenticates callers.
#[derive(Clone)]
pub enum AdminAuth {
    /// Nobody is asked for anything: loopback only.
    Open,
    /// One shared token.
    Token(Arc<Vec<u8>>),
    /// TokenReview and SubjectAccessReview against the API server.
    Kubernetes(Arc<KubernetesAuth>),
}

impl std::fmt::Debug for AdminAuth {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Open => f.write_str("Open"),
            AdminAuth::Token(_) => f.write_str("Token(<redacted>)"),
            AdminAuth::Kubernetes(k) => write!(f, "Kubernetes({}/{})", k.namespace, k.pipeline),
        }
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub enum AuthChoice {
    #[default]
    None,
    TokenFile(PathBuf),
    Kubernetes,
}

impl AdminAuth {
    /// The authentication `choice` names, for a pipeline in `namespace`
    /// named `pipeline` when in a cluster.
    pub fn from_choice(
        choice: &AuthChoice,
        identity: Option<(&str, &str)>,
    ) -> Result<AdminAuth, AuthError> {
        match choice {
            AuthChoice::None => Ok(AdminAuth::Open),
            AuthChoice::TokenFile(path) => Ok(AdminAuth::Token(Arc::new(read_token(path)?))),
            AuthChoice::Kubernetes => {
                let (namespace, pipeline) = identity.ok_or(AuthError::NoPipelineIdentity)?;
                Ok(AdminAuth::Kubernetes(Arc::new(KubernetesAuth::new(
                    namespace, pipeline,
                ))))
            }
        }
    }

    /// Refuses to serve profiles and savepoints unauthenticated beyond
    /// loopback.
    pub fn check_address(&self, addr: SocketAddr) -> Result<(), AuthError> {
        match self {
            AdminAuth::Open if !addr.ip().is_loopback() => Err(AuthError::OpenOnNetwork { addr }),
            _ => Ok(()),
        }
    }

    /// Whether the request with this `Authorization` header may do `action`.
    pub async fn authorize(
        &self,
        authorization: Option<&[u8]>,
        action: Action,
    ) -> Result<(), Denied> {
        let token = || bearer(authorization);
        match self {
            AdminAuth::Open => Ok(()),
            AdminAuth::Token(expected) => {
                if constant_time_eq(token()?, expected) {
                    Ok(())
                } else {
                    Err(Denied::unauthenticated(
                        "the bearer token is not this runner's admin token",
                    ))
                }
            }
            AdminAuth::Kubernetes(kubernetes) => kubernetes.authorize(token()?, action).await,
        }
    }
}

/// The token of `Authorization: Bearer TOKEN`.
fn bearer(authorization: Option<&[u8]>) -> Result<&[u8], Denied> {
    let header = authorization.ok_or_else(|| {
        Denied::unauthenticated("this endpoint needs `Authorization: Bearer TOKEN`")
    })?;
    let token = header
        .strip_prefix(b"Bearer ")
        .or_else(|| header.strip_prefix(b"bearer "))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Denied::unauthenticated("the Authorization header is not `Bearer TOKEN`"))?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Denied::unauthenticated(format!(
            "the bearer token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(token)
}

fn read_token(path: &Path) -> Result<Vec<u8>, AuthError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| AuthError::TokenFile {
        path: shown.clone(),
        source,
    })?;
    let token = text.trim_ascii().to_vec();
    if token.is_empty() {
        return Err(AuthError::EmptyToken { path: shown });
    }
    Ok(token)
}

/// Equal bytes, in a time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= u64::from(x ^ y);
    }
    difference == 0
}

/// A token's digest and what it asked to do.
type ReviewKey = ([u8; 32], Action);
/// When the API server answered, and what.
type Answer = (Instant, Result<(), Denied>);

/// Reviews through the API server, with a short memory of the answers.
pub struct KubernetesAuth {
    namespace: String,
    pipeline: String,
    /// Where the API server is and how to trust it (in-cluster, or the
    /// kubeconfig), without the runner's own credentials.
    cluster: tokio::sync::OnceCell<kube::Config>,
    answers: Mutex<HashMap<ReviewKey, Answer>>,
}

impl KubernetesAuth {
    pub fn new(namespace: &str, pipeline: &str) -> Self {
        KubernetesAuth {
            namespace: namespace.to_string(),
            pipeline: pipeline.to_string(),
            cluster: tokio::sync::OnceCell::new(),
            answers: Mutex::new(HashMap::new()),
        }
    }

    async fn authorize(&self, token: &[u8], action: Action) -> Result<(), Denied> {
        let key = (token_digest(token), action);
        if let Some(answer) = self.remembered(&key) {
            return answer;
        }
        let answer = self.review(token, action).await;
        // An API server that could not answer is asked again next time.
        if answer.as_ref().err().is_none_or(|d| d.status != 503) {
            self.remember(key, answer.clone());
        }
        answer
    }

    fn remembered(&self, key: &ReviewKey) -> Option<Result<(), Denied>> {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        answers
            .get(key)
            .filter(|(at, _)| at.elapsed() < REVIEW_TTL)
            .map(|(_, answer)| answer.clone())
    }

    fn remember(&self, key: ReviewKey, answer: Result<(), Denied>) {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if answers.len() >= REVIEW_CACHE_ENTRIES {
            answers.retain(|_, (at, _)| at.elapsed() < REVIEW_TTL);
            if answers.len() >= REVIEW_CACHE_ENTRIES {
                answers.clear();
            }
        }
        answers.insert(key, (Instant::now(), answer));
    }

    async fn cluster(&self) -> Result<&kube::Config, Denied> {
        self.cluster
            .get_or_try_init(|| async {
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                kube::Config::infer().await
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "no Kubernetes configuration for admin authentication");
                Denied::api_unreachable()
            })
    }

    /// Asks the API server, as the caller (with the caller's token), whether
    /// the caller may do `action`: a SelfSubjectAccessReview. The API server
    /// authenticates the token as it does for any request (what a
    /// TokenReview would do) and answers with the caller's RBAC (what a
    /// SubjectAccessReview would), and the runner needs no permission of
    /// its own: no cluster-wide grant, which a namespaced install has none of.
    async fn review(&self, token: &[u8], action: Action) -> Result<(), Denied> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let token = std::str::from_utf8(token)
            .map_err(|_| Denied::unauthenticated("the bearer token is not text"))?;
        let mut config = self.cluster().await?.clone();
        // Only the caller's token: never the runner's own credentials.
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_string().into()),
            ..kube::config::AuthInfo::default()
        };
        let unreachable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "the API server did not answer an admin review");
            Denied::api_unreachable()
        };
        let client = kube::Client::try_from(config).map_err(|e| unreachable(&e))?;
        let (verb, resource, subresource, name, asked) = match action {
            Action::ReadProfiles => (
                "get",
                "profilepipelines",
                Some("profiles".to_string()),
                Some(self.pipeline.clone()),
                format!("get profilepipelines/profiles {}", self.pipeline),
            ),
            Action::TakeSavepoint => (
                "create",
                "profilesnapshots",
                None,
                None,
                "create profilesnapshots".to_string(),
            ),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some(verb.to_string()),
                    group: Some(kith_api::crd::GROUP.to_string()),
                    resource: Some(resource.to_string()),
                    subresource,
                    name,
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let decided = kube::Api::<SelfSubjectAccessReview>::all(client)
            .create(&kube::api::PostParams::default(), &review)
            .await;
        let decided = match decided {
            Ok(decided) => decided,
            Err(kube::Error::Api(status)) if status.code == 401 => {
                return Err(Denied::unauthenticated(
                    "the Kubernetes API does not accept the bearer token",
                ))
            }
            // A token without even the right to ask about itself.
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(Denied::forbidden(format!(
                    "the token's user may not {asked} in namespace {} ({})",
                    self.namespace,
                    kith_api::crd::GROUP
                )))
            }
            Err(e) => return Err(unreachable(&e)),
        };
        if decided.status.is_some_and(|s| s.allowed) {
            tracing::debug!(%asked, "admin request allowed");
            Ok(())
        } else {
            Err(Denied::forbidden(format!(
                "the token's user may not {asked} in namespace {} ({})",
                self.namespace,
                kith_api::crd::GROUP
            )))
        }
    }
}

/// A digest of the token to remember answers by, so that the map never
/// holds a token. Not a password hash: tokens are long random strings.
fn token_digest(token: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        assert_eq!(bearer(Some(b"Bearer abc")).unwrap(), b"abc");
        assert_eq!(bearer(Some(b"bearer  abc ")).unwrap(), b"abc");
        for bad in [&b"Basic YWJj"[..], b"Bearer ", b"abc"] {
            assert_eq!(bearer(Some(bad)).unwrap_err().status, 401);
        }
        assert_eq!(bearer(None).unwrap_err().status, 401);
        let long = [b"Bearer ".to_vec(), vec![b'a'; MAX_TOKEN_BYTES + 1]].concat();
        assert_eq!(bearer(Some(&long)).unwrap_err().status, 401);
    }

    #[test]
    fn open_is_loopback_only() {
        let open = AdminAuth::Open;
        assert!(open
            .check_address("127.0.0.1:9249".parse().unwrap())
            .is_ok());
        assert!(open.check_address("[::1]:9249".parse().unwrap()).is_ok());
        let err = open
            .check_address("0.0.0.0:9249".parse().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("--admin-token-file"), "{err}");
        let token = AdminAuth::Token(Arc::new(b"t".to_vec()));
        assert!(token.check_address("0.0.0.0:9249".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_token_file_is_read_trimmed_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("kith-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let auth = AdminAuth::from_choice(&AuthChoice::TokenFile(path.clone()), None).unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt
            .block_on(auth.authorize(Some(b"Bearer s3cret"), Action::ReadProfiles))
            .is_ok());
        let denied = rt
            .block_on(auth.authorize(Some(b"Bearer guess"), Action::TakeSavepoint))
            .unwrap_err();
        assert_eq!(denied.status, 401);
        assert!(!denied.message.contains("s3cret"));
        std::fs::write(&path, " \n").unwrap();
        let err = AdminAuth::from_choice(&AuthChoice::TokenFile(path), None).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
