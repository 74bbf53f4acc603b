//! Who may call the server: the API key (Bearer, on every route but `/health` and the static
//! pages), JSON-only POST bodies (so that a web page cannot send a simple cross-origin
//! `text/plain` POST), and CORS only for the origins given.

mod common;

use common::{tiny_engine, TestServer};
use pairrm_server::{ApiKey, ServerOptions};
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// (status, `WWW-Authenticate`, JSON body or Null) of a request with `headers`.
fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Option<String>, Value) {
    let agent = agent();
    let mut response = match (method, body) {
        ("GET", _) => {
            let mut request = agent.get(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            request.call().unwrap()
        }
        (_, body) => {
            let mut request = agent.post(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            request.send(body.unwrap_or("").as_bytes()).unwrap()
        }
    };
    let www = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, www, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const RANK: &str = r#"{"source": "What is 2+2?", "candidates": ["4", "5"]}"#;
const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn with_an_api_key_only_health_and_the_static_pages_are_open() {
    let options = ServerOptions { api_key: Some(ApiKey::new("s3cret").unwrap()), ..Default::default() };
    let server = TestServer::start(options, || Ok(tiny_engine()));
    server.wait_ready();
    for open in ["/health", "/", "/docs", "/openapi.json"] {
        assert_eq!(call("GET", &server.url(open), &[], None).0, 200, "{open}");
    }
    let refused = [
        vec![JSON],
        vec![JSON, ("authorization", "Bearer wrong")],
        vec![JSON, ("authorization", "Bearer s3cret2")],
        vec![JSON, ("authorization", "Basic s3cret")],
        vec![JSON, ("authorization", "s3cret")],
    ];
    for headers in &refused {
        let (status, www, body) = call("POST", &server.url("/rank"), headers, Some(RANK));
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert_eq!(www.as_deref(), Some("Bearer"));
        assert_eq!(body["error_type"], "unauthorized");
        assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    }
    for path in ["/info", "/metrics"] {
        assert_eq!(call("GET", &server.url(path), &[], None).0, 401, "{path}");
        assert_eq!(call("GET", &server.url(path), &[("authorization", "Bearer s3cret")], None).0, 200, "{path}");
    }
    for auth in ["Bearer s3cret", "bearer s3cret"] {
        let (status, _, body) = call("POST", &server.url("/rank"), &[JSON, ("authorization", auth)], Some(RANK));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ranks"].as_array().unwrap().len(), 2);
    }
    // The key is checked before the body is looked at.
    let (status, _, _) = call("POST", &server.url("/rank"), &[("content-type", "text/plain")], Some("x"));
    assert_eq!(status, 401);
    let (_, _, info) = call("GET", &server.url("/info"), &[("authorization", "Bearer s3cret")], None);
    assert_eq!(info["limits"]["api_key_required"], true);
    assert!(!info.to_string().contains("s3cret"));
    let mut metrics = agent().get(server.url("/metrics")).header("authorization", "Bearer s3cret").call().unwrap();
    let metrics = metrics.body_mut().read_to_string().unwrap();
    assert!(metrics.lines().any(|l| l == r#"pairrm_requests_total{route="/rank",status="401"} 6"#), "{metrics}");
}

#[test]
fn post_bodies_must_be_declared_json() {
    let server = TestServer::tiny();
    server.wait_ready();
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")]
    {
        let headers: Vec<(&str, &str)> = content_type.map(|c| ("content-type", c)).into_iter().collect();
        let (status, _, body) = call("POST", &server.url("/rank"), &headers, Some(RANK));
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(body["error_type"], "validation");
        assert!(body["error"].as_str().unwrap().contains("Content-Type: application/json"), "{body}");
    }
    let (status, _, _) =
        call("POST", &server.url("/rank"), &[("content-type", "application/json; charset=utf-8")], Some(RANK));
    assert_eq!(status, 200);
    let (_, _, info) = call("GET", &server.url("/info"), &[], None);
    assert_eq!(info["limits"]["api_key_required"], false);
}

/// The headers of an `OPTIONS` preflight from `origin` for a POST with a key.
fn preflight(server: &TestServer, origin: &str) -> (u16, Option<String>, Option<String>) {
    let agent = agent();
    let response = agent
        .options(server.url("/rank"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .call()
        .unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_lowercase());
    (response.status().as_u16(), header("access-control-allow-origin"), header("access-control-allow-headers"))
}

#[test]
fn cors_only_for_the_origins_given() {
    let server = TestServer::tiny();
    server.wait_ready();
    let (_, allow, _) = preflight(&server, "https://evil.example");
    assert_eq!(allow, None, "no CORS unless asked");
    let response = agent().get(server.url("/health")).header("origin", "https://evil.example").call().unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
    drop(server);

    let options = ServerOptions {
        cors_origins: vec!["https://app.example".into()],
        api_key: Some(ApiKey::new("k").unwrap()),
        ..Default::default()
    };
    let server = TestServer::start(options, || Ok(tiny_engine()));
    server.wait_ready();
    // The preflight carries no key, and is answered before the key is checked.
    let (status, allow, headers) = preflight(&server, "https://app.example");
    assert_eq!(status, 200);
    assert_eq!(allow.as_deref(), Some("https://app.example"));
    let headers = headers.unwrap();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert_eq!(preflight(&server, "https://evil.example").1, None);
    let response = agent()
        .post(server.url("/rank"))
        .header("origin", "https://app.example")
        .header("authorization", "Bearer k")
        .header("content-type", "application/json")
        .send(json!({"source": "s", "candidates": ["a", "b"]}).to_string().as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), "https://app.example");
}

#[test]
fn invalid_options_are_refused_before_serving() {
    for (options, message) in [
        (
            ServerOptions { max_concurrent_requests: 0, ..Default::default() },
            "max_concurrent_requests must be at least 1",
        ),
        (ServerOptions { payload_limit: 0, ..Default::default() }, "payload_limit"),
        (ServerOptions { header_timeout: Some(std::time::Duration::ZERO), ..Default::default() }, "header_timeout"),
        (ServerOptions { cors_origins: vec!["example.org".into()], ..Default::default() }, "is not an origin"),
    ] {
        let error = TestServer::start(options, || Ok(tiny_engine())).join().unwrap_err();
        assert!(format!("{error:#}").contains(message), "{error:#}");
    }
}
