//! People and access: every route against every kind of caller (one table of rules, so a
//! route without a rule fails), CSRF on cookie-authenticated changes, sign-in and its limits,
//! sessions that end, the audit trail, open mode, and the CLI against the real binary with its
//! secrets kept out of everything it prints.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use poem::http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use support::app::TestApp;
use support::{client, free_port, spawn_logging, temp_sqlite};
use ticketflow_api::people::People;
use ticketflow_core::store::{NewSession, Role};

const PASSWORD: &str = "correct horse battery staple";

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone gets this status (the route does not depend on who calls).
    Anyone(u16),
    /// Anyone gets through (the answer is whatever the route answers).
    Outside,
    /// At least this role.
    Needs(Role),
}

/// Every route, with its rule. A route of the OpenAPI document missing here fails the test.
const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/health", Rule::Outside),
    ("GET", "/tickets", Rule::Needs(Role::Viewer)),
    ("POST", "/tickets", Rule::Needs(Role::Agent)),
    ("GET", "/tickets/{id}", Rule::Needs(Role::Viewer)),
    ("GET", "/tickets/{id}/events", Rule::Needs(Role::Viewer)),
    ("GET", "/tickets/{id}/messages", Rule::Needs(Role::Viewer)),
    ("POST", "/tickets/{id}/messages", Rule::Needs(Role::Agent)),
    ("POST", "/tickets/{id}/retry", Rule::Needs(Role::Agent)),
    ("GET", "/tickets/{id}/stream", Rule::Needs(Role::Viewer)),
    ("GET", "/events/stream", Rule::Needs(Role::Viewer)),
    ("GET", "/approvals", Rule::Needs(Role::Viewer)),
    ("GET", "/approvals/{id}", Rule::Needs(Role::Viewer)),
    ("POST", "/approvals/{id}/decide", Rule::Needs(Role::Agent)),
    ("GET", "/dashboard/stats", Rule::Needs(Role::Viewer)),
    ("GET", "/webhooks/deliveries", Rule::Needs(Role::Viewer)),
    ("POST", "/webhooks/deliveries/{id}/retry", Rule::Needs(Role::Agent)),
    ("GET", "/auth/me", Rule::Needs(Role::Viewer)),
    ("POST", "/auth/login", Rule::Anyone(401)),
    ("GET", "/admin/users", Rule::Needs(Role::Admin)),
    ("POST", "/admin/users", Rule::Needs(Role::Admin)),
    ("PATCH", "/admin/users/{id}", Rule::Needs(Role::Admin)),
    ("GET", "/admin/keys", Rule::Needs(Role::Admin)),
    ("POST", "/admin/keys", Rule::Needs(Role::Admin)),
    ("POST", "/admin/keys/{id}/revoke", Rule::Needs(Role::Admin)),
    ("GET", "/admin/audit", Rule::Needs(Role::Admin)),
    // Last: it ends the caller's session.
    ("POST", "/auth/logout", Rule::Anyone(204)),
];

/// Routes outside the OpenAPI document, open to anyone (the e-mail webhooks have their own
/// secrets: unset here, so 503).
const OUTSIDE_THE_DOCUMENT: &[(&str, &str, u16)] = &[
    ("GET", "/metrics", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/docs", 200),
    ("POST", "/webhooks/email/inbound/generic", 503),
];

/// A kind of caller: its headers, and the role it should be let in as (`None`: as nobody).
struct CallerKind {
    name: &'static str,
    headers: Vec<(String, String)>,
    role: Option<Role>,
}

fn session_of(answer: &support::app::Answer) -> String {
    let cookie = answer.headers["set-cookie"].to_str().unwrap();
    let value = cookie
        .strip_prefix("ticketflow_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    value.to_owned()
}

async fn sign_in(api: &TestApp, email: &str, password: &str) -> support::app::Answer {
    api.post_json("/auth/login", &json!({ "email": email, "password": password }), &[])
        .await
}

/// A session cookie and its CSRF token for `email`.
async fn session(api: &TestApp, email: &str) -> (String, String) {
    let answer = sign_in(api, email, PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    (
        session_of(&answer),
        answer.json["csrf_token"].as_str().unwrap().to_owned(),
    )
}

async fn add_people(people: &People) {
    for (email, role) in [
        ("viewer@desk.test", Role::Viewer),
        ("agent@desk.test", Role::Agent),
        ("admin@desk.test", Role::Admin),
    ] {
        people
            .add_user(email, "Staff", role, SecretString::from(PASSWORD), "test")
            .await
            .unwrap();
    }
}

fn body_for(method: &str, path: &str, n: usize) -> Option<Value> {
    match (method, path) {
        ("POST", "/tickets") => Some(json!({ "customer_id": "c", "subject": format!("matrix {n}"), "body": "Hello" })),
        ("POST", "/tickets/{id}/messages") => Some(json!({ "text": "A reply" })),
        ("POST", "/approvals/{id}/decide") => Some(json!({ "approved": true })),
        ("POST", "/auth/login") => Some(json!({ "email": "nobody@desk.test", "password": "not the password" })),
        ("POST", "/admin/users") => {
            Some(json!({ "email": format!("new{n}@desk.test"), "name": "New", "role": "viewer", "password": PASSWORD }))
        }
        ("PATCH", "/admin/users/{id}") => Some(json!({ "role": "viewer" })),
        ("POST", "/admin/keys") => Some(json!({ "name": format!("key {n}"), "role": "viewer" })),
        ("POST", "/webhooks/email/inbound/generic") => Some(json!({})),
        _ => None,
    }
}

/// Sends one request and returns only its status (streams are not read to their end).
async fn status_of(api: &TestApp, method: &str, path: &str, headers: &[(String, String)], body: Option<Value>) -> u16 {
    let mut request = api.client.request(method.parse::<Method>().unwrap(), path);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    request.send().await.0.status().as_u16()
}

#[tokio::test]
async fn every_route_lets_in_exactly_the_roles_its_rule_names() {
    let api = TestApp::start(&[]).await;
    // Made while the API is still open.
    let ticket = api.create("c", "the matrix's ticket", "Hello").await;
    let people = People::new(api.store.clone());
    add_people(&people).await;
    let mut callers = vec![CallerKind {
        name: "anonymous",
        headers: Vec::new(),
        role: None,
    }];
    for role in Role::ALL {
        let (key, secret) = people
            .create_key(&format!("{role} key"), role, None, "test")
            .await
            .unwrap();
        assert!(key.is_live(chrono::Utc::now()));
        callers.push(CallerKind {
            name: match role {
                Role::Viewer => "viewer key",
                Role::Agent => "agent key",
                Role::Admin => "admin key",
            },
            headers: vec![("authorization".into(), format!("Bearer {}", secret.expose_secret()))],
            role: Some(role),
        });
        let (cookie, csrf) = session(&api, &format!("{role}@desk.test")).await;
        callers.push(CallerKind {
            name: match role {
                Role::Viewer => "viewer session",
                Role::Agent => "agent session",
                Role::Admin => "admin session",
            },
            headers: vec![
                ("cookie".into(), format!("ticketflow_session={cookie}")),
                ("x-csrf-token".into(), csrf),
            ],
            role: Some(role),
        });
    }
    let (revoked, secret) = people.create_key("revoked", Role::Admin, None, "test").await.unwrap();
    people.revoke_key(revoked.id, "test").await.unwrap();
    callers.push(CallerKind {
        name: "revoked key",
        headers: vec![("authorization".into(), format!("Bearer {}", secret.expose_secret()))],
        role: None,
    });
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let (_, secret) = people
        .create_key("expired", Role::Admin, Some(past), "test")
        .await
        .unwrap();
    callers.push(CallerKind {
        name: "expired key",
        headers: vec![("authorization".into(), format!("Bearer {}", secret.expose_secret()))],
        role: None,
    });
    let (admin, _) = api.store.user_by_email("admin@desk.test").await.unwrap().unwrap();
    let expired_session = ticketflow_api::auth::token().unwrap();
    api.store
        .start_session(NewSession {
            id_hash: ticketflow_api::auth::digest(&expired_session),
            user_id: admin.id,
            csrf_token: "csrf".into(),
            expires_at: past,
        })
        .await
        .unwrap();
    callers.push(CallerKind {
        name: "expired session",
        headers: vec![
            ("cookie".into(), format!("ticketflow_session={expired_session}")),
            ("x-csrf-token".into(), "csrf".into()),
        ],
        role: None,
    });

    // An API that was open notices people added by another process within a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Every operation of the document has a rule, and every rule an operation.
    let spec = api.get("/openapi.json").await.json;
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let ruled: BTreeSet<_> = RULES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&ruled).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without a rule"
    );
    assert_eq!(
        ruled.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "rules without a route"
    );
    // The document says which role each operation needs, and declares both schemes.
    for (method, path, rule) in RULES {
        let operation = &spec["paths"][*path][method.to_lowercase()];
        if let Rule::Needs(role) = rule {
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(&format!("Role: {role}.")),
                "{method} {path} documents its role: {description}"
            );
            assert!(
                operation["security"].is_array(),
                "{method} {path} declares its security"
            );
        }
    }
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert!(
        schemes.values().any(|s| s["type"] == "http" && s["scheme"] == "bearer"),
        "{schemes:?}"
    );
    assert!(
        schemes.values().any(|s| s["type"] == "apiKey" && s["in"] == "cookie"),
        "{schemes:?}"
    );

    let mut failures = Vec::new();
    let mut n = 0;
    for (method, path, rule) in RULES {
        for caller in &callers {
            n += 1;
            let concrete = path
                .replace("/tickets/{id}", &format!("/tickets/{ticket}"))
                .replace("/webhooks/deliveries/{id}", "/webhooks/deliveries/999999")
                .replace("{id}", &uuid::Uuid::new_v4().to_string());
            let status = status_of(&api, method, &concrete, &caller.headers, body_for(method, path, n)).await;
            let fine = match rule {
                Rule::Anyone(expected) => status == *expected,
                Rule::Outside => !matches!(status, 401 | 403),
                Rule::Needs(needed) => match caller.role {
                    None => status == 401,
                    Some(role) if role.includes(*needed) => !matches!(status, 401 | 403) && status < 500,
                    Some(_) => status == 403,
                },
            };
            if !fine {
                failures.push(format!("{method} {path} as {}: {status} ({rule:?})", caller.name));
            }
        }
    }
    for (method, path, expected) in OUTSIDE_THE_DOCUMENT {
        for caller in &callers {
            let status = status_of(&api, method, path, &caller.headers, body_for(method, path, 0)).await;
            if status != *expected {
                failures.push(format!("{method} {path} as {}: {status}, not {expected}", caller.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    api.stop().await;
}

#[tokio::test]
async fn a_change_made_with_the_cookie_needs_the_sessions_csrf_token() {
    let api = TestApp::start(&[]).await;
    add_people(&People::new(api.store.clone())).await;
    let (cookie, csrf) = session(&api, "agent@desk.test").await;
    let cookie = format!("ticketflow_session={cookie}");
    let ticket = json!({ "customer_id": "c", "subject": "csrf", "body": "Hello" });
    let without = api.post_json("/tickets", &ticket, &[("cookie", cookie.as_str())]).await;
    assert_eq!(without.status, 403, "{}", without.text);
    assert_eq!(without.json["error"], "csrf_token_missing");
    let wrong = api
        .post_json(
            "/tickets",
            &ticket,
            &[("cookie", cookie.as_str()), ("x-csrf-token", "forged")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let with = api
        .post_json(
            "/tickets",
            &ticket,
            &[("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
        )
        .await;
    assert_eq!(with.status, 201, "{}", with.text);
    let read = api
        .request(Method::GET, "/tickets", &[("cookie", cookie.as_str())], None)
        .await;
    assert_eq!(read.status, 200, "reads need no token");

    // Who created it is in its events and the audit trail.
    let id = with.json["ticket_id"].as_str().unwrap();
    let events = api
        .request(
            Method::GET,
            &format!("/tickets/{id}/events"),
            &[("cookie", cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(events.json[0]["payload"]["actor"], "agent@desk.test", "{}", events.text);
    let trail = api.store.audit_log(1, 100).await.unwrap();
    assert!(
        trail
            .entries
            .iter()
            .any(|e| e.action == "ticket.created" && e.actor == "agent@desk.test" && e.target.as_deref() == Some(id)),
        "{:?}",
        trail.entries
    );

    // A page's form carries the token as a field instead of the header.
    let form = |token: &str| format!("csrf_token={token}&other=1").into_bytes();
    let form_headers = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let forged = api
        .request(Method::POST, "/auth/logout", &form_headers, Some(form("forged")))
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let (agent_cookie, agent_csrf) = session(&api, "agent@desk.test").await;
    let agent_cookie = format!("ticketflow_session={agent_cookie}");
    let form_headers = [
        ("cookie", agent_cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let out = api
        .request(Method::POST, "/auth/logout", &form_headers, Some(form(&agent_csrf)))
        .await;
    assert_eq!(out.status, 204, "{}", out.text);

    // A token of another session does not do.
    let (_, other_csrf) = session(&api, "admin@desk.test").await;
    let crossed = api
        .post_json(
            "/tickets",
            &ticket,
            &[("cookie", cookie.as_str()), ("x-csrf-token", other_csrf.as_str())],
        )
        .await;
    assert_eq!(crossed.status, 403);
    api.stop().await;
}

#[tokio::test]
async fn sign_in_is_limited_generic_and_does_the_same_work_for_unknown_addresses() {
    let api = TestApp::start(&[("LOGIN_ATTEMPTS_PER_MINUTE", "5")]).await;
    add_people(&People::new(api.store.clone())).await;
    let checks = || async {
        let metrics = api.get("/metrics").await.text;
        metrics
            .lines()
            .find(|l| l.starts_with("password_checks_total"))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0.0, |v| v.parse::<f64>().unwrap())
    };
    let before = checks().await;
    let started = std::time::Instant::now();
    let unknown = sign_in(&api, "nobody@desk.test", PASSWORD).await;
    let unknown_took = started.elapsed();
    let after_unknown = checks().await;
    let started = std::time::Instant::now();
    let wrong = sign_in(&api, "agent@desk.test", "not the password at all").await;
    let known_took = started.elapsed();
    let after_known = checks().await;
    eprintln!("sign-in refused: unknown e-mail {unknown_took:?}, known e-mail with a wrong password {known_took:?}");
    assert_eq!(
        after_unknown - before,
        1.0,
        "the unknown address is checked against the dummy hash"
    );
    assert_eq!(
        after_known - after_unknown,
        1.0,
        "the known address is checked against its hash"
    );
    assert_eq!((unknown.status, wrong.status), (401, 401));
    let without_id = |mut body: Value| {
        body.as_object_mut().unwrap().remove("request_id");
        body
    };
    assert_eq!(
        without_id(unknown.json.clone()),
        without_id(wrong.json.clone()),
        "the answers do not tell the two apart"
    );
    assert!(unknown.headers.get("set-cookie").is_none());

    // Case and spaces do not matter; a disabled account cannot sign in.
    let ok = sign_in(&api, "  Agent@Desk.TEST ", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["user"]["role"], "agent");
    let cookie = ok.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );

    // The limit: five attempts a minute against one address, then 429 with Retry-After.
    for _ in 0..3 {
        assert_eq!(sign_in(&api, "agent@desk.test", "wrong wrong wrong").await.status, 401);
    }
    let limited = sign_in(&api, "agent@desk.test", PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let checked = checks().await;
    assert_eq!(sign_in(&api, "agent@desk.test", PASSWORD).await.status, 429);
    assert_eq!(checks().await, checked, "a limited attempt hashes nothing");

    // Oversized, malformed and incomplete bodies.
    let huge = sign_in(&api, "viewer@desk.test", &"x".repeat(2048)).await;
    assert_eq!(huge.status, 422, "{}", huge.text);
    assert_eq!(huge.json["field"], "password");
    let malformed = api
        .request(
            Method::POST,
            "/auth/login",
            &[("content-type", "application/json")],
            Some(b"{\"email\":".to_vec()),
        )
        .await;
    assert!(matches!(malformed.status, 400 | 422), "{}", malformed.text);
    assert!(malformed.json["error"].is_string());
    let missing = api
        .post_json("/auth/login", &json!({ "email": "viewer@desk.test" }), &[])
        .await;
    assert_eq!(missing.status, 422);
    api.stop().await;
}

#[tokio::test]
async fn sessions_end_on_sign_out_disabling_deletion_and_tampering() {
    let url = ticketflow_core::testing::database::fresh_sqlite_url();
    let api = TestApp::start(&[("DATABASE_URL", url.as_str())]).await;
    let people = People::new(api.store.clone());
    add_people(&people).await;
    let me = |cookie: String| {
        let api = &api;
        async move {
            api.request(
                Method::GET,
                "/auth/me",
                &[("cookie", format!("ticketflow_session={cookie}").as_str())],
                None,
            )
            .await
        }
    };
    // /auth/me, then sign-out (which needs the token too).
    let (cookie, csrf) = session(&api, "viewer@desk.test").await;
    let who = me(cookie.clone()).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.json["mode"], "signed_in");
    assert_eq!(who.json["user"]["email"], "viewer@desk.test");
    assert_eq!(who.json["csrf_token"], csrf.as_str());
    let header = format!("ticketflow_session={cookie}");
    let refused = api
        .request(Method::POST, "/auth/logout", &[("cookie", header.as_str())], None)
        .await;
    assert_eq!(refused.status, 403);
    let out = api
        .request(
            Method::POST,
            "/auth/logout",
            &[("cookie", header.as_str()), ("x-csrf-token", csrf.as_str())],
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    assert!(out.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(me(cookie).await.status, 401, "signed out");

    // A tampered cookie.
    let (cookie, _) = session(&api, "viewer@desk.test").await;
    let mut tampered = cookie.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(me(tampered).await.status, 401);
    assert_eq!(me(cookie.clone()).await.status, 200);

    // A new sign-in replaces the session the browser had.
    let answer = api
        .request(
            Method::POST,
            "/auth/login",
            &[
                ("content-type", "application/json"),
                ("cookie", format!("ticketflow_session={cookie}").as_str()),
            ],
            Some(
                json!({ "email": "viewer@desk.test", "password": PASSWORD })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(answer.status, 200);
    let renewed = session_of(&answer);
    assert_ne!(renewed, cookie);
    assert_eq!(me(cookie).await.status, 401, "nothing kept from before");
    assert_eq!(me(renewed.clone()).await.status, 200);

    // Disabling ends the sessions and the sign-ins.
    let (viewer, _) = api.store.user_by_email("viewer@desk.test").await.unwrap().unwrap();
    people.disable(viewer.id, "test").await.unwrap();
    assert_eq!(me(renewed).await.status, 401);
    assert_eq!(sign_in(&api, "viewer@desk.test", PASSWORD).await.status, 401);

    // A session of a person whose row is gone.
    let (cookie, _) = session(&api, "agent@desk.test").await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM users WHERE email = 'agent@desk.test'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(me(cookie).await.status, 401);
    api.stop().await;
}

#[tokio::test]
async fn an_open_api_stays_open_until_someone_is_added() {
    let api = TestApp::start(&[]).await;
    let me = api.get("/auth/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json["mode"], "open");
    assert_eq!(api.get("/tickets").await.status, 200);
    // Managing people needs someone, open or not: nobody can make themselves admin.
    assert_eq!(api.get("/admin/users").await.status, 401);
    let added = api
        .post_json(
            "/admin/users",
            &json!({ "email": "first@desk.test", "name": "First", "role": "admin", "password": PASSWORD }),
            &[],
        )
        .await;
    assert_eq!(added.status, 401, "{}", added.text);
    assert_eq!(api.get("/tickets").await.status, 200, "still open");
    // The first admin comes from the CLI (`ticketflow-api users add`).
    People::new(api.store.clone())
        .add_user(
            "first@desk.test",
            "First",
            Role::Admin,
            SecretString::from(PASSWORD),
            "cli",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(api.get("/tickets").await.status, 401, "closed within a second");
    assert_eq!(api.get("/auth/me").await.status, 401);
    let (cookie, csrf) = session(&api, "first@desk.test").await;
    let cookie = format!("ticketflow_session={cookie}");
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    // Bad input to the admin routes: named, never a 500.
    let user = |email: &str, name: &str, role: &str, password: &str| json!({ "email": email, "name": name, "role": role, "password": password });
    for (body, status, field) in [
        (user("x@desk.test", "X", "owner", PASSWORD), 422, "role"),
        (user("y@desk.test", "Y", "viewer", "short"), 422, "password"),
        (user("First@desk.test", "Again", "viewer", PASSWORD), 409, "email"),
        (user("not an address", "Z", "viewer", PASSWORD), 422, "email"),
        (user("w@desk.test", "  ", "viewer", PASSWORD), 422, "name"),
    ] {
        let refused = api.post_json("/admin/users", &body, &headers).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text);
        assert!(refused.text.to_lowercase().contains(field), "{body}: {}", refused.text);
    }
    let key = api
        .post_json("/admin/keys", &json!({ "name": "ci", "role": "agent" }), &headers)
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let secret = key.json["secret"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {secret}");
    let created = api
        .post_json(
            "/tickets",
            &json!({ "customer_id": "c", "subject": "by key", "body": "Hello" }),
            &[("authorization", bearer.as_str())],
        )
        .await;
    assert_eq!(created.status, 201);
    let id = key.json["key"]["id"].as_str().unwrap();
    let revoked = api
        .request(Method::POST, &format!("/admin/keys/{id}/revoke"), &headers, None)
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.json["revoked_at"].is_string());
    assert_eq!(
        api.request(Method::GET, "/tickets", &[("authorization", bearer.as_str())], None)
            .await
            .status,
        401,
        "revoked at once"
    );
    let listed = api.request(Method::GET, "/admin/keys", &headers, None).await;
    assert!(!listed.text.contains(&secret), "a key is shown once");
    let trail = api.request(Method::GET, "/admin/audit", &headers, None).await;
    let actions: Vec<&str> = trail.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["key.revoked", "ticket.created", "key.created", "user.added"],
        "{}",
        trail.text
    );
    assert_eq!(trail.json["entries"][1]["actor"], "key:ci");
    assert_eq!(trail.json["entries"][3]["actor"], "cli");
    api.stop().await;
}

fn api_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ticketflow-api"))
}

fn run_cli(database_url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(api_binary())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_cli_manages_people_and_keys_and_no_secret_reaches_what_is_printed() {
    let database = temp_sqlite();
    let mut printed = String::new();
    // What the commands print, but a new key's stdout: printing the key is its purpose.
    let mut record = |output: &std::process::Output, with_stdout: bool| {
        if with_stdout {
            printed.push_str(&String::from_utf8_lossy(&output.stdout));
        }
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
    };
    let added = run_cli(
        &database,
        &[
            "users",
            "add",
            "--email",
            "Lead@Desk.test",
            "--name",
            "Lead",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    record(&added, true);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let short = run_cli(
        &database,
        &[
            "users",
            "add",
            "--email",
            "s@desk.test",
            "--name",
            "S",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("12 characters"));
    let bad_role = run_cli(
        &database,
        &[
            "users",
            "add",
            "--email",
            "r@desk.test",
            "--name",
            "R",
            "--role",
            "owner",
        ],
        None,
    );
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("admin, agent, viewer"));
    let key = run_cli(
        &database,
        &["keys", "create", "--name", "deploy", "--role", "agent"],
        None,
    );
    record(&key, false);
    assert!(key.status.success(), "{}", String::from_utf8_lossy(&key.stderr));
    let stdout = String::from_utf8(key.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key on stdout: {stdout:?}");
    let secret = lines[0].to_owned();
    assert!(
        secret.starts_with("tfk_")
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{secret}"
    );
    let viewer = run_cli(
        &database,
        &["keys", "create", "--name", "reader", "--role", "viewer"],
        None,
    );
    record(&viewer, false);
    let viewer_secret = String::from_utf8(viewer.stdout.clone()).unwrap().trim().to_owned();
    let listed = run_cli(&database, &["users", "list"], None);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("lead@desk.test\tadmin\tLead\tactive"));
    for role in ["agent", "admin"] {
        let changed = run_cli(
            &database,
            &["users", "set-role", "--email", "lead@desk.test", "--role", role],
            None,
        );
        assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
        assert!(String::from_utf8_lossy(&changed.stdout).contains(&format!("is now {role}")));
    }

    let log = std::env::temp_dir().join(format!("tf_test_{}.log", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let api = spawn_logging(
        api_binary(),
        &[
            ("DATABASE_URL", database.clone()),
            ("BIND_ADDR", format!("127.0.0.1:{port}")),
            ("RUST_LOG", "debug".into()),
        ],
        port,
        Some(&log),
    )
    .await;
    let c = client();
    let created = c
        .post(format!("{}/tickets", api.base))
        .bearer_auth(&secret)
        .json(&json!({ "customer_id": "c", "subject": "cli key", "body": "Hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forbidden = c
        .post(format!("{}/tickets", api.base))
        .bearer_auth(&viewer_secret)
        .json(&json!({ "customer_id": "c", "subject": "viewer", "body": "Hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let forbidden: Value = forbidden.json().await.unwrap();
    assert!(
        forbidden["message"].as_str().unwrap().contains("`agent`"),
        "{forbidden}"
    );
    let signed_in = c
        .post(format!("{}/auth/login", api.base))
        .json(&json!({ "email": "lead@desk.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session_id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ticketflow_session=")
        .to_owned();
    let mut seen = String::new();
    seen.push_str(&signed_in.text().await.unwrap());
    for path in [
        format!("/tickets/{id}/events"),
        format!("/tickets/{id}"),
        "/metrics".into(),
        "/admin/keys".into(),
    ] {
        seen.push_str(
            &c.get(format!("{}{path}", api.base))
                .header("cookie", format!("ticketflow_session={session_id}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    seen.push_str(
        &c.post(format!("{}/auth/login", api.base))
            .json(&json!({ "email": "lead@desk.test", "password": format!("{PASSWORD}!") }))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let revoked = run_cli(&database, &["keys", "revoke", "--name", "deploy"], None);
    record(&revoked, true);
    assert!(revoked.status.success());
    let after = c
        .get(format!("{}/tickets", api.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "revoked by the CLI, refused by the server");
    seen.push_str(&after.text().await.unwrap());
    drop(api);
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
    seen.push_str(&printed);
    assert!(seen.contains("signed in"), "the log was captured");
    for secret in [PASSWORD, secret.as_str(), viewer_secret.as_str(), session_id.as_str()] {
        assert!(!seen.contains(secret), "a secret leaked: {secret}");
    }
    assert!(seen.contains("\"prefix\""), "the keys were listed, by their prefixes");
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_tls_proxy_only() {
    for (trust, proto, secure) in [
        ("true", Some("https"), true),
        ("true", None, false),
        ("false", Some("https"), false),
    ] {
        let api = TestApp::start(&[("TRUST_PROXY", trust)]).await;
        add_people(&People::new(api.store.clone())).await;
        let mut headers = vec![("content-type", "application/json")];
        if let Some(proto) = proto {
            headers.push(("x-forwarded-proto", proto));
        }
        let body = json!({ "email": "viewer@desk.test", "password": PASSWORD }).to_string();
        let answer = api
            .request(Method::POST, "/auth/login", &headers, Some(body.into_bytes()))
            .await;
        assert_eq!(answer.status, 200);
        let cookie = answer.headers["set-cookie"].to_str().unwrap();
        assert_eq!(
            cookie.contains("; Secure"),
            secure,
            "TRUST_PROXY={trust} {proto:?}: {cookie}"
        );
        api.stop().await;
    }
}
