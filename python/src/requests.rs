//! Library requests from the columns Python passes (one list per field), checked for length.

use pairrm::judge::{CompareRequest, ConversationPair, RankRequest, Turn};
use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// A conversation as Python passes it: `(role, content)` turns.
pub type Conversation = Vec<(String, String)>;

/// Fails unless column `name` has `want` items (as `sources`).
fn check_len(name: &str, got: usize, want: usize) -> PyResult<()> {
    if got != want {
        return Err(PyValueError::new_err(format!("{name} has {got} items but sources has {want}; they must match")));
    }
    Ok(())
}

/// The instruction of item `i`, checking once that the column has the right length.
struct Instructions(Option<Vec<String>>);

impl Instructions {
    fn new(instructions: Option<Vec<String>>, n: usize) -> PyResult<Self> {
        if let Some(v) = &instructions {
            check_len("instructions", v.len(), n)?;
        }
        Ok(Instructions(instructions))
    }

    fn take(&mut self, i: usize) -> Option<String> {
        self.0.as_mut().map(|v| std::mem::take(&mut v[i]))
    }
}

/// One [`CompareRequest`] per row of `(sources, a, b, instructions)`.
pub fn compare_requests(
    sources: Vec<String>,
    a: Vec<String>,
    b: Vec<String>,
    instructions: Option<Vec<String>>,
) -> PyResult<Vec<CompareRequest>> {
    let n = sources.len();
    check_len("candidates_a", a.len(), n)?;
    check_len("candidates_b", b.len(), n)?;
    let mut instructions = Instructions::new(instructions, n)?;
    Ok(sources
        .into_iter()
        .zip(a.into_iter().zip(b))
        .enumerate()
        .map(|(i, (source, (a, b)))| CompareRequest { instruction: instructions.take(i), source, a, b })
        .collect())
}

/// One [`RankRequest`] per row of `(sources, candidates, instructions)`.
pub fn rank_requests(
    sources: Vec<String>,
    candidates: Vec<Vec<String>>,
    instructions: Option<Vec<String>>,
) -> PyResult<Vec<RankRequest>> {
    let n = sources.len();
    check_len("candidates", candidates.len(), n)?;
    let mut instructions = Instructions::new(instructions, n)?;
    Ok(sources
        .into_iter()
        .zip(candidates)
        .enumerate()
        .map(|(i, (source, candidates))| RankRequest { instruction: instructions.take(i), source, candidates })
        .collect())
}

/// One [`ConversationPair`] per row of `(conversations_a, conversations_b)`.
pub fn conversation_pairs(a: Vec<Conversation>, b: Vec<Conversation>) -> PyResult<Vec<ConversationPair>> {
    if a.len() != b.len() {
        return Err(PyValueError::new_err(format!(
            "conversations_b has {} items but conversations_a has {}; they must match",
            b.len(),
            a.len()
        )));
    }
    let turns = |c: Conversation| c.into_iter().map(|(role, content)| Turn::new(role, content)).collect();
    Ok(a.into_iter()
        .zip(b)
        .map(|(a, b)| ConversationPair { conversation_a: turns(a), conversation_b: turns(b) })
        .collect())
}
