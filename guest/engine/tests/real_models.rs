//! The engine natively on the real default models (fetched by scripts/fetch-models).

mod common;

use common::*;
use llmkg_engine::*;

#[test]
fn tokenizer_matches_llama_cpp_reference() {
    let engine = engine_with_smollm2();
    let fixture = tokenizer_fixture();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let ids = engine.tokenize(SMOLLM2, text, false).unwrap();
        assert_eq!(ids, expected, "token ids of {text:?}");
        assert_eq!(engine.detokenize(SMOLLM2, &ids).unwrap(), text, "decode(encode({text:?}))");
    }
}

#[test]
fn chat_template_renders_like_the_reference() {
    let engine = engine_with_smollm2();
    let fixture = tokenizer_fixture();
    let rendered = engine
        .render_chat(SMOLLM2, &[ChatMessage { role: "user".into(), content: "What is the capital of France?".into() }])
        .unwrap();
    assert_eq!(rendered, fixture["chat_template_render"].as_str().unwrap());
}

#[test]
fn greedy_chat_knows_the_capital_of_france() {
    let engine = engine_with_smollm2();
    let c = engine
        .chat(&ChatRequest {
            model: SMOLLM2.into(),
            // Without a system message the template adds SmolLM's default one, after which
            // llama.cpp too answers greedily with "L'Étoile, la Cité, ..." for this GGUF.
            messages: vec![
                ChatMessage { role: "system".into(), content: "You are a helpful assistant.".into() },
                ChatMessage { role: "user".into(), content: "What is the capital of France?".into() },
            ],
            max_tokens: 32,
            sampling: None,
            stop: vec![],
        })
        .unwrap();
    eprintln!("{c:?}");
    assert!(c.text.contains("Paris"), "{:?}", c.text);
}

#[test]
fn embeddings_match_the_fp32_reference() {
    let engine = engine_with_minilm();
    let fixture = embedding_fixture();
    let sentences: Vec<String> = fixture["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let expected = fixture["embeddings"].as_array().unwrap();
    let got = engine.embed(MINILM, &sentences).unwrap();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let e: Vec<f32> = e.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let cos = cosine(g, &e);
        assert!(cos >= 0.999, "sentence {i} {:?}: cosine {cos}", sentences[i]);
    }
}
