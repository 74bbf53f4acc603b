//! Auto-J pairwise test rows: `{scenario, label, prompt, "response 1", "response 2"}` with label
//! 0 (response 1 better), 1 (response 2 better) or 2 (tie); A = response 1.
//!
//! Auto-J reports agreement per scenario group (its `scenario_group`, 58 scenarios in 8 groups)
//! and overall, all rows pooled.

use super::fields::{plain_request, Fields};
use super::{by_key, Benchmark, Context, FormatInfo, Item};
use crate::stats::{Combine, Label};
use crate::summary::{GroupSpec, Grouping};

/// Auto-J's scenario groups, in its order (from `codes/leaderboard/utils_constants.py`).
pub const AUTOJ_GROUPS: [(&str, &[&str]); 8] = [
    ("Summarization", &["post_summarization", "text_summarization", "note_summarization"]),
    ("Exam Questions", &["math_reasoning", "solving_exam_question_with_math", "solving_exam_question_without_math"]),
    (
        "Code",
        &[
            "code_simplification",
            "code_generation",
            "explaining_code",
            "code_correction_rewriting",
            "code_to_code_translation",
        ],
    ),
    (
        "Rewriting",
        &["text_simplification", "language_polishing", "instructional_rewriting", "text_correction", "paraphrasing"],
    ),
    (
        "Creative Writing",
        &[
            "writing_song_lyrics",
            "writing_social_media_post",
            "writing_blog_post",
            "writing_personal_essay",
            "creative_writing",
            "writing_advertisement",
            "writing_marketing_materials",
            "writing_presentation_script",
            "counterfactual",
        ],
    ),
    (
        "Functional Writing",
        &[
            "writing_product_description",
            "writing_job_application",
            "writing_news_article",
            "writing_biography",
            "writing_email",
            "writing_legal_document",
            "writing_technical_document",
            "writing_scientific_paper",
            "functional_writing",
            "writing_cooking_recipe",
        ],
    ),
    (
        "General Communication",
        &[
            "asking_how_to_question",
            "open_question",
            "analyzing_general",
            "explaining_general",
            "seeking_advice",
            "recommendation",
            "value_judgement",
            "verifying_fact",
            "chitchat",
            "roleplay",
            "planning",
            "brainstorming",
        ],
    ),
    (
        "NLP Tasks",
        &[
            "ranking",
            "text_to_text_translation",
            "data_analysis",
            "classification_identification",
            "title_generation",
            "question_generation",
            "reading_comprehension",
            "keywords_extraction",
            "information_extraction",
            "topic_modeling",
            "others",
        ],
    ),
];

/// The name of the group rows of scenarios outside Auto-J's 58 go to.
const OTHER_GROUP: &str = "Other scenarios";

/// The Auto-J group of a scenario (`None` for a scenario Auto-J does not define).
pub fn autoj_group(scenario: &str) -> Option<&'static str> {
    AUTOJ_GROUPS.iter().find(|(_, scenarios)| scenarios.contains(&scenario)).map(|(g, _)| *g)
}

/// Auto-J pairwise test rows (labels with ties) (`--format autoj`).
pub(super) struct AutoJ;

impl Benchmark for AutoJ {
    fn info(&self) -> &'static FormatInfo {
        &FormatInfo { name: "autoj", title: "Auto-J pairwise", dimensions: &["scenario"], has_ties: true }
    }

    fn parse(&self, fields: &Fields, context: &Context) -> Result<Item, String> {
        parse(fields, context)
    }

    fn groupings(&self, strata: &[Vec<String>]) -> Vec<Grouping> {
        groupings(strata)
    }
}

pub(super) fn parse(f: &Fields, context: &Context) -> Result<Item, String> {
    let scenario = f.str("scenario")?;
    let label = match f.value("label")?.as_u64() {
        Some(0) => Label::A,
        Some(1) => Label::B,
        Some(2) => Label::Tie,
        _ => return Err(format!("field `label` must be 0, 1 or 2 (2 = tie), got {}", f.value("label")?)),
    };
    let request =
        plain_request(None, f.str("prompt")?, f.str("response 1")?, f.str("response 2")?, context.conversation)?;
    Ok(Item { request, label, keys: vec![scenario.to_string()], id: f.opt_scalar("id")? })
}

/// Position of a scenario in Auto-J's listing.
fn scenario_rank(scenario: &str) -> Option<usize> {
    AUTOJ_GROUPS.iter().flat_map(|(_, s)| s.iter()).position(|s| *s == scenario)
}

/// The group table (Auto-J's 8 groups present, then one for unknown scenarios) and the scenario
/// table (in Auto-J's order).
pub(super) fn groupings(strata: &[Vec<String>]) -> Vec<Grouping> {
    let mut groups: Vec<GroupSpec> = AUTOJ_GROUPS
        .iter()
        .map(|(name, _)| GroupSpec { name: name.to_string(), combine: Combine::Pooled(vec![]) })
        .collect();
    groups.push(GroupSpec { name: OTHER_GROUP.into(), combine: Combine::Pooled(vec![]) });
    for (s, keys) in strata.iter().enumerate() {
        let g = AUTOJ_GROUPS.iter().position(|(_, sc)| sc.contains(&keys[0].as_str())).unwrap_or(AUTOJ_GROUPS.len());
        if let Combine::Pooled(members) = &mut groups[g].combine {
            members.push(s);
        }
    }
    groups.retain(|g| !matches!(&g.combine, Combine::Pooled(m) if m.is_empty()));
    vec![Grouping { name: "group".into(), groups }, by_key(strata, 0, "scenario", scenario_rank)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context { conversation: false, subset: "f".into() }
    }

    #[test]
    fn the_groups_cover_58_distinct_scenarios() {
        let all: Vec<&str> = AUTOJ_GROUPS.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!((all.len(), distinct.len()), (58, 58));
        assert_eq!(autoj_group("planning"), Some("General Communication"));
        assert_eq!(autoj_group("knitting"), None);
    }

    #[test]
    fn rows_map_labels_and_responses() {
        for (label, want) in [(0, Label::A), (1, Label::B), (2, Label::Tie)] {
            let row = format!(
                r#"{{"scenario": "planning", "label": {label}, "prompt": "P", "response 1": "R1", "response 2": "R2"}}"#
            );
            let item = parse(&Fields::parse(row.as_bytes()).unwrap(), &ctx()).unwrap();
            assert_eq!(item.label, want);
            assert_eq!(
                (item.request.a.as_str(), item.request.b.as_str(), item.keys[0].as_str()),
                ("R1", "R2", "planning")
            );
        }
        for (row, want) in [
            (
                r#"{"scenario": "x", "label": 3, "prompt": "P", "response 1": "a", "response 2": "b"}"#,
                "must be 0, 1 or 2 (2 = tie), got 3",
            ),
            (r#"{"scenario": "x", "label": "0", "prompt": "P", "response 1": "a", "response 2": "b"}"#, "got \"0\""),
            (r#"{"scenario": "x", "label": 0, "prompt": "P", "response 1": "a"}"#, "missing field `response 2`"),
        ] {
            let err = parse(&Fields::parse(row.as_bytes()).unwrap(), &ctx()).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn groups_follow_autoj_and_collect_unknown_scenarios() {
        let strata: Vec<Vec<String>> =
            ["knitting", "planning", "post_summarization", "chitchat"].iter().map(|s| vec![s.to_string()]).collect();
        let g = groupings(&strata);
        let names: Vec<&str> = g[0].groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["Summarization", "General Communication", OTHER_GROUP]);
        assert_eq!(g[0].groups[1].combine, Combine::Pooled(vec![1, 3]));
        let scenarios: Vec<&str> = g[1].groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(scenarios, ["post_summarization", "chitchat", "planning", "knitting"]);
    }
}
