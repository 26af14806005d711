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
    let question = ChatMessage { role: "user".into(), content: "What is the capital of France?".into() };
    // The fixture is the template rendered (by jinja2) without a system message, so with the
    // template's own default system text; given that text explicitly, minijinja must agree.
    let own_default = ChatMessage { role: "system".into(), content: "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into() };
    let rendered = engine.render_chat(SMOLLM2, &[own_default, question.clone()]).unwrap();
    assert_eq!(rendered, fixture["chat_template_render"].as_str().unwrap());
    // Without one, the engine gives SmolLM2 the plain system message it answers well with.
    let rendered = engine.render_chat(SMOLLM2, &[question]).unwrap();
    assert!(rendered.starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"), "{rendered}");
}

#[test]
fn greedy_chat_knows_the_capital_of_france() {
    let engine = engine_with_smollm2();
    let c = engine
        .chat(&ChatRequest {
            model: SMOLLM2.into(),
            // No system message: the template's own one would make this model answer (as
            // llama.cpp does on this GGUF) "L'Étoile, la Cité, ..."; the engine's default for
            // SmolLM2 gets Paris, in every host alike.
            messages: vec![ChatMessage { role: "user".into(), content: "What is the capital of France?".into() }],
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
    let mut min = f32::INFINITY;
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let e: Vec<f32> = e.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let cos = cosine(g, &e);
        assert!(cos >= 0.999, "sentence {i} {:?}: cosine {cos}", sentences[i]);
        min = min.min(cos);
    }
    eprintln!("lowest cosine to the fp32 reference: {min}");
}

/// Greedy token ids from the engine equal those of candle-transformers' own `quantized_llama`
/// (an independent implementation of the same model) on the file's own Q4_1 weights.
#[test]
fn greedy_tokens_match_candles_quantized_llama() {
    use candle_core::{Device, Tensor};
    let file = smollm2_file();
    let mut engine = Engine::new();
    let keep = LoadOptions { conversion: WeightConversion::Keep, context_length: None };
    engine.load_model(SMOLLM2, ModelKind::TextGeneration, vec![smollm2_file()], &keep).unwrap();
    let prompt = "The three primary colours are";
    let mut ids = engine.tokenize(SMOLLM2, prompt, true).unwrap();

    let mut reader = std::io::Cursor::new(&file.bytes);
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader).unwrap();
    let mut reference =
        candle_transformers::models::quantized_llama::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
    let mut expected = Vec::new();
    for step in 0..24 {
        let (input, pos) = if step == 0 { (&ids[..], 0) } else { (&ids[ids.len() - 1..], ids.len() - 1) };
        let logits = reference.forward(&Tensor::new(input, &Device::Cpu).unwrap().unsqueeze(0).unwrap(), pos).unwrap();
        let logits: Vec<f32> = logits.squeeze(0).unwrap().to_vec1().unwrap();
        let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 as u32;
        ids.push(best);
        expected.push(best);
    }
    let generation = engine
        .stream(&GenerateRequest { model: SMOLLM2.into(), prompt: prompt.into(), max_tokens: 24, sampling: None, stop: vec![] })
        .unwrap();
    let completion = generation.run_to_end().unwrap();
    let got = engine.tokenize(SMOLLM2, &completion.text, false).unwrap();
    assert_eq!(completion.text, engine.detokenize(SMOLLM2, &expected).unwrap(), "ids {got:?} vs {expected:?}");
}
