//! `llmkg quantize` end to end on a tiny model: the file it writes parses with the types its
//! report claims, loads in the component, and the report scores source and output.

use std::process::Command;

use llmkg_e2e::*;
use llmkg_engine::gguf::GgufFile;

#[test]
fn quantize_writes_what_it_reports_and_scores_both_files() {
    let dir = std::env::temp_dir().join(format!("llmkg-quantize-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("tiny.gguf");
    std::fs::write(&source, tiny_gguf("llama")).unwrap();
    // The tiny model's context is 64 tokens: a short evaluation text.
    let eval = dir.join("eval.txt");
    std::fs::write(&eval, "the cat sat on the mat and the dog sat on the log").unwrap();
    for (kind, expected, fallback) in [("q8_0", "Q8_0", false), ("q5_0", "Q5_0", false), ("q4_k", "Q5_0", true)] {
        let out = dir.join(format!("tiny-{kind}.gguf"));
        let run = Command::new(llmkg_binary())
            .args(["--quiet", "--json", "quantize"])
            .arg(&source)
            .arg(&out)
            .args(["--type", kind, "--eval"])
            .arg(&eval)
            .output()
            .unwrap();
        assert!(run.status.success(), "{kind}: {}", String::from_utf8_lossy(&run.stderr));
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(report["bytes_after"], bytes.len() as u64, "{kind}");
        let file = GgufFile::parse("out", &bytes).unwrap();
        for t in file.tensors.iter().filter(|t| t.dims.len() == 2) {
            // Width 64 holds no 256-value K block: Q4_K falls back to Q5_0, and says so. The tied
            // embeddings are the output projection: kept at Q8_0 below 8 bits, as llama.cpp does.
            let want = if t.name == "token_embd.weight" { "Q8_0" } else { expected };
            assert_eq!(llmkg_engine::text::weights::dtype_name(t.dtype), want, "{kind}: {}", t.name);
        }
        let reasons = report["not_as_asked"].to_string();
        assert_eq!(reasons.contains("do not fit"), fallback, "{kind}: {reasons}");
        let (p0, p1) = (report["perplexity"]["source"].as_f64().unwrap(), report["perplexity"]["output"].as_f64().unwrap());
        assert!(p0.is_finite() && p1.is_finite() && p0 > 1.0 && p1 > 1.0, "{kind}: {report}");
        // The output loads in the component and generates.
        let mut rt = runtime();
        rt.load_model("q", llmkg_host::ModelKind::TextGeneration, &[out.clone()], &auto(), |_, _, _| {}).unwrap();
        assert!(rt.generate(&generate_request("q", "the cat", 4)).is_ok(), "{kind}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
