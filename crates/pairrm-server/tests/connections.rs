//! Slow and stalled clients, with raw TCP clients on loopback: a head, a body or an idle
//! kept-alive connection past its timeout is closed (or answered 408); an oversize body is
//! refused at once (declared length) or as soon as it passes the limit (chunked); at most
//! `max_connections` are open at once; a stalled client does not hold shutdown past its deadline;
//! and under a crowd of stalled clients the server still serves others. Every wait is bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{get, tiny_engine, Gated, OpenOnDrop, Shared, TestServer};
use pairrm_server::ServerOptions;
use serde_json::{json, Value};

const BOUND: Duration = Duration::from_secs(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn server(options: ServerOptions) -> TestServer {
    let server = TestServer::start(options, || Ok(tiny_engine()));
    server.wait_ready();
    server
}

/// A raw connection whose reads give up after [`BOUND`].
fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream
}

/// Reads until the server closes the connection (end of stream or reset); what arrived and
/// how long it took. Panics if it is still open after [`BOUND`].
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the connection is still open after {BOUND:?}; got {:?}", String::from_utf8_lossy(&got))
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// One response read from a kept-alive connection: (status, head, body).
fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("reading a response head");
        assert_eq!(n, 1, "the connection closed in a response head: {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status_of(&head), head, String::from_utf8(body).unwrap())
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {response:?}"))
}

fn body_of(response: &str) -> Value {
    serde_json::from_str(&response[response.find("\r\n\r\n").unwrap() + 4..]).unwrap()
}

fn rank_request(body: &str) -> String {
    format!(
        "POST /rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_stalled_or_dribbled_request_head_is_closed_at_the_header_timeout() {
    let server = server(ServerOptions { header_timeout: Some(ms(500)), ..Default::default() });
    // Part of a head, then nothing: the case of the issue.
    let mut stalled = connect(&server);
    stalled.write_all(b"POST /rank HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Nothing at all.
    let mut silent = connect(&server);
    // A header byte every 100 ms: each read is quick, the head never completes.
    let mut dribbling = connect(&server);
    let writer = {
        let mut stream = dribbling.try_clone().unwrap();
        std::thread::spawn(move || {
            let start = Instant::now();
            stream.write_all(b"POST /rank HTTP/1.1\r\nX-Slow: ").unwrap();
            while start.elapsed() < Duration::from_secs(10) {
                if stream.write_all(b"a").is_err() {
                    return start.elapsed();
                }
                std::thread::sleep(ms(100));
            }
            panic!("the server kept a dribbling head open for 10 s");
        })
    };
    for stream in [&mut stalled, &mut silent, &mut dribbling] {
        let (got, _) = read_until_closed(stream);
        assert_eq!(got, "", "closed without an answer");
    }
    assert!(writer.join().unwrap() < Duration::from_secs(10));
    // The server is fine.
    assert_eq!(get(&server.url("/health")).0, 200);
}

#[test]
fn a_kept_alive_connection_is_reused_then_closed_when_idle_past_the_keep_alive_timeout() {
    let server = server(ServerOptions {
        keep_alive_timeout: Some(ms(2000)),
        header_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let mut stream = connect(&server);
    for _ in 0..3 {
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, _, body) = read_response(&mut stream);
        assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
        // Well inside the keep-alive timeout.
        std::thread::sleep(ms(100));
    }
    let (rest, _) = read_until_closed(&mut stream);
    assert_eq!(rest, "");
}

#[test]
fn a_stalled_body_is_answered_408_and_closed() {
    let server = server(ServerOptions { body_timeout: Some(ms(500)), ..Default::default() });
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"so",
        )
        .unwrap();
    let (response, _) = read_until_closed(&mut stream);
    assert_eq!(status_of(&response), 408, "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");
    let body = body_of(&response);
    assert_eq!(body["error_type"], "timeout");
    assert!(body["error"].as_str().unwrap().contains("--body-timeout"), "{body}");
    assert_eq!(server.metric(r#"pairrm_requests_total{route="/rank",status="408"}"#), 1.0);
}

#[test]
fn an_oversize_declared_body_is_refused_before_it_is_sent() {
    // No body timeout: the refusal cannot come from a timer.
    let server = server(ServerOptions { payload_limit: 4096, body_timeout: None, ..Default::default() });
    for length in ["4097", "10000000000"] {
        let mut stream = connect(&server);
        write!(
            stream,
            "POST /compare HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        let (response, _) = read_until_closed(&mut stream);
        assert_eq!(status_of(&response), 413, "{response}");
        let body = body_of(&response);
        assert_eq!(body["error_type"], "payload");
        assert!(body["error"].as_str().unwrap().contains("payload limit of 4096 bytes"), "{body}");
    }
    // With `Expect: 100-continue` the client is refused before it is asked for the body.
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9999999\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let (response, _) = read_until_closed(&mut stream);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
}

#[test]
fn a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() {
    let server = server(ServerOptions { payload_limit: 4096, body_timeout: None, ..Default::default() });
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    // 5 chunks of 1000 bytes, then the body never ends: only the limit can answer it.
    for _ in 0..5 {
        write!(stream, "3e8\r\n{}\r\n", " ".repeat(1000)).unwrap();
    }
    let (response, _) = read_until_closed(&mut stream);
    assert_eq!(status_of(&response), 413, "{response}");
    assert_eq!(body_of(&response)["error_type"], "payload");

    // A chunked body within the limit is fine.
    let body = json!({"source": "s", "candidates": ["a", "b"]}).to_string();
    let mut stream = connect(&server);
    write!(
        stream,
        "POST /rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (status, _, answer) = read_response(&mut stream);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn at_most_max_connections_are_open_and_the_next_client_waits_its_turn() {
    let server = server(ServerOptions {
        max_connections: 2,
        header_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    let idle: Vec<TcpStream> = (0..2).map(|_| connect(&server)).collect();
    // Give the server time to accept both (it cannot be observed from outside: /metrics needs a
    // connection too).
    std::thread::sleep(ms(300));
    let mut third = connect(&server);
    third.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(ms(500))).unwrap();
    let mut byte = [0u8; 1];
    let early = third.read(&mut byte);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a third connection was served while two were open: {early:?}"
    );
    drop(idle);
    third.set_read_timeout(Some(BOUND)).unwrap();
    let (response, _) = read_until_closed(&mut third);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Joins the server's thread, or panics if it is still running after [`BOUND`].
fn join_within_bound(server: TestServer) -> Duration {
    let start = Instant::now();
    let (done, joined) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(server.stop());
    });
    joined.recv_timeout(BOUND).expect("the server was still running").unwrap();
    start.elapsed()
}

#[test]
fn shutdown_cuts_stalled_connections_at_its_deadline() {
    let server = server(ServerOptions {
        header_timeout: Some(Duration::from_secs(120)),
        shutdown_timeout: Some(ms(500)),
        ..Default::default()
    });
    let mut stalled = connect(&server);
    stalled.write_all(b"POST /rank HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut waiting = connect(&server);
    std::thread::sleep(ms(200));
    let elapsed = join_within_bound(server);
    assert!(elapsed < Duration::from_secs(10), "shutdown took {elapsed:?}");
    assert_eq!(read_until_closed(&mut stalled).0, "");
    assert_eq!(read_until_closed(&mut waiting).0, "");
}

#[test]
fn shutdown_cuts_a_request_still_running_at_its_deadline() {
    let gated = Gated::new(tiny_engine());
    let shared = Shared(gated.clone());
    let server =
        TestServer::start(ServerOptions { shutdown_timeout: Some(ms(500)), ..Default::default() }, move || Ok(shared));
    let _open = OpenOnDrop(gated.clone());
    server.wait_ready();
    let mut client = connect(&server);
    client.write_all(rank_request(r#"{"source": "s", "candidates": ["x", "y"]}"#).as_bytes()).unwrap();
    common::wait_for("the batch to start", || gated.entered() == 1);
    let (done, joined) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(server.stop());
    });
    // The connection is cut without an answer at the deadline, while the model still holds the
    // batch; the server returns once that batch is let through.
    let (got, elapsed) = read_until_closed(&mut client);
    assert_eq!(got, "");
    assert!(elapsed < Duration::from_secs(10), "cut after {elapsed:?}");
    gated.open();
    joined.recv_timeout(BOUND).expect("the server was still running").unwrap();
}

#[test]
fn a_crowd_of_stalled_clients_does_not_lock_others_out() {
    let server = server(ServerOptions { max_connections: 8, header_timeout: Some(ms(500)), ..Default::default() });
    // Twice as many stalled clients as connections: half are accepted and stall, half wait.
    let mut stalled: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"POST /rank HTTP/1.1\r\nHost: x\r\nContent-").unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    let body = json!({"source": "What is 2+2?", "candidates": ["4", "5"]});
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(BOUND)).build().into();
    let mut response = agent.post(server.url("/rank")).send_json(&body).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.body_mut().read_json().unwrap();
    assert_eq!(answer["ranks"].as_array().unwrap().len(), 2);
    assert!(start.elapsed() < BOUND);
    for stream in &mut stalled {
        assert_eq!(read_until_closed(stream).0, "");
    }
    assert_eq!(get(&server.url("/health")).0, 200);
}
