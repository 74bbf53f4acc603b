//! Every route of the real server (tiny fixture model, loopback port, real HTTP client): answers,
//! numbers identical to the library, and every error class.

mod common;

use common::{get, get_text, post, post_raw, TestServer};
use pairrm::checkpoint::{Checkpoint, HubCache};
use pairrm::judge::{
    self, CompareMode, CompareRequest, RankRequest, RankWithRefRequest, Reference, SelectMethod, Target, Turn,
};
use serde_json::{json, Value};

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn rank_request() -> RankRequest {
    RankRequest {
        instruction: Some("Answer briefly. ".into()),
        source: "What is the capital of France?".into(),
        candidates: vec![
            "Paris.".into(),
            "Lyon, I think.".into(),
            "The capital of France is Paris.".into(),
            "Paris.".into(),
        ],
    }
}

#[test]
fn compare_matches_the_library_in_every_mode_for_pairs_and_conversations() {
    let server = TestServer::tiny();
    server.wait_ready();
    let engine = common::tiny_engine();
    let conv_a = vec![
        Turn::new("USER", "hi"),
        Turn::new("ASSISTANT", "hello there"),
        Turn::new("USER", "2+2?"),
        Turn::new("ASSISTANT", "4"),
    ];
    let conv_b = vec![
        Turn::new("user", "hi"),
        Turn::new("assistant", "go away"),
        Turn::new("user", "2+2?"),
        Turn::new("assistant", "5"),
    ];
    let pairs = [
        CompareRequest { instruction: None, source: "What is 2+2?".into(), a: "4".into(), b: "5".into() },
        CompareRequest {
            instruction: Some("Be kind. ".into()),
            source: "Say hi".into(),
            a: "Hello!".into(),
            b: "No.".into(),
        },
    ];
    let conversation = judge::conversation_request(&conv_a, &conv_b).unwrap();
    for (mode, name) in [(CompareMode::Ab, "ab"), (CompareMode::Ba, "ba"), (CompareMode::Both, "both")] {
        let body = json!({
            "mode": name,
            "pairs": [
                {"source": "What is 2+2?", "a": "4", "b": "5"},
                {"conversation_a": conv_a, "conversation_b": conv_b},
                {"instruction": "Be kind. ", "source": "Say hi", "a": "Hello!", "b": "No."},
            ],
        });
        let (status, answer) = post(&server.url("/compare"), &body);
        assert_eq!(status, 200, "{answer}");
        let want = judge::compare(&engine, &[pairs[0].clone(), conversation.clone(), pairs[1].clone()], mode);
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for (got, want) in results.iter().zip(want) {
            let want = want.unwrap();
            assert_eq!((got["logit"].as_f64().unwrap() as f32).to_bits(), want.logit.to_bits(), "{mode:?}");
            assert_eq!(got["a_better"].as_bool().unwrap(), want.a_better);
        }
    }
    // The default mode is both.
    let (_, default) =
        post(&server.url("/compare"), &json!({"pairs": [{"source": "What is 2+2?", "a": "4", "b": "5"}]}));
    let both = judge::compare(&engine, &pairs[..1], CompareMode::Both).remove(0).unwrap();
    assert_eq!(default["results"][0]["logit"].as_f64().unwrap() as f32, both.logit);
}

/// `pairrm serve --precision bf16`: `/info` says so and names the kernels; the numbers are the
/// bf16 library's, bit for bit.
#[test]
fn a_bf16_server_reports_its_precision_and_matches_the_library() {
    let bf16 = || {
        let options = pairrm::EngineOptions { precision: pairrm::Precision::Bf16, ..Default::default() };
        let model = common::tiny_model();
        pairrm::Engine::load(model.to_str().unwrap(), &Default::default(), options)
    };
    let server = TestServer::start(pairrm_server::ServerOptions::default(), move || Ok(bf16()?));
    server.wait_ready();
    let (status, info) = get(&server.url("/info"));
    assert_eq!(status, 200);
    assert_eq!(info["precision"], "bf16", "{info}");
    assert!(info["kernels"]["linear"].as_str().unwrap().starts_with("bf16-"), "{info}");
    assert!(info["kernels"]["attention"].as_str().unwrap().starts_with("bf16-"), "{info}");
    let req = CompareRequest { instruction: None, source: "What is 2+2?".into(), a: "4".into(), b: "5".into() };
    let want = judge::compare(&bf16().unwrap(), std::slice::from_ref(&req), CompareMode::Ab).remove(0).unwrap();
    let (status, answer) = post(
        &server.url("/compare"),
        &json!({"mode": "ab", "pairs": [{"source": "What is 2+2?", "a": "4", "b": "5"}]}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["results"][0]["logit"].as_f64().unwrap() as f32).to_bits(), want.logit.to_bits());
}

#[test]
fn rank_matches_the_library_full_bubble_worst_and_against_references() {
    let server = TestServer::tiny();
    server.wait_ready();
    let engine = common::tiny_engine();
    let request = rank_request();
    let body = json!({"instruction": request.instruction, "source": request.source, "candidates": request.candidates});
    let with = |extra: Value| {
        let mut b = body.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, answer) = post(&server.url("/rank"), &b);
        assert_eq!(status, 200, "{answer}");
        answer
    };

    let want = judge::rank(&engine, std::slice::from_ref(&request)).remove(0).unwrap();
    let full = with(json!({}));
    assert_eq!(floats(&full["scores"]), want.scores);
    assert_eq!(ints(&full["ranks"]), want.ranks);
    assert!(full.get("matrix").is_none());
    assert_eq!(with(json!({"strategy": "full"})), full);

    let with_matrix = with(json!({"return_matrix": true}));
    assert_eq!(floats(&with_matrix["scores"]), want.scores);
    let matrix: Vec<Vec<f32>> = with_matrix["matrix"].as_array().unwrap().iter().map(floats).collect();
    let source = format!("{}{}", request.instruction.as_deref().unwrap(), request.source);
    let c = &request.candidates;
    for i in 0..c.len() {
        assert_eq!(matrix[i][i], 0.0);
        for j in (0..c.len()).filter(|&j| j != i) {
            let logit = judge::compare(
                &engine,
                &[CompareRequest { instruction: None, source: source.clone(), a: c[i].clone(), b: c[j].clone() }],
                CompareMode::Ab,
            )
            .remove(0)
            .unwrap()
            .logit;
            assert_eq!(matrix[i][j].to_bits(), logit.to_bits(), "M[{i}][{j}]");
        }
    }
    assert_eq!(judge::scores_from_matrix(&matrix).unwrap(), want.scores);

    for seed in [0u64, 7] {
        let best = judge::select_n(&engine, std::slice::from_ref(&request), Target::Best, SelectMethod::Bubble, seed)
            .remove(0)
            .unwrap();
        assert_eq!(with(json!({"strategy": "bubble", "seed": seed})), json!({"best": best.index, "order": best.order}));
        let worst = judge::select_n(&engine, std::slice::from_ref(&request), Target::Worst, SelectMethod::Bubble, seed)
            .remove(0)
            .unwrap();
        assert_eq!(
            with(json!({"strategy": "bubble", "seed": seed, "worst": true})),
            json!({"worst": worst.index, "order": worst.order})
        );
    }

    for (extra, reference) in [
        (json!({"reference_mode": "shortest"}), Reference::Shortest),
        (json!({"reference_mode": "median"}), Reference::Median),
        (json!({"reference": "Paris is the capital."}), Reference::Given("Paris is the capital.".into())),
    ] {
        let want = judge::rank_with_ref(&engine, &[RankWithRefRequest { request: request.clone(), reference }])
            .remove(0)
            .unwrap();
        let got = with(extra);
        assert_eq!(floats(&got["scores"]), want.scores);
        assert_eq!(ints(&got["ranks"]), want.ranks);
        assert_eq!(got.get("reference_index").and_then(Value::as_u64).map(|i| i as usize), want.reference_index);
    }

    // A single candidate needs no pass.
    let (status, one) = post(&server.url("/rank"), &json!({"source": "s", "candidates": ["only"]}));
    assert_eq!((status, one), (200, json!({"scores": [0.0], "ranks": [1]})));
}

#[test]
fn rerank_orders_by_the_full_matrix_score() {
    let server = TestServer::tiny();
    server.wait_ready();
    let engine = common::tiny_engine();
    let request = rank_request();
    let want = judge::rank(&engine, std::slice::from_ref(&request)).remove(0).unwrap();
    let mut order: Vec<usize> = (0..want.scores.len()).collect();
    order.sort_by(|&i, &j| want.scores[j].total_cmp(&want.scores[i]).then(i.cmp(&j)));

    let body = json!({"instruction": request.instruction, "query": request.source, "texts": request.candidates});
    let (status, answer) = post(&server.url("/rerank"), &body);
    assert_eq!(status, 200, "{answer}");
    let items = answer.as_array().unwrap();
    assert_eq!(items.iter().map(|i| i["index"].as_u64().unwrap() as usize).collect::<Vec<_>>(), order);
    for item in items {
        let index = item["index"].as_u64().unwrap() as usize;
        assert_eq!(item["score"].as_f64().unwrap() as f32, want.scores[index]);
        assert!(item.get("text").is_none());
    }

    let body = json!({
        "instruction": request.instruction, "query": request.source, "documents": request.candidates,
        "top_n": 2, "return_text": true,
    });
    let (status, top) = post(&server.url("/rerank"), &body);
    assert_eq!(status, 200, "{top}");
    let top = top.as_array().unwrap();
    assert_eq!(top.len(), 2);
    for (item, &index) in top.iter().zip(&order) {
        assert_eq!(item["index"].as_u64().unwrap() as usize, index);
        assert_eq!(item["text"].as_str().unwrap(), request.candidates[index]);
    }
}

#[test]
fn service_routes_health_info_metrics_openapi_docs_and_playground() {
    let server = TestServer::tiny();
    server.wait_ready();
    assert_eq!(get(&server.url("/health")), (200, json!({"status": "ok"})));

    let (status, info) = get(&server.url("/info"));
    assert_eq!(status, 200);
    assert!(info["model_id"].as_str().unwrap().ends_with("tiny-original"), "{info}");
    assert_eq!(info["layout"], "original");
    assert_eq!(info["dtype"], "f32");
    assert_eq!(info["precision"], "f32");
    assert!(["f32-avx512", "f32-gemm"].contains(&info["kernels"]["linear"].as_str().unwrap()), "{info}");
    assert_eq!(info["kernels"]["attention"], "f32-gemm");
    assert!(["scalar", "avx2", "avx512"].contains(&info["kernels"]["level"].as_str().unwrap()), "{info}");
    assert_eq!(info["source_max_length"], 24);
    assert_eq!(info["candidate_max_length"], 16);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["limits"]["max_batch_tokens"], pairrm::EngineOptions::default().max_batch_tokens);
    assert_eq!(info["limits"]["max_client_batch_size"], 32);
    assert_eq!(info["limits"]["request_timeout_secs"], 300.0);

    post(&server.url("/rank"), &json!({"source": "s", "candidates": ["a", "bb", "ccc"]}));
    post(&server.url("/rank"), &json!({"source": "s", "candidates": []}));
    let (status, text) = get_text(&server.url("/metrics"));
    assert_eq!(status, 200);
    for line in [
        r#"pairrm_requests_total{route="/rank",status="200"} 1"#,
        r#"pairrm_requests_total{route="/rank",status="422"} 1"#,
        r#"pairrm_request_duration_seconds_count{route="/rank"} 2"#,
        "pairrm_pairs_total 6",
        "pairrm_queue_pairs 0",
        "pairrm_requests_in_flight 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    for name in [
        "pairrm_batch_pairs_count",
        "pairrm_batch_tokens_sum",
        "pairrm_tokens_total",
        "pairrm_queue_wait_seconds_count",
    ] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }
    assert!(server.metric("pairrm_tokens_total") > 0.0);

    let (status, openapi) = get(&server.url("/openapi.json"));
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"].as_str().unwrap().split('.').next(), Some("3"));
    assert_eq!(serde_json::from_str::<Value>(pairrm_server::openapi_json()).unwrap(), openapi);
    for (path, method) in [
        ("/compare", "post"),
        ("/rank", "post"),
        ("/rerank", "post"),
        ("/health", "get"),
        ("/info", "get"),
        ("/metrics", "get"),
    ] {
        assert!(openapi["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    assert_eq!(openapi["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(openapi["paths"]["/rank"]["post"]["security"], json!([{}, {"bearer": []}]));
    assert!(openapi["paths"]["/health"]["get"].get("security").is_none());
    let schemas = openapi["components"]["schemas"].as_object().unwrap();
    for name in ["CompareBody", "RankBody", "RerankBody", "RankResponse", "RerankItem", "ErrorBody", "Info", "PairItem"]
    {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }

    let (status, docs) = get_text(&server.url("/docs"));
    assert_eq!(status, 200);
    assert!(docs.contains("openapi.json"));
    let (status, page) = get_text(&server.url("/"));
    assert_eq!(status, 200);
    assert!(page.contains("<title>pairrm playground</title>"), "{page}");

    let (status, missing) = get(&server.url("/nowhere"));
    assert_eq!(status, 404);
    assert_eq!(missing["error_type"], "validation");
    let (status, wrong) = get(&server.url("/rank"));
    assert_eq!(status, 405);
    assert_eq!(wrong["error_type"], "validation");
    assert!(wrong["error"].as_str().unwrap().contains("GET is not allowed on /rank"), "{wrong}");
}

/// Status and error type of a POST.
fn error_of(server: &TestServer, path: &str, body: &Value) -> (u16, String, String) {
    let (status, answer) = post(&server.url(path), body);
    (
        status,
        answer["error_type"].as_str().unwrap_or_default().to_string(),
        answer["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn invalid_requests_are_400_422_or_413_and_name_the_field() {
    let options = pairrm_server::ServerOptions { max_client_batch_size: 3, payload_limit: 4096, ..Default::default() };
    let server = TestServer::start(options, || Ok(common::tiny_engine()));
    server.wait_ready();
    let (status, answer) = post_raw(&server.url("/compare"), b"{\"pairs\": [");
    assert_eq!((status, answer["error_type"].as_str().unwrap()), (400, "validation"), "{answer}");

    let cases = [
        ("/compare", json!({"pairs": []}), 422, "pairs: must not be empty"),
        ("/compare", json!({"pairs": [{"source": "s", "a": "x"}]}), 422, "pairs[0]: missing field `b`"),
        (
            "/compare",
            json!({"pairs": [{"source": "s", "a": "x", "b": "y"}], "mode": "up"}),
            422,
            "mode: unknown variant",
        ),
        (
            "/compare",
            json!({"pairs": [{"source": "s", "a": "x", "b": "y"}, {"conversation_a": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "a"}], "conversation_b": [{"role": "USER", "content": "other"}, {"role": "ASSISTANT", "content": "b"}]}]}),
            422,
            "pairs[1]: invalid input: conversation_b[0].content",
        ),
        ("/rank", json!({"source": "s"}), 422, "missing field `candidates`"),
        ("/rank", json!({"source": "s", "candidates": []}), 422, "candidates: must not be empty"),
        ("/rank", json!({"source": "s", "candidates": ["a", 3]}), 422, "candidates[1]: invalid type"),
        (
            "/rank",
            json!({"source": "s", "candidates": ["a", "b"], "strategy": "bubble", "reference": "r"}),
            422,
            "a reference cannot be used",
        ),
        ("/rank", json!({"source": "s", "candidates": ["a", "b"], "worst": true}), 422, "worst needs strategy bubble"),
        (
            "/rank",
            json!({"source": "s", "candidates": ["a", "b"], "reference": "r", "reference_mode": "first"}),
            422,
            "either",
        ),
        (
            "/rank",
            json!({"source": "s", "candidates": ["a", "b"], "return_matrix": true, "reference_mode": "first"}),
            422,
            "return_matrix",
        ),
        ("/rerank", json!({"query": "q", "texts": []}), 422, "texts: must not be empty"),
        ("/rerank", json!({"query": "q"}), 422, "missing field `texts`"),
        (
            "/compare",
            json!({"pairs": vec![json!({"source": "s", "a": "x", "b": "y"}); 4]}),
            413,
            "4 items, more than the limit of 3",
        ),
        ("/rank", json!({"source": "s", "candidates": ["a", "b", "c", "d"]}), 413, "--max-client-batch-size"),
        ("/rerank", json!({"query": "q", "documents": ["a", "b", "c", "d"]}), 413, "--max-client-batch-size"),
        ("/rank", json!({"source": "s".repeat(5000), "candidates": ["a"]}), 413, "payload limit of 4096 bytes"),
    ];
    for (path, body, status, message) in cases {
        let (got_status, kind, error) = error_of(&server, path, &body);
        assert_eq!(got_status, status, "{path} {body}: {error}");
        assert_eq!(kind, if status == 413 { "payload" } else { "validation" }, "{path} {body}");
        assert!(error.contains(message), "{path} {body}: {error:?} lacks {message:?}");
    }
    // The server is still fine.
    let (status, _) = post(&server.url("/rank"), &json!({"source": "s", "candidates": ["a", "b", "c"]}));
    assert_eq!(status, 200);
    server.stop().unwrap();
}

#[test]
fn info_names_the_model_and_its_commit_never_a_local_path() {
    let server = TestServer::tiny();
    server.wait_ready();
    let (status, info) = get(&server.url("/info"));
    assert_eq!(status, 200);
    assert_eq!(info["model_id"], "tiny-original");
    assert_eq!(info["model_sha"], Value::Null);
    let dir = common::tiny_model().canonicalize().unwrap();
    let parent = dir.parent().unwrap().display().to_string();
    assert!(!info.to_string().contains(&parent), "{info} shows {parent}");
    drop(server);

    // A model from the Hugging Face cache: its hub id and snapshot commit.
    let cache = tempfile::tempdir().unwrap();
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    let repo = cache.path().join("models--test--tiny-hf");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let fixture = common::tiny_model().parent().unwrap().join("tiny-hf");
    for file in std::fs::read_dir(&fixture).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), snapshot.join(file.file_name())).unwrap();
    }
    let cache_dir = cache.path().to_path_buf();
    let server = TestServer::start(pairrm_server::ServerOptions::default(), move || {
        let checkpoint = Checkpoint::open_with("test/tiny-hf", &Default::default(), &HubCache::new(cache_dir)).unwrap();
        Ok(pairrm::Engine::from_checkpoint(checkpoint, Default::default())?)
    });
    server.wait_ready();
    let (_, info) = get(&server.url("/info"));
    assert_eq!((info["model_id"].as_str(), info["model_sha"].as_str()), (Some("test/tiny-hf"), Some(commit)));
    assert!(!info.to_string().contains(&cache.path().display().to_string()), "{info}");
    drop(server);

    // Any name on request.
    let options = pairrm_server::ServerOptions { served_model_name: Some("judge-v2".into()), ..Default::default() };
    let server = TestServer::start(options, || Ok(common::tiny_engine()));
    server.wait_ready();
    assert_eq!(get(&server.url("/info")).1["model_id"], "judge-v2");
}

#[test]
fn rerank_takes_tei_fields_with_the_values_pairrm_honours_and_refuses_the_others() {
    let server = TestServer::tiny();
    server.wait_ready();
    let base = json!({"query": "What is 2+2?", "texts": ["5", "4", "four"]});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        post(&server.url("/rerank"), &body)
    };
    let (status, plain) = with(json!({}));
    assert_eq!(status, 200, "{plain}");
    for accepted in [
        json!({"truncate": true}),
        json!({"raw_scores": true}),
        json!({"truncation_direction": "right"}),
        json!({"truncation_direction": "Right", "truncate": true, "raw_scores": true, "return_text": false}),
    ] {
        assert_eq!(with(accepted.clone()), (200, plain.clone()), "{accepted}");
    }
    let (status, texts) = with(json!({"return_text": true}));
    assert_eq!(status, 200);
    assert!(texts.as_array().unwrap().iter().all(|t| t["text"].is_string()), "{texts}");
    for (refused, field) in [
        (json!({"truncate": false}), "truncate: false is not supported"),
        (json!({"raw_scores": false}), "raw_scores: false is not supported"),
        (json!({"truncation_direction": "Left"}), "truncation_direction: left is not supported"),
        (json!({"truncation_direction": "middle"}), "truncation_direction: unknown variant `middle`"),
        (json!({"normalize": true}), "unknown field `normalize`"),
    ] {
        let (status, answer) = with(refused.clone());
        assert_eq!(status, 422, "{refused}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{refused}: {answer}");
    }
}

#[test]
fn unknown_fields_are_refused_naming_the_field() {
    let server = TestServer::tiny();
    server.wait_ready();
    for (path, body, field) in [
        ("/compare", json!({"pairs": [{"source": "s", "a": "x", "b": "y"}], "modes": "ab"}), "unknown field `modes`"),
        ("/compare", json!({"pairs": [{"source": "s", "a": "x", "b": "y", "id": 7}]}), "pairs[0]: unknown field `id`"),
        ("/rank", json!({"source": "s", "candidates": ["a", "b"], "top_n": 1}), "unknown field `top_n`"),
        ("/rank", json!({"prompt": "s", "candidates": ["a", "b"]}), "unknown field `prompt`"),
    ] {
        let (status, answer) = post(&server.url(path), &body);
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{body}: {answer}");
    }
}

/// A model whose logits are not numbers, or numbers too large to subtract.
struct Unruly {
    engine: pairrm::Engine,
    nan: bool,
}

impl pairrm_server::Backend for Unruly {
    fn encode(&self, pairs: &[pairrm::judge::Pair]) -> Vec<pairrm::Result<pairrm::input::PairInput>> {
        self.engine.encode_pairs(pairs)
    }
    fn logits(&self, inputs: &[&pairrm::input::PairInput]) -> Vec<pairrm::Result<f32>> {
        // Left before right in token order: +MAX, else −MAX, so that logit(a,b) − logit(b,a) overflows.
        inputs
            .iter()
            .map(|i| {
                let left = &i.ids[i.source_len..i.source_len + i.left_len];
                let right = &i.ids[i.source_len + i.left_len..];
                Ok(if self.nan {
                    f32::NAN
                } else if left[2..] < right[2..] {
                    f32::MAX
                } else {
                    -f32::MAX
                })
            })
            .collect()
    }
    fn info(&self) -> pairrm_server::ModelInfo {
        pairrm_server::Backend::info(&self.engine)
    }
}

#[test]
fn non_finite_results_are_500_never_null() {
    let compare = json!({"pairs": [{"source": "s", "a": "x", "b": "yy"}], "mode": "both"});
    let rank = json!({"source": "s", "candidates": ["x", "yy"]});
    let rerank = json!({"query": "s", "texts": ["x", "yy"]});
    for nan in [true, false] {
        let server = TestServer::start(Default::default(), move || Ok(Unruly { engine: common::tiny_engine(), nan }));
        server.wait_ready();
        for (path, body) in [("/compare", &compare), ("/rank", &rank), ("/rerank", &rerank)] {
            let (status, answer) = post(&server.url(path), body);
            assert_eq!(status, 500, "nan {nan}, {path}: {answer}");
            assert_eq!(answer["error_type"], "backend");
            assert!(answer["error"].as_str().unwrap().contains("non-finite"), "{answer}");
        }
        if !nan {
            // One pass: a finite (if huge) logit is a number.
            let (status, answer) =
                post(&server.url("/compare"), &json!({"pairs": [{"source": "s", "a": "x", "b": "yy"}], "mode": "ab"}));
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["results"][0]["logit"].as_f64().unwrap().abs() as f32, f32::MAX);
        }
    }
}
