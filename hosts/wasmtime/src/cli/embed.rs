//! `embed`: vectors for texts, and how alike they are.

use anyhow::Result;
use clap::Args;
use llmkg_host::models::DEFAULT_EMBEDDING_MODEL;
use llmkg_host::LoadOptions;
use serde_json::json;

use super::{load_model, millis, Conversion, GlobalArgs};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[arg(required = true)]
    pub texts: Vec<String>,
    /// An embedding model id in the model cache, or a directory with model.safetensors,
    /// tokenizer.json and config.json.
    #[arg(long, short, default_value = DEFAULT_EMBEDDING_MODEL)]
    pub model: String,
}

pub fn run(global: &GlobalArgs, args: EmbedArgs) -> Result<()> {
    let source = global.resolve_model(&args.model)?;
    let mut rt = global.open_runtime()?;
    let options = LoadOptions {
        conversion: Conversion::Auto.into(),
        context_length: None,
    };
    let (info, load_time) = load_model(&mut rt, global, &source, &options)?;
    let vectors = rt.embed(&info.id, &args.texts)?;
    let similarity = (vectors.len() > 1).then(|| cosine_matrix(&vectors));

    if global.json {
        // One line: 384-float vectors do not read better spread over 384 lines.
        println!(
            "{}",
            json!({
                "model": info.id,
                "dimensions": vectors.first().map_or(0, Vec::len),
                "load_ms": millis(load_time),
                "embeddings": vectors,
                "similarity": similarity,
            })
        );
        return Ok(());
    }
    for (i, (text, v)) in args.texts.iter().zip(&vectors).enumerate() {
        let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:+.4}")).collect();
        println!(
            "[{i}] {} dims [{}, ...] norm {:.4}  {}",
            v.len(),
            head.join(", "),
            norm(v),
            preview(text, 48)
        );
    }
    if let Some(matrix) = similarity {
        println!("cosine similarity:");
        print!("     ");
        for j in 0..matrix.len() {
            print!("{:>7}", format!("[{j}]"));
        }
        println!();
        for (i, row) in matrix.iter().enumerate() {
            print!("{:>5}", format!("[{i}]"));
            for s in row {
                print!("{s:>7.3}");
            }
            println!();
        }
    }
    Ok(())
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Cosine similarity of every pair (not assuming the vectors are normalised).
fn cosine_matrix(vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    vectors
        .iter()
        .map(|a| {
            vectors
                .iter()
                .map(|b| {
                    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                    let denominator = norm(a) * norm(b);
                    if denominator == 0.0 {
                        0.0
                    } else {
                        dot / denominator
                    }
                })
                .collect()
        })
        .collect()
}

/// The text on one line, cut to `max` characters.
fn preview(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        format!("{flat:?}")
    } else {
        format!("{:?}...", flat.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_a_vector_with_itself_is_one_and_with_its_opposite_minus_one() {
        let m = cosine_matrix(&[vec![3.0, 4.0], vec![-3.0, -4.0], vec![4.0, -3.0]]);
        assert!((m[0][0] - 1.0).abs() < 1e-6);
        assert!((m[0][1] + 1.0).abs() < 1e-6);
        assert!(m[0][2].abs() < 1e-6);
    }

    #[test]
    fn previews_are_one_line_and_cut() {
        assert_eq!(preview("a\nb", 10), "\"a b\"");
        assert_eq!(preview("abcdef", 3), "\"abc\"...");
    }
}
