//! The embedding-model loader: `config.json`, `tokenizer.json` and the safetensors header and
//! data. The first byte picks which of the tiny BERT's three files the rest of the input
//! replaces; a model that loads must also embed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkg_engine::testing::tiny_bert;
use llmkg_engine::*;
use llmkg_fuzz::check_error;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let mut files = tiny_bert::files("gelu", tiny_bert::safetensors(&tiny_bert::tensors()));
    let slot = which as usize % files.len();
    files[slot].bytes = bytes.to_vec();
    let mut engine = Engine::new();
    if let Err(err) = engine.load_model("bert", ModelKind::Embedding, files, &LoadOptions::default()) {
        check_error(&err);
        return;
    }
    let texts = ["hello world".to_string(), String::new(), "the cat sits on the mat ".repeat(8)];
    match engine.embed("bert", &texts) {
        Ok(vectors) => assert_eq!(vectors.len(), texts.len()),
        Err(err) => check_error(&err),
    }
});
