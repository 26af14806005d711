//! The OpenAI-compatible routes: chat completions and completions (whole, or streamed as
//! server-sent events ending in `data: [DONE]`), embeddings (float or base64), the model list.
//! Requests are validated here (ranges, what is not supported) and handed to the engine, which
//! owns tokenization, templates, defaults and sampling.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bindings::llmkg::engine::inference::{self, ChatMessage, ChatRequest, Completion, FinishReason, GenerateRequest, Sampling, TokenStream};
use crate::config::Config;
use crate::errors::ApiError;
use crate::http::{EventSource, Reply, Request, Response};
use crate::models;

/// `stop`: one string or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// What chat and completion requests share.
#[derive(Deserialize)]
struct Generation {
    model: Option<String>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    /// Not OpenAI's, but llama.cpp's server takes it too.
    top_k: Option<u32>,
    repeat_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Stop>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    logprobs: Option<Value>,
    tools: Option<Value>,
    response_format: Option<Value>,
    logit_bias: Option<Value>,
}

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<Message>,
    #[serde(flatten)]
    generation: Generation,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize)]
struct CompletionBody {
    prompt: Value,
    #[serde(flatten)]
    generation: Generation,
}

#[derive(Deserialize)]
struct EmbeddingsBody {
    model: Option<String>,
    input: Value,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
}

/// The engine's request settings from a request's fields; errors name the field.
struct Settings {
    model: String,
    max_tokens: u32,
    sampling: Option<Sampling>,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
}

impl Generation {
    fn settings(self, config: &Config) -> Result<Settings, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::unsupported("n", "only n=1 is supported (one choice per request)"));
        }
        for (name, value) in [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)] {
            if value.is_some_and(|v| v != 0.0) {
                return Err(ApiError::unsupported(name, format!("{name} is not supported; use repeat_penalty")));
            }
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(ApiError::unsupported("tools", "tool calls are not supported"));
        }
        if self.logprobs.as_ref().is_some_and(|l| l.as_bool() == Some(true) || l.is_number()) {
            return Err(ApiError::unsupported("logprobs", "logprobs are not supported"));
        }
        if self.logit_bias.as_ref().is_some_and(|b| b.as_object().is_some_and(|o| !o.is_empty())) {
            return Err(ApiError::unsupported("logit_bias", "logit_bias is not supported"));
        }
        if let Some(format) = &self.response_format {
            if format.get("type").and_then(Value::as_str).is_some_and(|t| t != "text") {
                return Err(ApiError::unsupported("response_format", "only response_format {\"type\": \"text\"} is supported"));
            }
        }
        let max_tokens = match self.max_completion_tokens.or(self.max_tokens) {
            Some(0) => return Err(ApiError::bad_param("max_tokens", "max_tokens must be at least 1")),
            Some(n) if n > config.max_tokens => {
                return Err(ApiError::bad_param("max_tokens", format!("max_tokens is {n}; this server allows at most {} (LLMKG_MAX_TOKENS)", config.max_tokens)))
            }
            Some(n) => n,
            None => config.max_tokens,
        };
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ApiError::bad_param("temperature", format!("temperature is {t}; expected 0 to 2")));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(ApiError::bad_param("top_p", format!("top_p is {p}; expected more than 0, at most 1")));
            }
        }
        // Greedy unless the request asks for sampling: the engine's default, the same in every host.
        let sampled = self.temperature.is_some_and(|t| t > 0.0);
        let sampling = sampled.then(|| Sampling {
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: self.top_k.unwrap_or(0),
            repeat_penalty: self.repeat_penalty.unwrap_or(1.0),
            seed: self.seed.unwrap_or_else(wasip2::random::random::get_random_u64),
        });
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) if v.len() > 4 => return Err(ApiError::bad_param("stop", "at most 4 stop sequences")),
            Some(Stop::Many(v)) => v,
        };
        Ok(Settings {
            model: models::text_model(config, self.model.as_deref())?,
            max_tokens,
            sampling,
            stop,
            stream: self.stream,
            include_usage: self.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
        })
    }
}

fn message_text(i: usize, content: Option<Value>) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        // Content parts: text parts are joined; anything else (images, audio) is refused.
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(ApiError::unsupported(
                            &format!("messages[{i}].content[{j}]"),
                            format!("content parts of type {} are not supported; only text", kind.unwrap_or("(none)")),
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(ApiError::bad_param(&format!("messages[{i}].content"), "content must be a string or a list of text parts")),
    }
}

pub(crate) fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::EndOfText | FinishReason::StopString => "stop",
        FinishReason::Length | FinishReason::ContextFull => "length",
    }
}

pub(crate) fn usage(c: &Completion) -> Value {
    json!({ "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": c.prompt_tokens + c.completion_tokens })
}

/// Token counts for the host's metrics (a response header, or a trailer after a stream).
pub(crate) fn usage_header(c: &Completion) -> (String, String) {
    ("x-llmkg-usage".into(), format!("prompt={},completion={}", c.prompt_tokens, c.completion_tokens))
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{:016x}{:08x}", wasip2::random::random::get_random_u64(), wasip2::random::random::get_random_u64() as u32)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What every chat or completion answer carries besides its choices.
struct Meta {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    include_usage: bool,
}

impl Meta {
    fn new(model: &str, chat: bool, include_usage: bool) -> Self {
        Meta { id: id(if chat { "chatcmpl" } else { "cmpl" }), created: now(), model: model.to_string(), chat, include_usage }
    }

    /// An answer object (whole, or one chunk of a stream) around `choices`.
    fn object(&self, chunk: bool, choices: Value, usage_value: Option<Value>) -> Value {
        let object = match (self.chat, chunk) {
            (true, false) => "chat.completion",
            (true, true) => "chat.completion.chunk",
            (false, _) => "text_completion",
        };
        let mut o = json!({ "id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices });
        if self.chat {
            o["system_fingerprint"] = json!(concat!("llmkg-", env!("CARGO_PKG_VERSION")));
        }
        if let Some(u) = usage_value {
            o["usage"] = u;
        }
        o
    }

    fn whole(&self, c: &Completion) -> Response {
        let choice = if self.chat {
            json!({ "index": 0, "message": { "role": "assistant", "content": c.text }, "logprobs": null, "finish_reason": finish_reason(c.finish_reason) })
        } else {
            json!({ "index": 0, "text": c.text, "logprobs": null, "finish_reason": finish_reason(c.finish_reason) })
        };
        let (name, value) = usage_header(c);
        Response::json(200, &self.object(false, json!([choice]), Some(usage(c)))).header(&name, value)
    }

    /// One streamed piece of text (`None` with a finish reason: the last chunk).
    fn piece(&self, text: Option<&str>, finish: Option<&str>) -> String {
        let choice = match (self.chat, text) {
            (true, Some(t)) => json!({ "index": 0, "delta": { "content": t }, "logprobs": null, "finish_reason": finish }),
            (true, None) => json!({ "index": 0, "delta": {}, "logprobs": null, "finish_reason": finish }),
            (false, t) => json!({ "index": 0, "text": t.unwrap_or(""), "logprobs": null, "finish_reason": finish }),
        };
        self.object(true, json!([choice]), None).to_string()
    }
}

/// Where a streamed answer is.
enum Phase {
    /// Chat streams open with the assistant's role.
    Role,
    Pieces,
    Usage,
    Done,
    Ended,
}

/// A streamed chat or completion: each event decodes until there is new text.
struct GenerationEvents {
    meta: Meta,
    stream: Option<TokenStream>,
    phase: Phase,
    completion: Option<Completion>,
}

impl EventSource for GenerationEvents {
    fn next_event(&mut self) -> Option<String> {
        loop {
            match self.phase {
                Phase::Role => {
                    self.phase = Phase::Pieces;
                    let role = json!([{ "index": 0, "delta": { "role": "assistant", "content": "" }, "logprobs": null, "finish_reason": null }]);
                    return Some(self.meta.object(true, role, None).to_string());
                }
                Phase::Pieces => {
                    let stream = self.stream.as_ref()?;
                    match stream.next() {
                        Ok(Some(piece)) if piece.is_empty() => continue,
                        Ok(Some(piece)) => return Some(self.meta.piece(Some(&piece), None)),
                        Ok(None) => {
                            let c = stream.completion();
                            // The generation is over: free its KV cache now, not when the
                            // client has read the last bytes.
                            self.stream = None;
                            self.phase = if self.meta.include_usage { Phase::Usage } else { Phase::Done };
                            let last = self.meta.piece(None, Some(finish_reason(c.finish_reason)));
                            self.completion = Some(c);
                            return Some(last);
                        }
                        Err(e) => {
                            // Headers are gone already: the error travels as an event, OpenAI-shaped.
                            self.stream = None;
                            self.phase = Phase::Done;
                            return Some(ApiError::from(e).body().to_string());
                        }
                    }
                }
                Phase::Usage => {
                    self.phase = Phase::Done;
                    let u = self.completion.as_ref().map(usage);
                    return Some(self.meta.object(true, json!([]), u).to_string());
                }
                Phase::Done => {
                    self.phase = Phase::Ended;
                    return Some("[DONE]".into());
                }
                Phase::Ended => return None,
            }
        }
    }

    fn trailers(&self) -> Vec<(String, String)> {
        self.completion.as_ref().map(|c| vec![usage_header(c)]).unwrap_or_default()
    }
}

fn stream_reply(meta: Meta, stream: TokenStream) -> Reply {
    let phase = if meta.chat { Phase::Role } else { Phase::Pieces };
    Reply::Events(Box::new(GenerationEvents { meta, stream: Some(stream), phase, completion: None }))
}

pub fn chat(config: &Config, request: &mut Request) -> Result<Reply, ApiError> {
    let body: ChatBody = request.json(config.max_body)?;
    if body.messages.is_empty() {
        return Err(ApiError::bad_param("messages", "messages is empty"));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.into_iter().enumerate() {
        // OpenAI's newer name for the system role.
        let role = if m.role == "developer" { "system".to_string() } else { m.role };
        messages.push(ChatMessage { role, content: message_text(i, m.content)? });
    }
    let settings = body.generation.settings(config)?;
    let chat = ChatRequest { model: settings.model.clone(), messages, max_tokens: settings.max_tokens, sampling: settings.sampling, stop: settings.stop };
    let meta = Meta::new(&settings.model, true, settings.include_usage);
    if settings.stream {
        Ok(stream_reply(meta, inference::stream_chat(&chat)?))
    } else {
        Ok(Reply::Whole(meta.whole(&inference::chat(&chat)?)))
    }
}

pub fn completion(config: &Config, request: &mut Request) -> Result<Reply, ApiError> {
    let body: CompletionBody = request.json(config.max_body)?;
    let prompt = match body.prompt {
        Value::String(s) => s,
        Value::Array(a) if a.len() == 1 && a[0].is_string() => a[0].as_str().unwrap_or_default().to_string(),
        Value::Array(_) => return Err(ApiError::unsupported("prompt", "prompt must be one string (token-id prompts and batches are not supported)")),
        _ => return Err(ApiError::bad_param("prompt", "prompt must be a string")),
    };
    let settings = body.generation.settings(config)?;
    let generate = GenerateRequest { model: settings.model.clone(), prompt, max_tokens: settings.max_tokens, sampling: settings.sampling, stop: settings.stop };
    let meta = Meta::new(&settings.model, false, settings.include_usage);
    if settings.stream {
        Ok(stream_reply(meta, inference::stream(&generate)?))
    } else {
        Ok(Reply::Whole(meta.whole(&inference::generate(&generate)?)))
    }
}

pub fn embeddings(config: &Config, request: &mut Request) -> Result<Response, ApiError> {
    let body: EmbeddingsBody = request.json(config.max_body)?;
    let texts: Vec<String> = match body.input {
        Value::String(s) => vec![s],
        Value::Array(items) if items.iter().all(Value::is_string) => items.into_iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect(),
        Value::Array(_) => return Err(ApiError::unsupported("input", "input must be a string or a list of strings (token-id inputs are not supported)")),
        _ => return Err(ApiError::bad_param("input", "input must be a string or a list of strings")),
    };
    if texts.is_empty() {
        return Err(ApiError::bad_param("input", "input is empty"));
    }
    if texts.len() > config.max_inputs {
        return Err(ApiError::bad_param("input", format!("{} inputs; this server takes at most {} per request (LLMKG_MAX_INPUTS)", texts.len(), config.max_inputs)));
    }
    if let Some(i) = texts.iter().position(|t| t.is_empty()) {
        return Err(ApiError::bad_param("input", format!("input[{i}] is an empty string")));
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::bad_param("encoding_format", format!("encoding_format {other:?}: expected float or base64"))),
    };
    let model = models::embedding_model(config, body.model.as_deref())?;
    let counted = inference::embed_counted(&model, &texts)?;
    if let (Some(d), Some(v)) = (body.dimensions, counted.vectors.first()) {
        if d as usize != v.len() {
            return Err(ApiError::unsupported("dimensions", format!("this model's embeddings have {} dimensions; dimensions={d} cannot be served", v.len())));
        }
    }
    // Serialized straight from the vectors (no JSON value per float: 32 sentences are 12k floats).
    #[derive(serde::Serialize)]
    struct Item<E: serde::Serialize> {
        object: &'static str,
        index: usize,
        embedding: E,
    }
    let tokens = counted.tokens;
    let usage_value = json!({ "prompt_tokens": tokens, "total_tokens": tokens });
    let data: Vec<u8> = if base64 {
        let items: Vec<Item<String>> = counted
            .vectors
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Item { object: "embedding", index, embedding: base64::engine::general_purpose::STANDARD.encode(bytes) }
            })
            .collect();
        serialize_list(&items, &model, &usage_value)
    } else {
        let items: Vec<Item<&[f32]>> =
            counted.vectors.iter().enumerate().map(|(index, v)| Item { object: "embedding", index, embedding: v.as_slice() }).collect();
        serialize_list(&items, &model, &usage_value)
    };
    Ok(Response::bytes(200, "application/json", data).header("x-llmkg-usage", format!("prompt={tokens},completion=0")))
}

fn serialize_list<T: serde::Serialize>(data: &[T], model: &str, usage: &Value) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct List<'a, T: serde::Serialize> {
        object: &'static str,
        data: &'a [T],
        model: &'a str,
        usage: &'a Value,
    }
    serde_json::to_vec(&List { object: "list", data, model, usage }).unwrap_or_default()
}

fn model_object(m: &crate::bindings::llmkg::engine::types::ModelInfo) -> Value {
    json!({
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": "llmkg",
        "kind": models::kind_name(m.kind),
        "architecture": m.architecture,
        "parameters": m.parameters,
        "quantization": m.quantization,
        "context_length": m.context_length,
        "embedding_length": m.embedding_length,
    })
}

pub fn list_models(config: &Config) -> Result<Response, ApiError> {
    let infos = models::loaded(config)?;
    Ok(Response::json(200, &json!({ "object": "list", "data": infos.iter().map(model_object).collect::<Vec<_>>() })))
}

pub fn get_model(config: &Config, id: &str) -> Result<Response, ApiError> {
    let infos = models::loaded(config)?;
    match infos.iter().find(|m| m.id == id) {
        Some(m) => Ok(Response::json(200, &model_object(m))),
        None => Err(ApiError::model_not_found(id, &infos.iter().map(|m| m.id.clone()).collect::<Vec<_>>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_env(&|_| None).unwrap()
    }

    fn generation(json: Value) -> Generation {
        serde_json::from_value(json).unwrap()
    }

    fn refused(json: Value) -> ApiError {
        // Model resolution comes last, so every validation error shows without an engine.
        match generation(json).settings(&config()) {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn out_of_range_and_unsupported_fields_are_refused_by_name() {
        assert_eq!(refused(json!({ "temperature": 3.0 })).param.as_deref(), Some("temperature"));
        assert_eq!(refused(json!({ "top_p": 0.0 })).param.as_deref(), Some("top_p"));
        assert_eq!(refused(json!({ "max_tokens": 0 })).param.as_deref(), Some("max_tokens"));
        let e = refused(json!({ "max_tokens": 100000 }));
        assert!(e.message.contains("LLMKG_MAX_TOKENS"), "{}", e.message);
        assert_eq!(refused(json!({ "n": 2 })).code, Some("unsupported_parameter"));
        assert_eq!(refused(json!({ "frequency_penalty": 0.5 })).param.as_deref(), Some("frequency_penalty"));
        assert_eq!(refused(json!({ "tools": [{ "type": "function" }] })).param.as_deref(), Some("tools"));
        assert_eq!(refused(json!({ "response_format": { "type": "json_object" } })).param.as_deref(), Some("response_format"));
        assert_eq!(refused(json!({ "stop": ["a", "b", "c", "d", "e"] })).param.as_deref(), Some("stop"));
    }

    #[test]
    fn content_parts_join_their_text_and_refuse_images() {
        assert_eq!(message_text(0, Some(json!([{ "type": "text", "text": "a" }, { "type": "text", "text": "b" }]))).unwrap(), "ab");
        let e = message_text(2, Some(json!([{ "type": "image_url", "image_url": {} }]))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[2].content[0]"));
        assert_eq!(message_text(0, None).unwrap(), "");
    }

    #[test]
    fn finish_reasons_use_openai_names() {
        assert_eq!(finish_reason(FinishReason::EndOfText), "stop");
        assert_eq!(finish_reason(FinishReason::StopString), "stop");
        assert_eq!(finish_reason(FinishReason::Length), "length");
        assert_eq!(finish_reason(FinishReason::ContextFull), "length");
    }
}
