//! Registry authentication: anonymous, basic, and the bearer-token flow.
//!
//! The first request goes out anonymously (or with a cached token); a 401
//! carries a `WWW-Authenticate` challenge that says which scheme the
//! registry wants. For `Basic` the stored credential is sent; for `Bearer`
//! a token is fetched from the challenge's realm (with `service` and the
//! `scope`s, and basic credentials when we have them) and cached per scope
//! until it expires. A 401 despite a cached token drops the token and
//! fetches a fresh one once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::credentials::{base64_encode, Credential};
use crate::error::Error;
use crate::www_authenticate::{self, Challenge};

/// A set of token scopes (`repository:library/busybox:pull`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No scope: the `/v2/` ping and login.
    pub fn none() -> Scope {
        Scope(Vec::new())
    }
    /// Pull access to `repo`.
    pub fn pull(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }
    /// Pull and push access to `repo`.
    pub fn push(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }
    /// Adds pull access to another repository (cross-repository mounts).
    pub fn and_pull(mut self, repo: &str) -> Scope {
        let s = format!("repository:{repo}:pull");
        if !self.0.contains(&s) {
            self.0.push(s);
            self.0.sort();
        }
        self
    }
    /// The scope strings (`repository:NAME:ACTIONS`).
    pub fn items(&self) -> &[String] {
        &self.0
    }
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

/// Per-registry auth state, shared by the threads of one client.
#[derive(Debug)]
pub(crate) struct Auth {
    registry: String,
    credential: Option<Credential>,
    state: Mutex<State>,
    /// Held while fetching a token, so concurrent requests wait for one
    /// fetch instead of each asking the token server.
    fetch: Mutex<()>,
    token_requests: std::sync::atomic::AtomicU64,
}

impl Auth {
    pub(crate) fn new(registry: &str, credential: Option<Credential>) -> Auth {
        Auth {
            registry: registry.to_string(),
            credential,
            state: Mutex::new(State::default()),
            fetch: Mutex::new(()),
            token_requests: Default::default(),
        }
    }

    pub(crate) fn has_credential(&self) -> bool {
        self.credential.is_some()
    }

    pub(crate) fn token_requests(&self) -> u64 {
        self.token_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn basic(&self) -> Option<String> {
        self.credential.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64_encode(format!("{}:{}", c.username, c.password).as_bytes())
            )
        })
    }

    /// The `Authorization` value to send for `scope` without a round trip,
    /// if we already know what the registry wants.
    pub(crate) fn header(
        &self,
        agent: &ureq::Agent,
        scope: &Scope,
    ) -> Result<Option<String>, Error> {
        if let Some(h) = self.cached(scope) {
            return Ok(h);
        }
        let _one_fetch = self.fetch.lock().unwrap();
        self.header_locked(agent, scope)
    }

    /// The header when no token fetch is needed.
    fn cached(&self, scope: &Scope) -> Option<Option<String>> {
        let st = self.state.lock().unwrap();
        match &st.challenge {
            None => Some(None),
            Some(c) if c.scheme == "basic" => Some(self.basic()),
            Some(c) if c.scheme != "bearer" => Some(None),
            Some(_) => st
                .tokens
                .get(&scope.key())
                .filter(|t| t.expires > Instant::now())
                .map(|t| Some(format!("Bearer {}", t.value))),
        }
    }

    fn header_locked(&self, agent: &ureq::Agent, scope: &Scope) -> Result<Option<String>, Error> {
        let challenge = {
            let st = self.state.lock().unwrap();
            match &st.challenge {
                None => return Ok(None),
                Some(c) if c.scheme == "basic" => return Ok(self.basic()),
                Some(c) if c.scheme != "bearer" => return Ok(None),
                Some(c) => {
                    if let Some(t) = st.tokens.get(&scope.key()) {
                        if t.expires > Instant::now() {
                            return Ok(Some(format!("Bearer {}", t.value)));
                        }
                    }
                    c.clone()
                }
            }
        };
        let token = self.fetch_token(agent, &challenge, scope)?;
        Ok(Some(format!("Bearer {token}")))
    }

    /// Handles a 401 to a request sent with `sent` (the Authorization
    /// value): records the challenge, drops that token if it is still the
    /// cached one (another thread may have fetched a fresh one already).
    /// Returns false when retrying cannot help (no usable challenge).
    pub(crate) fn on_unauthorized(
        &self,
        www_authenticate: Option<&str>,
        scope: &Scope,
        sent: Option<&str>,
    ) -> bool {
        let challenges = www_authenticate
            .map(www_authenticate::parse)
            .unwrap_or_default();
        let pick = challenges
            .iter()
            .find(|c| c.scheme == "bearer" && c.param("realm").is_some())
            .or_else(|| challenges.iter().find(|c| c.scheme == "basic"));
        let mut st = self.state.lock().unwrap();
        let stale = match (
            sent.and_then(|h| h.strip_prefix("Bearer ")),
            st.tokens.get(&scope.key()),
        ) {
            (Some(used), Some(t)) => t.value == used,
            _ => false,
        };
        if stale {
            st.tokens.remove(&scope.key());
        }
        match pick {
            Some(c) => {
                if c.scheme == "basic" && self.credential.is_none() {
                    return false;
                }
                st.challenge = Some(c.clone());
                true
            }
            None => false,
        }
    }

    fn fetch_token(
        &self,
        agent: &ureq::Agent,
        ch: &Challenge,
        scope: &Scope,
    ) -> Result<String, Error> {
        let realm = ch.param("realm").unwrap_or_default();
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(Error::protocol(
                &self.registry,
                "token auth",
                format!("the registry's token realm {realm:?} is not an http(s) URL"),
            ));
        }
        self.token_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let basic = self.basic();
        let followed = crate::transport::call_following(realm, |u, first| {
            let mut req = agent.get(u);
            if first {
                if let Some(svc) = ch.param("service") {
                    req = req.query("service", svc);
                }
                for s in scope.items() {
                    req = req.query("scope", s);
                }
                if let Some(c) = &self.credential {
                    req = req.query("account", &c.username);
                }
                if let Some(b) = &basic {
                    req = req.header("Authorization", b);
                }
            }
            req
        });
        let mut resp = match followed {
            Ok((resp, _)) => resp,
            Err(crate::transport::FollowError::Transport { url, source }) => {
                return Err(Error::Transport {
                    registry: self.registry.clone(),
                    method: "GET",
                    url,
                    cause: Box::new(source),
                })
            }
            Err(crate::transport::FollowError::Redirect(why)) => {
                return Err(Error::protocol(
                    &self.registry,
                    format!("token auth ({realm})"),
                    why.to_string(),
                ))
            }
        };
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        if status == 401 || status == 403 {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                detail: if self.credential.is_some() {
                    format!("incorrect username or password (token server {realm} said {status})")
                } else {
                    format!("authentication required (token server {realm} said {status})")
                },
            });
        }
        if !(200..300).contains(&status) {
            return Err(Error::Http {
                registry: self.registry.clone(),
                method: "GET",
                url: realm.to_string(),
                status,
                detail: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            Error::protocol(&self.registry, "token response", format!("not JSON: {e}"))
        })?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::protocol(&self.registry, "token response", "no token in it"))?
            .to_string();
        // Docker's default is 60 s; keep a margin so a token does not
        // expire between our check and the registry's.
        let secs = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .unwrap_or(60)
            .max(10);
        let expires = Instant::now() + Duration::from_secs(secs) - Duration::from_secs(5);
        self.state.lock().unwrap().tokens.insert(
            scope.key(),
            Token {
                value: token.clone(),
                expires,
            },
        );
        Ok(token)
    }
}
