//! The component end to end through the Wasmtime host, on the real models.

use llmkg_e2e::*;
use llmkg_host::*;

#[test]
fn the_component_is_built_with_simd128() {
    let info = runtime().build_info().unwrap();
    assert!(info.simd128, "{info:?}");
    assert_eq!(info.target, "wasm32-wasip2");
}

#[test]
fn tokenizer_in_the_component_matches_the_llama_cpp_reference() {
    let mut rt = runtime();
    load_smollm2(&mut rt);
    let fixture = fixture("smollm2_tokenizer.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let ids = rt.tokenize(SMOLLM2, text, false).unwrap();
        assert_eq!(ids, expected, "token ids of {text:?}");
        assert_eq!(rt.detokenize(SMOLLM2, &ids).unwrap(), text);
    }
}

#[test]
fn greedy_chat_answers_paris_and_streams_the_same_text() {
    let mut rt = runtime();
    load_smollm2(&mut rt);
    let request = chat_request(SMOLLM2, user("What is the capital of France?"), 48);
    let whole = rt.chat(&request).unwrap();
    assert!(whole.text.contains("Paris"), "{:?}", whole.text);
    let mut pieces = Vec::new();
    let streamed = rt.stream_chat(&request, |p| pieces.push(p.to_string())).unwrap();
    assert!(pieces.len() > 3, "expected several pieces, got {pieces:?}");
    assert_eq!(pieces.concat(), whole.text);
    assert_eq!(streamed.text, whole.text);
    assert_eq!(streamed.completion_tokens, whole.completion_tokens);
}

#[test]
fn the_same_seed_gives_the_same_text_twice() {
    let mut rt = runtime();
    load_smollm2(&mut rt);
    let mut request = chat_request(SMOLLM2, user("Write a short poem about the sea."), 32);
    request.sampling = Some(Sampling { temperature: 0.8, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, seed: 1234 });
    let a = rt.chat(&request).unwrap();
    let b = rt.chat(&request).unwrap();
    assert_eq!(a.text, b.text);
    assert!(a.completion_tokens > 0);
}

#[test]
fn a_stop_string_ends_generation_before_it() {
    let mut rt = runtime();
    load_smollm2(&mut rt);
    let mut request = chat_request(SMOLLM2, user("What is the capital of France?"), 48);
    let free = rt.chat(&request).unwrap();
    let at = free.text.find("Paris").expect("the free answer mentions Paris");
    request.stop = vec!["Paris".into()];
    let cut = rt.chat(&request).unwrap();
    assert_eq!(cut.text, &free.text[..at]);
    assert_eq!(cut.finish_reason, FinishReason::StopString);
}

#[test]
fn embeddings_in_the_component_match_the_fp32_reference() {
    let mut rt = runtime();
    load_minilm(&mut rt);
    let fixture = fixture("minilm_embeddings.json");
    let sentences: Vec<String> = fixture["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().into()).collect();
    assert!(sentences.len() >= 10);
    let batch = rt.embed(MINILM, &sentences).unwrap();
    for (i, expected) in fixture["embeddings"].as_array().unwrap().iter().enumerate() {
        let expected: Vec<f32> = expected.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let c = cosine(&batch[i], &expected);
        assert!(c >= 0.999, "sentence {i} {:?}: cosine {c}", sentences[i]);
        let single = rt.embed(MINILM, &sentences[i..=i]).unwrap();
        let c = cosine(&batch[i], &single[0]);
        assert!(c >= 0.9999, "sentence {i}: batch vs one-by-one cosine {c}");
    }
}

#[test]
fn stats_report_weights_linear_memory_and_unloads() {
    let mut rt = runtime();
    let empty = rt.memory_stats().unwrap();
    load_smollm2(&mut rt);
    load_minilm(&mut rt);
    let loaded = rt.memory_stats().unwrap();
    assert!(loaded.linear_memory_bytes > empty.linear_memory_bytes);
    assert!(loaded.allocated_bytes > 0 && loaded.peak_allocated_bytes >= loaded.allocated_bytes);
    let model_bytes = |r: &MemoryReport| r.models.iter().map(|m| m.weight_bytes).sum::<u64>();
    assert_eq!(loaded.models.len(), 2);
    assert!(loaded.models.iter().all(|m| m.weight_bytes > 0));
    rt.unload_model(SMOLLM2).unwrap();
    let after = rt.memory_stats().unwrap();
    assert!(model_bytes(&after) < model_bytes(&loaded));
    assert!(after.allocated_bytes < loaded.allocated_bytes);
}

/// The load hands the file back as it builds the weights, so once SmolLM2 is loaded and has
/// generated, what the allocator holds is (nearly) all the linear memory there is: nothing large
/// stays hidden from memory-stats.
#[test]
fn after_a_load_and_a_generation_memory_stats_account_for_the_linear_memory() {
    let mut rt = runtime();
    let info = load_smollm2(&mut rt);
    rt.chat(&chat_request(SMOLLM2, user("What is the capital of France?"), 16)).unwrap();
    let stats = rt.memory_stats().unwrap();
    let weights: u64 = stats.models.iter().map(|m| m.weight_bytes).sum();
    let ratio = stats.allocated_bytes as f64 / stats.linear_memory_bytes as f64;
    eprintln!("{}: linear {} B, allocated {} B (peak {}), weights {weights} B", info.id, stats.linear_memory_bytes, stats.allocated_bytes, stats.peak_allocated_bytes);
    assert!(ratio >= 0.9, "allocated {} of {} linear bytes ({:.1}%)", stats.allocated_bytes, stats.linear_memory_bytes, ratio * 100.0);
    assert!(weights as f64 >= 0.9 * stats.allocated_bytes as f64, "weights {weights} of {} allocated", stats.allocated_bytes);
}

fn load_bytes_err(rt: &mut LlmkgRuntime, kind: ModelKind, files: Vec<ModelFile>) -> (String, String) {
    let err = rt.load_model_bytes("bad", kind, &files, &auto()).unwrap_err();
    guest_error(&err)
}

fn gguf_file(bytes: Vec<u8>) -> Vec<ModelFile> {
    vec![ModelFile { name: "bad.gguf".into(), bytes }]
}

#[test]
fn bad_model_files_are_error_values_and_the_component_stays_usable() {
    let mut rt = runtime();
    let real = std::fs::read(&model_files(SMOLLM2)[0]).unwrap();

    let (case, msg) = load_bytes_err(&mut rt, ModelKind::TextGeneration, gguf_file(real[..real.len() / 3].to_vec()));
    assert_eq!(case, "invalid-model", "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    assert_still_usable(&mut rt);

    let mut state = 7u64;
    let random: Vec<u8> = (0..1 << 16).map(|_| { state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (state >> 56) as u8 }).collect();
    let (case, msg) = load_bytes_err(&mut rt, ModelKind::TextGeneration, gguf_file(random));
    assert_eq!((case.as_str(), msg.contains("not a GGUF file")), ("invalid-model", true), "{msg}");
    assert_still_usable(&mut rt);

    let safetensors = std::fs::read(&model_files(MINILM)[0]).unwrap();
    let (case, msg) = load_bytes_err(&mut rt, ModelKind::TextGeneration, gguf_file(safetensors));
    assert_eq!((case.as_str(), msg.contains("not a GGUF file")), ("invalid-model", true), "{msg}");
    assert_still_usable(&mut rt);

    let (case, msg) = load_bytes_err(&mut rt, ModelKind::TextGeneration, gguf_file(tiny_gguf("gpt2")));
    assert_eq!((case.as_str(), msg.contains("gpt2")), ("unsupported", true), "{msg}");
    assert_still_usable(&mut rt);

    let mut files: Vec<ModelFile> = model_files(MINILM)
        .iter()
        .map(|p| ModelFile { name: p.file_name().unwrap().to_string_lossy().into(), bytes: std::fs::read(p).unwrap() })
        .collect();
    files.iter_mut().find(|f| f.name == "tokenizer.json").unwrap().bytes = b"<html>not json</html>".to_vec();
    let (case, msg) = load_bytes_err(&mut rt, ModelKind::Embedding, files);
    assert_eq!((case.as_str(), msg.starts_with("tokenizer.json")), ("invalid-model", true), "{msg}");
    assert_still_usable(&mut rt);
}

#[test]
fn bad_requests_are_error_values_and_the_component_stays_usable() {
    let mut rt = runtime();
    load_smollm2(&mut rt);
    load_minilm(&mut rt);

    let err = rt.generate(&generate_request("no-such-model", "hi", 4)).unwrap_err();
    assert_eq!(guest_error(&err).0, "not-found");
    assert_still_usable(&mut rt);

    let long = "lorem ipsum ".repeat(6000);
    let err = rt.generate(&generate_request(SMOLLM2, &long, 4)).unwrap_err();
    let (case, msg) = guest_error(&err);
    assert_eq!((case.as_str(), msg.contains("the context holds 8192")), ("invalid-input", true), "{msg}");
    assert_still_usable(&mut rt);

    let err = rt.generate(&generate_request(SMOLLM2, "hi", 0)).unwrap_err();
    let (case, msg) = guest_error(&err);
    assert_eq!((case.as_str(), msg.contains("max-tokens")), ("invalid-input", true), "{msg}");
    assert_still_usable(&mut rt);

    let err = rt.embed(MINILM, &[]).unwrap_err();
    let (case, msg) = guest_error(&err);
    assert_eq!((case.as_str(), msg.contains("empty")), ("invalid-input", true), "{msg}");
    assert_still_usable(&mut rt);

    // The real models are still loaded and work.
    assert!(rt.chat(&chat_request(SMOLLM2, user("What is the capital of France?"), 24)).unwrap().text.contains("Paris"));
    assert_eq!(rt.embed(MINILM, &["still here".into()]).unwrap().len(), 1);
}

#[test]
fn a_model_larger_than_the_memory_limit_is_resource_exhausted() {
    let mut rt = runtime_with(Some(64 << 20));
    let err = rt
        .load_model(SMOLLM2, ModelKind::TextGeneration, &model_files(SMOLLM2), &auto(), |_, _, _| {})
        .unwrap_err();
    let (case, msg) = guest_error(&err);
    assert_eq!(case, "resource-exhausted", "{msg}");
    assert!(msg.contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{msg}");
    assert_still_usable(&mut rt);
}

#[test]
fn max_tokens_at_the_u32_limit_runs_to_the_end_of_the_context() {
    // wasm32's usize is 32 bits: prompt + max-tokens must not wrap around.
    let mut rt = runtime();
    let file = ModelFile { name: "tiny.gguf".into(), bytes: tiny_gguf("llama") };
    rt.load_model_bytes("tiny", ModelKind::TextGeneration, &[file], &auto()).unwrap();
    let c = rt.generate(&generate_request("tiny", "the", u32::MAX)).unwrap();
    assert!(matches!(c.finish_reason, FinishReason::ContextFull | FinishReason::EndOfText), "{:?}", c.finish_reason);
    assert!(c.prompt_tokens + c.completion_tokens <= 65);
}
