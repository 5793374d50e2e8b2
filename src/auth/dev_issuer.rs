//! A development OIDC issuer on loopback: discovery, JWKS, userinfo and a token
//! endpoint, signing with keys generated at start. `orchestrator dev` runs one so the
//! service can be tried with real tokens and no identity provider; the test suites
//! use the same issuer, so authentication is always exercised with real signatures,
//! a real JWKS fetch and real userinfo calls.
//!
//! It is deliberately small and permissive (any client may ask for a token): it must
//! never listen anywhere but on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A key the issuer signs with.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    jwk: Value,
    public_pem: String,
}

/// A user the issuer knows; the claims userinfo returns.
#[derive(Debug, Clone)]
pub struct DevUser {
    /// Subject.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Username.
    pub username: String,
    /// E-mail.
    pub email: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// How a token is made.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Seconds until `exp` (negative for an already expired token).
    pub lifetime_secs: i64,
    /// Seconds until `nbf`, if any.
    pub not_before_secs: Option<i64>,
    /// Leave out name, e-mail, username and groups (they must come from userinfo).
    pub minimal: bool,
    /// `aud`.
    pub audience: Option<String>,
    /// Sign with the newest key of this algorithm (default RS256).
    pub alg: Algorithm,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            lifetime_secs: 3600,
            not_before_secs: None,
            minimal: false,
            audience: None,
            alg: Algorithm::RS256,
        }
    }
}

struct IssuerState {
    issuer: String,
    keys: RwLock<Vec<SigningKey>>,
    users: RwLock<HashMap<String, DevUser>>,
    refresh_tokens: RwLock<HashMap<String, String>>,
    opaque_tokens: RwLock<HashMap<String, String>>,
    userinfo_refuses: AtomicBool,
    /// Whether a refresh grant answers with a new refresh token (revoking the old).
    rotates_refresh_tokens: AtomicBool,
    /// Calls answered by userinfo and the JWKS endpoint, so tests can see caching.
    userinfo_calls: AtomicUsize,
    jwks_calls: AtomicUsize,
}

/// A running development issuer; it stops when dropped.
pub struct DevIssuer {
    state: Arc<IssuerState>,
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rsa_key(kid: &str, alg: Algorithm) -> anyhow::Result<SigningKey> {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let public = private.to_public_key();
    let pem = private.to_pkcs8_pem(LineEnding::LF)?;
    let public_pem = public.to_public_key_pem(LineEnding::LF)?;
    let (n, e) = (
        B64.encode(public.n().to_bytes_be()),
        B64.encode(public.e().to_bytes_be()),
    );
    Ok(SigningKey {
        kid: kid.to_string(),
        alg,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
        decoding: jsonwebtoken::DecodingKey::from_rsa_components(&n, &e)?,
        jwk: json!({"kty": "RSA", "use": "sig", "kid": kid, "alg": format!("{alg:?}"), "n": n, "e": e}),
        public_pem,
    })
}

fn ec_key(kid: &str) -> anyhow::Result<SigningKey> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let pem = secret.to_pkcs8_pem(LineEnding::LF)?;
    let public = secret.public_key();
    let point = public.to_encoded_point(false);
    let (x, y) = (
        B64.encode(point.x().map(|x| x.to_vec()).unwrap_or_default()),
        B64.encode(point.y().map(|y| y.to_vec()).unwrap_or_default()),
    );
    Ok(SigningKey {
        kid: kid.to_string(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_pem(pem.as_bytes())?,
        decoding: jsonwebtoken::DecodingKey::from_ec_components(&x, &y)?,
        jwk: json!({"kty": "EC", "use": "sig", "kid": kid, "alg": "ES256", "crv": "P-256", "x": x, "y": y}),
        public_pem: public.to_public_key_pem(LineEnding::LF)?,
    })
}

impl DevIssuer {
    /// Starts an issuer on 127.0.0.1 at `port` (0 for any) with one RSA key.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(IssuerState {
            issuer: format!("http://{addr}"),
            keys: RwLock::new(vec![rsa_key("rsa-1", Algorithm::RS256)?]),
            users: RwLock::new(HashMap::new()),
            refresh_tokens: RwLock::new(HashMap::new()),
            rotates_refresh_tokens: AtomicBool::new(false),
            opaque_tokens: RwLock::new(HashMap::new()),
            userinfo_refuses: AtomicBool::new(false),
            userinfo_calls: AtomicUsize::new(0),
            jwks_calls: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/userinfo", get(userinfo).post(userinfo))
            .route("/token", post(token))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            state,
            addr,
            _stop: stop,
        })
    }

    /// The issuer URL (`iss`).
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers a user whose claims userinfo returns.
    pub fn add_user(&self, user: DevUser) {
        let mut users = self.state.users.write().unwrap_or_else(|e| e.into_inner());
        users.insert(user.sub.clone(), user);
    }

    /// A signed access token for a registered (or unknown) subject.
    pub fn token(&self, sub: &str, options: &TokenOptions) -> String {
        let mut claims = self.claims_for(sub, options.minimal);
        let t = now();
        claims.insert("iat".into(), json!(t));
        claims.insert("exp".into(), json!(t + options.lifetime_secs));
        if let Some(nbf) = options.not_before_secs {
            claims.insert("nbf".into(), json!(t + nbf));
        }
        if let Some(aud) = &options.audience {
            claims.insert("aud".into(), json!(aud));
        }
        self.sign_claims(&Value::Object(claims), options.alg, None)
    }

    /// Signs arbitrary claims with the newest key of `alg`; `header` overrides the
    /// header (its `kid` is set to the key's unless given).
    pub fn sign_claims(&self, claims: &Value, alg: Algorithm, header: Option<Header>) -> String {
        let keys = self.state.keys.read().unwrap_or_else(|e| e.into_inner());
        let is_ec = |a: Algorithm| matches!(a, Algorithm::ES256 | Algorithm::ES384);
        // Any RSA key signs RS*/PS* tokens; EC tokens need the EC key.
        let Some(key) = keys.iter().rev().find(|k| is_ec(k.alg) == is_ec(alg)) else {
            return String::new();
        };
        let mut header = header.unwrap_or_else(|| Header::new(alg));
        header.alg = alg;
        if header.kid.is_none() {
            header.kid = Some(key.kid.clone());
        }
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap_or_default()
    }

    /// The PEM public key of the newest RSA key (to forge HS256 tokens in tests).
    pub fn rsa_public_pem(&self) -> String {
        let keys = self.state.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .rev()
            .find(|k| k.alg != Algorithm::ES256)
            .map(|k| k.public_pem.clone())
            .unwrap_or_default()
    }

    /// Adds a new RSA key that signs from now on (the old ones stay published);
    /// returns its `kid`.
    pub fn rotate_rsa_key(&self) -> anyhow::Result<String> {
        let mut keys = self.state.keys.write().unwrap_or_else(|e| e.into_inner());
        let kid = format!("rsa-{}", keys.len() + 1);
        keys.push(rsa_key(&kid, Algorithm::RS256)?);
        Ok(kid)
    }

    /// Adds a P-256 key for ES256 tokens; returns its `kid`.
    pub fn add_ec_key(&self) -> anyhow::Result<String> {
        let mut keys = self.state.keys.write().unwrap_or_else(|e| e.into_inner());
        let kid = format!("ec-{}", keys.len() + 1);
        keys.push(ec_key(&kid)?);
        Ok(kid)
    }

    /// Makes userinfo answer 401 to everything (or stop doing so).
    pub fn set_userinfo_refuses(&self, refuses: bool) {
        self.state.userinfo_refuses.store(refuses, Ordering::SeqCst);
    }

    /// How many requests userinfo has answered (refusals included).
    pub fn userinfo_calls(&self) -> usize {
        self.state.userinfo_calls.load(Ordering::SeqCst)
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_calls(&self) -> usize {
        self.state.jwks_calls.load(Ordering::SeqCst)
    }

    /// A refresh token for a subject, accepted by the token endpoint until revoked.
    pub fn refresh_token(&self, sub: &str) -> String {
        let token = format!("rt-{}", uuid::Uuid::new_v4().simple());
        let mut map = self
            .state
            .refresh_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.insert(token.clone(), sub.to_string());
        token
    }

    /// Makes the token endpoint rotate refresh tokens: each refresh grant answers a
    /// new refresh token and revokes the one it was given (as many issuers do).
    pub fn set_rotates_refresh_tokens(&self, rotates: bool) {
        self.state
            .rotates_refresh_tokens
            .store(rotates, Ordering::SeqCst);
    }

    /// Revokes a refresh token.
    pub fn revoke_refresh_token(&self, token: &str) {
        let mut map = self
            .state
            .refresh_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }

    /// An opaque (non-JWT) access token for a subject, resolvable only by userinfo.
    pub fn opaque_token(&self, sub: &str) -> String {
        let token = format!("opaque-{}", uuid::Uuid::new_v4().simple());
        let mut map = self
            .state
            .opaque_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner());
        map.insert(token.clone(), sub.to_string());
        token
    }

    fn claims_for(&self, sub: &str, minimal: bool) -> Map<String, Value> {
        self.state.claims_for(sub, minimal)
    }
}

impl IssuerState {
    fn claims_for(&self, sub: &str, minimal: bool) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(sub));
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        if !minimal {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            if let Some(u) = users.get(sub) {
                claims.insert("name".into(), json!(u.name));
                claims.insert("preferred_username".into(), json!(u.username));
                claims.insert("email".into(), json!(u.email));
                claims.insert("groups".into(), json!(u.groups));
            }
        }
        claims
    }

    /// The subject of a token this issuer made and that is still valid.
    fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        if let Some(sub) = self
            .opaque_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return Some(self.claims_for(sub, false));
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys.iter().find(|k| Some(&k.kid) == header.kid.as_ref())?;
        let mut validation = jsonwebtoken::Validation::new(key.alg);
        validation.validate_aud = false;
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }

    fn sign(&self, claims: Map<String, Value>) -> String {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let Some(key) = keys.iter().rev().find(|k| k.alg == Algorithm::RS256) else {
            return String::new();
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(claims), &key.encoding).unwrap_or_default()
    }

    fn access_token(&self, sub: &str, audience: Option<&str>) -> String {
        let mut claims = self.claims_for(sub, false);
        claims.insert("iat".into(), json!(now()));
        claims.insert("exp".into(), json!(now() + 3600));
        if let Some(aud) = audience {
            claims.insert("aud".into(), json!(aud));
        }
        self.sign(claims)
    }
}

async fn discovery(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/jwks", s.issuer),
        "userinfo_endpoint": format!("{}/userinfo", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "grant_types_supported": ["password", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    s.jwks_calls.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.read().unwrap_or_else(|e| e.into_inner());
    Json(json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn userinfo(State(s): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    s.userinfo_calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(7..).filter(|_| v[..6].eq_ignore_ascii_case("bearer")))
        .unwrap_or("");
    if s.userinfo_refuses.load(Ordering::SeqCst) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "userinfo refuses every token",
        );
    }
    match s.verify(token) {
        Some(claims) => {
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut info = s.claims_for(&sub, false);
            info.remove("jti");
            Json(Value::Object(info)).into_response()
        }
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "unknown, forged or expired token",
        ),
    }
}

async fn token(
    State(s): State<Arc<IssuerState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    match grant {
        "password" | "client_credentials" => {
            let sub = form
                .get("username")
                .cloned()
                .unwrap_or_else(|| "service".into());
            if let Some(groups) = form.get("groups") {
                let mut users = s.users.write().unwrap_or_else(|e| e.into_inner());
                let user = users.entry(sub.clone()).or_insert_with(|| DevUser {
                    sub: sub.clone(),
                    name: sub.clone(),
                    username: sub.clone(),
                    email: format!("{sub}@example.org"),
                    groups: vec![],
                });
                user.groups = groups.split(',').map(str::to_string).collect();
            }
            Json(json!({"access_token": s.access_token(&sub, form.get("audience").map(String::as_str)), "token_type": "Bearer", "expires_in": 3600})).into_response()
        }
        "refresh_token" => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            let sub = s
                .refresh_tokens
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&given)
                .cloned();
            let rotated = sub
                .as_ref()
                .filter(|_| s.rotates_refresh_tokens.load(Ordering::SeqCst))
                .map(|sub| {
                    let next = format!("rt-{}", uuid::Uuid::new_v4().simple());
                    let mut map = s.refresh_tokens.write().unwrap_or_else(|e| e.into_inner());
                    map.remove(&given);
                    map.insert(next.clone(), sub.clone());
                    next
                });
            match sub {
                Some(sub) => Json(json!({"access_token": s.access_token(&sub, None), "token_type": "Bearer", "expires_in": 3600, "refresh_token": rotated.unwrap_or(given)})).into_response(),
                None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the refresh token is unknown or revoked"),
            }
        }
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            let subject = form.get("subject_token").cloned().unwrap_or_default();
            match s.verify(&subject) {
                Some(claims) => {
                    let sub = claims
                        .get("sub")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    Json(json!({"access_token": s.access_token(&sub, form.get("audience").map(String::as_str)), "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600})).into_response()
                }
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the subject token is invalid",
                ),
            }
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant type '{other}' is not supported"),
        ),
    }
}
