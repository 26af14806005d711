//! The request validation behind the WIT calls - sampling values, stop lists, token ids for
//! `detokenize`, message lists, model ids - on a tiny llama and a tiny BERT, with requests made
//! by `arbitrary` (structure-aware, so every call is reached). Each call returns a value or a
//! typed error, and the engine answers a good request after any of them.
#![no_main]

use std::cell::RefCell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llmkg_engine::testing::{tiny_bert, TinyLlama};
use llmkg_engine::*;
use llmkg_fuzz::check_error;

#[derive(Arbitrary, Debug)]
struct FuzzSampling {
    temperature: f32,
    top_p: f32,
    top_k: u32,
    repeat_penalty: f32,
    seed: u64,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Generate { model: bool, prompt: String, max_tokens: u32, sampling: Option<FuzzSampling>, stop: Vec<String> },
    /// Pulls `pieces` pieces, then drops the stream (a client that went away).
    Stream { prompt: String, max_tokens: u32, sampling: Option<FuzzSampling>, stop: Vec<String>, pieces: u8 },
    Chat { messages: Vec<(String, String)>, max_tokens: u32, sampling: Option<FuzzSampling>, stop: Vec<String> },
    Tokenize { model: bool, text: String, special: bool },
    Detokenize { model: bool, tokens: Vec<u32> },
    Score { text: String },
    Embed { model: bool, texts: Vec<String> },
}

const TEXT: &str = "tiny";
const BERT: &str = "bert";

thread_local! {
    static ENGINE: RefCell<Engine> = RefCell::new({
        let mut engine = Engine::new();
        let gguf = ModelFile { name: "tiny.gguf".into(), bytes: TinyLlama { context_length: 32, ..TinyLlama::default() }.gguf() };
        engine.load_model(TEXT, ModelKind::TextGeneration, vec![gguf], &LoadOptions::default()).expect("the tiny llama loads");
        let bert = tiny_bert::files("gelu", tiny_bert::safetensors(&tiny_bert::tensors()));
        engine.load_model(BERT, ModelKind::Embedding, bert, &LoadOptions::default()).expect("the tiny BERT loads");
        engine
    });
}

fn sampling(s: Option<FuzzSampling>) -> Option<Sampling> {
    s.map(|s| Sampling { temperature: s.temperature, top_p: s.top_p, top_k: s.top_k, repeat_penalty: s.repeat_penalty, seed: s.seed })
}

/// `true` names the model the call is for; `false` the other one (the wrong kind).
fn id(right: bool, kind: &'static str) -> String {
    if right { kind.into() } else if kind == TEXT { BERT.into() } else { TEXT.into() }
}

fn ok_or_typed<T>(result: Result<T>) {
    if let Err(err) = result {
        check_error(&err);
    }
}

fuzz_target!(|call: Call| {
    ENGINE.with_borrow(|engine| {
        match call {
            Call::Generate { model, prompt, max_tokens, sampling: s, stop } => {
                ok_or_typed(engine.generate(&GenerateRequest { model: id(model, TEXT), prompt, max_tokens, sampling: sampling(s), stop }))
            }
            Call::Stream { prompt, max_tokens, sampling: s, stop, pieces } => {
                match engine.stream(&GenerateRequest { model: TEXT.into(), prompt, max_tokens, sampling: sampling(s), stop }) {
                    Ok(mut generation) => {
                        for _ in 0..pieces {
                            match generation.next_piece() {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(err) => return check_error(&err),
                            }
                        }
                    }
                    Err(err) => check_error(&err),
                }
            }
            Call::Chat { messages, max_tokens, sampling: s, stop } => {
                let messages = messages.into_iter().map(|(role, content)| ChatMessage { role, content }).collect();
                ok_or_typed(engine.chat(&ChatRequest { model: TEXT.into(), messages, max_tokens, sampling: sampling(s), stop }))
            }
            Call::Tokenize { model, text, special } => ok_or_typed(engine.tokenize(&id(model, TEXT), &text, special)),
            Call::Detokenize { model, tokens } => ok_or_typed(engine.detokenize(&id(model, TEXT), &tokens)),
            Call::Score { text } => ok_or_typed(engine.score(TEXT, &text)),
            Call::Embed { model, texts } => ok_or_typed(engine.embed(&id(model, BERT), &texts)),
        }
        let good = GenerateRequest { model: TEXT.into(), prompt: "the".into(), max_tokens: 1, sampling: None, stop: vec![] };
        engine.generate(&good).expect("a good request after any other");
    });
});
