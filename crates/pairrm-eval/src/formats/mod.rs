//! The datasets `pairrm eval` reads, each turned row by row into [`Item`]s: a pair to compare,
//! the human label, and the categories the benchmark reports by.
//!
//! | format        | a row                                                                   | A / B                         | categories        |
//! |---------------|-------------------------------------------------------------------------|-------------------------------|-------------------|
//! | `rewardbench` | `{prompt, chosen, rejected, subset?, id?}`                              | chosen / rejected (label A)   | subset → section  |
//! | `autoj`       | `{scenario, label: 0/1/2, prompt, "response 1", "response 2"}`          | response 1 / response 2       | scenario → group  |
//! | `hhh`         | BIG-bench `task.json` `examples[] {input, target_scores}`, or rows `{input, targets: {choices, labels}}` | preferred / other (label A) | subset |
//! | `mtbench`     | `{question_id, model_a, model_b, winner, judge, conversation_a, conversation_b, turn}` | model_a / model_b | turn, judge |
//! | `jsonl`       | `{source, a, b, label: "a"/"b"/"tie", instruction?, subset?, id?}` or `{conversation_a, conversation_b, label, …}` | a / b | subset |

mod autoj;
pub(crate) mod fields;
mod generic;
mod hhh;
mod mtbench;
mod rewardbench;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::records::Position;
use crate::stats::{Combine, Label};
use crate::summary::{GroupSpec, Grouping};
use pairrm::judge::CompareRequest;
use pairrm::{Error, Result};

pub use autoj::{autoj_group, AUTOJ_GROUPS};
pub use fields::{conversation_pair, plain_request};
pub use rewardbench::{REWARDBENCH_COUNTS, REWARDBENCH_SECTIONS};

/// One row to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The comparison (A is the first answer of the row, see the table above).
    pub request: CompareRequest,
    /// The human label.
    pub label: Label,
    /// The row's value of each of the format's [`Format::dimensions`].
    pub keys: Vec<String>,
    /// The row's id, when it has one (kept only for per-row output).
    pub id: Option<String>,
}

/// The rows of a file read as one document, each with its position (or why it is bad).
pub type DocumentRows = Vec<(Position, std::result::Result<Item, String>)>;

/// How rows are read, independent of the row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Format single-turn pairs as one-turn conversations.
    pub conversation: bool,
    /// The subset of rows without one (HHH: the folder of `task.json`, else the file name).
    pub subset: String,
}

impl Context {
    /// The context for rows of `path`: its subset name is the folder of a `task.json`, else the
    /// file name without extension.
    pub fn for_file(path: &Path, conversation: bool) -> Self {
        let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let subset = if path.file_name().is_some_and(|n| n == "task.json") {
            path.parent().and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned())
        } else {
            stem(path)
        };
        Context { conversation, subset: subset.unwrap_or_else(|| "all".into()) }
    }
}

/// A dataset format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RewardBench rows (chosen vs rejected).
    #[serde(rename = "rewardbench")]
    RewardBench,
    /// Auto-J pairwise test rows (labels with ties).
    #[serde(rename = "autoj")]
    AutoJ,
    /// HHH-alignment (BIG-bench).
    Hhh,
    /// MT-bench human judgements (multi-turn, ties).
    #[serde(rename = "mtbench")]
    MtBench,
    /// Generic labelled pairs.
    Jsonl,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [Format::RewardBench, Format::AutoJ, Format::Hhh, Format::MtBench, Format::Jsonl];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Format::RewardBench => "rewardbench",
            Format::AutoJ => "autoj",
            Format::Hhh => "hhh",
            Format::MtBench => "mtbench",
            Format::Jsonl => "jsonl",
        }
    }

    /// The benchmark's name.
    pub fn title(self) -> &'static str {
        match self {
            Format::RewardBench => "RewardBench",
            Format::AutoJ => "Auto-J pairwise",
            Format::Hhh => "HHH-alignment",
            Format::MtBench => "MT-bench human judgements",
            Format::Jsonl => "labelled pairs",
        }
    }

    /// The categories each row has (its [`Item::keys`]).
    pub fn dimensions(self) -> &'static [&'static str] {
        match self {
            Format::RewardBench | Format::Hhh | Format::Jsonl => &["subset"],
            Format::AutoJ => &["scenario"],
            Format::MtBench => &["turn", "judge"],
        }
    }

    /// Whether the benchmark has tie labels (else every row prefers one answer and a predicted
    /// tie is simply wrong).
    pub fn has_ties(self) -> bool {
        matches!(self, Format::AutoJ | Format::MtBench | Format::Jsonl)
    }

    /// Parses one row.
    pub fn parse(self, bytes: &[u8], context: &Context) -> std::result::Result<Item, String> {
        let f = fields::Fields::parse(bytes)?;
        match self {
            Format::RewardBench => rewardbench::parse(&f, context),
            Format::AutoJ => autoj::parse(&f, context),
            Format::Hhh => hhh::parse_row(&f, context),
            Format::MtBench => mtbench::parse(&f, context),
            Format::Jsonl => generic::parse(&f, context),
        }
    }

    /// For formats whose files can be one JSON document (HHH's `task.json`): its rows, read
    /// whole. `None` when the file is made of records and should be streamed.
    pub fn read_document(self, path: &Path, context: &Context) -> Result<Option<DocumentRows>> {
        match self {
            Format::Hhh => hhh::read_document(path, context),
            _ => Ok(None),
        }
    }

    /// The tables the benchmark reports, in display order, over `strata` (the distinct key
    /// tuples, by index).
    pub fn groupings(self, strata: &[Vec<String>]) -> Vec<Grouping> {
        let mut out = match self {
            Format::AutoJ => autoj::groupings(strata),
            Format::RewardBench => rewardbench::groupings(strata),
            _ => vec![],
        };
        for (d, name) in self.dimensions().iter().enumerate() {
            if out.iter().any(|g| g.name == *name) {
                continue;
            }
            out.push(by_key(strata, d, name, |_| None));
        }
        out
    }
}

/// A table with one row per value of key `d`, in `rank` order (values without a rank after the
/// others, in order of first appearance), each pooling its strata.
pub(crate) fn by_key(strata: &[Vec<String>], d: usize, name: &str, rank: impl Fn(&str) -> Option<usize>) -> Grouping {
    let mut values: Vec<&str> = vec![];
    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (s, keys) in strata.iter().enumerate() {
        let v = keys[d].as_str();
        if !members.contains_key(v) {
            values.push(v);
        }
        members.entry(v).or_default().push(s);
    }
    let first: HashMap<&str, usize> = values.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    values.sort_by_key(|v| (rank(v).unwrap_or(usize::MAX), first[v]));
    Grouping {
        name: name.to_string(),
        groups: values
            .into_iter()
            .map(|v| GroupSpec { name: v.to_string(), combine: Combine::Pooled(members[v].clone()) })
            .collect(),
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        Format::ALL.into_iter().find(|f| f.name() == key).ok_or_else(|| {
            Error::invalid_input(
                "format",
                format!("unknown format {s:?}; expected rewardbench, autoj, hhh, mtbench or jsonl"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("Auto-J".parse::<Format>().unwrap(), Format::AutoJ);
        assert_eq!("MT_Bench".parse::<Format>().unwrap(), Format::MtBench);
        assert!(matches!("csv".parse::<Format>(), Err(Error::InvalidInput { .. })));
    }

    #[test]
    fn contexts_name_the_subset_after_the_task_folder_or_file() {
        assert_eq!(Context::for_file(Path::new("/x/hhh/harmless/task.json"), false).subset, "harmless");
        assert_eq!(Context::for_file(Path::new("/x/honest.jsonl"), true).subset, "honest");
        assert!(Context::for_file(Path::new("/x/honest.jsonl"), true).conversation);
    }

    #[test]
    fn key_tables_follow_rank_then_first_appearance() {
        let strata: Vec<Vec<String>> = [["x", "1"], ["y", "2"], ["x", "2"], ["z", "1"]]
            .iter()
            .map(|k| k.iter().map(|s| s.to_string()).collect())
            .collect();
        let g = by_key(&strata, 0, "first", |v| (v == "z").then_some(0));
        let names: Vec<&str> = g.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["z", "x", "y"]);
        assert_eq!(g.groups[1].combine, Combine::Pooled(vec![0, 2]));
        let g = Format::MtBench.groupings(&strata);
        assert_eq!(g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["turn", "judge"]);
        assert_eq!(g[1].groups.len(), 2);
    }
}
