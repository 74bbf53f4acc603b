//! The playground page in a real browser: headless Chromium (Debian's `chromium`, installed by
//! scripts/test.sh) loads `/?example`, which fills in an example and ranks it; the ranking it shows
//! must be the server's.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{post, TestServer};
use pairrm_server::{ApiKey, ServerOptions};
use serde_json::json;

/// The Chromium binary: `PAIRRM_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PAIRRM_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "chromium not found: this test needs headless Chromium. Install Debian's package \
         (`apt-get install chromium`; ./scripts/test.sh does it) or set PAIRRM_CHROMIUM to the binary"
    );
}

/// The value of `attr="..."` in an HTML tag.
fn attr<'a>(tag: &'a str, attr: &str) -> &'a str {
    let start = tag.find(&format!("{attr}=\"")).unwrap_or_else(|| panic!("no {attr} in {tag}")) + attr.len() + 2;
    let len = tag[start..].find('"').unwrap();
    &tag[start..start + len]
}

/// The page at `url` after headless Chromium ran its scripts (30 s of virtual time at most).
fn rendered(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("running chromium");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_playground_ranks_the_example_in_headless_chromium() {
    let server = TestServer::tiny();
    server.wait_ready();
    let dom = rendered(&server.url("/?example"));
    assert!(dom.contains(r#"<body data-state="done">"#), "the page did not finish ranking:\n{dom}");
    assert!(dom.contains("Ranked 3 candidates (6 comparisons)"), "{dom}");

    // The rows it shows, best first: (index, rank, score).
    let rows: Vec<(usize, usize, f32)> = dom
        .match_indices("<tr data-index=")
        .map(|(at, _)| {
            let tag = &dom[at..at + dom[at..].find('>').unwrap()];
            (
                attr(tag, "data-index").parse().unwrap(),
                attr(tag, "data-rank").parse().unwrap(),
                attr(tag, "data-score").parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "{dom}");
    // The matrix cells, row-major without the diagonal.
    let logits: Vec<f32> =
        dom.match_indices("<td data-logit=").map(|(at, _)| attr(&dom[at..], "data-logit").parse().unwrap()).collect();
    assert_eq!(logits.len(), 6, "a 3×3 matrix has 6 cells off the diagonal:\n{dom}");

    // The same example through the API.
    let (status, answer) = post(
        &server.url("/rank"),
        &json!({
            "source": "What is the boiling point of water at sea level?",
            "candidates": ["Water boils at 100 °C (212 °F) at sea level.", "It boils at about 50 degrees.", "100 degrees Celsius."],
            "return_matrix": true,
        }),
    );
    assert_eq!(status, 200);
    for (index, rank, score) in &rows {
        assert_eq!(answer["ranks"][index].as_u64().unwrap() as usize, *rank);
        assert_eq!(answer["scores"][index].as_f64().unwrap() as f32, *score);
    }
    let matrix = answer["matrix"].as_array().unwrap();
    let want: Vec<f32> = (0..3)
        .flat_map(|i| (0..3).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| matrix[i][j].as_f64().unwrap() as f32)
        .collect();
    assert_eq!(logits, want);
    let ranks: Vec<usize> = rows.iter().map(|r| r.1).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "not best first: {ranks:?}");
}

/// With `--api-key` the page sends the key it is given (typed in, or in the URL's fragment), and
/// says what is missing without it.
#[test]
fn the_playground_sends_the_api_key() {
    let options = ServerOptions { api_key: Some(ApiKey::new("s3cret").unwrap()), ..Default::default() };
    let server = TestServer::start(options, || Ok(common::tiny_engine()));
    server.wait_ready();
    let dom = rendered(&server.url("/?example#key=s3cret"));
    assert!(dom.contains(r#"<body data-state="done">"#), "the page did not finish ranking:\n{dom}");
    assert!(dom.contains("Ranked 3 candidates (6 comparisons)"), "{dom}");
    assert!(dom.contains("tiny-original"), "the model line was not filled in:\n{dom}");

    let dom = rendered(&server.url("/?example"));
    assert!(dom.contains(r#"<body data-state="error">"#), "{dom}");
    assert!(dom.contains("this server needs an API key"), "{dom}");
}
