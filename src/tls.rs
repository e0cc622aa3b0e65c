//! TLS for `powerd serve --tls-cert PEM --tls-key PEM`.
//!
//! One rustls `ServerConfig` is built at start and never replaced; its
//! certificate comes from a resolver whose key pair [`Tls::reload`] swaps
//! (SIGHUP). A handshake in progress or a connection already open keeps the
//! pair it started with; the next handshake gets the new one. A reload that
//! fails (unreadable file, no key, a key that does not match the
//! certificate) leaves the pair in force and says why.
//!
//! Only HTTP/1.1 is offered by ALPN: the server speaks nothing else.
//!
//! Must never know: HTTP requests, tokens, storage. This turns files into a
//! TLS acceptor and nothing more.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why a certificate or key could not be used.
#[derive(Debug)]
pub struct TlsError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for TlsError {}

/// The certificate and key files, the pair loaded from them, and the
/// acceptor that serves it.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the pair and builds the acceptor: TLS 1.2 and 1.3 with rustls's
    /// safe defaults, no client certificates.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = load_pair(cert_path, key_path, &provider)?;
        let resolver = Arc::new(Resolver(RwLock::new(Arc::new(pair))));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                path: cert_path.to_owned(),
                message: format!("no TLS protocol version is usable: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Re-reads both files; on any error the pair in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.resolver.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

/// Hands every handshake the pair in force.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The certificate chain (leaf first) and the private key, checked to
/// belong together.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_error = |message: String| TlsError {
        path: cert_path.to_owned(),
        message,
    };
    let key_error = |message: String| TlsError {
        path: key_path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_error(pem_message(e, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(pem_message(e, "certificate")))?;
    if certs.is_empty() {
        return Err(cert_error(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| key_error(pem_message(e, "private key")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(format!("the private key cannot be used: {e}")))?;
    let pair = CertifiedKey::new(certs, signing_key);
    pair.keys_match().map_err(|e| {
        key_error(format!(
            "this key does not belong to the certificate in {}: {e}",
            cert_path.display()
        ))
    })?;
    Ok(pair)
}

fn pem_message(error: rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => format!("cannot be read: {e}"),
        Error::NoItemsFound => format!("holds no PEM {what}"),
        Error::MissingSectionEnd { .. } => {
            format!("is not a valid PEM {what}: a section has no -----END line")
        }
        Error::IllegalSectionStart { .. } => {
            format!("is not a valid PEM {what}: a -----BEGIN line is malformed")
        }
        Error::Base64Decode(e) => format!("is not a valid PEM {what}: bad base64 ({e})"),
        other => format!("is not a valid PEM {what}: {other:?}"),
    }
}
