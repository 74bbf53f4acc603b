//! Reading and writing transformers `tokenizer.json` files, with the PairRM markers handled as
//! this engine needs: taken out of the added tokens on load (ids remembered), put back on save.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::str::FromStr;

use serde_json::{json, Value};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

use super::MARKERS;

/// Reads a `tokenizer.json`, removes the PairRM markers from its added tokens and builds the
/// tokenizer. Returns it with the marker ids found, in [`MARKERS`] order.
pub(super) fn load(path: &Path) -> Result<(Tokenizer, [Option<u32>; 4])> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut value: Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid_file(path, format!("not valid JSON: {e}")))?;
    drop(text);
    let obj =
        value.as_object_mut().ok_or_else(|| Error::invalid_file(path, "expected a JSON object at the top level"))?;

    let mut markers = [None; 4];
    if let Some(added) = obj.get_mut("added_tokens") {
        let list = added.as_array_mut().ok_or_else(|| Error::invalid_file(path, "`added_tokens` must be a list"))?;
        let mut problem = None;
        list.retain(|token| {
            let content = token.get("content").and_then(Value::as_str);
            let Some(index) = content.and_then(|c| MARKERS.iter().position(|m| *m == c)) else {
                return true;
            };
            let id = token.get("id").and_then(Value::as_u64).and_then(|id| u32::try_from(id).ok());
            match (id, markers[index]) {
                (None, _) => problem = Some(format!("added token {} has no valid id", MARKERS[index])),
                (Some(id), Some(old)) if old != id => {
                    problem = Some(format!("added token {} appears with ids {old} and {id}", MARKERS[index]))
                }
                (Some(id), _) => markers[index] = Some(id),
            }
            false
        });
        if let Some(problem) = problem {
            return Err(Error::invalid_file(path, problem));
        }
    }

    // A marker that is a piece of the model itself could still be produced from user text.
    if let Some(vocab) = obj.get("model").and_then(|m| m.get("vocab")) {
        for marker in MARKERS {
            let in_vocab = match vocab {
                Value::Object(map) => map.contains_key(marker),
                Value::Array(list) => list.iter().any(|entry| {
                    entry.get(0).and_then(Value::as_str) == Some(marker) || entry.as_str() == Some(marker)
                }),
                _ => false,
            };
            if in_vocab {
                return Err(Error::unsupported(
                    path,
                    format!(
                        "{marker} is a piece of the model vocabulary, not only an added token: it \
                         cannot be kept out of user text"
                    ),
                ));
            }
        }
    }

    let cleaned =
        serde_json::to_string(&value).map_err(|e| Error::invalid_file(path, format!("cannot re-serialize: {e}")))?;
    drop(value);
    let tokenizer = catch_unwind(AssertUnwindSafe(|| Tokenizer::from_str(&cleaned)))
        .map_err(|_| Error::invalid_file(path, "not a valid tokenizer.json (the parser panicked)"))?
        .map_err(|e| Error::invalid_file(path, format!("not a valid tokenizer.json: {e}")))?;
    Ok((tokenizer, markers))
}

/// Serializes `tokenizer` with the four markers added back as transformers' `add_tokens` adds
/// them (not special, normalized, no stripping), with the given ids in [`MARKERS`] order.
pub(super) fn to_pairrm_hf_json(tokenizer: &Tokenizer, marker_ids: [u32; 4], internal: &str) -> Result<String> {
    let text =
        tokenizer.to_string(false).map_err(|e| Error::Tokenizer(format!("cannot serialize the tokenizer: {e}")))?;
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Tokenizer(format!("cannot re-read the serialized tokenizer: {e}")))?;
    let added = value
        .get_mut("added_tokens")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Tokenizer("the serialized tokenizer has no added_tokens list".into()))?;
    added.retain(|t| t.get("content").and_then(Value::as_str) != Some(internal));
    for (marker, id) in MARKERS.iter().zip(marker_ids) {
        added.push(json!({
            "id": id,
            "content": marker,
            "single_word": false,
            "lstrip": false,
            "rstrip": false,
            "normalized": true,
            "special": false,
        }));
    }
    added.sort_by_key(|t| t.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX));
    serde_json::to_string(&value).map_err(|e| Error::Tokenizer(format!("cannot serialize: {e}")))
}
