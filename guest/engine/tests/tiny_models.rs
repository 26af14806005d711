//! Behaviour of loading and generation, on tiny models the tests write themselves.

use candle_core::quantized::GgmlDType;
use llmkg_engine::testing::TinyLlama;
use llmkg_engine::*;

const TINY: &str = "tiny";

fn engine_with(tiny: TinyLlama, options: LoadOptions) -> (Engine, ModelInfo) {
    let mut engine = Engine::new();
    let info = engine
        .load_model(TINY, ModelKind::TextGeneration, vec![ModelFile { name: "tiny.gguf".into(), bytes: tiny.gguf() }], &options)
        .unwrap();
    (engine, info)
}

fn tiny_engine() -> Engine {
    engine_with(TinyLlama::default(), LoadOptions::default()).0
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest { model: TINY.into(), prompt: prompt.into(), max_tokens, sampling: None, stop: vec![] }
}

fn sampled(seed: u64) -> Option<Sampling> {
    Some(Sampling { temperature: 0.9, top_p: 0.95, top_k: 40, repeat_penalty: 1.1, seed })
}

#[test]
fn q4_1_weights_are_converted_to_q8_0_by_default() {
    let (_, info) = engine_with(TinyLlama::default(), LoadOptions::default());
    assert_eq!(info.source_quantization, "Q4_1");
    assert_eq!(info.quantization, "Q8_0");
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.context_length, 64);
    assert_eq!(info.vocab_size as usize, TinyLlama::vocab().len());
    assert!(info.weight_bytes > 0 && info.parameters > 0);
}

#[test]
fn conversion_is_a_load_option() {
    let keep = LoadOptions { conversion: WeightConversion::Keep, context_length: None };
    assert_eq!(engine_with(TinyLlama::default(), keep).1.quantization, "Q4_1");
    let q4 = LoadOptions { conversion: WeightConversion::Q4_0, context_length: None };
    assert_eq!(engine_with(TinyLlama::default(), q4).1.quantization, "Q4_0");
    let q8 = TinyLlama { block_type: GgmlDType::Q8_0, ..Default::default() };
    assert_eq!(engine_with(q8, LoadOptions::default()).1.source_quantization, "Q8_0");
}

#[test]
fn context_length_option_caps_the_context() {
    let opts = LoadOptions { conversion: WeightConversion::Auto, context_length: Some(16) };
    assert_eq!(engine_with(TinyLlama::default(), opts).1.context_length, 16);
}

#[test]
fn greedy_generation_is_deterministic_and_counts_tokens() {
    let engine = tiny_engine();
    let a = engine.generate(&request("the cat", 12)).unwrap();
    let b = engine.generate(&request("the cat", 12)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.prompt_tokens, engine.tokenize(TINY, "the cat", true).unwrap().len() as u32);
    assert!(a.completion_tokens >= 1 && a.completion_tokens <= 12);
}

#[test]
fn the_same_seed_gives_the_same_text() {
    let engine = tiny_engine();
    let req = GenerateRequest { sampling: sampled(42), ..request("hello there", 20) };
    let a = engine.generate(&req).unwrap();
    let b = engine.generate(&req).unwrap();
    assert_eq!(a.text, b.text);
    let texts: std::collections::HashSet<String> =
        (0..6).map(|seed| engine.generate(&GenerateRequest { sampling: sampled(seed), ..req.clone() }).unwrap().text).collect();
    assert!(texts.len() > 1, "six seeds all gave {texts:?}");
}

#[test]
fn streamed_pieces_concatenate_to_the_completion() {
    let engine = tiny_engine();
    let req = GenerateRequest { sampling: sampled(3), ..request("stream me", 24) };
    let mut stream = engine.stream(&req).unwrap();
    let mut pieces = Vec::new();
    while let Some(p) = stream.next_piece().unwrap() {
        pieces.push(p);
    }
    assert!(stream.next_piece().unwrap().is_none(), "a finished stream stays finished");
    let whole = engine.generate(&req).unwrap();
    assert_eq!(pieces.concat(), whole.text);
    assert_eq!(stream.completion(), whole);
}

#[test]
fn a_stop_string_ends_generation_before_it() {
    let engine = tiny_engine();
    let free = engine.generate(&GenerateRequest { sampling: sampled(5), ..request("abc", 40) }).unwrap();
    let chars: Vec<char> = free.text.chars().collect();
    assert!(chars.len() >= 8, "need some text to cut: {:?}", free.text);
    let stop: String = chars[4..6].iter().collect();
    let expected_end = free.text.find(&stop).unwrap();
    let req = GenerateRequest { sampling: sampled(5), stop: vec![stop.clone()], ..request("abc", 40) };
    let cut = engine.generate(&req).unwrap();
    assert_eq!(cut.text, &free.text[..expected_end]);
    assert_eq!(cut.finish_reason, FinishReason::StopString);
    // Streaming never hands out any part of the stop string either.
    let mut stream = engine.stream(&req).unwrap();
    let mut streamed = String::new();
    while let Some(p) = stream.next_piece().unwrap() {
        streamed.push_str(&p);
    }
    assert_eq!(streamed, cut.text);
}

#[test]
fn generation_stops_when_the_context_is_full() {
    let engine = tiny_engine();
    let prompt = "x".repeat(60);
    let c = engine.generate(&request(&prompt, 100)).unwrap();
    assert_eq!(c.prompt_tokens, 60);
    assert!(matches!(c.finish_reason, FinishReason::ContextFull | FinishReason::EndOfText), "{c:?}");
}

#[test]
fn max_tokens_zero_is_invalid_input() {
    let err = tiny_engine().generate(&request("hi", 0)).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("max-tokens")), "{err}");
}

#[test]
fn a_prompt_longer_than_the_context_is_invalid_input() {
    let err = tiny_engine().generate(&request(&"y".repeat(100), 5)).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("100 tokens") && m.contains("64")), "{err}");
}

#[test]
fn an_unknown_model_id_is_not_found() {
    let err = tiny_engine().generate(&GenerateRequest { model: "nope".into(), ..request("hi", 5) }).unwrap_err();
    assert!(matches!(&err, EngineError::NotFound(m) if m.contains("nope") && m.contains(TINY)), "{err}");
}

#[test]
fn bad_sampling_values_are_invalid_input() {
    let bad = Some(Sampling { temperature: -1.0, ..Sampling::default() });
    let err = tiny_engine().generate(&GenerateRequest { sampling: bad, ..request("hi", 5) }).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("temperature")), "{err}");
}

/// Found by fuzzing: a tiny temperature or penalty made infinite logits and NaN probabilities.
#[test]
fn extreme_but_valid_sampling_values_still_sample() {
    for (temperature, repeat_penalty) in [(1e-40, 1.0), (1e-30, 1e-30), (1e30, 1e30), (f32::MAX, f32::MIN_POSITIVE)] {
        let sampling = Some(Sampling { temperature, repeat_penalty, top_k: 3, top_p: 0.5, seed: 1 });
        let out = tiny_engine().generate(&GenerateRequest { sampling, ..request("the the the", 4) });
        assert!(out.is_ok(), "temperature {temperature}, repeat penalty {repeat_penalty}: {out:?}");
    }
}

/// Found by fuzzing: a matrix with a zero dimension loaded, and the forward pass failed.
#[test]
fn a_tensor_with_a_zero_dimension_is_an_invalid_model() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/gguf/zero-sized-attn-output")).unwrap();
    let err = load_err(bytes);
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("blk.0.attn_output.weight") && m.contains("dimension is 0")), "{err}");
}

fn load_err(bytes: Vec<u8>) -> EngineError {
    let mut engine = tiny_engine();
    let err = engine
        .load_model("bad", ModelKind::TextGeneration, vec![ModelFile { name: "bad.gguf".into(), bytes }], &LoadOptions::default())
        .unwrap_err();
    // The failed load changed nothing: the tiny model still answers, no "bad" model appeared.
    assert!(engine.generate(&request("still here", 3)).is_ok());
    assert_eq!(engine.list_models().len(), 1);
    err
}

#[test]
fn a_truncated_gguf_is_an_invalid_model() {
    let bytes = TinyLlama::default().gguf();
    for cut in [3, 10, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = load_err(bytes[..cut].to_vec());
        assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("bad.gguf")), "cut at {cut}: {err}");
    }
}

#[test]
fn random_bytes_are_an_invalid_model() {
    let mut state = 99u64;
    let bytes: Vec<u8> = (0..4096).map(|_| { state = state.wrapping_mul(6364136223846793005).wrapping_add(1); (state >> 33) as u8 }).collect();
    let err = load_err(bytes);
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("not a GGUF file")), "{err}");
}

#[test]
fn a_gguf_with_hostile_lengths_is_rejected_without_allocating() {
    let mut bytes = TinyLlama::default().gguf();
    // metadata_kv_count := u64::MAX
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = load_err(bytes);
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("metadata_kv_count")), "{err}");
}

#[test]
fn a_safetensors_file_passed_as_gguf_is_an_invalid_model() {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 8]);
    let err = load_err(bytes);
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("not a GGUF file")), "{err}");
}

#[test]
fn an_unsupported_architecture_is_unsupported() {
    let err = load_err(TinyLlama { architecture: "gpt2", ..Default::default() }.gguf());
    // Names the file's architecture and every supported one.
    assert!(matches!(&err, EngineError::Unsupported(m) if m.contains("\"gpt2\"") && m.contains("llama, mistral, gemma3")), "{err}");
}

#[test]
fn absurd_hyperparameters_are_refused_at_load_with_the_key_named() {
    use llmkg_engine::gguf::Value;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("llama.rope.freq_base", Value::F32(f32::NAN), "llama.rope.freq_base is NaN"),
        ("llama.rope.freq_base", Value::F32(f32::INFINITY), "llama.rope.freq_base is inf"),
        ("llama.attention.head_count", Value::U32(0), "llama.attention.head_count is 0"),
        ("llama.attention.head_count_kv", Value::U32(3), "llama.attention.head_count_kv is 3"),
        ("llama.attention.head_count", Value::U32(6), "llama.embedding_length is 64, which head_count 6 does not divide"),
        ("llama.embedding_length", Value::U32(128), "llama.embedding_length is 128, but token_embd.weight holds rows of 64"),
        ("llama.block_count", Value::U32(0), "llama.block_count is 0"),
        ("llama.block_count", Value::U32(3), "blk.2.attn_q.weight is missing"),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(-1.0), "llama.attention.layer_norm_rms_epsilon is -1"),
        ("llama.rope.dimension_count", Value::U32(3), "llama.rope.dimension_count is 3"),
        ("llama.context_length", Value::U32(0), "llama.context_length is 0"),
        ("tokenizer.ggml.eos_token_id", Value::U32(100_000), "tokenizer.ggml.eos_token_id = 100000"),
    ];
    for (key, value, expected) in cases {
        let err = load_err(TinyLlama { overrides: vec![(key.into(), value)], ..Default::default() }.gguf());
        assert!(err.to_string().contains(expected), "{key}: {err}");
        assert!(matches!(err, EngineError::InvalidModel(_)), "{key}: {err:?}");
    }
}

#[test]
fn a_tokenizer_json_that_is_not_json_is_an_invalid_model() {
    let mut engine = Engine::new();
    let files = vec![
        ModelFile { name: "config.json".into(), bytes: br#"{"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"hidden_act":"gelu","hidden_dropout_prob":0.0,"max_position_embeddings":16,"type_vocab_size":2,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}"#.to_vec() },
        ModelFile { name: "tokenizer.json".into(), bytes: b"this is { not json".to_vec() },
        ModelFile { name: "model.safetensors".into(), bytes: vec![0; 16] },
    ];
    let err = engine.load_model("emb", ModelKind::Embedding, files, &LoadOptions::default()).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.starts_with("tokenizer.json")), "{err}");
}

#[test]
fn a_model_larger_than_memory_allows_is_resource_exhausted() {
    let mut upload = ModelUpload::new("huge", ModelKind::TextGeneration, LoadOptions::default());
    let err = upload.begin_file("huge.gguf", Some(u64::MAX / 2)).unwrap_err();
    assert!(matches!(&err, EngineError::ResourceExhausted(m) if m.contains("huge.gguf")), "{err}");
    let err = memory::ensure_available(u64::MAX, "a test").unwrap_err();
    assert!(matches!(err, EngineError::ResourceExhausted(_)));
}

#[test]
fn a_chunked_upload_loads_the_same_model_as_a_whole_file() {
    let bytes = TinyLlama::default().gguf();
    let mut engine = Engine::new();
    let mut upload = ModelUpload::new(TINY, ModelKind::TextGeneration, LoadOptions::default());
    upload.begin_file("tiny.gguf", Some(bytes.len() as u64)).unwrap();
    for chunk in bytes.chunks(1000) {
        upload.write(chunk).unwrap();
    }
    let info = upload.finish(&mut engine).unwrap();
    assert_eq!(info, engine_with(TinyLlama::default(), LoadOptions::default()).1);
    assert_eq!(engine.generate(&request("the", 8)).unwrap(), tiny_engine().generate(&request("the", 8)).unwrap());
}

#[test]
fn an_upload_that_sends_more_than_announced_is_invalid_input() {
    let mut upload = ModelUpload::new(TINY, ModelKind::TextGeneration, LoadOptions::default());
    upload.begin_file("tiny.gguf", Some(4)).unwrap();
    let err = upload.write(&[0; 5]).unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("more than the 4 announced")), "{err}");
}

#[test]
fn unloading_frees_the_model() {
    let mut engine = tiny_engine();
    assert_eq!(engine.memory_stats().models.len(), 1);
    engine.unload_model(TINY).unwrap();
    assert!(engine.memory_stats().models.is_empty());
    assert!(matches!(engine.unload_model(TINY), Err(EngineError::NotFound(_))));
}

#[test]
fn special_tokens_in_text_become_single_ids() {
    let engine = tiny_engine();
    let ids = engine.tokenize(TINY, "<|im_start|>the<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert_eq!(engine.detokenize(TINY, &ids).unwrap(), "<|im_start|>the<|im_end|>");
}

#[test]
fn a_huge_declared_context_is_unsupported_not_a_crash() {
    let err = load_err(TinyLlama { context_length: u32::MAX, ..Default::default() }.gguf());
    assert!(matches!(&err, EngineError::Unsupported(m) if m.contains("context_length")), "{err}");
}
