//! The GGUF reader and the text-model loader (metadata, tensor table, hyperparameters,
//! tokenizer, chat template) on arbitrary bytes; a model that loads must also run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkg_engine::*;
use llmkg_fuzz::check_error;

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new();
    let files = vec![ModelFile { name: "fuzz.gguf".into(), bytes: data.to_vec() }];
    if let Err(err) = engine.load_model("m", ModelKind::TextGeneration, files, &LoadOptions::default()) {
        check_error(&err);
        assert!(engine.list_models().is_empty(), "a failed load left a model behind");
        return;
    }
    let request = GenerateRequest { model: "m".into(), prompt: "the cat".into(), max_tokens: 2, sampling: None, stop: vec![] };
    if let Err(err) = engine.generate(&request) {
        check_error(&err);
    }
    let messages = [ChatMessage { role: "user".into(), content: "hi".into() }];
    if let Err(err) = engine.render_chat("m", &messages) {
        check_error(&err);
    }
    match engine.tokenize("m", "hello <|im_start|> world", true) {
        Ok(ids) => {
            if let Err(err) = engine.detokenize("m", &ids) {
                check_error(&err);
            }
        }
        Err(err) => check_error(&err),
    }
    engine.unload_model("m").expect("a loaded model unloads");
});
