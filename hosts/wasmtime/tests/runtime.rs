//! The runtime against a scripted stand-in component (`tests/stub-guest`): chunked uploads, WIT
//! errors, traps and recovery, timeouts, memory limits, resource cleanup and the compile cache.
//! The real component's behaviour is tested end to end in the workspace's `tests/` crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use llmkg_host::{
    CacheOutcome, CompiledComponent, Error, GenerateRequest, GuestError, LlmkgRuntime, LoadOptions,
    ModelKind, RuntimeOptions, WeightConversion,
};

/// Builds the stub component once per test run (into Cargo's scratch dir for integration tests).
fn stub_component() -> &'static Path {
    static STUB: OnceLock<PathBuf> = OnceLock::new();
    STUB.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stub-guest/Cargo.toml");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stub-guest");
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("run cargo to build the stub component");
        assert!(status.success(), "building {} failed", manifest.display());
        target.join("wasm32-wasip2/release/llmkg_stub_guest.wasm")
    })
}

fn compiled() -> &'static CompiledComponent {
    static COMPILED: OnceLock<CompiledComponent> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stub-compiled");
        CompiledComponent::load(stub_component(), Some(&cache)).expect("load the stub component")
    })
}

fn runtime(options: RuntimeOptions) -> LlmkgRuntime {
    LlmkgRuntime::new(compiled(), options).expect("instantiate the stub")
}

fn options() -> LoadOptions {
    LoadOptions {
        conversion: WeightConversion::Auto,
        context_length: None,
    }
}

/// Writes `size` bytes to a fresh file named `name` in a directory of its own.
fn model_file(test: &str, name: &str, size: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("models-{test}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, vec![7u8; size]).unwrap();
    path
}

fn load_tiny(rt: &mut LlmkgRuntime, test: &str) {
    let file = model_file(test, "tiny.gguf", 10);
    rt.load_model(
        "tiny",
        ModelKind::TextGeneration,
        &[file],
        &options(),
        |_, _, _| {},
    )
    .unwrap();
}

fn request(prompt: &str) -> GenerateRequest {
    GenerateRequest {
        model: "tiny".into(),
        prompt: prompt.into(),
        max_tokens: 16,
        sampling: None,
        stop: vec![],
    }
}

/// The stub reports its live resources as pseudo-models in memory-stats.
fn live(rt: &mut LlmkgRuntime, what: &str) -> u64 {
    let stats = rt.memory_stats().unwrap();
    stats
        .models
        .iter()
        .find(|m| m.id == what)
        .map(|m| m.cache_bytes)
        .unwrap()
}

#[test]
fn model_files_stream_in_4_mib_chunks_with_names_sizes_and_progress() {
    let mut rt = runtime(RuntimeOptions::default());
    let big = model_file("chunks", "model.safetensors", 9 << 20);
    let small = model_file("chunks", "config.json", 612);
    let mut calls = Vec::new();
    let info = rt
        .load_model(
            "emb",
            ModelKind::Embedding,
            &[big, small],
            &options(),
            |name, done, total| calls.push((name.to_string(), done, total)),
        )
        .unwrap();
    assert_eq!(
        info.architecture,
        format!("model.safetensors:{},config.json:612", 9 << 20)
    );
    assert_eq!(info.weight_bytes, (9 << 20) + 612);
    let total = (9 << 20) + 612;
    // begin + 3 chunks for the big file, begin + 1 chunk for the small one.
    let done: Vec<u64> = calls.iter().map(|c| c.1).collect();
    assert_eq!(done, [0, 4 << 20, 8 << 20, 9 << 20, 9 << 20, total]);
    assert!(calls.iter().all(|c| c.2 == total));
    assert_eq!(calls.last().unwrap().0, "config.json");
    assert_eq!(
        live(&mut rt, "live-uploads"),
        0,
        "the upload resource is dropped"
    );
}

#[test]
fn a_missing_model_file_is_an_io_error_naming_it() {
    let mut rt = runtime(RuntimeOptions::default());
    let missing = PathBuf::from("/nonexistent/model.gguf");
    let err = rt
        .load_model(
            "x",
            ModelKind::TextGeneration,
            std::slice::from_ref(&missing),
            &options(),
            |_, _, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("/nonexistent/model.gguf: "),
        "{err}"
    );
}

#[test]
fn a_rejected_upload_is_a_guest_error_and_its_resource_is_dropped() {
    let mut rt = runtime(RuntimeOptions::default());
    let bad = model_file("rejected", "bad.gguf", 100);
    let err = rt
        .load_model(
            "bad",
            ModelKind::TextGeneration,
            &[bad],
            &options(),
            |_, _, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Guest(GuestError::InvalidModel(_))),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("invalid-model: "), "{err}");
    assert_eq!(live(&mut rt, "live-uploads"), 0);
    assert_eq!(rt.restarts(), 0);
}

#[test]
fn whole_file_loading_passes_the_bytes() {
    let mut rt = runtime(RuntimeOptions::default());
    let files = [llmkg_host::ModelFile {
        name: "m.gguf".into(),
        bytes: vec![1; 1000],
    }];
    let info = rt
        .load_model_bytes("m", ModelKind::TextGeneration, &files, &options())
        .unwrap();
    assert_eq!(info.architecture, "m.gguf:1000");
    assert_eq!(rt.list_models().unwrap().len(), 1);
    rt.unload_model("m").unwrap();
    assert!(rt.list_models().unwrap().is_empty());
}

#[test]
fn a_wit_error_leaves_the_instance_and_its_models_alone() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "wit-error");
    let err = rt.generate(&request("fail")).unwrap_err();
    assert_eq!(err.to_string(), "invalid-input: the stub was asked to fail");
    assert_eq!(rt.restarts(), 0);
    assert_eq!(
        rt.generate(&request("still here")).unwrap().text,
        "still here"
    );
}

#[test]
fn a_panic_is_a_trap_that_restarts_the_instance_with_the_panic_message() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "panic");
    let err = rt.generate(&request("panic")).unwrap_err();
    let Error::Trap {
        timed_out,
        ref guest_stderr,
        ..
    } = err
    else {
        panic!("expected a trap, got {err:?}")
    };
    assert!(!timed_out);
    assert!(
        guest_stderr.contains("the stub was asked to panic"),
        "{guest_stderr}"
    );
    assert!(
        err.to_string().contains("new instance was started (the models tiny were loaded again)"),
        "{err}"
    );
    assert_eq!(rt.restarts(), 1);
    // The runtime loaded the model it had loaded into the fresh instance.
    let ids: Vec<String> = rt.list_models().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["tiny"]);
    assert_eq!(
        rt.generate(&request("hello again")).unwrap().text,
        "hello again"
    );
    // An unloaded model is not brought back by the next trap.
    rt.unload_model("tiny").unwrap();
    let err = rt.generate(&request("panic")).unwrap_err();
    assert!(err.is_trap() || err.guest().is_some(), "{err:?}");
    assert!(rt.list_models().unwrap().is_empty());
}

#[test]
fn the_timeout_interrupts_an_endless_call_and_the_runtime_recovers() {
    let mut rt = runtime(RuntimeOptions {
        timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    });
    load_tiny(&mut rt, "timeout");
    let start = Instant::now();
    let err = rt.generate(&request("spin")).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Trap {
                timed_out: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("200ms timeout"), "{err}");
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    load_tiny(&mut rt, "timeout");
    assert_eq!(rt.generate(&request("quick")).unwrap().text, "quick");
}

#[test]
fn without_a_timeout_calls_are_not_interrupted() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "no-timeout");
    // Long enough for many epoch ticks to pass.
    let text = "word ".repeat(2000);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        rt.generate(&request(&text)).unwrap().completion_tokens,
        2000
    );
}

#[test]
fn memory_growth_past_the_limit_fails_inside_the_guest_instead_of_trapping() {
    let mut rt = runtime(RuntimeOptions {
        max_memory: Some(64 << 20),
        ..Default::default()
    });
    load_tiny(&mut rt, "limit");
    let err = rt.generate(&request("try-alloc 200000000")).unwrap_err();
    assert!(
        matches!(err, Error::Guest(GuestError::ResourceExhausted(_))),
        "{err:?}"
    );
    assert_eq!(rt.restarts(), 0);
    assert!(rt.memory_stats().unwrap().linear_memory_bytes <= 64 << 20);
    // Within the limit the same request works.
    assert_eq!(
        rt.generate(&request("try-alloc 1000000")).unwrap().text,
        "allocated 1000000"
    );
}

#[test]
fn an_allocation_the_guest_cannot_survive_is_a_trap_and_the_runtime_recovers() {
    let mut rt = runtime(RuntimeOptions {
        max_memory: Some(64 << 20),
        ..Default::default()
    });
    load_tiny(&mut rt, "oom");
    let err = rt.generate(&request("alloc 200000000")).unwrap_err();
    assert!(err.is_trap(), "{err:?}");
    assert_eq!(rt.restarts(), 1);
    load_tiny(&mut rt, "oom");
    assert_eq!(rt.generate(&request("fine")).unwrap().text, "fine");
}

#[test]
fn streaming_delivers_every_piece_then_the_completion_and_drops_the_stream() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "stream");
    let mut pieces = Vec::new();
    let completion = rt
        .stream(&request("one two three"), |p| pieces.push(p.to_string()))
        .unwrap();
    assert_eq!(pieces, ["one", " two", " three"]);
    assert_eq!(completion.text, pieces.concat());
    assert_eq!(completion.completion_tokens, 3);
    assert_eq!(live(&mut rt, "live-token-streams"), 0);
}

#[test]
fn a_chat_streams_like_a_completion() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "chat");
    let request = llmkg_host::ChatRequest {
        model: "tiny".into(),
        messages: vec![llmkg_host::ChatMessage {
            role: "user".into(),
            content: "hi there".into(),
        }],
        max_tokens: 8,
        sampling: None,
        stop: vec![],
    };
    let mut text = String::new();
    let completion = rt.stream_chat(&request, |p| text.push_str(p)).unwrap();
    assert_eq!(completion.text, "hi there");
    assert_eq!(text, "hi there");
    assert_eq!(rt.chat(&request).unwrap().text, "hi there");
    assert_eq!(live(&mut rt, "live-token-streams"), 0);
}

#[test]
fn a_trap_mid_stream_keeps_the_pieces_already_delivered() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "stream-trap");
    let mut pieces = Vec::new();
    let err = rt
        .stream(&request("one two boom four"), |p| {
            pieces.push(p.to_string())
        })
        .unwrap_err();
    assert!(err.is_trap(), "{err:?}");
    assert_eq!(pieces, ["one", " two"]);
    assert_eq!(
        live(&mut rt, "live-token-streams"),
        0,
        "the fresh instance holds nothing"
    );
}

#[test]
fn an_unknown_model_is_a_not_found_error() {
    let mut rt = runtime(RuntimeOptions::default());
    let err = rt.stream(&request("hello"), |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Guest(GuestError::NotFound(_))),
        "{err:?}"
    );
}

#[test]
fn embed_tokenize_detokenize_and_build_info_pass_through() {
    let mut rt = runtime(RuntimeOptions::default());
    load_tiny(&mut rt, "misc");
    assert_eq!(
        rt.embed("tiny", &["abc".into(), "de".into()]).unwrap(),
        [vec![3.0, 1.0], vec![2.0, 1.0]]
    );
    let tokens = rt.tokenize("tiny", "hé", true).unwrap();
    assert_eq!(rt.detokenize("tiny", &tokens).unwrap(), "hé");
    let info = rt.build_info().unwrap();
    assert_eq!(info.engine_version, "stub");
}

#[test]
fn the_second_load_of_a_component_comes_from_the_compile_cache() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stub-compiled-second");
    let _ = std::fs::remove_dir_all(&cache);
    let first = CompiledComponent::load(stub_component(), Some(&cache)).unwrap();
    assert_eq!(first.report.outcome, CacheOutcome::Miss);
    let second = CompiledComponent::load(stub_component(), Some(&cache)).unwrap();
    assert_eq!(second.report.outcome, CacheOutcome::Hit);
    assert_eq!(first.report.cache_file, second.report.cache_file);
    eprintln!(
        "stub component: compiled in {:?}, loaded from cache in {:?}",
        first.report.load_time, second.report.load_time
    );
    // A cached component runs like a compiled one.
    let mut rt = LlmkgRuntime::new(&second, RuntimeOptions::default()).unwrap();
    assert_eq!(rt.build_info().unwrap().engine_version, "stub");
}
