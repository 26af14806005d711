//! Chat-template rendering (a GGUF's template is a program from a stranger): any source either
//! fails to compile, fails to render, or renders within the fuel budget and output cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkg_engine::text::chat_template::ChatTemplate;
use llmkg_engine::ChatMessage;
use llmkg_fuzz::check_error;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let template = match ChatTemplate::new(Some(source), "llama", "<s>".into(), "</s>".into()) {
        Ok(t) => t,
        Err(err) => return check_error(&err),
    };
    let message = |role: &str, content: &str| ChatMessage { role: role.into(), content: content.into() };
    let messages = [message("system", "Be brief."), message("user", "Hi {{ 7*7 }}"), message("assistant", "Hello."), message("user", "Bye")];
    if let Err(err) = template.render(&messages) {
        check_error(&err);
    }
});
