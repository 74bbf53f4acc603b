//! Building the model input of one pair, exactly as LLM-Blender's `CrossCompareCollator` does for
//! a batch of one: `[CLS] <|source|> source [SEP] [CLS] <|candidate1|> left [SEP] [CLS]
//! <|candidate2|> right [SEP]`, each part truncated from the right to its budget.

use std::borrow::Cow;

use crate::config::PairRmConfig;
use crate::error::Result;
use crate::tokenizer::PairTokenizer;

/// The literal separator the reference replaces by a space in every text.
const SEP_TEXT: &str = "[SEP]";

/// One model input: token ids and where the three parts begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInput {
    /// The token ids of the whole pair.
    pub ids: Vec<u32>,
    /// Tokens in the source part (`[CLS] <|source|> … [SEP]`).
    pub source_len: usize,
    /// Tokens in the left candidate part.
    pub left_len: usize,
}

impl PairInput {
    /// Positions of `<|source|>`, `<|candidate1|>` and `<|candidate2|>`: recorded by construction,
    /// never searched for, so marker-like text cannot move them.
    pub fn marker_positions(&self) -> [usize; 3] {
        [1, self.source_len + 1, self.source_len + self.left_len + 1]
    }
}

/// A text tokenized as one part: `[CLS] <marker slot> tokens… [SEP]`, as far as any budget of
/// the builder that made it can use (longer texts are cut without tokenizing the rest: see
/// [`PairTokenizer::encode_marked_prefix`]). Tokenize each distinct text once and
/// [`InputBuilder::assemble`] it into as many pairs as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// All the ids when `complete`; else the first [`InputBuilder::max_part_len`] ones.
    ids: Vec<u32>,
    complete: bool,
}

impl EncodedPart {
    /// Number of tokens kept: the whole part when it fits the largest budget of its builder
    /// ([`InputBuilder::max_part_len`]), else that budget.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the part has no tokens (never: it always holds `[CLS]`, the marker and `[SEP]`).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the text is longer than any budget (it was not tokenized to its end).
    pub fn is_cut(&self) -> bool {
        !self.complete
    }

    /// The part truncated from the right to `max` tokens (keeping the final `[SEP]`), with `marker`
    /// in its marker slot, appended to `out`; returns the number of tokens appended. `max` is at
    /// most the builder's [`InputBuilder::max_part_len`].
    fn append_truncated(&self, max: usize, marker: u32, sep: u32, out: &mut Vec<u32>) -> usize {
        let start = out.len();
        if self.complete && self.ids.len() <= max {
            out.extend_from_slice(&self.ids);
        } else {
            // An incomplete part holds `max_part_len >= max` ids.
            debug_assert!(max <= self.ids.len());
            out.extend_from_slice(&self.ids[..max.min(self.ids.len()) - 1]);
            out.push(sep);
        }
        out[start + 1] = marker;
        out.len() - start
    }
}

/// Builds pair inputs under a checkpoint's limits and marker ids.
pub struct InputBuilder<'a> {
    tokenizer: &'a PairTokenizer,
    config: &'a PairRmConfig,
}

impl<'a> InputBuilder<'a> {
    /// A builder over `tokenizer` with the limits and markers of `config` (validated: both limits
    /// at least [`PairRmConfig::MIN_LENGTH`]).
    pub fn new(tokenizer: &'a PairTokenizer, config: &'a PairRmConfig) -> Self {
        InputBuilder { tokenizer, config }
    }

    /// Tokenizes `text` as a part: every literal `[SEP]` becomes a space first, as in the reference.
    /// Only as much of a long text is tokenized as the largest budget can use
    /// ([`Self::max_part_len`] tokens).
    pub fn encode_part(&self, text: &str) -> Result<EncodedPart> {
        let text: Cow<'_, str> =
            if text.contains(SEP_TEXT) { Cow::Owned(text.replace(SEP_TEXT, " ")) } else { Cow::Borrowed(text) };
        let prefix = self.tokenizer.encode_marked_prefix(&text, self.max_part_len())?;
        Ok(EncodedPart { ids: prefix.ids, complete: prefix.complete })
    }

    /// The largest budget any part can get: the source limit, or a candidate's budget beside the
    /// shortest source (`[CLS] <|source|> [SEP]`, 3 tokens).
    pub fn max_part_len(&self) -> usize {
        self.config.source_max_length.max(self.candidate_budget(PairRmConfig::MIN_LENGTH))
    }

    /// The token budget of each candidate given the (truncated) source length:
    /// `candidate_max_length + (source_max_length - source_len) / 2`.
    pub fn candidate_budget(&self, source_len: usize) -> usize {
        self.config.candidate_max_length.saturating_add(self.config.source_max_length.saturating_sub(source_len) / 2)
    }

    /// Assembles the input for (`source`, `left`, `right`) from already tokenized parts.
    pub fn assemble(&self, source: &EncodedPart, left: &EncodedPart, right: &EncodedPart) -> PairInput {
        let m = &self.config.markers;
        let sep = self.tokenizer.sep_id();
        let mut ids = Vec::with_capacity(source.len() + left.len() + right.len());
        let source_len = source.append_truncated(self.config.source_max_length, m.source, sep, &mut ids);
        let budget = self.candidate_budget(source_len);
        let left_len = left.append_truncated(budget, m.cand1, sep, &mut ids);
        right.append_truncated(budget, m.cand2, sep, &mut ids);
        PairInput { ids, source_len, left_len }
    }

    /// Tokenizes and assembles one pair. `source` is the instruction and input already concatenated.
    pub fn build(&self, source: &str, left: &str, right: &str) -> Result<PairInput> {
        Ok(self.assemble(&self.encode_part(source)?, &self.encode_part(left)?, &self.encode_part(right)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MarkerIds;
    use std::path::Path;

    fn tokenizer() -> PairTokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/tiny-backbone");
        PairTokenizer::from_dir(&dir).unwrap()
    }

    fn config(source: usize, candidate: usize) -> PairRmConfig {
        PairRmConfig {
            source_max_length: source,
            candidate_max_length: candidate,
            n_tasks: 1,
            markers: MarkerIds { source: 901, cand1: 902, cand2: 903, cand: 904 },
        }
    }

    fn words(n: usize) -> String {
        (0..n).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn parts_are_concatenated_with_markers_at_recorded_positions() {
        let tok = tokenizer();
        let cfg = config(24, 16);
        let b = InputBuilder::new(&tok, &cfg);
        let input = b.build("hello", "hi", "go away").unwrap();
        let [s, l, r] = input.marker_positions();
        assert_eq!((input.ids[s], input.ids[l], input.ids[r]), (901, 902, 903));
        assert_eq!(input.ids[0], tok.cls_id());
        assert_eq!((input.ids[l - 2], input.ids[l - 1]), (tok.sep_id(), tok.cls_id()));
        assert_eq!((input.ids[r - 2], input.ids[r - 1]), (tok.sep_id(), tok.cls_id()));
        assert_eq!(*input.ids.last().unwrap(), tok.sep_id());
        assert_eq!(input.ids.iter().filter(|&&i| i == tok.cls_id()).count(), 3);
    }

    #[test]
    fn truncation_budgets() {
        let tok = tokenizer();
        let cfg = config(24, 16);
        let b = InputBuilder::new(&tok, &cfg);
        // A long source is cut to exactly source_max_length, keeping [SEP] last.
        let long = b.build(&words(100), "a", "b").unwrap();
        assert_eq!(long.source_len, 24);
        assert_eq!(long.ids[23], tok.sep_id());
        assert_eq!(b.candidate_budget(24), 16);
        // A short source leaves half of its unused budget to each candidate.
        let short_src = b.encode_part("hi").unwrap();
        let n = short_src.len();
        assert!(n < 24);
        assert_eq!(b.candidate_budget(n), 16 + (24 - n) / 2);
        let input = b.assemble(&short_src, &b.encode_part(&words(200)).unwrap(), &b.encode_part(&words(3)).unwrap());
        assert_eq!(input.source_len, n);
        assert_eq!(input.left_len, 16 + (24 - n) / 2);
        let right_len = input.ids.len() - input.source_len - input.left_len;
        assert_eq!(right_len, b.encode_part(&words(3)).unwrap().len());
        assert_eq!(input.ids[n + input.left_len - 1], tok.sep_id());
    }

    #[test]
    fn smallest_limits_keep_cls_marker_sep() {
        let tok = tokenizer();
        let cfg = config(3, 3);
        let b = InputBuilder::new(&tok, &cfg);
        let input = b.build(&words(50), &words(50), &words(50)).unwrap();
        let (c, s) = (tok.cls_id(), tok.sep_id());
        assert_eq!(input.ids, vec![c, 901, s, c, 902, s, c, 903, s]);
    }

    #[test]
    fn literal_sep_becomes_a_space() {
        let tok = tokenizer();
        let cfg = config(24, 16);
        let b = InputBuilder::new(&tok, &cfg);
        assert_eq!(b.encode_part("a[SEP]b").unwrap(), b.encode_part("a b").unwrap());
        let input = b.build("[SEP]", "[SEP][SEP]", "x").unwrap();
        assert_eq!(input.ids.iter().filter(|&&i| i == tok.sep_id()).count(), 3);
    }

    #[test]
    fn marker_text_is_ordinary_text() {
        let tok = tokenizer();
        let cfg = config(64, 64);
        let b = InputBuilder::new(&tok, &cfg);
        let input = b.build("<|source|> x <|candidate1|>", "<|candidate2|>", "<|candidate|><|source|>").unwrap();
        let [s, l, r] = input.marker_positions();
        assert_eq!((input.ids[s], input.ids[l], input.ids[r]), (901, 902, 903));
        for id in [901, 902, 903, 904] {
            assert_eq!(input.ids.iter().filter(|&&i| i == id).count(), usize::from(id != 904), "id {id}");
        }
        // Even the private-use characters the tokenizer uses internally are ordinary text.
        let odd = "\u{F0001}\u{F0002}\u{F0003}";
        let input = b.build(&format!("{odd}x{odd}"), odd, "y").unwrap();
        assert_eq!(input.marker_positions().map(|p| input.ids[p]), [901, 902, 903]);
        assert_eq!(b.encode_part(&format!("{odd}x")).unwrap().len(), b.encode_part(&format!("x{odd}")).unwrap().len());
    }
}
