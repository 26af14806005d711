//! `llmkg`: the command line for the llmkg component under Wasmtime. Parses flags, moves files and
//! text in and out, prints results; every model, tokenizer and sampler decision is the component's.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::GlobalArgs;

#[derive(Parser)]
#[command(
    name = "llmkg",
    version,
    about = "Run the llmkg WebAssembly component: generate, chat, embed, the knowledge graph, serve over HTTP."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    graph: cli::kg::GraphArgs,
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each lives in its own module under `cli/`.
#[derive(Subcommand)]
enum Command {
    /// Complete a raw prompt (no chat template).
    Generate(cli::generate::GenerateArgs),
    /// Chat with the model's own template; without MESSAGE, an interactive session.
    Chat(cli::generate::ChatArgs),
    /// Sentence embeddings for one or more texts, with their cosine similarities.
    Embed(cli::embed::EmbedArgs),
    /// Perplexity and per-token log-probabilities of a text (teacher-forced).
    Score(cli::score::ScoreArgs),
    /// Load models and report the component's memory use and build.
    Stats(cli::stats::StatsArgs),
    /// List the models in the model cache directory.
    Models(cli::models::ModelsArgs),
    /// The knowledge graph: import, export, insert, remove, stats.
    #[command(subcommand)]
    Kg(cli::kg::KgCommand),
    /// Run a SPARQL 1.1 query or update on the knowledge graph.
    Query(cli::kg::QueryArgs),
    /// Semantic search over the graph's entity labels.
    Search(cli::kg::SearchArgs),
    /// Answer a question from facts retrieved from the graph (graph RAG).
    Ask(cli::kg::AskArgs),
    /// Re-quantize a GGUF model to one block type and compare perplexity before and after.
    Quantize(cli::quantize::QuantizeArgs),
    /// Measure the component against the same engine native, in one run (tok/s, latency).
    Bench(cli::bench::BenchArgs),
    /// Serve the OpenAI-compatible API, the SPARQL 1.1 Protocol and the graph over HTTP.
    Serve(cli::serve::ServeArgs),
    /// Snapshot the engine with models (and a graph) loaded, composed with the HTTP front.
    Preinit(cli::serve::PreinitArgs),
    /// Compose the HTTP front with the engine into one deployable component.
    Compose(cli::serve::ComposeArgs),
}

fn main() -> ExitCode {
    let Cli { global, graph, command } = Cli::parse();
    let result = match command {
        Command::Generate(args) => cli::generate::run_generate(&global, args),
        Command::Chat(args) => cli::generate::run_chat(&global, args),
        Command::Embed(args) => cli::embed::run(&global, args),
        Command::Score(args) => cli::score::run(&global, args),
        Command::Stats(args) => cli::stats::run(&global, args),
        Command::Models(args) => cli::models::run(&global, args),
        Command::Bench(args) => cli::bench::run(&global, args),
        Command::Quantize(args) => cli::quantize::run(&global, args),
        Command::Kg(command) => cli::kg::run_kg(&global, &graph, command),
        Command::Query(args) => cli::kg::run_query(&global, &graph, args),
        Command::Search(args) => cli::kg::run_search(&global, &graph, args),
        Command::Ask(args) => cli::kg::run_ask(&global, &graph, args),
        Command::Serve(args) => cli::serve::run_serve(&global, &graph, args),
        Command::Preinit(args) => cli::serve::run_preinit(&global, &graph, args),
        Command::Compose(args) => cli::serve::run_compose(&global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_parse_sizes_and_durations_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "llmkg",
            "generate",
            "hi",
            "--max-memory",
            "512MiB",
            "--timeout",
            "30s",
        ])
        .unwrap();
        assert_eq!(cli.global.max_memory, 512 << 20);
        assert_eq!(cli.global.timeout, Some(std::time::Duration::from_secs(30)));
        let cli = Cli::try_parse_from(["llmkg", "chat"]).unwrap();
        assert_eq!(cli.global.max_memory, 2 << 30);
        assert!(matches!(cli.command, Command::Chat(ref c) if c.message.is_none()));
    }
}
