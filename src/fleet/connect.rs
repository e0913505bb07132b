//! One NATS connection from the fleet's settings: credentials file, token
//! file, TLS CA; reconnection with backoff is the client's own.

use async_nats::ConnectOptions;

use super::{FleetError, NatsSettings};

/// Connects once; a failure names the URL (the caller retries). After that
/// the client reconnects by itself, with backoff, for as long as it lives.
pub async fn connect(settings: &NatsSettings) -> Result<async_nats::Client, FleetError> {
    let mut options = ConnectOptions::new()
        .name("ticket-authz")
        // Unbounded: a sidecar outlives any NATS outage and catches up.
        .max_reconnects(None)
        .connection_timeout(std::time::Duration::from_secs(5));
    if let Some(path) = &settings.creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| FleetError::Credentials {
                flag: "--nats-creds",
                path: path.display().to_string(),
                cause: e.to_string(),
            })?;
    }
    if let Some(path) = &settings.token_file {
        let token = std::fs::read_to_string(path).map_err(|e| FleetError::Credentials {
            flag: "--nats-token-file",
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(FleetError::Credentials {
                flag: "--nats-token-file",
                path: path.display().to_string(),
                cause: "the file holds no token".to_owned(),
            });
        }
        options = options.token(token.to_owned());
    }
    if let Some(path) = &settings.tls_ca {
        if !path.is_file() {
            return Err(FleetError::Credentials {
                flag: "--nats-tls-ca",
                path: path.display().to_string(),
                cause: "no such file".to_owned(),
            });
        }
        options = options
            .add_root_certificates(path.clone())
            .require_tls(true);
    }
    options
        .connect(settings.url.as_str())
        .await
        .map_err(|e| FleetError::Connect {
            url: settings.url.clone(),
            cause: e.to_string(),
        })
}
