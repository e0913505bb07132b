//! The main port's credentials (server certificate and key, client CA,
//! bearer tokens): parsed into what the acceptor and `AuthLayer` read per
//! connection and per request, and re-read when their files change on disk.
//! A changed file that is bad never replaces good material.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use subtle::ConstantTimeEq as _;
use tokio::sync::mpsc;

use crate::telemetry::metrics::metrics;

/// PEM material for TLS, given as bytes (fixed for the life of the server).
#[derive(Clone)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// PEM files for TLS, re-read when they change.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Where the TLS material comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    Pem(TlsPem),
    Files(TlsFiles),
}

impl From<TlsPem> for TlsSource {
    fn from(pem: TlsPem) -> Self {
        Self::Pem(pem)
    }
}

impl From<TlsFiles> for TlsSource {
    fn from(files: TlsFiles) -> Self {
        Self::Files(files)
    }
}

impl TlsSource {
    /// Whether callers must present a certificate from a client CA.
    pub fn mutual(&self) -> bool {
        match self {
            Self::Pem(pem) => pem.client_ca.is_some(),
            Self::Files(files) => files.client_ca.is_some(),
        }
    }
}

/// Where the accepted bearer tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// Fixed tokens, each accepted.
    Tokens(Vec<String>),
    /// A file of tokens, one per line, re-read when it changes.
    File(PathBuf),
}

impl From<&str> for TokenSource {
    fn from(token: &str) -> Self {
        Self::Tokens(vec![token.to_owned()])
    }
}

impl From<String> for TokenSource {
    fn from(token: String) -> Self {
        Self::Tokens(vec![token])
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tokens(tokens) => write!(f, "Tokens(<{} redacted>)", tokens.len()),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// A problem with one credential, naming its file (or what was given).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("{file} holds no token")]
    NoToken { file: String },
    #[error("{file} holds no PEM certificate")]
    NoCertificate { file: String },
    #[error("{file} holds no PEM private key")]
    NoKey { file: String },
    #[error("{file}: {problem}")]
    Pem { file: String, problem: String },
    #[error("{cert} and {key}: {source}")]
    Identity {
        cert: String,
        key: String,
        source: rustls::Error,
    },
    #[error("{file}: not a usable client CA: {problem}")]
    ClientCa { file: String, problem: String },
}

/// The bearer tokens accepted now. Every one is compared with what a
/// caller presents, in constant time, so timing tells nothing of which (or
/// how much of one) matched.
#[derive(Default)]
pub struct Tokens(Box<[Box<[u8]>]>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens(<{} redacted>)", self.0.len())
    }
}

impl Tokens {
    pub fn new<T: AsRef<str>>(tokens: impl IntoIterator<Item = T>) -> Self {
        Self(
            tokens
                .into_iter()
                .map(|t| Box::from(t.as_ref().as_bytes()))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each token's bytes (the console binds its session cookies to them).
    pub(crate) fn each(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|t| &t[..])
    }

    /// Whether `presented` is one of the tokens.
    pub fn admits(&self, presented: &[u8]) -> bool {
        let matched = self
            .0
            .iter()
            .fold(subtle::Choice::from(0), |any, t| any | presented.ct_eq(t));
        bool::from(matched)
    }
}

/// A token file's tokens: one per line, surrounding whitespace and blank
/// lines ignored.
pub fn parse_tokens(file: &str, bytes: &[u8]) -> Result<Tokens, CredentialError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CredentialError::NotUtf8 {
        file: file.to_owned(),
    })?;
    let tokens = Tokens::new(text.lines().map(str::trim).filter(|t| !t.is_empty()));
    if tokens.is_empty() {
        return Err(CredentialError::NoToken {
            file: file.to_owned(),
        });
    }
    Ok(tokens)
}

/// The one crypto provider (ring, as tonic and sqlx use).
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// A certificate chain and its private key, parsed but not yet checked
/// against each other (building the config does that).
struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn pem_problem(file: &str, e: &rustls::pki_types::pem::Error) -> CredentialError {
    CredentialError::Pem {
        file: file.to_owned(),
        problem: e.to_string(),
    }
}

fn certificates(file: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CredentialError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(file, &e))?;
    if certs.is_empty() {
        return Err(CredentialError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(certs)
}

fn identity(
    cert_file: &str,
    cert: &[u8],
    key_file: &str,
    key: &[u8],
) -> Result<Identity, CredentialError> {
    let certs = certificates(cert_file, cert)?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => CredentialError::NoKey {
            file: key_file.to_owned(),
        },
        e => pem_problem(key_file, &e),
    })?;
    Ok(Identity { certs, key })
}

fn client_verifier(file: &str, pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, CredentialError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(file, pem)? {
        roots.add(cert).map_err(|e| CredentialError::ClientCa {
            file: file.to_owned(),
            problem: e.to_string(),
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| CredentialError::ClientCa {
            file: file.to_owned(),
            problem: e.to_string(),
        })
}

/// The server config for one identity and, for mutual TLS, one verifier.
/// Fails when the key does not belong to the certificate.
fn server_config(
    names: (&str, &str),
    identity: &Identity,
    verifier: Option<&Arc<dyn ClientCertVerifier>>,
) -> Result<ServerConfig, CredentialError> {
    let tls_error = |source| CredentialError::Identity {
        cert: names.0.to_owned(),
        key: names.1.to_owned(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(Arc::clone(v)),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(tls_error)?;
    // gRPC needs h2; the HTTP forms on the same port may use HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks that PEM material makes a usable server config (the key matches
/// the certificate, the CA parses); the names say where each part came from.
pub fn check_tls(
    cert: (&str, &[u8]),
    key: (&str, &[u8]),
    client_ca: Option<(&str, &[u8])>,
) -> Result<(), CredentialError> {
    let id = identity(cert.0, cert.1, key.0, key.1)?;
    let verifier = client_ca
        .map(|(f, pem)| client_verifier(f, pem))
        .transpose()?;
    server_config((cert.0, key.0), &id, verifier.as_ref()).map(drop)
}

/// What a file held when last read: its bytes, or why it could not be read.
#[derive(PartialEq, Eq)]
enum Seen {
    Bytes(Vec<u8>),
    Unreadable(String),
}

async fn look(path: &Path) -> Seen {
    match tokio::fs::read(path).await {
        Ok(bytes) => Seen::Bytes(bytes),
        Err(e) => Seen::Unreadable(e.to_string()),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The certificate, key and client CA being served, and the files they
/// are re-read from.
struct TlsState {
    files: TlsFiles,
    current: Arc<ArcSwap<ServerConfig>>,
    seen: (Seen, Seen, Option<Seen>),
    identity: Identity,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

struct TokenState {
    file: PathBuf,
    current: Arc<ArcSwap<Tokens>>,
    seen: Seen,
}

/// The credentials the main port reads (each swapped whole, so a
/// connection or request sees one consistent set), and what re-reads them.
pub(crate) struct Credentials {
    /// The TLS config for each new connection; `None` is plaintext.
    pub tls: Option<Arc<ArcSwap<ServerConfig>>>,
    /// The accepted tokens; `None` lets every caller through.
    pub tokens: Option<Arc<ArcSwap<Tokens>>>,
    /// Present when some credential comes from a file.
    pub reloader: Option<Reloader>,
}

/// What `path` held when it was read, or why it could not be read.
fn contents<'s>(path: &Path, seen: &'s Seen) -> Result<&'s [u8], CredentialError> {
    match seen {
        Seen::Bytes(bytes) => Ok(bytes),
        Seen::Unreadable(e) => Err(CredentialError::Read {
            file: display(path),
            source: std::io::Error::other(e.clone()),
        }),
    }
}

/// The certificate and key as read from `files`: what the first load and
/// every reload parse alike.
fn seen_identity(files: &TlsFiles, cert: &Seen, key: &Seen) -> Result<Identity, CredentialError> {
    identity(
        &display(&files.cert),
        contents(&files.cert, cert)?,
        &display(&files.key),
        contents(&files.key, key)?,
    )
}

/// The client CA as read from `path`.
fn seen_verifier(path: &Path, ca: &Seen) -> Result<Arc<dyn ClientCertVerifier>, CredentialError> {
    client_verifier(&display(path), contents(path, ca)?)
}

/// The tokens as read from `path`.
fn seen_tokens(path: &Path, seen: &Seen) -> Result<Tokens, CredentialError> {
    parse_tokens(&display(path), contents(path, seen)?)
}

impl Credentials {
    /// Parses the initial material (reading files once); any problem here
    /// is fatal, since there is no older material to keep.
    pub async fn load(
        tls: Option<&TlsSource>,
        tokens: Option<&TokenSource>,
    ) -> Result<Self, CredentialError> {
        let mut tls_state = None;
        let tls = match tls {
            None => None,
            Some(TlsSource::Pem(pem)) => {
                let id = identity("the certificate PEM", &pem.cert, "the key PEM", &pem.key)?;
                let verifier = pem
                    .client_ca
                    .as_deref()
                    .map(|ca| client_verifier("the client CA PEM", ca))
                    .transpose()?;
                let config = server_config(
                    ("the certificate PEM", "the key PEM"),
                    &id,
                    verifier.as_ref(),
                )?;
                Some(Arc::new(ArcSwap::from_pointee(config)))
            }
            Some(TlsSource::Files(files)) => {
                let cert = look(&files.cert).await;
                let key = look(&files.key).await;
                let id = seen_identity(files, &cert, &key)?;
                let (ca, verifier) = match &files.client_ca {
                    None => (None, None),
                    Some(path) => {
                        let ca = look(path).await;
                        let verifier = seen_verifier(path, &ca)?;
                        (Some(ca), Some(verifier))
                    }
                };
                let config = server_config(
                    (&display(&files.cert), &display(&files.key)),
                    &id,
                    verifier.as_ref(),
                )?;
                let current = Arc::new(ArcSwap::from_pointee(config));
                tls_state = Some(TlsState {
                    files: files.clone(),
                    current: Arc::clone(&current),
                    seen: (cert, key, ca),
                    identity: id,
                    verifier,
                });
                Some(current)
            }
        };
        let mut token_state = None;
        let tokens = match tokens {
            None => None,
            Some(TokenSource::Tokens(list)) => {
                let tokens = Tokens::new(list);
                if tokens.is_empty() {
                    return Err(CredentialError::NoToken {
                        file: "the token list".to_owned(),
                    });
                }
                Some(Arc::new(ArcSwap::from_pointee(tokens)))
            }
            Some(TokenSource::File(path)) => {
                let seen = look(path).await;
                let tokens = seen_tokens(path, &seen)?;
                let current = Arc::new(ArcSwap::from_pointee(tokens));
                token_state = Some(TokenState {
                    file: path.clone(),
                    current: Arc::clone(&current),
                    seen,
                });
                Some(current)
            }
        };
        let reloader = (tls_state.is_some() || token_state.is_some()).then(|| Reloader {
            tls: tls_state,
            token: token_state,
        });
        Ok(Self {
            tls,
            tokens,
            reloader,
        })
    }
}

/// Re-reads the credential files and swaps in what changed and is good.
pub(crate) struct Reloader {
    tls: Option<TlsState>,
    token: Option<TokenState>,
}

fn reloaded(credential: &'static str, file: &str) {
    tracing::info!(
        credential,
        file,
        "credential reloaded; new connections use it"
    );
    metrics().credential_reload(credential, true);
}

fn refused(credential: &'static str, error: &CredentialError) {
    tracing::warn!(
        credential,
        error = %error,
        "changed credential file is not usable; keeping the previous one"
    );
    metrics().credential_reload(credential, false);
}

impl Reloader {
    /// The directories holding the files: a mounted Secret is updated by
    /// swapping a `..data` symlink there, which leaves each file's own
    /// inode (and any watch on it) untouched.
    fn directories(&self) -> BTreeSet<PathBuf> {
        let mut files: Vec<&Path> = Vec::new();
        if let Some(tls) = &self.tls {
            files.extend([tls.files.cert.as_path(), tls.files.key.as_path()]);
            files.extend(tls.files.client_ca.as_deref());
        }
        if let Some(token) = &self.token {
            files.push(&token.file);
        }
        files
            .into_iter()
            .map(|f| match f.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect()
    }

    /// Reads every file; whatever changed since the last read is parsed and,
    /// if good, put into use.
    async fn check(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.check().await;
        }
        if let Some(token) = &mut self.token {
            let seen = look(&token.file).await;
            if seen != token.seen {
                let file = display(&token.file);
                match seen_tokens(&token.file, &seen) {
                    Ok(tokens) => {
                        token.current.store(Arc::new(tokens));
                        reloaded("token", &file);
                    }
                    Err(e) => refused("token", &e),
                }
                token.seen = seen;
            }
        }
    }

    /// Re-reads on every change in the files' directories, and every
    /// `interval` in case an event was missed, until `stop`.
    pub async fn run(
        mut self,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        let (tx, mut events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        });
        // Kept alive for the loop; without it only the periodic check runs.
        let _watcher = match watcher {
            Ok(mut watcher) => {
                use notify::Watcher as _;
                for dir in self.directories() {
                    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %dir.display(), error = %e, ?interval,
                            "cannot watch a credential directory; checking it periodically only");
                    }
                }
                Some(watcher)
            }
            Err(e) => {
                tracing::warn!(error = %e, ?interval,
                    "cannot watch credential files; checking them periodically only");
                None
            }
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        tokio::pin!(stop);
        let mut watching = true;
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                _ = tick.tick() => {}
                event = events.recv(), if watching => {
                    if event.is_none() {
                        watching = false;
                        continue;
                    }
                    // One update is a burst of events (a Secret swap writes
                    // a directory, links it, renames): read once it settles.
                    let settle = tokio::time::sleep(SETTLE);
                    tokio::pin!(settle);
                    loop {
                        tokio::select! {
                            () = &mut settle => break,
                            more = events.recv() => if more.is_none() { break },
                        }
                    }
                }
            }
            self.check().await;
        }
    }
}

/// How long a burst of file events has to go quiet before the files are read.
const SETTLE: Duration = Duration::from_millis(50);

impl TlsState {
    async fn check(&mut self) {
        let cert = look(&self.files.cert).await;
        let key = look(&self.files.key).await;
        let ca = match &self.files.client_ca {
            Some(path) => Some(look(path).await),
            None => None,
        };
        let (cert_name, key_name) = (display(&self.files.cert), display(&self.files.key));
        let mut changed = false;
        // Cert and key change together in a Secret: both are read, and
        // only a pair that goes together is used.
        if cert != self.seen.0 || key != self.seen.1 {
            let attempt = seen_identity(&self.files, &cert, &key).and_then(|id| {
                server_config((&cert_name, &key_name), &id, self.verifier.as_ref()).map(|_| id)
            });
            match attempt {
                Ok(id) => {
                    self.identity = id;
                    changed = true;
                    reloaded("certificate", &cert_name);
                }
                Err(e) => refused("certificate", &e),
            }
            self.seen.0 = cert;
            self.seen.1 = key;
        }
        if let (Some(path), Some(ca)) = (&self.files.client_ca, ca)
            && Some(&ca) != self.seen.2.as_ref()
        {
            let name = display(path);
            match seen_verifier(path, &ca) {
                Ok(verifier) => {
                    self.verifier = Some(verifier);
                    changed = true;
                    reloaded("client_ca", &name);
                }
                Err(e) => refused("client_ca", &e),
            }
            self.seen.2 = Some(ca);
        }
        if changed {
            // Both parts were checked on their own above; this cannot
            // fail unless the provider does, and then the old config stays.
            match server_config(
                (&cert_name, &key_name),
                &self.identity,
                self.verifier.as_ref(),
            ) {
                Ok(config) => self.current.store(Arc::new(config)),
                Err(e) => refused("certificate", &e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_file_holds_one_token_per_line() {
        let tokens = parse_tokens("t", b"  old-token \n\n\tnew-token\r\n").unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.admits(b"old-token"));
        assert!(tokens.admits(b"new-token"));
        assert!(!tokens.admits(b"old-token\nnew-token"));
        assert!(!tokens.admits(b"new"));
        assert!(!tokens.admits(b""));
    }

    #[test]
    fn an_empty_or_binary_token_file_is_refused_naming_it() {
        let empty = parse_tokens("/run/token", b" \n\n").unwrap_err();
        assert_eq!(empty.to_string(), "/run/token holds no token");
        let binary = parse_tokens("/run/token", b"\xff\xfe").unwrap_err();
        assert_eq!(binary.to_string(), "/run/token is not UTF-8 text");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (a.cert.pem(), b.signing_key.serialize_pem());
        let e = check_tls(("c.pem", cert.as_bytes()), ("k.pem", key.as_bytes()), None).unwrap_err();
        assert!(e.to_string().starts_with("c.pem and k.pem: "), "{e}");
        let good_key = a.signing_key.serialize_pem();
        check_tls(
            ("c.pem", cert.as_bytes()),
            ("k.pem", good_key.as_bytes()),
            None,
        )
        .unwrap();
        let e = check_tls(("c.pem", b"junk"), ("k.pem", good_key.as_bytes()), None).unwrap_err();
        assert_eq!(e.to_string(), "c.pem holds no PEM certificate");
        let e =
            check_tls(("c.pem", cert.as_bytes()), ("k.pem", cert.as_bytes()), None).unwrap_err();
        assert_eq!(e.to_string(), "k.pem holds no PEM private key");
    }
}
