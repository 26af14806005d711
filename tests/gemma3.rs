//! Gemma 3 270M, the second architecture, inside the component through the Wasmtime host,
//! against llama.cpp's output on the same file (tests/fixtures/gemma3_reference.json).

use llmkg_e2e::*;

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn gemma3_in_the_component_tokenizes_like_llama_cpp_continues_with_paris_and_scores_alike() {
    let mut rt = runtime();
    let info = load_gemma3(&mut rt);
    assert_eq!((info.architecture.as_str(), info.vocab_size, info.context_length), ("gemma3", 262_144, 32_768));
    let fixture = fixture("gemma3_reference.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = rt.tokenize(GEMMA3, text, false).unwrap();
        assert_eq!(got, ids(&case["ids"]), "token ids of {text:?}");
        assert_eq!(rt.detokenize(GEMMA3, &got).unwrap(), text);
    }
    let c = rt.generate(&generate_request(GEMMA3, "The Eiffel Tower is located in the city of", 8)).unwrap();
    assert!(c.text.trim_start().starts_with("Paris"), "{:?}", c.text);
    // Teacher-forced over the committed text: within 1% of llama.cpp's perplexity.
    let ppl = &fixture["perplexity"];
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(ppl["text"].as_str().unwrap())).unwrap();
    let report = rt.score(GEMMA3, &text).unwrap();
    let reference = ppl["perplexity"].as_f64().unwrap();
    eprintln!("component perplexity {:.4}, llama.cpp {reference:.4}", report.perplexity);
    assert!((report.perplexity / reference - 1.0).abs() < 0.01, "perplexity {} vs llama.cpp {reference}", report.perplexity);
    let stats = rt.memory_stats().unwrap();
    assert_eq!(rt.restarts(), 0);
    eprintln!("linear memory {} bytes, allocated {}", stats.linear_memory_bytes, stats.allocated_bytes);
}
