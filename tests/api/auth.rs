//! Bearer-token authentication, spoken to over HTTP with tokens signed by a real test
//! issuer (RSA and EC keys, JWKS, userinfo on 127.0.0.1:0).
//!
//! The rejection matrix has one test per way a token can be wrong. Each asserts the
//! 401, the `WWW-Authenticate` challenge, the error body, a detail that says what was
//! wrong, and that the detail does not echo the token. Then the accepted forms:
//! algorithms, scheme spelling, userinfo for missing claims (cached), opaque tokens,
//! clock leeway, both `TRUSTED_IDP_LIST` forms, `ADMIN_GROUPS` and `group_claim`.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orchestrator::auth::dev_issuer::{DevIssuer, TokenOptions};
use serde_json::{json, Value};

use crate::helpers::{
    error_body, spawn_app, spawn_app_with, AppOptions, TestApp, ADMIN, ALICE, BOB,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const ME: &str = "/api/v1/users/me";

/// GET /users/me with a raw `Authorization` header (or none).
async fn me_with_header(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(ME));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("request")
}

async fn me_with_token(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_with_token(token, ME).await
}

/// Asserts a 401 with `challenge` and a detail containing `expected` (case-insensitive)
/// that echoes no part of `token`; returns the detail.
async fn assert_rejected_with(
    response: reqwest::Response,
    challenge: &str,
    token: &str,
    expected: &str,
) -> String {
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(challenge),
        "the WWW-Authenticate challenge"
    );
    let body = error_body(response, 401).await;
    let detail = body["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        detail.to_lowercase().contains(&expected.to_lowercase()),
        "the detail should say '{expected}', it says '{detail}'"
    );
    if !token.is_empty() {
        assert!(!detail.contains(token), "the detail echoes the token");
        for part in token.split('.').filter(|p| p.len() >= 12) {
            assert!(
                !detail.contains(part),
                "the detail echoes a part of the token: {detail}"
            );
        }
    }
    detail
}

/// The usual rejection of a token that was presented but is unusable.
async fn assert_invalid_token(response: reqwest::Response, token: &str, expected: &str) -> String {
    assert_rejected_with(response, "Bearer error=\"invalid_token\"", token, expected).await
}

/// Claims of a well-formed token for `sub` at `issuer`, valid for an hour.
fn claims(issuer: &str, sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": issuer,
        "sub": sub,
        "name": format!("{sub} name"),
        "preferred_username": sub,
        "email": format!("{sub}@example.org"),
        "groups": ["users"],
        "iat": now,
        "exp": now + 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn segment(value: &Value) -> String {
    B64.encode(value.to_string())
}

async fn assert_accepted_as(app: &TestApp, token: &str, sub: &str) -> Value {
    let response = me_with_token(app, token).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let me: Value = response.json().await.expect("user");
    assert_eq!(me["sub"], sub);
    me
}

/// Total users the caller can list: everyone for an admin, 1 for others.
async fn visible_users(app: &TestApp, token: &str) -> u64 {
    let response = app
        .client
        .get(app.url("/api/v1/users"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("page");
    page["page"]["total_elements"].as_u64().expect("total")
}

/// Registers alice, bob and root, so an admin sees 3 users and others 1.
async fn register_everyone(app: &TestApp) {
    for sub in [ALICE, BOB, ADMIN] {
        app.user_id(sub).await;
    }
}

// --- The rejection matrix -------------------------------------------------------

/// RFC 6750 §3.1: a request without credentials gets a bare challenge, no error code.
#[tokio::test]
async fn a_request_without_authorization_header_is_challenged() {
    let app = spawn_app().await;
    let response = me_with_header(&app, None).await;
    assert_rejected_with(response, "Bearer", "", "bearer token is required").await;
}

/// RFC 6750 §3.1: another authentication scheme is answered like a missing token.
#[tokio::test]
async fn another_authorization_scheme_is_refused_naming_the_scheme_not_the_credentials() {
    let app = spawn_app().await;
    let credentials = B64.encode("alice:very-secret-password");
    let response = me_with_header(&app, Some(&format!("Basic {credentials}"))).await;
    let detail = assert_rejected_with(response, "Bearer", &credentials, "Bearer scheme").await;
    assert!(detail.contains("Basic"), "{detail}");
}

#[tokio::test]
async fn a_token_sent_without_a_scheme_is_refused_without_echoing_it() {
    let app = spawn_app().await;
    let token = app.token(ALICE);
    let response = me_with_header(&app, Some(&token)).await;
    assert_rejected_with(response, "Bearer", &token, "Bearer scheme").await;
}

#[tokio::test]
async fn an_empty_bearer_token_is_refused() {
    let app = spawn_app().await;
    let response = me_with_header(&app, Some("Bearer    ")).await;
    assert_invalid_token(response, "", "empty").await;
}

#[tokio::test]
async fn a_malformed_jwt_is_refused() {
    let app = spawn_app().await;
    let token = "eyJub3QganNvbg.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz";
    let response = me_with_token(&app, token).await;
    assert_invalid_token(response, token, "not a well-formed JWT").await;
    let header = segment(&json!({"alg": "RS256", "typ": "JWT"}));
    let token = format!("{header}.bm90IGpzb24gYXQgYWxs.c2lnbmF0dXJlLWJ5dGVz");
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "unreadable payload").await;
}

#[tokio::test]
async fn an_authorization_header_that_is_not_text_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url(ME))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe-opaque").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_invalid_token(response, "", "not readable text").await;
}

#[tokio::test]
async fn a_token_without_expiry_or_subject_is_refused() {
    let app = spawn_app().await;
    for (claim, expected) in [("exp", "no 'exp' claim"), ("sub", "no 'sub' claim")] {
        let mut payload = claims(app.issuer.issuer(), ALICE);
        payload.as_object_mut().unwrap().remove(claim);
        let token = app.issuer.sign_claims(&payload, Algorithm::RS256, None);
        let response = me_with_token(&app, &token).await;
        assert_invalid_token(response, &token, expected).await;
    }
}

#[tokio::test]
async fn an_unsigned_token_with_alg_none_is_refused() {
    let app = spawn_app().await;
    let header = segment(&json!({"alg": "none", "typ": "JWT"}));
    let mut payload = claims(app.issuer.issuer(), ADMIN);
    payload["groups"] = json!(["admins"]);
    let token = format!("{header}.{}.", segment(&payload));
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "'none' are not accepted").await;
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_issuers_public_key_is_refused() {
    let app = spawn_app().await;
    let pem = app.issuer.rsa_public_pem();
    assert!(pem.contains("PUBLIC KEY"));
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(app.issuer.issuer(), ALICE),
        &EncodingKey::from_secret(pem.as_bytes()),
    )
    .expect("sign");
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "'HS256' are not accepted").await;
}

#[tokio::test]
async fn a_token_naming_an_issuer_that_is_not_trusted_is_refused() {
    let app = spawn_app().await;
    let token = app.issuer.sign_claims(
        &claims("https://evil.example.org/", ALICE),
        Algorithm::RS256,
        None,
    );
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(
        response,
        &token,
        "issuer 'https://evil.example.org/' is not trusted",
    )
    .await;
}

#[tokio::test]
async fn a_token_without_issuer_is_refused() {
    let app = spawn_app().await;
    let mut payload = claims(app.issuer.issuer(), ALICE);
    payload.as_object_mut().unwrap().remove("iss");
    let token = app.issuer.sign_claims(&payload, Algorithm::RS256, None);
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "no issuer (iss)").await;
}

/// Two trusted issuers: one signs a token claiming to come from the other. Both name
/// their first key `rsa-1`, so only the signature check can tell.
#[tokio::test]
async fn a_token_signed_by_one_trusted_issuer_but_naming_another_is_refused() {
    let other = DevIssuer::start(0).await.unwrap();
    let issuer = DevIssuer::start(0).await.unwrap();
    let list = json!([issuer.issuer(), other.issuer()]).to_string();
    let app = spawn_app_with(
        AppOptions {
            issuer: Some(issuer),
            ..Default::default()
        }
        .var("TRUSTED_IDP_LIST", &list),
    )
    .await
    .unwrap();
    // The other issuer's tokens are accepted on their own...
    assert_accepted_as(&app, &other.token(BOB, &TokenOptions::default()), BOB).await;
    // ...but not a token it did not sign.
    let token = app
        .issuer
        .sign_claims(&claims(other.issuer(), BOB), Algorithm::RS256, None);
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "signature is invalid").await;
}

#[tokio::test]
async fn a_validly_signed_token_from_an_untrusted_issuer_is_refused() {
    let app = spawn_app().await;
    let stranger = DevIssuer::start(0).await.unwrap();
    let token = stranger.token(ALICE, &TokenOptions::default());
    let response = me_with_token(&app, &token).await;
    let detail = assert_invalid_token(response, &token, "is not trusted").await;
    assert!(detail.contains(stranger.issuer()), "{detail}");
    assert_eq!(
        stranger.jwks_calls(),
        0,
        "an untrusted issuer is never asked"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            lifetime_secs: -3600,
            ..Default::default()
        },
    );
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "expired").await;
}

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_refused() {
    let app = spawn_app().await;
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            not_before_secs: Some(600),
            ..Default::default()
        },
    );
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "not valid yet").await;
}

#[tokio::test]
async fn an_unknown_key_id_is_refused_and_a_rotated_key_is_picked_up() {
    let app = spawn_app().await;
    assert_accepted_as(&app, &app.token(ALICE), ALICE).await;
    assert_eq!(app.issuer.jwks_calls(), 1);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("no-such-key".into());
    let forged = app.issuer.sign_claims(
        &claims(app.issuer.issuer(), ALICE),
        Algorithm::RS256,
        Some(header.clone()),
    );
    let response = me_with_token(&app, &forged).await;
    assert_invalid_token(response, &forged, "no signing key 'no-such-key'").await;
    assert_eq!(
        app.issuer.jwks_calls(),
        2,
        "an unknown kid refetches the JWKS"
    );

    // The issuer rotates its key right away: tokens signed with the new key work.
    let signed_before = app.token(ADMIN);
    let kid = app.issuer.rotate_rsa_key().unwrap();
    let token = app.token(BOB);
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, Some(kid));
    assert_accepted_as(&app, &token, BOB).await;
    assert_eq!(app.issuer.jwks_calls(), 3);
    // Tokens signed with the old key still work while it is published.
    assert_accepted_as(&app, &signed_before, ADMIN).await;
    assert_eq!(app.issuer.jwks_calls(), 3);

    // The same unknown kid again is refused without asking the issuer.
    let forged = app.issuer.sign_claims(
        &claims(app.issuer.issuer(), ALICE),
        Algorithm::RS256,
        Some(header),
    );
    let response = me_with_token(&app, &forged).await;
    assert_invalid_token(response, &forged, "no signing key 'no-such-key'").await;
    assert_eq!(app.issuer.jwks_calls(), 3);
}

#[tokio::test]
async fn a_token_whose_payload_was_tampered_with_is_refused() {
    let app = spawn_app().await;
    let token = app.token(BOB);
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["groups"] = json!(["admins"]);
    let tampered = format!("{}.{}.{}", parts[0], segment(&payload), parts[2]);
    let response = me_with_token(&app, &tampered).await;
    assert_invalid_token(response, &tampered, "signature is invalid").await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_when_the_issuer_sets_one() {
    let app = spawn_app_with(AppOptions {
        idp_extra: json!({"audience": "orchestrator"}),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            audience: Some("vault".into()),
            ..Default::default()
        },
    );
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "audience does not include 'orchestrator'").await;
    let token = app.token(ALICE);
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "no 'aud' claim").await;
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            audience: Some("orchestrator".into()),
            ..Default::default()
        },
    );
    assert_accepted_as(&app, &token, ALICE).await;
    // `aud` may be a list; ours must be in it.
    let mut payload = claims(app.issuer.issuer(), BOB);
    payload["aud"] = json!(["vault", "orchestrator"]);
    let token = app.issuer.sign_claims(&payload, Algorithm::RS256, None);
    assert_accepted_as(&app, &token, BOB).await;
}

#[tokio::test]
async fn a_token_that_userinfo_refuses_is_refused() {
    let app = spawn_app().await;
    app.issuer.set_userinfo_refuses(true);
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            minimal: true,
            ..Default::default()
        },
    );
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "userinfo endpoint rejected the token").await;
    assert_eq!(app.issuer.userinfo_calls(), 1);
}

#[tokio::test]
async fn an_opaque_token_no_issuer_knows_is_refused() {
    let app = spawn_app().await;
    let token = "opaque-token-nobody-issued-0123456789";
    let response = me_with_token(&app, token).await;
    assert_invalid_token(response, token, "not a JWT").await;
}

/// An issuer that cannot be reached is our problem, not the client's: 503, not 401.
#[tokio::test]
async fn a_trusted_issuer_that_cannot_be_reached_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let issuer = DevIssuer::start(0).await.unwrap();
    let list = json!([issuer.issuer(), gone]).to_string();
    let app = spawn_app_with(
        AppOptions {
            issuer: Some(issuer),
            ..Default::default()
        }
        .var("TRUSTED_IDP_LIST", &list),
    )
    .await
    .unwrap();
    let token = app
        .issuer
        .sign_claims(&claims(&gone, ALICE), Algorithm::RS256, None);
    let response = me_with_token(&app, &token).await;
    assert!(response.headers().get("www-authenticate").is_none());
    let body = error_body(response, 503).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("identity provider"), "{detail}");
    assert!(!detail.contains(&token));
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let app = spawn_app().await;
    // Expired 28 s ago: still within the 30 s leeway, for about two more seconds.
    let token = app.issuer.token(
        ALICE,
        &TokenOptions {
            lifetime_secs: -28,
            ..Default::default()
        },
    );
    assert_accepted_as(&app, &token, ALICE).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let response = me_with_token(&app, &token).await;
    assert_invalid_token(response, &token, "expired").await;
}

// --- Accepted tokens --------------------------------------------------------------

#[tokio::test]
async fn rs256_rs384_rs512_ps256_and_es256_tokens_are_accepted() {
    let app = spawn_app().await;
    app.issuer.add_ec_key().unwrap();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
    ] {
        let token = app.issuer.token(
            ALICE,
            &TokenOptions {
                alg,
                ..Default::default()
            },
        );
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().alg, alg);
        assert_accepted_as(&app, &token, ALICE).await;
    }
}

#[tokio::test]
async fn the_scheme_name_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = me_with_header(&app, Some(&format!("{scheme} {}", app.token(ALICE)))).await;
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn claims_missing_from_the_token_come_from_userinfo_once_per_token() {
    let app = spawn_app().await;
    register_everyone(&app).await;
    let calls = app.issuer.userinfo_calls();
    let minimal = TokenOptions {
        minimal: true,
        ..Default::default()
    };
    let token = app.issuer.token(ALICE, &minimal);
    let payload: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(payload.get("email").is_none() && payload.get("groups").is_none());
    let me = assert_accepted_as(&app, &token, ALICE).await;
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["name"], "alice name");
    assert_eq!(me["username"], "alice");
    assert_eq!(app.issuer.userinfo_calls(), calls + 1);
    assert_accepted_as(&app, &token, ALICE).await;
    assert_eq!(
        app.issuer.userinfo_calls(),
        calls + 1,
        "userinfo is asked once per token"
    );
    // Groups from userinfo count for the policy: root is an admin through them.
    let admin = app.issuer.token(ADMIN, &minimal);
    assert_eq!(visible_users(&app, &admin).await, 3);
    assert_eq!(app.issuer.userinfo_calls(), calls + 2);
}

#[tokio::test]
async fn a_token_carrying_every_claim_needs_no_userinfo() {
    let app = spawn_app().await;
    assert_accepted_as(&app, &app.token(ALICE), ALICE).await;
    assert_eq!(app.issuer.userinfo_calls(), 0);
}

#[tokio::test]
async fn an_opaque_token_is_resolved_by_userinfo_and_cached() {
    let app = spawn_app().await;
    let token = app.issuer.opaque_token(BOB);
    assert_eq!(token.split('.').count(), 1);
    let me = assert_accepted_as(&app, &token, BOB).await;
    assert_eq!(me["email"], "bob@example.org");
    assert_eq!(me["issuer"], app.issuer.issuer());
    assert_eq!(app.issuer.userinfo_calls(), 1);
    assert_accepted_as(&app, &token, BOB).await;
    assert_eq!(app.issuer.userinfo_calls(), 1);
}

#[tokio::test]
async fn a_small_clock_skew_on_exp_and_nbf_is_tolerated() {
    let app = spawn_app().await;
    let just_expired = app.issuer.token(
        ALICE,
        &TokenOptions {
            lifetime_secs: -10,
            ..Default::default()
        },
    );
    assert_accepted_as(&app, &just_expired, ALICE).await;
    let almost_valid = app.issuer.token(
        ALICE,
        &TokenOptions {
            not_before_secs: Some(10),
            ..Default::default()
        },
    );
    assert_accepted_as(&app, &almost_valid, ALICE).await;
}

#[tokio::test]
async fn a_plain_list_of_issuer_urls_is_a_valid_trusted_idp_list() {
    let issuer = DevIssuer::start(0).await.unwrap();
    // With a trailing slash the token's `iss` (without one) must still match.
    let list = json!([format!("{}/", issuer.issuer())]).to_string();
    let app = spawn_app_with(
        AppOptions {
            issuer: Some(issuer),
            ..Default::default()
        }
        .var("TRUSTED_IDP_LIST", &list),
    )
    .await
    .unwrap();
    register_everyone(&app).await;
    assert_accepted_as(&app, &app.token(ALICE), ALICE).await;
    // The default group claim is `groups`: root is an admin.
    assert_eq!(visible_users(&app, &app.token(ADMIN)).await, 3);
    assert_eq!(visible_users(&app, &app.token(ALICE)).await, 1);
}

#[tokio::test]
async fn administrators_are_the_members_of_admin_groups() {
    let app = spawn_app_with(AppOptions::default().var("ADMIN_GROUPS", "ops, beta-testers"))
        .await
        .unwrap();
    register_everyone(&app).await;
    // alice is in beta-testers; root's "admins" is no longer an admin group.
    assert_eq!(visible_users(&app, &app.token(ALICE)).await, 3);
    assert_eq!(visible_users(&app, &app.token(ADMIN)).await, 1);
    assert_eq!(visible_users(&app, &app.token(BOB)).await, 1);
}

#[tokio::test]
async fn the_group_claim_of_the_issuer_entry_decides_the_groups() {
    let app = spawn_app_with(AppOptions {
        idp_extra: json!({"group_claim": "entitlements"}),
        ..Default::default()
    })
    .await
    .unwrap();
    register_everyone(&app).await;
    let mut payload = claims(app.issuer.issuer(), BOB);
    payload["entitlements"] = json!(["admins"]);
    let bob = app.issuer.sign_claims(&payload, Algorithm::RS256, None);
    assert_eq!(visible_users(&app, &bob).await, 3);
    // root's "groups" claim says admins, but that is not the configured claim.
    assert_eq!(visible_users(&app, &app.token(ADMIN)).await, 1);
}
