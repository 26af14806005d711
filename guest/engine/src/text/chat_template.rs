//! Chat prompts rendered from the model's own `tokenizer.chat_template` (Jinja) with minijinja.

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::types::ChatMessage;

/// ChatML, used when a GGUF carries no template of its own and its architecture has no known
/// turn format.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Gemma's turn format (Google's template for Gemma 2 and 3, less the BOS the tokenizer adds):
/// Gemma has no system role, so a system message is folded into the first user turn, and the
/// assistant's turns are the "model" role.
const GEMMA_TURNS: &str = "{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}";

/// The template for a file without `tokenizer.chat_template`: its architecture's own turn
/// format where the engine knows one, else ChatML.
fn fallback_template(architecture: &str) -> &'static str {
    match architecture {
        "gemma" | "gemma2" | "gemma3" => GEMMA_TURNS,
        _ => CHATML,
    }
}

/// Limits on rendering, since a template is a program that comes with the model file: fuel
/// (minijinja's instruction count; real chat templates use a few thousand per message), nested
/// macro and include calls (each level is several frames of the wasm stack), and the size of
/// the prompt written (far above any context length); bytes built are bounded by
/// [`super::template_budget`]. docs/LIMITS.md has the measurements.
pub const TEMPLATE_FUEL: u64 = 20_000_000;
pub const TEMPLATE_RECURSION: usize = 64;
pub const TEMPLATE_OUTPUT: usize = 16 << 20;

pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Sent as the system message when a chat has none (see [`default_system_message`]).
    pub default_system: Option<&'static str>,
}

/// Per-model chat defaults the file alone gets wrong, decided here once for every host.
/// SmolLM2's template puts "You are a helpful AI assistant named SmolLM, trained by Hugging
/// Face" in when no system message is given, after which the 135M model answers "What is the
/// capital of France?" greedily with a list of French words (llama.cpp does the same on this
/// file); a plain system message gives the right answer.
fn default_system_message(template: &str) -> Option<&'static str> {
    template.contains("named SmolLM").then_some("You are a helpful assistant.")
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

impl ChatTemplate {
    /// `source` is the file's `tokenizer.chat_template`; without one, the architecture's
    /// turn format (see [`fallback_template`]).
    pub fn new(source: Option<&str>, architecture: &str, bos_token: String, eos_token: String) -> Result<Self> {
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION);
        // Checks against a byte budget, and Python string methods (.strip(), .startswith(), ...).
        super::template_budget::install(&mut env);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.unwrap_or(fallback_template(architecture)).to_string())
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer.chat_template does not parse: {e}")))?;
        let default_system = source.and_then(default_system_message);
        Ok(ChatTemplate { env, bos_token, eos_token, default_system })
    }

    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(EngineError::InvalidInput("messages is empty; a chat needs at least one message".into()));
        }
        for (i, m) in messages.iter().enumerate() {
            if !matches!(m.role.as_str(), "system" | "user" | "assistant" | "tool") {
                return Err(EngineError::InvalidInput(format!(
                    "messages[{i}].role is {:?}; expected system, user, assistant or tool",
                    m.role
                )));
            }
        }
        let mut rendered: Vec<Message> = Vec::with_capacity(messages.len() + 1);
        if let Some(system) = self.default_system.filter(|_| !messages.iter().any(|m| m.role == "system")) {
            rendered.push(Message { role: "system", content: system });
        }
        rendered.extend(messages.iter().map(|m| Message { role: &m.role, content: &m.content }));
        let messages = rendered;
        let context = context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        };
        let prompt = super::template_budget::render(&self.env, "chat", context).map_err(|e| {
            let limit = match e.kind() {
                ErrorKind::OutOfFuel => format!(" (its budget is {TEMPLATE_FUEL} steps)"),
                _ => String::new(),
            };
            EngineError::InvalidInput(format!("rendering the chat template (tokenizer.chat_template): {e}{limit}"))
        })?;
        if prompt.len() > TEMPLATE_OUTPUT {
            return Err(EngineError::InvalidInput(format!(
                "rendering the chat template (tokenizer.chat_template): the rendered prompt would exceed {} MiB",
                TEMPLATE_OUTPUT >> 20
            )));
        }
        Ok(prompt)
    }
}
