//! HTTPS for the admin port, from a certificate and key in PEM files (a
//! mounted `kubernetes.io/tls` Secret, as cert-manager writes them).
//!
//! The files are read once at start; a rotated certificate takes effect
//! when the runner restarts.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the admin TLS certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("cannot read the admin TLS key {path}: {message}")]
    Key { path: String, message: String },
    #[error("the admin TLS certificate {path} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { path: String },
    #[error("the admin TLS certificate and key do not make a server configuration: {0}")]
    Config(String),
}

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl TlsSettings {
    /// Reads both files into an acceptor for the admin listener.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let cert_path = self.certificate.display().to_string();
        let chain = CertificateDer::pem_file_iter(&self.certificate)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Certificate {
                path: cert_path.clone(),
                message: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert_path });
        }
        // The key's error never carries the key's bytes.
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::Key {
            path: self.key.display().to_string(),
            message: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
