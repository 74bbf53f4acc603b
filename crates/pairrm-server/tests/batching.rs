//! The queue under concurrency, on the real server with the tiny model: requests in flight
//! together share batches (seen in /metrics) and still get the numbers they get alone; the
//! concurrency limit (429), the timeout (504), clients that go away, loading (503) and graceful
//! shutdown. A gate in front of the model holds batches so that each situation is set up
//! deterministically, never by timing.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{get, post, tiny_engine, wait_for, Gated, OpenOnDrop, Shared, TestServer};
use pairrm::judge::{self, CompareMode, CompareRequest, RankRequest};
use pairrm::Engine;
use pairrm_server::ServerOptions;
use serde_json::{json, Value};

fn rank_body(i: usize) -> Value {
    json!({"source": format!("Question {i}?"), "candidates": [format!("answer {i}"), "I do not know.", format!("It is {i}, clearly.")]})
}

/// The scores the library gives `body` alone.
fn library_scores(engine: &Engine, body: &Value) -> Vec<f32> {
    let request: RankRequest = serde_json::from_value(body.clone()).unwrap();
    judge::rank(engine, &[request]).remove(0).unwrap().scores
}

fn scores(answer: &Value) -> Vec<f32> {
    answer["scores"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn gated_server(options: ServerOptions) -> (TestServer, std::sync::Arc<Gated<Engine>>) {
    let gated = Gated::new(tiny_engine());
    let shared = Shared(gated.clone());
    (TestServer::start(options, move || Ok(shared)), gated)
}

#[test]
fn requests_in_flight_together_share_one_batch_and_keep_their_numbers() {
    let (server, gated) = gated_server(ServerOptions::default());
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    let engine = tiny_engine();
    std::thread::scope(|s| {
        let server = &server;
        // The first request's batch is held at the model...
        let blocker = s.spawn(|| post(&server.url("/rank"), &json!({"source": "s", "candidates": ["x", "y"]})));
        wait_for("the first batch to start", || gated.entered() == 1);
        // ... while four more queue up behind it: 4 × 6 passes.
        let waiting: Vec<_> = (0..4).map(|i| s.spawn(move || post(&server.url("/rank"), &rank_body(i)))).collect();
        wait_for("24 queued passes", || server.metric("pairrm_queue_pairs") == 24.0);
        gated.open();
        assert_eq!(blocker.join().unwrap().0, 200);
        for (i, handle) in waiting.into_iter().enumerate() {
            let (status, answer) = handle.join().unwrap();
            assert_eq!(status, 200, "{answer}");
            let want = library_scores(&engine, &rank_body(i));
            assert_eq!(
                scores(&answer).iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|s| s.to_bits()).collect::<Vec<_>>()
            );
        }
    });
    let batches = gated.batches();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [2, 24]);
    assert_eq!(server.metric("pairrm_batch_pairs_count"), 2.0);
    assert_eq!(server.metric("pairrm_batch_pairs_sum"), 26.0);
    assert_eq!(server.metric("pairrm_pairs_total"), 26.0);
    assert!(server.metric("pairrm_batch_tokens_sum") > 26.0);
    assert_eq!(server.metric("pairrm_queue_pairs"), 0.0);
}

#[test]
fn many_concurrent_clients_get_exactly_what_they_get_alone() {
    let server = TestServer::tiny();
    server.wait_ready();
    let engine = tiny_engine();
    let bodies: Vec<Value> = (0..32).map(rank_body).collect();
    let compare_pair = CompareRequest {
        instruction: None,
        source: "Which is right?".into(),
        a: "Yes.".into(),
        b: "No, never.".into(),
    };
    let want_compare =
        judge::compare(&engine, std::slice::from_ref(&compare_pair), CompareMode::Both).remove(0).unwrap();
    std::thread::scope(|s| {
        let server = &server;
        for client in 0..16 {
            let (bodies, engine) = (&bodies, &engine);
            s.spawn(move || {
                for body in bodies.iter().skip(client % 4).step_by(4).take(4) {
                    let (status, answer) = post(&server.url("/rank"), body);
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(scores(&answer), library_scores(engine, body));
                    let (status, answer) = post(
                        &server.url("/compare"),
                        &json!({"pairs": [{"source": "Which is right?", "a": "Yes.", "b": "No, never."}]}),
                    );
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(answer["results"][0]["logit"].as_f64().unwrap() as f32, want_compare.logit);
                }
            });
        }
    });
    // 64 rank requests of 6 passes and 64 compare requests of 2, however they were batched.
    assert_eq!(server.metric("pairrm_pairs_total"), 64.0 * 8.0);
    assert_eq!(server.metric(r#"pairrm_requests_total{route="/rank",status="200"}"#), 64.0);
}

#[test]
fn over_the_concurrency_limit_requests_are_429_and_the_accepted_ones_complete() {
    let (server, gated) = gated_server(ServerOptions { max_concurrent_requests: 2, ..Default::default() });
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    std::thread::scope(|s| {
        let server = &server;
        let accepted: Vec<_> = (0..2).map(|i| s.spawn(move || post(&server.url("/rank"), &rank_body(i)))).collect();
        wait_for("two requests in flight", || server.metric("pairrm_requests_in_flight") == 2.0);
        let (status, answer) = post(&server.url("/rank"), &rank_body(9));
        assert_eq!(status, 429, "{answer}");
        assert_eq!(answer["error_type"], "overloaded");
        assert!(answer["error"].as_str().unwrap().contains("--max-concurrent-requests"));
        // Service routes are not limited.
        assert_eq!(get(&server.url("/health")).0, 200);
        gated.open();
        for handle in accepted {
            assert_eq!(handle.join().unwrap().0, 200);
        }
    });
    assert_eq!(server.metric(r#"pairrm_requests_total{route="/rank",status="429"}"#), 1.0);
    assert_eq!(post(&server.url("/rank"), &rank_body(9)).0, 200);
}

#[test]
fn a_request_over_the_timeout_is_504_and_its_queued_work_is_dropped() {
    let options = ServerOptions { request_timeout: Some(Duration::from_secs(2)), ..Default::default() };
    let (server, gated) = gated_server(options);
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    std::thread::scope(|s| {
        let server = &server;
        let first = s.spawn(|| post(&server.url("/rank"), &json!({"source": "s", "candidates": ["x", "y"]})));
        wait_for("the first batch to start", || gated.entered() == 1);
        let (status, answer) = post(&server.url("/rank"), &rank_body(1));
        assert_eq!(status, 504, "{answer}");
        assert_eq!(answer["error_type"], "timeout");
        assert_eq!(first.join().unwrap().0, 504);
    });
    // The second request's 6 passes were queued, then dropped: they never reach the model.
    assert_eq!(server.metric("pairrm_cancelled_pairs_total"), 6.0);
    assert_eq!(server.metric("pairrm_queue_pairs"), 0.0);
    gated.open();
    wait_for("the held batch to finish", || server.metric("pairrm_pairs_total") == 2.0);
    assert_eq!(gated.batches().len(), 1);
    assert_eq!(server.metric(r#"pairrm_requests_total{route="/rank",status="504"}"#), 2.0);
}

#[test]
fn a_client_that_goes_away_leaves_no_work_behind() {
    let (server, gated) = gated_server(ServerOptions::default());
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    std::thread::scope(|s| {
        let server = &server;
        let first = s.spawn(|| post(&server.url("/rank"), &json!({"source": "s", "candidates": ["x", "y"]})));
        wait_for("the first batch to start", || gated.entered() == 1);
        // A raw client sends a request, waits until its passes are queued, and hangs up.
        let body = rank_body(1).to_string();
        let mut stream = TcpStream::connect(server.addr).unwrap();
        write!(
            stream,
            "POST /rank HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        wait_for("6 queued passes", || server.metric("pairrm_queue_pairs") == 6.0);
        drop(stream);
        wait_for("the passes to be dropped", || server.metric("pairrm_cancelled_pairs_total") == 6.0);
        assert_eq!(server.metric("pairrm_queue_pairs"), 0.0);
        gated.open();
        assert_eq!(first.join().unwrap().0, 200);
    });
    assert_eq!(gated.batches().iter().map(Vec::len).collect::<Vec<_>>(), [2]);
    assert_eq!(server.metric(r#"pairrm_requests_total{route="/rank",status="499"}"#), 1.0);
    assert_eq!(post(&server.url("/rank"), &rank_body(1)).0, 200);
}

#[test]
fn until_the_model_is_loaded_health_and_scoring_are_503() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let server = TestServer::start(ServerOptions::default(), move || {
        released.recv()?;
        Ok(tiny_engine())
    });
    let (status, answer) = get(&server.url("/health"));
    assert_eq!((status, answer["error_type"].as_str()), (503, Some("backend")));
    let (status, answer) = post(&server.url("/rank"), &rank_body(0));
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("loading"));
    assert_eq!(get(&server.url("/info")).0, 503);
    assert_eq!(get(&server.url("/openapi.json")).0, 200);
    release.send(()).unwrap();
    server.wait_ready();
    assert_eq!(post(&server.url("/rank"), &rank_body(0)).0, 200);
}

#[test]
fn shutdown_finishes_the_requests_in_flight_then_returns() {
    let (mut server, gated) = gated_server(ServerOptions::default());
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    let engine = tiny_engine();
    std::thread::scope(|s| {
        let url = server.url("/rank");
        let in_flight = s.spawn(move || post(&url, &rank_body(3)));
        wait_for("the request's batch to start", || gated.entered() == 1);
        server.begin_shutdown();
        wait_for("the listener to close", || TcpStream::connect(server.addr).is_err());
        gated.open();
        let (status, answer) = in_flight.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(scores(&answer), library_scores(&engine, &rank_body(3)));
    });
    server.stop().unwrap();
}

#[test]
fn a_model_that_fails_to_load_stops_the_server_with_its_error() {
    let server =
        TestServer::start(ServerOptions::default(), || -> anyhow::Result<Engine> { anyhow::bail!("no such model") });
    let error = server.join().unwrap_err();
    assert!(format!("{error:#}").contains("loading the model: no such model"), "{error:#}");
}
