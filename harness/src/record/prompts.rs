//! Workflows with other prompt versions, for replaying an episode recorded before a prompt changed.

use std::collections::BTreeMap;
/// A temporary copy of the shipped workflows with the given prompt versions (removed on drop): a
/// `workflows_dir` for a platform whose prompts changed since an episode was recorded.
pub fn workflows_with_prompt_versions(
    versions: &BTreeMap<String, String>,
) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("harness-workflows-")
        .tempdir()
        .map_err(|e| format!("a temporary workflows directory: {e}"))?;
    let mut found = std::collections::BTreeSet::new();
    for (rel, mut text) in platform::orchestrator::loader::shipped_files() {
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .map(|s| s.trim().trim_matches('"').to_string());
        if let Some(v) = id.as_ref().and_then(|id| versions.get(id)) {
            found.insert(id.clone().unwrap_or_default());
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with("prompt_version:"))
                .collect();
            text = format!("{}\nprompt_version: \"{v}\"\n", kept.join("\n"));
        }
        let path = dir.path().join(&rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
    }
    let unknown: Vec<&String> = versions.keys().filter(|k| !found.contains(*k)).collect();
    if unknown.is_empty() {
        Ok(dir)
    } else {
        Err(format!("prompt_versions: no shipped workflow {unknown:?}"))
    }
}
