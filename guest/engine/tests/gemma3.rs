//! Gemma 3 270M (the second architecture) natively against llama.cpp's own output on the same
//! file (tests/fixtures/gemma3_reference.json, made by scripts/make-gemma-fixture.py).

mod common;

use common::*;
use llmkg_engine::*;

fn reference() -> serde_json::Value {
    json("gemma3_reference.json")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn gemma3_tokenizer_matches_llama_cpp_and_round_trips() {
    let engine = engine_with_gemma3();
    let fixture = reference();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = engine.tokenize(GEMMA3, text, false).unwrap();
        assert_eq!(got, ids(&case["ids"]), "token ids of {text:?}");
        assert_eq!(engine.detokenize(GEMMA3, &got).unwrap(), text, "decode(encode({text:?}))");
    }
    // BOS is added for generation, as the file asks.
    let with_bos = engine.tokenize(GEMMA3, "Hello", true).unwrap();
    assert_eq!(with_bos[0], fixture["bos_id"].as_u64().unwrap() as u32);
}

#[test]
fn gemma3_greedy_continuations_and_perplexity_match_llama_cpp() {
    let engine = engine_with_gemma3();
    let fixture = reference();
    let mut same = 0;
    let mut shortest_agreement = usize::MAX;
    let prompts = fixture["greedy"].as_array().unwrap();
    for case in prompts {
        let prompt = case["prompt"].as_str().unwrap();
        assert_eq!(engine.tokenize(GEMMA3, prompt, true).unwrap(), ids(&case["prompt_ids"]), "prompt ids of {prompt:?}");
        let expected = ids(&case["ids"]);
        let c = engine
            .generate(&GenerateRequest { model: GEMMA3.into(), prompt: prompt.into(), max_tokens: expected.len() as u32, sampling: None, stop: vec![] })
            .unwrap();
        let got = engine.tokenize(GEMMA3, &c.text, false).unwrap();
        eprintln!("{prompt:?} -> {:?}", c.text);
        let agreed = got.iter().zip(&expected).take_while(|(a, b)| a == b).count();
        shortest_agreement = shortest_agreement.min(agreed);
        if got == expected {
            same += 1;
        } else {
            eprintln!("  llama.cpp: {:?} (the first {agreed} tokens agree)", case["text"].as_str().unwrap());
        }
    }
    let ppl = &fixture["perplexity"];
    let text = std::fs::read_to_string(fixtures_dir().join("../..").join(ppl["text"].as_str().unwrap())).unwrap();
    let report = engine.score(GEMMA3, &text).unwrap();
    let reference = ppl["perplexity"].as_f64().unwrap();
    let ratio = report.perplexity / reference;
    eprintln!("{same}/{} continuations equal; perplexity {:.4} vs llama.cpp {reference:.4} ({ratio:.4}x) over {} tokens", prompts.len(), report.perplexity, report.tokens.len() + 1);
    assert_eq!(report.tokens.len() + 1, ppl["tokens"].as_u64().unwrap() as usize);
    // Summation order may part a continuation from llama.cpp's; the perplexity may not.
    assert!((ratio - 1.0).abs() < 0.01, "perplexity {} vs {reference}", report.perplexity);
    // The most likely first tokens do not depend on summation order (nor on Q5_0 blocks being
    // held as Q8_0).
    assert!(shortest_agreement >= 3, "a continuation agrees with llama.cpp's on only {shortest_agreement} tokens");
}

#[test]
fn gemma3_continues_the_eiffel_tower_with_paris() {
    let engine = engine_with_gemma3();
    let c = engine
        .generate(&GenerateRequest { model: GEMMA3.into(), prompt: "The Eiffel Tower is located in the city of".into(), max_tokens: 8, sampling: None, stop: vec![] })
        .unwrap();
    assert!(c.text.trim_start().starts_with("Paris"), "{:?}", c.text);
    let info = engine.list_models().into_iter().find(|m| m.id == GEMMA3).unwrap();
    assert_eq!(info.architecture, "gemma3");
    assert_eq!(info.vocab_size, 262_144);
}

#[test]
fn gemma3_without_a_template_in_the_file_chats_in_gemma_turns() {
    let engine = engine_with_gemma3();
    let msg = |role: &str, content: &str| ChatMessage { role: role.into(), content: content.into() };
    let rendered = engine.render_chat(GEMMA3, &[msg("system", "Answer briefly."), msg("user", "Capital of France?")]).unwrap();
    // No system role in Gemma: the system message opens the first user turn.
    assert_eq!(rendered, "<start_of_turn>user\nAnswer briefly.\n\nCapital of France?<end_of_turn>\n<start_of_turn>model\n");
    let ids = engine.tokenize(GEMMA3, &rendered, true).unwrap();
    assert_eq!(ids[..2], [2, 105], "BOS, then <start_of_turn> as one token");
    // The template's own rule, as a typed error naming the template.
    let err = engine.render_chat(GEMMA3, &[msg("user", "a"), msg("user", "b")]).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("chat template") && m.contains("alternate")), "{err}");
}
