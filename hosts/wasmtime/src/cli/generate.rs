//! `generate` and `chat`: stream text to stdout as the component decodes it.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use llmkg_host::models::DEFAULT_TEXT_MODEL;
use llmkg_host::{
    json, ChatMessage, ChatRequest, Completion, Error, FinishReason, GenerateRequest, LlmkgRuntime,
    LoadOptions, Sampling,
};
use serde_json::json;

use super::{load_model, millis, Conversion, GlobalArgs};

/// Flags shared by `generate` and `chat`.
#[derive(Args, Debug, Clone)]
pub struct GenerationArgs {
    /// A model id in the model cache, a .gguf file, or a model directory.
    #[arg(long, short, default_value = DEFAULT_TEXT_MODEL)]
    pub model: String,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// 0 means greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop before this string (repeatable).
    #[arg(long, value_name = "STR")]
    pub stop: Vec<String>,
    /// Weight blocks without a SIMD kernel: convert (auto), keep, or force one type.
    #[arg(long, value_enum, default_value_t)]
    pub conversion: Conversion,
    /// Cap the KV cache at N tokens (default: the model's context length).
    #[arg(long, value_name = "N")]
    pub context_length: Option<u32>,
}

impl GenerationArgs {
    fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
        }
    }

    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            conversion: self.conversion.into(),
            context_length: self.context_length,
        }
    }
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    pub prompt: String,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// One message to answer; without it, read messages from stdin (`/reset`, `/exit`).
    pub message: Option<String>,
    /// A system message put before the conversation (default: the model's, chosen by the engine).
    #[arg(long, value_name = "MSG", default_value = "")]
    pub system: String,
    #[command(flatten)]
    pub generation: GenerationArgs,
}

/// A loaded text model (the runtime loads it again itself after a trap).
struct Session {
    rt: LlmkgRuntime,
    model_id: String,
    load_time: Duration,
}

impl Session {
    fn start(global: &GlobalArgs, args: &GenerationArgs) -> Result<Self> {
        let source = global.resolve_model(&args.model)?;
        let mut rt = global.open_runtime()?;
        let options = args.load_options();
        let (info, load_time) = load_model(&mut rt, global, &source, &options)?;
        Ok(Self {
            rt,
            model_id: info.id,
            load_time,
        })
    }
}

/// Timings of one streamed generation.
struct Run {
    completion: Completion,
    first_token: Option<Duration>,
    total: Duration,
}

impl Run {
    /// Tokens per second after the first one (the first includes the prompt's prefill).
    fn decode_tokens_per_s(&self) -> Option<f64> {
        let first = self.first_token?;
        let decode = self.total.checked_sub(first)?.as_secs_f64();
        let tokens = self.completion.completion_tokens.checked_sub(1)?;
        (tokens > 0 && decode > 0.0).then(|| tokens as f64 / decode)
    }

    fn to_json(&self, load_time: Duration) -> serde_json::Value {
        let mut value = json::completion(&self.completion);
        let object = value.as_object_mut().expect("completion is an object");
        object.insert("load_ms".into(), json!(millis(load_time)));
        object.insert("first_token_ms".into(), json!(self.first_token.map(millis)));
        object.insert(
            "decode_tokens_per_s".into(),
            json!(self.decode_tokens_per_s()),
        );
        value
    }

    /// `64 tokens (prompt 12) in 1.02 s, first token 95 ms, 65.2 tok/s, finish: length`.
    fn stats_line(&self) -> String {
        let c = &self.completion;
        let mut line = format!(
            "{} tokens (prompt {}) in {:.2} s",
            c.completion_tokens,
            c.prompt_tokens,
            self.total.as_secs_f64()
        );
        if let Some(first) = self.first_token {
            line += &format!(", first token {} ms", first.as_millis());
        }
        if let Some(rate) = self.decode_tokens_per_s() {
            line += &format!(", {rate:.1} tok/s");
        }
        line + &format!(", finish: {}", json::finish_reason_name(c.finish_reason))
    }
}

/// Runs one streamed call, printing pieces to stdout as they come unless `--json`.
fn stream(
    global: &GlobalArgs,
    call: impl FnOnce(&mut dyn FnMut(&str)) -> llmkg_host::Result<Completion>,
) -> llmkg_host::Result<Run> {
    let start = Instant::now();
    let mut first_token = None;
    let mut stdout = std::io::stdout().lock();
    let mut printed_newline = true;
    let mut on_piece = |piece: &str| {
        if first_token.is_none() && !piece.is_empty() {
            first_token = Some(start.elapsed());
        }
        if !global.json && !piece.is_empty() {
            // A closed stdout (e.g. `| head`) must not stop the generation's bookkeeping.
            let _ = stdout
                .write_all(piece.as_bytes())
                .and_then(|()| stdout.flush());
            printed_newline = piece.ends_with('\n');
        }
    };
    let completion = call(&mut on_piece)?;
    if !global.json && !printed_newline {
        let _ = writeln!(stdout);
    }
    Ok(Run {
        completion,
        first_token,
        total: start.elapsed(),
    })
}

fn report(global: &GlobalArgs, run: &Run, load_time: Duration) {
    if global.json {
        // One line per result, so a chat session's output is JSON Lines.
        println!("{}", run.to_json(load_time));
    } else if !global.quiet {
        eprintln!("[{}]", run.stats_line());
    }
}

pub fn run_generate(global: &GlobalArgs, args: GenerateArgs) -> Result<()> {
    let g = &args.generation;
    let mut session = Session::start(global, g)?;
    let request = GenerateRequest {
        model: session.model_id.clone(),
        prompt: args.prompt,
        max_tokens: g.max_tokens,
        sampling: Some(g.sampling()),
        stop: g.stop.clone(),
    };
    let run = stream(global, |on_piece| session.rt.stream(&request, on_piece))?;
    report(global, &run, session.load_time);
    Ok(())
}

pub fn run_chat(global: &GlobalArgs, args: ChatArgs) -> Result<()> {
    let g = &args.generation;
    let mut session = Session::start(global, g)?;
    let mut history: Vec<ChatMessage> = Some(&args.system)
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|content| ChatMessage {
            role: "system".into(),
            content: content.clone(),
        })
        .collect();
    let system_len = history.len();

    let turn = |session: &mut Session, history: &mut Vec<ChatMessage>, message: String| {
        history.push(ChatMessage {
            role: "user".into(),
            content: message,
        });
        let request = ChatRequest {
            model: session.model_id.clone(),
            messages: history.clone(),
            max_tokens: g.max_tokens,
            sampling: Some(g.sampling()),
            stop: g.stop.clone(),
        };
        let result = stream(global, |on_piece| {
            session.rt.stream_chat(&request, on_piece)
        });
        match result {
            Ok(run) => {
                report(global, &run, session.load_time);
                if run.completion.finish_reason == FinishReason::ContextFull && global.notes() {
                    eprintln!("(the context window is full: /reset starts a new conversation)");
                }
                history.push(ChatMessage {
                    role: "assistant".into(),
                    content: run.completion.text,
                });
                Ok(())
            }
            Err(e) => {
                history.pop();
                Err(e)
            }
        }
    };

    if let Some(message) = args.message {
        return Ok(turn(&mut session, &mut history, message)?);
    }

    let interactive = std::io::stdin().is_terminal();
    if interactive && !global.quiet {
        eprintln!(
            "chatting with {} (/reset clears the conversation, /exit or Ctrl-D quits)",
            session.model_id
        );
    }
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history.truncate(system_len);
                if !global.quiet {
                    eprintln!("(conversation cleared)");
                }
                continue;
            }
            _ => {}
        }
        // A failed turn is reported and the session goes on (after a trap the runtime has
        // loaded the model into a new instance; the error says so).
        match turn(&mut session, &mut history, line.to_string()) {
            Ok(()) => {}
            Err(e @ Error::Trap { .. }) => eprintln!("error: {e}"),
            Err(e) => {
                let full = matches!(&e, Error::Guest(llmkg_host::GuestError::InvalidInput(m)) if m.contains("context"));
                let hint = if full {
                    " (/reset starts a new conversation)"
                } else {
                    ""
                };
                eprintln!("error: {e}{hint}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(completion_tokens: u32, first_ms: u64, total_ms: u64) -> Run {
        Run {
            completion: Completion {
                text: "hi".into(),
                prompt_tokens: 5,
                completion_tokens,
                finish_reason: FinishReason::Length,
            },
            first_token: Some(Duration::from_millis(first_ms)),
            total: Duration::from_millis(total_ms),
        }
    }

    #[test]
    fn decode_rate_excludes_the_first_token_and_its_prefill() {
        let rate = run(11, 200, 1200).decode_tokens_per_s().unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn decode_rate_is_unknown_for_a_single_token() {
        assert_eq!(run(1, 200, 300).decode_tokens_per_s(), None);
    }

    #[test]
    fn json_report_has_the_documented_fields() {
        let value = run(11, 200, 1200).to_json(Duration::from_millis(1500));
        for field in [
            "text",
            "prompt_tokens",
            "completion_tokens",
            "finish_reason",
            "load_ms",
            "first_token_ms",
            "decode_tokens_per_s",
        ] {
            assert!(value.get(field).is_some(), "missing {field} in {value}");
        }
        assert_eq!(value["finish_reason"], "length");
    }
}
