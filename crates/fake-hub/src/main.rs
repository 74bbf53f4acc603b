//! `fake-hub --repo ORG/NAME=DIR ...`: serves each directory as one commit (branch `main`) of a
//! repo on a fake hub at 127.0.0.1, prints the base URL on stdout, and serves until killed. Files
//! ending in `.bin`, `.safetensors`, `.model` or larger than 10 KiB are served as LFS files.
//! Used by `tools/check_hf_interop.py`.

use std::path::Path;

use fake_hub::{FakeFile, FakeHub};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hub = FakeHub::start();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let spec = match arg.as_str() {
            "--repo" => it.next().unwrap_or_else(|| usage("--repo needs ORG/NAME=DIR")),
            other => usage(&format!("unknown argument {other:?}")),
        };
        let (repo, dir) = spec.split_once('=').unwrap_or_else(|| usage("--repo needs ORG/NAME=DIR"));
        let mut files = Vec::new();
        collect(Path::new(dir), "", &mut files);
        if files.is_empty() {
            usage(&format!("{dir} holds no files"));
        }
        hub.commit(repo, &["main"], files);
    }
    println!("{}", hub.url());
    loop {
        std::thread::park();
    }
}

fn collect(dir: &Path, prefix: &str, files: &mut Vec<FakeFile>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| usage(&format!("{}: {e}", dir.display())));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            collect(&path, &format!("{name}/"), files);
        } else {
            let content = std::fs::read(&path).unwrap_or_else(|e| usage(&format!("{}: {e}", path.display())));
            let lfs =
                [".bin", ".safetensors", ".model"].iter().any(|ext| name.ends_with(ext)) || content.len() > 10 * 1024;
            files.push(if lfs { FakeFile::lfs(&name, content) } else { FakeFile::git(&name, content) });
        }
    }
}

fn usage(message: &str) -> ! {
    eprintln!("fake-hub: {message}\nusage: fake-hub --repo ORG/NAME=DIR [--repo ...]");
    std::process::exit(2)
}
