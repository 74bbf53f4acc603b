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
//!
//! Each format is a file implementing [`Benchmark`] and one line of the registry ([`FORMATS`]);
//! [`Format`] is a handle on one of them. Adding a benchmark is described in `docs/eval.md`.

pub mod fields;

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::str::FromStr;

use pairrm::judge::CompareRequest;
use pairrm::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::records::Position;
use crate::stats::{Combine, Label};
use crate::summary::{GroupSpec, Grouping};

pub use autoj::{autoj_group, AUTOJ_GROUPS};
pub use fields::{conversation_pair, plain_request, Fields};
pub use rewardbench::{REWARDBENCH_COUNTS, REWARDBENCH_SECTIONS};

/// Declares the format modules and [`FORMATS`], one line per format: a new benchmark is a file
/// in this folder implementing [`Benchmark`], and its line here.
macro_rules! registry {
    ($($module:ident::$format:ident),* $(,)?) => {
        $(mod $module;)*

        /// Every format, in the order they are listed (`--help`, error messages).
        pub static FORMATS: &[&dyn Benchmark] = &[$(&$module::$format),*];
    };
}

registry! {
    rewardbench::RewardBench,
    autoj::AutoJ,
    hhh::Hhh,
    mtbench::MtBench,
    generic::Jsonl,
}

/// What a format is called and what its rows carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    /// The command-line name (`--format`): lowercase letters and digits.
    pub name: &'static str,
    /// The benchmark's name in reports.
    pub title: &'static str,
    /// The categories each row has (its [`Item::keys`], in order).
    pub dimensions: &'static [&'static str],
    /// Whether the benchmark has tie labels (else every row prefers one answer and a predicted
    /// tie is simply wrong).
    pub has_ties: bool,
}

/// A benchmark's file format: how a row becomes an [`Item`], and how the benchmark reports.
pub trait Benchmark: Sync {
    /// Its name, title, categories and whether it has ties.
    fn info(&self) -> &'static FormatInfo;

    /// Reads one row (a JSON object); the error says what is wrong with it, naming the field.
    fn parse(&self, fields: &Fields, context: &Context) -> std::result::Result<Item, String>;

    /// For formats whose files can be one JSON document (HHH's `task.json`): its rows, read
    /// whole. `None` (the default) when the file is made of records and should be streamed.
    fn read_document(&self, _path: &Path, _context: &Context) -> Result<Option<DocumentRows>> {
        Ok(None)
    }

    /// The benchmark's own tables over `strata` (the distinct key tuples, by index), in display
    /// order; one table per dimension follows unless one of these has its name. None by default.
    fn groupings(&self, _strata: &[Vec<String>]) -> Vec<Grouping> {
        vec![]
    }
}

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

/// A dataset format: one of [`FORMATS`], named on the command line by [`Format::name`].
/// Serialized as its name.
#[derive(Clone, Copy)]
pub struct Format(&'static dyn Benchmark);

impl Format {
    /// Every format, in [`FORMATS`] order.
    pub fn all() -> impl Iterator<Item = Format> {
        FORMATS.iter().map(|b| Format(*b))
    }

    /// The format named `name` (exactly, see [`Format::from_str`] for the lenient parse).
    pub fn named(name: &str) -> Option<Format> {
        Format::all().find(|f| f.name() == name)
    }

    /// The names of every format, as a sentence: `a, b or c`.
    pub fn names() -> String {
        let names: Vec<&str> = Format::all().map(Format::name).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        self.0.info().name
    }

    /// The benchmark's name.
    pub fn title(self) -> &'static str {
        self.0.info().title
    }

    /// The categories each row has (its [`Item::keys`]).
    pub fn dimensions(self) -> &'static [&'static str] {
        self.0.info().dimensions
    }

    /// Whether the benchmark has tie labels.
    pub fn has_ties(self) -> bool {
        self.0.info().has_ties
    }

    /// Parses one row.
    pub fn parse(self, bytes: &[u8], context: &Context) -> std::result::Result<Item, String> {
        self.0.parse(&Fields::parse(bytes)?, context)
    }

    /// For formats whose files can be one JSON document (HHH's `task.json`): its rows, read
    /// whole. `None` when the file is made of records and should be streamed.
    pub fn read_document(self, path: &Path, context: &Context) -> Result<Option<DocumentRows>> {
        self.0.read_document(path, context)
    }

    /// The tables the benchmark reports, in display order, over `strata` (the distinct key
    /// tuples, by index): its own ([`Benchmark::groupings`]), then one per dimension.
    pub fn groupings(self, strata: &[Vec<String>]) -> Vec<Grouping> {
        let mut out = self.0.groupings(strata);
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

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.name())
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Format {}

impl Hash for Format {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl FromStr for Format {
    type Err = Error;

    /// Parses a format name in any case, ignoring `-` and `_` (`Auto-J`, `MT_Bench`).
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        Format::named(&key).ok_or_else(|| {
            Error::invalid_input("format", format!("unknown format {s:?}; expected {}", Format::names()))
        })
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Format::named(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown format {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for f in Format::all() {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
            assert!(f.name().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{f}");
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(serde_json::from_str::<Format>(&format!("\"{f}\"")).unwrap(), f);
        }
        assert_eq!(Format::all().count(), FORMATS.len());
        assert_eq!("Auto-J".parse::<Format>().unwrap().name(), "autoj");
        assert_eq!("MT_Bench".parse::<Format>().unwrap().name(), "mtbench");
        let err = "csv".parse::<Format>().unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }));
        assert!(err.to_string().ends_with("expected rewardbench, autoj, hhh, mtbench or jsonl"), "{err}");
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
        let g = Format::named("mtbench").unwrap().groupings(&strata);
        assert_eq!(g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["turn", "judge"]);
        assert_eq!(g[1].groups.len(), 2);
    }
}
