//! `pairrm models`: the models in the Hugging Face cache (whoever downloaded them), with their
//! revisions, sizes and files.

use anyhow::Context;
use indicatif::HumanBytes;
use pairrm_hub::cache_scan::{scan_cache, CachedRepo};
use pairrm_hub::HubSettings;

use crate::jsonl::Outcome;
use crate::stdout;

/// Arguments of `pairrm models`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON line per repo (refs, every revision with its files) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `pairrm models`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cache_dir = HubSettings::from_env()?.cache_dir;
    let repos = scan_cache(&cache_dir)?;
    let text = if args.json {
        repos.iter().map(|repo| Ok(serde_json::to_string(repo)? + "\n")).collect::<anyhow::Result<String>>()?
    } else {
        table(&repos, &cache_dir.display().to_string())
    };
    stdout::print(text.as_bytes()).context("writing the list")?;
    Ok(Outcome { failed: 0 })
}

/// One row per revision: repo, refs, commit (12 digits), size, file count; then a total.
fn table(repos: &[CachedRepo], cache_dir: &str) -> String {
    if repos.is_empty() {
        return format!("no models in the cache at {cache_dir}\n");
    }
    let mut rows = vec![["REPO", "REFS", "COMMIT", "SIZE", "FILES"].map(String::from)];
    for repo in repos {
        for rev in &repo.revisions {
            rows.push([
                repo.repo.clone(),
                if rev.refs.is_empty() { "-".to_string() } else { rev.refs.join(",") },
                rev.commit.chars().take(12).collect(),
                HumanBytes(rev.size).to_string(),
                rev.files.len().to_string(),
            ]);
        }
        if repo.revisions.is_empty() {
            rows.push([repo.repo.clone(), "-".into(), "-".into(), "-".into(), "0".into()]);
        }
    }
    let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let disk: u64 = repos.iter().map(|r| r.size_on_disk).sum();
    let partial: u64 = repos.iter().map(|r| r.partial_bytes).sum();
    out.push_str(&format!("\n{} repos, {} on disk in {cache_dir}", repos.len(), HumanBytes(disk)));
    if partial > 0 {
        out.push_str(&format!(" (and {} of unfinished downloads)", HumanBytes(partial)));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairrm_hub::cache_scan::{CachedFile, CachedRevision};

    #[test]
    fn table_rows() {
        assert_eq!(table(&[], "/c"), "no models in the cache at /c\n");
        let file = |name: &str, size| CachedFile { name: name.into(), size };
        let repo = CachedRepo {
            repo: "org/model".into(),
            path: "/c/models--org--model".into(),
            size_on_disk: 2048,
            partial_bytes: 10,
            refs: [("main".to_string(), "a".repeat(40))].into(),
            revisions: vec![
                CachedRevision {
                    commit: "a".repeat(40),
                    refs: vec!["main".into(), "v1".into()],
                    path: "/x".into(),
                    files: vec![file("config.json", 48), file("model.safetensors", 2000)],
                    size: 2048,
                },
                CachedRevision { commit: "b".repeat(40), refs: vec![], path: "/y".into(), files: vec![], size: 0 },
            ],
        };
        let t = table(&[repo], "/c");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "REPO       REFS     COMMIT        SIZE      FILES");
        assert_eq!(lines[1], "org/model  main,v1  aaaaaaaaaaaa  2.00 KiB  2");
        assert_eq!(lines[2], "org/model  -        bbbbbbbbbbbb  0 B       0");
        assert_eq!(lines[4], "1 repos, 2.00 KiB on disk in /c (and 10 B of unfinished downloads)");
    }
}
