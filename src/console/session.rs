//! The console's sign-in: the API's bearer token asked for once in a form,
//! then a session cookie that carries no token, only an HMAC of the token
//! under a key made at start. Each request checks the cookie against the
//! token set current then, so a rotated or removed token ends every
//! session made with it, and a restart ends them all.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use ring::hmac;
use ring::rand::SystemRandom;

use crate::serve::Tokens;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ticket_authz_console";

/// Why the session keeper could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the system random generator failed making the session key")]
    Random,
}

/// Checks requests against the current tokens.
#[derive(Debug)]
pub struct Sessions {
    /// `None`: no token is configured (allowed on loopback only), so every
    /// request is admitted and no sign-in is asked for.
    tokens: Option<Arc<ArcSwap<Tokens>>>,
    key: hmac::Key,
    /// Mark cookies `Secure` (the console is served over TLS).
    secure: bool,
}

impl Sessions {
    pub fn new(tokens: Option<Arc<ArcSwap<Tokens>>>, secure: bool) -> Result<Self, SessionError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| SessionError::Random)?;
        Ok(Self {
            tokens,
            key,
            secure,
        })
    }

    /// Whether a token is asked for at all.
    pub fn required(&self) -> bool {
        self.tokens.is_some()
    }

    /// Whether `presented` is one of the current tokens.
    pub fn token_valid(&self, presented: &str) -> bool {
        match &self.tokens {
            None => true,
            Some(tokens) => tokens.load().admits(presented.trim().as_bytes()),
        }
    }

    /// The `Set-Cookie` value that signs in with `token` (already checked).
    pub fn cookie_for(&self, token: &str) -> String {
        let tag = hmac::sign(&self.key, token.trim().as_bytes());
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Whether a request may see data: no token configured, or the API's
    /// `authorization: Bearer` header, or a session cookie bound to a
    /// token that is still current.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(tokens) = &self.tokens else {
            return true;
        };
        let tokens = tokens.load();
        if let Some(bearer) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
        {
            return tokens.admits(bearer.as_bytes());
        }
        let Some(tag) = session_cookie(headers).and_then(|c| URL_SAFE_NO_PAD.decode(c).ok()) else {
            return false;
        };
        tokens
            .each()
            .any(|token| hmac::verify(&self.key, token, &tag).is_ok())
    }
}

/// The value of the session cookie, when the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn with_cookie(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = cookie.split(';').next().unwrap();
        headers.insert(COOKIE, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_session_ends_when_its_token_is_rotated_away() {
        let tokens = Arc::new(ArcSwap::from_pointee(Tokens::new(["old"])));
        let sessions = Sessions::new(Some(Arc::clone(&tokens)), true).unwrap();
        let cookie = sessions.cookie_for("old");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(
            !cookie.contains("old"),
            "the cookie carries the token: {cookie}"
        );
        assert!(sessions.admits(&with_cookie(&cookie)));
        tokens.store(Arc::new(Tokens::new(["new"])));
        assert!(!sessions.admits(&with_cookie(&cookie)));
        assert!(!sessions.admits(&with_cookie(&format!("{COOKIE_NAME}=garbage"))));
        assert!(!sessions.admits(&HeaderMap::new()));
    }
}
