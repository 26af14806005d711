//! `models`: what the model cache directory holds, and what would be fetched on first use.

use anyhow::Result;
use clap::Args;
use llmkg_host::json::model_kind_name;
use llmkg_host::models::{list, models_dir};
use llmkg_host::units::format_size;
use serde_json::json;

use super::{print_json, GlobalArgs};

#[derive(Args, Debug)]
pub struct ModelsArgs {}

pub fn run(global: &GlobalArgs, _args: ModelsArgs) -> Result<()> {
    let dir = models_dir();
    let models = list(&dir);
    if global.json {
        print_json(&json!({
            "models_dir": dir,
            "models": models.iter().map(|m| json!({
                "id": m.id,
                "kind": model_kind_name(m.kind),
                "files": m.files,
                "size_bytes": m.size,
                "present": m.present,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("models in {}", dir.display());
    for m in &models {
        let state = if m.present {
            format_size(m.size)
        } else {
            "not fetched (fetched on first use)".into()
        };
        println!("  {:<24} {:<16} {}", m.id, model_kind_name(m.kind), state);
        for file in &m.files {
            let shown = file.strip_prefix(&dir).unwrap_or(file);
            println!("  {:<24} {:<16}   {}", "", "", shown.display());
        }
    }
    Ok(())
}
