//! Encoding once and running encoded inputs (what the server does): `Engine::encode_pairs` +
//! `Engine::logits_encoded` give `Engine::logits_with`'s bits and count the same work, however the
//! inputs are grouped into calls; a model loaded from the hub cache reports its snapshot commit.

mod common;

use std::sync::Arc;

use pairrm::checkpoint::{Checkpoint, HubCache, OpenOptions};
use pairrm::input::PairInput;
use pairrm::judge::Pair;
use pairrm::{CallOptions, Engine, EngineOptions};

fn engine(max_batch_tokens: usize) -> Engine {
    let model = common::fixtures().join("tiny-original");
    let options = EngineOptions { threads: 2, max_batch_tokens, ..Default::default() };
    Engine::load(model.to_str().unwrap(), &OpenOptions::default(), options).unwrap()
}

fn pairs() -> Vec<Pair> {
    let texts = ["Paris.", "Lyon, I think.", "The capital of France is Paris, a city on the Seine.", "Paris.", ""];
    let sources: [Arc<str>; 2] = ["What is the capital of France?".into(), "Answer briefly. Capital?".into()];
    let mut pairs = vec![];
    for source in &sources {
        for (i, a) in texts.iter().enumerate() {
            for b in texts.iter().skip(i + 1) {
                pairs.push(Pair { source: source.clone(), left: (*a).into(), right: (*b).into() });
            }
        }
    }
    pairs
}

fn bits(results: Vec<pairrm::Result<f32>>) -> Vec<u32> {
    results.into_iter().map(|r| r.unwrap().to_bits()).collect()
}

#[test]
fn encoded_inputs_give_the_same_bits_and_counters_in_any_grouping() {
    let pairs = pairs();
    let reference = engine(2048);
    let want = bits(reference.logits_with(&pairs, &CallOptions::default()));
    let want_counters = reference.counters();

    for budget in [2048, 100, 1] {
        let engine = engine(budget);
        let inputs: Vec<PairInput> = engine.encode_pairs(&pairs).into_iter().map(Result::unwrap).collect();
        // Encoding is what `encode` gives pair by pair.
        for (pair, input) in pairs.iter().zip(&inputs) {
            assert_eq!(&engine.encode(&pair.source, &pair.left, &pair.right).unwrap(), input);
        }
        // All at once, one by one, and in reverse order in calls of three.
        let all: Vec<&PairInput> = inputs.iter().collect();
        assert_eq!(bits(engine.logits_encoded(&all, &CallOptions::default())), want, "budget {budget}");
        let one_by_one: Vec<u32> =
            all.iter().flat_map(|i| bits(engine.logits_encoded(&[*i], &CallOptions::default()))).collect();
        assert_eq!(one_by_one, want, "budget {budget}");
        let mut reversed = all.clone();
        reversed.reverse();
        let mut got: Vec<u32> =
            reversed.chunks(3).flat_map(|c| bits(engine.logits_encoded(c, &CallOptions::default()))).collect();
        got.reverse();
        assert_eq!(got, want, "budget {budget}");
        let c = engine.counters();
        assert_eq!((c.passes, c.tokens), (3 * want_counters.passes, 3 * want_counters.tokens), "budget {budget}");
    }
}

#[test]
fn cancelled_calls_run_nothing() {
    let engine = engine(2048);
    let inputs: Vec<PairInput> = engine.encode_pairs(&pairs()[..2]).into_iter().map(Result::unwrap).collect();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let call = CallOptions { cancel: Some(cancel), ..Default::default() };
    let results = engine.logits_encoded(&inputs.iter().collect::<Vec<_>>(), &call);
    assert!(results.iter().all(|r| matches!(r, Err(pairrm::Error::Cancelled))));
    assert_eq!(engine.counters().passes, 0);
    assert!(engine.logits_encoded(&[], &CallOptions::default()).is_empty());
}

#[test]
fn a_model_from_the_hub_cache_reports_its_snapshot_commit() {
    let (_guard, cache) = common::realtok_cache();
    let checkpoint =
        Checkpoint::open_with("test/realtok-pairrm", &OpenOptions::default(), &HubCache::new(cache)).unwrap();
    let engine = Engine::from_checkpoint(checkpoint, EngineOptions::default()).unwrap();
    assert_eq!(engine.model_sha(), Some("0123456789abcdef0123456789abcdef01234567"));
    assert_eq!(self::engine(2048).model_sha(), None);
}
