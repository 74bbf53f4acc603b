//! `pairrm best-of-n` end to end: the binary against a mock OpenAI-compatible server on
//! 127.0.0.1, ranking with the committed tiny model; picks checked against `pairrm::judge` and
//! `pairrm rank`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use common::mock_openai::{sample, Barrier, Config, Fault, MockServer, Signal};
use common::{best_of_n, best_of_n_args, command, finish, jsonl, pairrm, spawn, tiny_model};
use pairrm::checkpoint::OpenOptions;
use pairrm::judge::{
    compare_conversations, rank, scores_from_matrix, select_n, CompareMode, ConversationPair, RankRequest,
    SelectMethod, Target, Turn,
};
use pairrm::{Engine, EngineOptions};
use serde_json::{json, Value};

fn engine() -> Engine {
    Engine::load(&tiny_model(), &Default::default(), EngineOptions { threads: 2, ..Default::default() }).unwrap()
}

/// The tiny model with token limits of 128: long enough to see whole conversations.
fn long_engine() -> Engine {
    let open = OpenOptions { source_max_length: Some(128), candidate_max_length: Some(128), ..Default::default() };
    Engine::load(&tiny_model(), &open, EngineOptions { threads: 2, ..Default::default() }).unwrap()
}

/// Whether the scores differ (the model told the samples apart: the test is not vacuous).
fn distinct(scores: &[f32]) -> bool {
    scores.iter().any(|s| *s != scores[0])
}

fn prompt_lines(prompts: &[&str]) -> String {
    jsonl(&prompts.iter().map(|p| json!({ "prompt": p })).collect::<Vec<_>>())
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v} is not a list of strings: {e}"))
}

fn bits(v: &Value) -> Vec<u32> {
    let floats: Vec<f32> = serde_json::from_value(v.clone()).unwrap();
    floats.iter().map(|f| f.to_bits()).collect()
}

fn f32_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn error_of(line: &Value) -> &str {
    line["error"].as_str().unwrap_or_else(|| panic!("expected an error record, got {line}"))
}

/// The index of the first candidate of rank 1: what `select_n` with `Full` picks.
fn full_pick(engine: &Engine, request: &RankRequest) -> usize {
    let selected = select_n(engine, std::slice::from_ref(request), Target::Best, SelectMethod::Full, 0);
    selected.into_iter().next().unwrap().unwrap().index
}

#[test]
fn completions_with_n_honoured_pick_what_rank_picks() {
    let server = MockServer::start(Config::default());
    let prompts = ["What is 2+2?", "Name a colour.", "Say hi to the world."];
    let mut lines: Vec<Value> = prompts.iter().map(|p| json!({ "prompt": p, "id": 1 })).collect();
    lines.push(json!({"prompt": "<|user|>Why?<|assistant|>", "source": "Why?", "instruction": "Be brief. "}));
    let run = best_of_n(
        &server.url(),
        &[
            "--n",
            "4",
            "--seed",
            "5",
            "--strategy",
            "full",
            "--return-all",
            "--temperature",
            "0.8",
            "--top-p",
            "0.95",
            "--max-tokens",
            "32",
            "--stop",
            "\n\n",
            "--extra-body",
            r#"{"top_k": 20}"#,
        ],
        &jsonl(&lines),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.lines.len(), 4);
    let engine = engine();
    let requests: Vec<RankRequest> = prompts
        .iter()
        .map(|p| (None, p.to_string(), p.to_string()))
        .chain([(Some("Be brief. ".to_string()), "Why?".to_string(), "<|user|>Why?<|assistant|>".to_string())])
        .zip(&run.lines)
        .map(|((instruction, source, prompt), line)| {
            let expected: Vec<String> = (0..4).map(|i| sample(&prompt, 5, i)).collect();
            assert_eq!(strings(&line["candidates"]), expected);
            let request = RankRequest { instruction, source, candidates: expected.clone() };
            let ranked = rank(&engine, std::slice::from_ref(&request)).pop().unwrap().unwrap();
            assert_eq!(bits(&line["scores"]), f32_bits(&ranked.scores), "{line}");
            assert!(distinct(&ranked.scores), "{line}");
            assert_eq!(line["ranks"], json!(ranked.ranks));
            let best = full_pick(&engine, &request);
            assert_eq!(line["best_index"], best);
            assert_eq!(line["best"], expected[best]);
            assert_eq!(line["order"][0], best);
            let completion: u64 = expected.iter().map(|s| words(s)).sum();
            assert_eq!(
                line["usage"],
                json!({"prompt_tokens": words(&prompt), "completion_tokens": completion,
                       "total_tokens": words(&prompt) + completion, "requests": 1, "retries": 0})
            );
            request
        })
        .collect();

    // The same candidates through `pairrm rank`: the same scores.
    let rank_input = jsonl(&requests.iter().map(|r| serde_json::to_value(r).unwrap()).collect::<Vec<_>>());
    let ranked = pairrm(&["rank", "--model", &tiny_model(), "--no-progress"], &rank_input);
    assert_eq!(ranked.code, Some(0), "{}", ranked.stderr);
    for (ours, theirs) in run.lines.iter().zip(&ranked.lines) {
        assert_eq!(bits(&ours["scores"]), bits(&theirs["scores"]));
    }

    // One request per line, with every setting.
    let recorded = server.requests();
    assert_eq!(recorded.len(), 4);
    for line in &lines {
        let prompt = line["prompt"].as_str().unwrap();
        let request = server.requests_for(prompt);
        assert_eq!(request.len(), 1, "{prompt}");
        assert_eq!(request[0].path, "/v1/completions");
        assert_eq!(request[0].authorization, None);
        assert_eq!(
            request[0].body,
            json!({"model": "mock-model", "prompt": prompt, "n": 4, "stream": false, "seed": 5, "temperature": 0.8,
                   "top_p": 0.95, "max_tokens": 32, "stop": ["\n\n"], "top_k": 20})
        );
    }
}

#[test]
fn bubble_picks_what_rank_bubble_picks() {
    let server = MockServer::start(Config::default());
    let prompts = ["Tell me a story.", "What is rust?"];
    let run = best_of_n(&server.url(), &["--n", "6", "--bubble-seed", "3", "--return-all"], &prompt_lines(&prompts));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let engine = engine();
    let mut rank_lines = vec![];
    for (p, line) in prompts.iter().zip(&run.lines) {
        let candidates: Vec<String> = (0..6).map(|i| sample(p, 0, i)).collect();
        assert_eq!(strings(&line["candidates"]), candidates);
        assert!(line.get("scores").is_none() && line.get("ranks").is_none(), "{line}");
        let request = RankRequest { instruction: None, source: p.to_string(), candidates };
        let picked = select_n(&engine, std::slice::from_ref(&request), Target::Best, SelectMethod::Bubble, 3);
        let picked = picked.into_iter().next().unwrap().unwrap();
        assert_eq!(line["best_index"], picked.index);
        assert_eq!(line["order"], json!(picked.order));
        rank_lines.push(serde_json::to_value(&request).unwrap());
    }
    let ranked = pairrm(
        &["rank", "--model", &tiny_model(), "--no-progress", "--strategy", "bubble", "--seed", "3"],
        &jsonl(&rank_lines),
    );
    assert_eq!(ranked.code, Some(0), "{}", ranked.stderr);
    for (ours, theirs) in run.lines.iter().zip(&ranked.lines) {
        assert_eq!(ours["best_index"], theirs["best"]);
        assert_eq!(ours["order"], theirs["order"]);
    }
    // Without --return-all: the best, its index and the usage only.
    let run = best_of_n(&server.url(), &["--n", "6", "--bubble-seed", "3"], &prompt_lines(&prompts[..1]));
    let keys: Vec<&String> = run.lines[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["best", "best_index", "usage"]);
}

#[test]
fn messages_are_judged_as_the_conversations_compare_conversations_compares() {
    let server = MockServer::start(Config::default());
    let chats = [
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello! how can I help?"},
            {"role": "user", "content": "how are you?"}
        ]),
        json!([{"role": "user", "content": "Tell me a joke."}]),
    ];
    let input = jsonl(&chats.iter().map(|m| json!({ "messages": m })).collect::<Vec<_>>());
    let args = [
        "--n",
        "3",
        "--seed",
        "1",
        "--strategy",
        "full",
        "--return-all",
        "--source-max-length",
        "128",
        "--candidate-max-length",
        "128",
    ];
    let run = best_of_n(&server.url(), &args, &input);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let engine = long_engine();
    for (messages, line) in chats.iter().zip(&run.lines) {
        let messages = messages.as_array().unwrap();
        let last = messages.last().unwrap()["content"].as_str().unwrap();
        let samples: Vec<String> = (0..3).map(|i| sample(last, 1, i)).collect();
        assert_eq!(strings(&line["candidates"]), samples);
        // The messages went to the chat endpoint unchanged.
        let request = server.requests_for(last);
        assert_eq!(request.len(), 1);
        assert_eq!(request[0].path, "/v1/chat/completions");
        assert_eq!(&request[0].body["messages"], &Value::Array(messages.clone()));
        // Score matrix from compare_conversations over the completed conversations.
        let turns: Vec<Turn> = messages
            .iter()
            .filter(|m| m["role"] != "system")
            .map(|m| Turn::new(m["role"].as_str().unwrap().to_uppercase(), m["content"].as_str().unwrap()))
            .collect();
        let conversation = |k: usize| {
            let mut c = turns.clone();
            c.push(Turn::new("ASSISTANT", samples[k].clone()));
            c
        };
        let mut matrix = vec![vec![0.0f32; 3]; 3];
        for (i, row) in matrix.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate().filter(|&(j, _)| j != i) {
                let pair = ConversationPair { conversation_a: conversation(i), conversation_b: conversation(j) };
                *cell = compare_conversations(&engine, &[pair], CompareMode::Ab).pop().unwrap().unwrap().logit;
            }
        }
        let scores = scores_from_matrix(&matrix).unwrap();
        assert_eq!(bits(&line["scores"]), f32_bits(&scores), "{line}");
        assert!(distinct(&scores), "{line}");
        let best = line["best_index"].as_u64().unwrap() as usize;
        assert_eq!(line["best"], samples[best]);
        let top = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(scores.iter().position(|&s| s == top), Some(best));
    }
}

#[test]
fn chat_flag_sends_prompts_as_one_user_message_judged_as_text() {
    let server = MockServer::start(Config::default());
    let run = best_of_n(
        &server.url(),
        &["--chat", "--n", "3", "--bubble-seed", "2"],
        &prompt_lines(&["Why is the sky blue?"]),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let request = &server.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["messages"], json!([{"role": "user", "content": "Why is the sky blue?"}]));
    assert!(request.body.get("prompt").is_none());
    let candidates: Vec<String> = (0..3).map(|i| sample("Why is the sky blue?", 0, i)).collect();
    let request =
        RankRequest { instruction: None, source: "Why is the sky blue?".into(), candidates: candidates.clone() };
    let picked = select_n(&engine(), &[request], Target::Best, SelectMethod::Bubble, 2).pop().unwrap().unwrap();
    assert_eq!(run.lines[0]["best_index"], picked.index);
    assert_eq!(run.lines[0]["best"], candidates[picked.index]);
}

#[test]
fn a_server_ignoring_n_is_asked_again_with_distinct_seeds() {
    let server = MockServer::start(Config { max_n: Some(1), ..Default::default() });
    let prompts = ["one", "two", "three"];
    let run = best_of_n(&server.url(), &["--n", "4", "--seed", "10", "--return-all"], &prompt_lines(&prompts));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for (p, line) in prompts.iter().zip(&run.lines) {
        let expected: Vec<String> = (0..4).map(|o| sample(p, 10 + o, 0)).collect();
        assert_eq!(strings(&line["candidates"]), expected);
        assert_eq!(line["usage"]["requests"], 4);
        let requests = server.requests_for(p);
        let mut seeds: Vec<u64> = requests.iter().map(|r| r.body["seed"].as_u64().unwrap()).collect();
        seeds.sort_unstable();
        assert_eq!(seeds, [10, 11, 12, 13]);
        for r in requests.iter().filter(|r| r.body["seed"] != 10) {
            assert_eq!(r.body["n"], 1, "a follow-up asks for what one answer gave");
        }
    }
    // The first request of the run asked for all 4.
    assert_eq!(server.requests()[0].body["n"], 4);
    // A capped server: the rest in batches of the cap.
    let server = MockServer::start(Config { max_n: Some(3), ..Default::default() });
    let run = best_of_n(&server.url(), &["--n", "8", "--seed", "0", "--return-all"], &prompt_lines(&["capped"]));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let expected: Vec<String> = [(0, 0), (0, 1), (0, 2), (3, 0), (3, 1), (3, 2), (6, 0), (6, 1)]
        .iter()
        .map(|&(s, i)| sample("capped", s, i))
        .collect();
    assert_eq!(strings(&run.lines[0]["candidates"]), expected);
    let mut asked: Vec<(u64, u64)> =
        server.requests().iter().map(|r| (r.body["seed"].as_u64().unwrap(), r.body["n"].as_u64().unwrap())).collect();
    asked.sort_unstable();
    assert_eq!(asked, [(0, 8), (3, 3), (6, 2)]);
}

#[test]
fn samples_per_request_limits_n_for_servers_that_refuse_it() {
    let server = MockServer::start(Config { refuse_n: true, ..Default::default() });
    // Asking for all at once fails, with a hint.
    let run = best_of_n(&server.url(), &["--n", "3", "--max-retries", "0"], &prompt_lines(&["q"]));
    assert_eq!(run.code, Some(1));
    let error = error_of(&run.lines[0]);
    assert!(error.contains("HTTP 500: Only one completion choice is allowed"), "{error}");
    assert!(error.ends_with("use --samples-per-request 1)"), "{error}");
    // One sample per request: n requests at seeds seed + offset.
    let run = best_of_n(
        &server.url(),
        &["--n", "3", "--seed", "3", "--samples-per-request", "1", "--return-all"],
        &prompt_lines(&["q"]),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let expected: Vec<String> = (0..3).map(|o| sample("q", 3 + o, 0)).collect();
    assert_eq!(strings(&run.lines[0]["candidates"]), expected);
    assert_eq!(run.lines[0]["usage"]["requests"], 3);
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests[1..].iter().all(|r| r.body["n"] == 1), "{requests:?}");
    // Two per request from a server that honours n.
    let server = MockServer::start(Config::default());
    let run = best_of_n(
        &server.url(),
        &["--n", "5", "--seed", "0", "--samples-per-request", "2", "--return-all"],
        &prompt_lines(&["q"]),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let expected: Vec<String> =
        [(0, 0), (0, 1), (2, 0), (2, 1), (4, 0)].iter().map(|&(seed, i)| sample("q", seed, i)).collect();
    assert_eq!(strings(&run.lines[0]["candidates"]), expected);
    assert_eq!(run.lines[0]["usage"]["requests"], 3);
}

#[test]
fn transient_failures_are_retried_until_they_succeed() {
    let faults = HashMap::from([(
        "flaky".to_string(),
        vec![Fault::Status(429, None), Fault::Status(500, None), Fault::Close, Fault::Status(503, Some("0"))],
    )]);
    let server = MockServer::start(Config { faults, ..Default::default() });
    let run = best_of_n(&server.url(), &["--n", "2", "--max-retries", "4"], &prompt_lines(&["fine", "flaky"]));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.lines[0]["usage"]["retries"], 0);
    assert_eq!(run.lines[1]["usage"]["requests"], 5);
    assert_eq!(run.lines[1]["usage"]["retries"], 4);
    assert!(run.lines[1]["best"].as_str().unwrap().contains(" to flaky:"), "{}", run.lines[1]);
    assert_eq!(server.requests_for("flaky").len(), 5);
    assert!(run.stderr.contains("HTTP 429: mock status 429; retrying"), "{}", run.stderr);
}

#[test]
fn retry_after_overrides_the_backoff() {
    // A backoff of an hour would outlast the test's deadline: only the server's `Retry-After: 0`
    // lets it finish.
    let faults = HashMap::from([("p".to_string(), vec![Fault::Status(429, Some("0")), Fault::Status(503, Some("0"))])]);
    let server = MockServer::start(Config { faults, ..Default::default() });
    let mut args = best_of_n_args(&server.url(), &["--n", "2"]);
    let delay = args.iter().position(|a| a == "--retry-delay").unwrap();
    args[delay + 1] = "3600".into();
    args[delay + 3] = "7200".into();
    let run = pairrm(&args.iter().map(String::as_str).collect::<Vec<_>>(), &prompt_lines(&["p"]));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.lines[0]["usage"]["retries"], 2);
}

#[test]
fn exhausted_retries_give_an_error_record_while_other_lines_succeed() {
    let always = HashMap::from([("down".to_string(), Fault::Status(503, None))]);
    let server = MockServer::start(Config { always, ..Default::default() });
    let run = best_of_n(&server.url(), &["--n", "2", "--max-retries", "2"], &prompt_lines(&["ok1", "down", "ok2"]));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.lines.len(), 3);
    assert!(run.lines[0]["best"].is_string() && run.lines[2]["best"].is_string());
    let error = error_of(&run.lines[1]);
    assert!(error.starts_with("line 2: POST http://127.0.0.1:"), "{error}");
    assert!(error.contains("/v1/completions: HTTP 503: mock status 503 (gave up after 3 attempts)"), "{error}");
    assert_eq!(server.requests_for("down").len(), 3);
}

#[test]
fn answers_retrying_cannot_fix_fail_at_once() {
    let always = HashMap::from([
        ("bad-request".to_string(), Fault::Status(400, None)),
        ("garbage".to_string(), Fault::Garbage),
        ("no-field".to_string(), Fault::NoChoicesField),
        ("empty".to_string(), Fault::EmptyChoices),
    ]);
    let server = MockServer::start(Config { always, ..Default::default() });
    let input = prompt_lines(&["bad-request", "garbage", "no-field", "empty", "good"])
        + "not json\n{\"x\": 1}\n{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}\n";
    let run = best_of_n(&server.url(), &["--n", "2", "--max-retries", "3"], &input);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.lines.len(), 8);
    let errors: Vec<&str> = [0, 1, 2, 3, 5, 6, 7].iter().map(|&i| error_of(&run.lines[i])).collect();
    assert!(
        errors[0].contains("/v1/completions: HTTP 400: mock status 400 (if the server refuses `n` > 1"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("the response is not valid JSON") && errors[1].contains("<html>not json</html>"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("the response has no `choices` array"), "{}", errors[2]);
    assert!(errors[3].ends_with("the server answered a request for 2 samples with no choices"), "{}", errors[3]);
    assert!(errors[4].starts_with("line 6: invalid JSON"), "{}", errors[4]);
    assert!(errors[5].starts_with("line 7: a line needs `prompt`"), "{}", errors[5]);
    assert!(errors[6].starts_with("line 8: messages[0].role: expected \"user\""), "{}", errors[6]);
    assert!(run.lines[4]["best"].is_string());
    for prompt in ["bad-request", "garbage", "no-field", "empty"] {
        assert_eq!(server.requests_for(prompt).len(), 1, "{prompt} was retried");
    }
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token() {
    let server = MockServer::start(Config { api_key: Some("sk-test".into()), ..Default::default() });
    let run = best_of_n(&server.url(), &["--n", "2", "--api-key", "sk-test"], &prompt_lines(&["a"]));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(server.requests()[0].authorization.as_deref(), Some("Bearer sk-test"));
    // From OPENAI_API_KEY.
    let mut cmd = command(&best_of_n_args(&server.url(), &["--n", "2"]).iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("OPENAI_API_KEY", "sk-test");
    let run = finish(spawn(cmd, &prompt_lines(&["b"])));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(server.requests_for("b")[0].authorization.as_deref(), Some("Bearer sk-test"));
    // Without a key: 401, not retried.
    let run = best_of_n(&server.url(), &["--n", "2"], &prompt_lines(&["c"]));
    assert_eq!(run.code, Some(1));
    assert!(error_of(&run.lines[0]).ends_with("HTTP 401: Incorrect API key provided"), "{}", run.lines[0]);
    assert_eq!(server.requests_for("c").len(), 1);
    assert_eq!(server.requests_for("c")[0].authorization, None);
}

#[test]
fn timeouts_are_retried_and_then_reported() {
    let faults = HashMap::from([("slow".to_string(), vec![Fault::Hang])]);
    let always = HashMap::from([("stuck".to_string(), Fault::Hang)]);
    let server = MockServer::start(Config { faults, always, ..Default::default() });
    let run = best_of_n(
        &server.url(),
        &["--n", "2", "--request-timeout", "1.5", "--max-retries", "1"],
        &prompt_lines(&["slow", "stuck"]),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.lines[0]["usage"]["retries"], 1);
    let error = error_of(&run.lines[1]);
    assert!(
        error.contains("no complete answer within the request timeout (1.5s) (gave up after 2 attempts)"),
        "{error}"
    );
}

#[test]
fn an_unreachable_server_gives_error_records() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let run = best_of_n(&url, &["--n", "2", "--max-retries", "1"], &prompt_lines(&["a", "b"]));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.lines.len(), 2);
    for (i, line) in run.lines.iter().enumerate() {
        let error = error_of(line);
        let expected = format!(
            "line {}: POST {url}/v1/completions: connection refused (is the server running?) (gave up after 2 attempts)",
            i + 1
        );
        assert_eq!(error, expected);
    }
    // No input, no request: nothing to fail.
    let run = best_of_n(&url, &[], "");
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
}

#[test]
fn a_connection_closed_without_an_answer_is_reported() {
    let always = HashMap::from([("closed".to_string(), Fault::Close)]);
    let server = MockServer::start(Config { always, ..Default::default() });
    let run = best_of_n(&server.url(), &["--n", "2", "--max-retries", "1"], &prompt_lines(&["closed", "open"]));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let error = error_of(&run.lines[0]);
    assert!(error.contains("/v1/completions: ") && error.ends_with("(gave up after 2 attempts)"), "{error}");
    assert!(run.lines[1]["best"].is_string());
    assert_eq!(server.requests_for("closed").len(), 2);
}

#[test]
fn the_concurrency_limit_is_respected() {
    let prompts = ["p1", "p2", "p3", "p4", "p5", "p6"];
    for limit in [2usize, 3] {
        // Every request waits until `limit` are in flight: more than `limit` at once is possible
        // only if the client sends more.
        let server =
            MockServer::start(Config { barrier: Some(Barrier { in_flight: limit, total: 6 }), ..Default::default() });
        let limit_arg = limit.to_string();
        let run = best_of_n(&server.url(), &["--n", "2", "--max-concurrency", &limit_arg], &prompt_lines(&prompts));
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(server.requests().len(), 6);
        assert_eq!(server.max_in_flight(), limit);
    }
}

#[test]
fn lines_are_written_in_input_order_when_answers_come_out_of_order() {
    // "first" is answered only after "second" was.
    let signal = Arc::new(Signal::default());
    let server = MockServer::start(Config {
        holds: HashMap::from([("first".to_string(), signal.clone())]),
        signals_after: HashMap::from([("second".to_string(), signal)]),
        ..Default::default()
    });
    let prompts = ["first", "second", "third"];
    let run =
        best_of_n(&server.url(), &["--n", "3", "--max-concurrency", "2", "--return-all"], &prompt_lines(&prompts));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let answered = server.answered();
    let position = |p: &str| answered.iter().position(|a| a == p).unwrap();
    assert!(position("second") < position("first"), "{answered:?}");
    for (p, line) in prompts.iter().zip(&run.lines) {
        assert_eq!(strings(&line["candidates"])[0], sample(p, 0, 0));
    }
}

#[test]
fn ranking_overlaps_generation() {
    // The second prompt is answered only once the first line's result is out: it must have been
    // ranked and written while the second was still being generated.
    let written = Arc::new(Signal::default());
    let server = MockServer::start(Config {
        holds: HashMap::from([("later".to_string(), written.clone())]),
        ..Default::default()
    });
    let args = best_of_n_args(&server.url(), &["--n", "4", "--max-concurrency", "1", "--max-retries", "0"]);
    let mut child =
        spawn(command(&args.iter().map(String::as_str).collect::<Vec<_>>()), &prompt_lines(&["early", "later"]));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    written.set();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let first: Value = serde_json::from_str(&first).unwrap();
    assert!(first["best"].as_str().unwrap().contains(" to early:"), "{first}");
    let second: Value = serde_json::from_str(rest.trim()).unwrap();
    assert!(second["best"].as_str().unwrap().contains(" to later:"), "{second}");
}

#[test]
fn results_do_not_depend_on_concurrency() {
    let prompts = ["alpha", "beta", "gamma", "delta"];
    let outputs: Vec<String> = ["1", "6"]
        .iter()
        .map(|limit| {
            let server = MockServer::start(Config { max_n: Some(1), ..Default::default() });
            let args = ["--n", "5", "--seed", "7", "--strategy", "full", "--return-all", "--max-concurrency", limit];
            let run = best_of_n(&server.url(), &args, &prompt_lines(&prompts));
            assert_eq!(run.code, Some(0), "{}", run.stderr);
            run.stdout
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn files_in_and_out_and_a_single_sample() {
    let server = MockServer::start(Config::default());
    let dir = std::env::temp_dir().join(format!("pairrm-best-of-n-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.jsonl"), dir.join("out.jsonl"));
    std::fs::write(&input, prompt_lines(&["x", "y"]).trim_end()).unwrap();
    let run = best_of_n(
        &server.url(),
        &["--n", "1", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()],
        "",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let written = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["best"], sample("x", 0, 0));
    assert_eq!(lines[1]["best_index"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_settings_stop_the_job_before_it_starts() {
    let run = best_of_n("localhost:8000", &[], &prompt_lines(&["a"]));
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("must start with http:// or https://"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let run = best_of_n("http://127.0.0.1:9", &["--extra-body", r#"{"n": 3}"#], "");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("`n` is set by the command"), "{}", run.stderr);
    let run = best_of_n("http://127.0.0.1:9", &["--n", "0"], "");
    assert_eq!(run.code, Some(2));
}
