//! Renders a chat template under a budget of bytes, so a template cannot allocate until memory
//! runs out (which traps the component).
//!
//! minijinja's fuel counts instructions, not bytes: `{% set ns.s = ns.s ~ ns.s %}` in a loop of 40
//! costs 40 steps and 2^40 bytes. So the template's compiled instructions are rewritten before
//! each render (minijinja's `unstable_machinery`), with checks after every instruction that
//! builds a value (`~`, `+`, `*`, filters, calls, list and map literals, captured blocks) and
//! before every write of output, each charging what it built to one budget per render:
//! [`TEMPLATE_BYTES`] of strings, lists and output, [`TEMPLATE_VISITS`] items examined, lists and
//! maps no deeper than [`TEMPLATE_NESTING`] (minijinja formats, compares and drops them
//! recursively, on the wasm stack). Filters whose output can outgrow their input by an argument
//! (`indent`, `batch`, `slice`, `replace`, `join`, `format`, `tojson`, the string methods
//! `replace`, `join`, `format`) are checked before they run. Values stored into a namespace must
//! be plain data, so no namespace can come to hold itself. A template may not include, import or
//! extend another (those would run unrewritten code).
//!
//! One instruction is checked after the fact: `*`, which minijinja itself caps at 100 MB per
//! string, so the peak is the budget plus that once.

use std::cell::Cell;
use std::collections::BTreeMap;

use minijinja::machinery::{get_compiled_template, make_string_output, Instruction, Instructions, Vm};
use minijinja::value::{Kwargs, Rest, StringInput, Value, ValueKind};
use minijinja::{filters, Environment, Error, ErrorKind, State};

/// Bytes of strings, list and map entries, and output one render may build in all. Real chat
/// templates build a few times the chat's own length.
pub const TEMPLATE_BYTES: usize = 64 << 20;
/// List and map items the checks may examine in one render (the time they take).
pub const TEMPLATE_VISITS: usize = 10_000_000;
/// How deep lists and maps built by a template may nest.
pub const TEMPLATE_NESTING: usize = 64;
/// What one list or map entry is charged (a minijinja `Value` is 24 bytes).
const ENTRY_BYTES: usize = 24;
/// The largest `tojson` indent accepted.
const MAX_JSON_INDENT: usize = 16;

const CHARGE_VALUE: &str = "llmkg:charge-value";
const CHARGE_OUTPUT: &str = "llmkg:charge-output";
const CHARGE_BYTES: &str = "llmkg:charge-bytes";
const CHECK_STORED: &str = "llmkg:check-stored";
const REFUSE_LOADING: &str = "llmkg:refuse-loading";

#[derive(Clone, Copy)]
struct Remaining {
    bytes: usize,
    visits: usize,
}

thread_local! {
    /// The budget of the render in progress on this thread (None outside a render).
    static REMAINING: Cell<Option<Remaining>> = const { Cell::new(None) };
}

fn exceeded(what: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, what)
}

fn bytes_exceeded() -> Error {
    exceeded(format!(
        "the template built more than {} MiB of text and values (the engine's limit per render)",
        TEMPLATE_BYTES >> 20
    ))
}

/// Fails unless `bytes` more fit in the budget, without spending them.
fn ensure_bytes(bytes: usize) -> Result<(), Error> {
    match REMAINING.get() {
        Some(r) if bytes > r.bytes => Err(bytes_exceeded()),
        _ => Ok(()),
    }
}

fn spend(bytes: usize, visits: usize) -> Result<(), Error> {
    let Some(mut r) = REMAINING.get() else {
        return Ok(());
    };
    if bytes > r.bytes {
        return Err(bytes_exceeded());
    }
    if visits > r.visits {
        return Err(exceeded(format!(
            "the template's values needed more than {TEMPLATE_VISITS} items examined (the engine's limit per render)"
        )));
    }
    r.bytes -= bytes;
    r.visits -= visits;
    REMAINING.set(Some(r));
    Ok(())
}

/// What a walk over a value found.
#[derive(Default)]
struct Shape {
    /// List and map entries, at every level.
    entries: usize,
    /// Bytes of the strings inside (not the top-level value's own).
    string_bytes: usize,
}

/// Walks the lists and maps inside `value` without recursion, refusing nesting deeper than
/// [`TEMPLATE_NESTING`] and, where `plain_only`, any object that is not a list or a plain map
/// (a namespace, a macro, a loop). Each entry visited is charged as a visit.
fn walk(value: &Value, plain_only: bool) -> Result<Shape, Error> {
    let mut shape = Shape::default();
    let mut pending: Vec<(Value, usize)> = vec![(value.clone(), 0)];
    while let Some((value, depth)) = pending.pop() {
        if plain_only {
            check_plain(&value)?;
        }
        if !matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) {
            continue;
        }
        if depth >= TEMPLATE_NESTING {
            return Err(exceeded(format!("the template nested lists or maps deeper than {TEMPLATE_NESTING}")));
        }
        let Ok(items) = value.try_iter() else {
            continue;
        };
        let is_map = value.kind() == ValueKind::Map;
        for item in items {
            spend(0, 1)?;
            shape.entries += 1;
            let item = if is_map {
                shape.string_bytes += item.as_str().map_or(0, str::len);
                value.get_item(&item).unwrap_or_default()
            } else {
                item
            };
            match item.as_str() {
                Some(s) => shape.string_bytes += s.len(),
                None => pending.push((item, depth + 1)),
            }
        }
    }
    Ok(shape)
}

fn check_plain(value: &Value) -> Result<(), Error> {
    let plain = match value.as_object() {
        None => true,
        Some(_) => match value.kind() {
            ValueKind::Seq | ValueKind::Iterable => true,
            ValueKind::Map => value.downcast_object_ref::<BTreeMap<Value, Value>>().is_some(),
            _ => false,
        },
    };
    if plain {
        Ok(())
    } else {
        Err(exceeded(format!(
            "a namespace attribute may hold strings, numbers, lists and maps, not a {} object (a namespace, macro or loop)",
            value.kind()
        )))
    }
}

/// Charges a value an instruction just built: its own string bytes, or its entries.
fn charge_value(value: Value) -> Result<Value, Error> {
    match value.as_str() {
        Some(s) => spend(s.len(), 0)?,
        None if matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) => {
            let shape = walk(&value, false)?;
            spend(shape.entries.saturating_mul(ENTRY_BYTES), 0)?;
        }
        None => {}
    }
    Ok(value)
}

/// Charges a value about to be written: what its text will take.
fn charge_output(value: Value) -> Result<Value, Error> {
    let bytes = match value.as_str() {
        Some(s) => s.len(),
        None => {
            let shape = walk(&value, false)?;
            shape.string_bytes + shape.entries.saturating_mul(8) + 32
        }
    };
    spend(bytes, 0)?;
    Ok(value)
}

/// The sum of the numbers written in a format string (widths and precisions), a bound on the
/// padding it can ask for.
fn format_padding(format: &str) -> usize {
    format
        .split(|c: char| !c.is_ascii_digit())
        .filter(|digits| !digits.is_empty())
        .map(|digits| digits.parse::<usize>().unwrap_or(usize::MAX))
        .fold(0usize, usize::saturating_add)
}

/// A count from a template as a size: numbers past the address space saturate, so on wasm32 too
/// the budget (not a conversion error) is what refuses them.
fn to_usize(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// What `text.replace(from, to)` will take.
fn replaced_bytes(text: &str, from: &str, to: &str) -> usize {
    let occurrences = if from.is_empty() { text.chars().count() + 1 } else { text.matches(from).count() };
    text.len().saturating_add(occurrences.saturating_mul(to.len()))
}

/// What joining `items` with `separator` will take.
fn joined_bytes(items: &Value, separator: usize) -> Result<usize, Error> {
    let shape = walk(items, false)?;
    Ok(shape.string_bytes + shape.entries.saturating_mul(separator.saturating_add(8)))
}

fn unsigned(value: &Value) -> usize {
    i64::try_from(value.clone()).map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

/// Registers the checks the rewritten instructions call, and the checked versions of the
/// filters that can outgrow their input.
pub fn install(env: &mut Environment<'static>) {
    env.add_filter(CHARGE_VALUE, charge_value);
    env.add_filter(CHARGE_OUTPUT, charge_output);
    env.add_filter(CHARGE_BYTES, |bytes: usize| -> Result<usize, Error> {
        spend(bytes, 0)?;
        Ok(bytes)
    });
    env.add_filter(CHECK_STORED, |value: Value| -> Result<Value, Error> {
        walk(&value, true)?;
        Ok(value)
    });
    env.add_filter(REFUSE_LOADING, |_: Value| -> Result<Value, Error> {
        Err(exceeded("a chat template may not include, import or extend other templates".into()))
    });

    env.add_filter(
        "indent",
        |value: StringInput, width: Option<u64>, first: Option<bool>, blank: Option<bool>, kwargs: Kwargs| {
            let lines = value.as_str().lines().count() + 1;
            let width = to_usize(width.or(kwargs.get::<Option<u64>>("width")?).unwrap_or(4));
            ensure_bytes(value.as_str().len().saturating_add(lines.saturating_mul(width)))?;
            filters::indent(value, Some(width), first, blank, kwargs)
        },
    );
    env.add_filter("batch", |state: &State, value: Value, count: u64, fill: Option<Value>| {
        let count = to_usize(count);
        ensure_bytes(count.saturating_mul(ENTRY_BYTES))?;
        filters::batch(state, value, count, fill)
    });
    env.add_filter("slice", |state: &State, value: Value, count: u64, fill: Option<Value>| {
        let count = to_usize(count);
        ensure_bytes(count.saturating_mul(ENTRY_BYTES))?;
        filters::slice(state, value, count, fill)
    });
    env.add_filter("replace", |state: &State, value: StringInput, from: StringInput, to: StringInput| {
        ensure_bytes(replaced_bytes(value.as_str(), from.as_str(), to.as_str()))?;
        filters::replace(state, value, from, to)
    });
    env.add_filter("join", |state: &State, value: &Value, joiner: Option<StringInput>| {
        ensure_bytes(joined_bytes(value, joiner.as_ref().map_or(0, |j| j.as_str().len()))?)?;
        filters::join(state, value, joiner)
    });
    env.add_filter("format", |state: &State, format: &Value, args: Rest<Value>| {
        let mut bytes = format.as_str().map_or(0, |f| f.len().saturating_add(format_padding(f)));
        for arg in args.iter() {
            bytes = bytes.saturating_add(arg.as_str().map_or(32, str::len));
        }
        ensure_bytes(bytes)?;
        filters::format(state, format, args)
    });
    env.add_filter("tojson", |value: &Value, indent: Option<Value>, kwargs: Kwargs| {
        let requested = indent.clone().or(kwargs.get::<Option<Value>>("indent")?);
        if let Some(n) = requested.as_ref().filter(|v| v.kind() == ValueKind::Number) {
            if unsigned(n) > MAX_JSON_INDENT {
                return Err(exceeded(format!("tojson's indent is at most {MAX_JSON_INDENT}")));
            }
        }
        filters::tojson(value, indent, kwargs)
    });

    // HF templates call Python string methods (.strip(), .startswith(), ...).
    env.set_unknown_method_callback(|state: &State, value: &Value, method: &str, args: &[Value]| {
        if let Some(text) = value.as_str() {
            let arg = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
            match method {
                "replace" => ensure_bytes(replaced_bytes(text, arg(0), arg(1)))?,
                "join" => ensure_bytes(joined_bytes(args.first().unwrap_or(&Value::UNDEFINED), text.len())?)?,
                "format" => {
                    let args_bytes = args.iter().map(|a| a.as_str().map_or(32, str::len)).fold(0usize, usize::saturating_add);
                    ensure_bytes(text.len().saturating_add(format_padding(text)).saturating_add(args_bytes))?
                }
                _ => {}
            }
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
}

/// The instructions with the budget's checks in place: jump targets move with the instructions
/// they pointed at.
fn instrument<'s>(original: &Instructions<'s>) -> Instructions<'s> {
    let check = |name: &'static str| Instruction::ApplyFilter(name, Some(1), !0);
    let groups: Vec<Vec<Instruction<'s>>> = (0..original.len() as u32)
        .map(|pc| {
            let instruction = original.get(pc).expect("pc below len").clone();
            match instruction {
                Instruction::Emit => vec![check(CHARGE_OUTPUT), instruction],
                Instruction::EmitRaw(text) => vec![
                    Instruction::LoadConst(Value::from(text.len())),
                    check(CHARGE_BYTES),
                    Instruction::DiscardTop,
                    instruction,
                ],
                // The stack holds [value, namespace].
                Instruction::SetAttr(_) => vec![Instruction::Swap, check(CHECK_STORED), Instruction::Swap, instruction],
                Instruction::Include(_) | Instruction::LoadBlocks => vec![check(REFUSE_LOADING)],
                Instruction::Add
                | Instruction::Mul
                | Instruction::StringConcat
                | Instruction::ApplyFilter(..)
                | Instruction::CallFunction(..)
                | Instruction::CallMethod(..)
                | Instruction::CallObject(..)
                | Instruction::BuildList(..)
                | Instruction::BuildMap(..)
                | Instruction::EndCapture => vec![instruction, check(CHARGE_VALUE)],
                // (`FastRecurse` and `FastSuper` write their output instead of pushing it.)
                _ => vec![instruction],
            }
        })
        .collect();
    let mut starts = Vec::with_capacity(groups.len() + 1);
    let mut next = 0u32;
    for group in &groups {
        starts.push(next);
        next += group.len() as u32;
    }
    starts.push(next);
    let moved = |target: u32| starts.get(target as usize).copied().unwrap_or(next);
    let mut rewritten = Instructions::new(original.name(), original.source());
    for (pc, group) in groups.into_iter().enumerate() {
        let line = original.get_line(pc as u32).unwrap_or(0).min(u16::MAX as usize) as u16;
        for instruction in group {
            let instruction = match instruction {
                Instruction::Jump(t) => Instruction::Jump(moved(t)),
                Instruction::JumpIfFalse(t) => Instruction::JumpIfFalse(moved(t)),
                Instruction::JumpIfFalseOrPop(t) => Instruction::JumpIfFalseOrPop(moved(t)),
                Instruction::JumpIfTrueOrPop(t) => Instruction::JumpIfTrueOrPop(moved(t)),
                Instruction::Iterate(t) => Instruction::Iterate(moved(t)),
                Instruction::BuildMacro(name, t, flags) => Instruction::BuildMacro(name, moved(t), flags),
                other => other,
            };
            rewritten.add_with_line(instruction, line);
        }
    }
    rewritten
}

/// Clears the budget when a render ends, however it ends.
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        REMAINING.set(None);
    }
}

/// Renders template `name` of `env` (set up by [`install`]) with `root` as its context.
pub fn render(env: &Environment<'static>, name: &str, root: Value) -> Result<String, Error> {
    let template = env.get_template(name)?;
    let compiled = get_compiled_template(&template);
    let instructions = instrument(&compiled.instructions);
    let blocks: BTreeMap<_, _> = compiled.blocks.iter().map(|(name, block)| (*name, instrument(block))).collect();
    let _armed = Armed;
    REMAINING.set(Some(Remaining { bytes: TEMPLATE_BYTES, visits: TEMPLATE_VISITS }));
    let mut text = String::new();
    let mut out = make_string_output(&mut text);
    Vm::new(env).eval(&instructions, root, &blocks, &mut out, compiled.initial_auto_escape)?;
    drop(out);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(source: &str) -> Environment<'static> {
        let mut env = Environment::new();
        install(&mut env);
        env.add_template_owned("t", source.to_string()).unwrap();
        env
    }

    fn render_ok(source: &str) -> String {
        render(&env(source), "t", Value::from_serialize(serde_json::json!({"xs": [1, 2, 3], "name": "world"}))).unwrap()
    }

    fn render_err(source: &str) -> String {
        render(&env(source), "t", Value::UNDEFINED).unwrap_err().to_string()
    }

    #[test]
    fn rewritten_templates_render_as_before() {
        let cases = [
            ("Hello {{ name }}!", "Hello world!"),
            ("{% for x in xs %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "1,2,3"),
            ("{% set ns = namespace(s='') %}{% for x in xs %}{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.s }}", "123"),
            ("{% macro m(a) %}<{{ a }}>{% endmacro %}{{ m('x') }}{{ m(name) }}", "<x><world>"),
            ("{% set b %}{{ xs|join('-') }}{% endset %}{{ b|upper }}", "1-2-3"),
            ("{{ [1, 2] + [3] }} {{ 'ab' * 2 }} {{ {'k': 'v'}['k'] }}", "[1, 2, 3] abab v"),
            ("{% for x in [[1, [2]], [3]] recursive %}{% if x is sequence %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}", "123"),
            ("{% if xs|length > 2 and name.startswith('wor') %}{{ name.replace('o', '0') }}{% endif %}", "w0rld"),
            ("{{ 'a\nb'|indent(2) }}|{{ xs|batch(2)|list|length }}|{{ '%s-%s'|format(1, 2) }}|{{ xs|tojson }}", "a\n  b|2|1-2|[1,2,3]"),
        ];
        for (source, expected) in cases {
            assert_eq!(render_ok(source), expected, "{source}");
        }
    }

    /// Chat templates in the shape of published ones (tools, namespaces, loop variables, string
    /// methods, tojson), rendered by the rewritten instructions and by minijinja as it is.
    #[test]
    fn chat_templates_render_exactly_as_unrewritten() {
        let templates = [
            // Qwen2.5-style: tools as JSON, tool calls, a namespace scanning backwards.
            "{%- if tools %}{{- '<|im_start|>system\n' }}{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}{%- else %}{{- 'You are helpful.' }}{%- endif %}{{- '\n\n# Tools\n<tools>' }}{%- for tool in tools %}{{- '\n' }}{{- tool | tojson }}{%- endfor %}{{- '\n</tools><|im_end|>\n' }}{%- endif %}{%- set ns = namespace(last_user=-1, found=false) %}{%- for message in messages[::-1] %}{%- if not ns.found and message.role == 'user' %}{%- set ns.last_user = messages|length - 1 - loop.index0 %}{%- set ns.found = true %}{%- endif %}{%- endfor %}{%- for message in messages %}{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}{{- '<|im_start|>' + message.role + '\n' + message.content.strip() + '<|im_end|>' + '\n' }}{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant\n' + message.content }}{%- if loop.index0 > ns.last_user %}{{- ' (after the last user turn)' }}{%- endif %}{{- '<|im_end|>\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}",
            // Llama-3-style: a system message taken apart, a date, a macro, trimming.
            "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}{%- macro header(role) %}{{- '<|start_header_id|>' ~ role ~ '<|end_header_id|>\n\n' }}{%- endmacro %}{{- header('system') }}{{- 'Cutting Knowledge Date: December 2023\n' }}{{- system_message }}{{- '<|eot_id|>' }}{%- for message in messages %}{{- header(message['role']) ~ message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- header('assistant') }}{%- endif %}",
            // Mistral-style: alternation checked, [INST] turns, a namespace accumulating text.
            "{%- set ns = namespace(text='') %}{%- for message in messages %}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) and message['role'] != 'system' %}{{ raise_exception('roles must alternate') }}{%- endif %}{%- if message['role'] == 'user' %}{%- set ns.text = ns.text ~ '[INST] ' ~ message['content'] ~ ' [/INST]' %}{%- elif message['role'] == 'assistant' %}{%- set ns.text = ns.text ~ message['content'] ~ eos_token %}{%- endif %}{%- endfor %}{{ bos_token ~ ns.text }}{{ messages|map(attribute='role')|join(',')|upper }}{{ (messages|selectattr('role', 'equalto', 'user')|list|length) }}",
        ];
        let context = serde_json::json!({
            "messages": [
                {"role": "user", "content": "  What is the capital of France?  "},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And of Spain?"},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "add_generation_prompt": true,
            "bos_token": "<s>",
            "eos_token": "</s>",
        });
        for source in templates {
            let env = env(source);
            let root = Value::from_serialize(&context);
            let expected = env.get_template("t").unwrap().render(root.clone()).unwrap();
            assert_eq!(render(&env, "t", root).unwrap(), expected, "{source}");
            assert!(expected.len() > 60, "{expected}");
        }
    }

    #[test]
    fn growth_beyond_the_budget_is_an_error() {
        let cases = [
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
            "{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('x', 60) }}",
            "{% macro d(s) %}{{ s }}{{ s }}{% endmacro %}{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = d(ns.s) %}{% endfor %}",
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('a', 'aa') %}{% endfor %}",
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('a', ns.s) %}{% endfor %}",
            "{{ 'x'|indent(1000000000000) }}",
            "{{ [1]|batch(1000000000000, 0)|list }}",
            "{{ range(100000)|join('x' * 10000) }}",
            "{{ '%1000000000000d'|format(1) }}",
            "{% set ns = namespace(s='\"') %}{% for i in range(60) %}{% set ns.s = ns.s|tojson %}{% endfor %}",
            "{% for i in range(100000) %}{% set ns = namespace(s='x' * 100000) %}{{ ns.s }}{% endfor %}",
        ];
        for source in cases {
            let message = render_err(source);
            assert!(message.contains("MiB of text and values") || message.contains("items examined"), "{source}: {message}");
        }
    }

    #[test]
    fn deep_nesting_and_namespace_cycles_are_errors() {
        let deep =
            render_err("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}");
        assert!(deep.contains("deeper than 64"), "{deep}");
        let cycle = render_err("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns ~ '' }}");
        assert!(cycle.contains("namespace attribute"), "{cycle}");
        let inside = render_err("{% set ns = namespace() %}{% set ns.me = [1, {'a': ns}] %}");
        assert!(inside.contains("namespace attribute"), "{inside}");
        assert_eq!(
            render_ok("{% set ns = namespace(m=none) %}{% set ns.m = {'role': 'user', 'xs': xs} %}{{ ns.m.role }}"),
            "user"
        );
    }

    #[test]
    fn templates_may_not_load_templates() {
        for source in ["{% include 't' %}", "{% import 't' as m %}", "{% extends 't' %}", "{% from 't' import x %}"] {
            let message = render_err(source);
            assert!(message.contains("may not include"), "{source}: {message}");
        }
    }
}
