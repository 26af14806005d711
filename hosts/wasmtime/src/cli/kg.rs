//! The knowledge-graph commands: `kg import|export|insert|remove|stats`, `query`, `search`,
//! `ask`. Each opens the component, loads the graph saved in the data directory (snapshot and
//! change log), does its one thing, and commits what it changed as one logged change.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use llmkg_host::datadir::{default_data_dir, DataDir};
use llmkg_host::file_url::file_url;
use llmkg_host::models::{DEFAULT_EMBEDDING_MODEL, DEFAULT_TEXT_MODEL};
use llmkg_host::{
    json, AskOptions, ChangeReport, Fact, FactObject, ImportOptions, LlmkgRuntime, LoadOptions, QueryResult, RdfFormat, ResultsFormat, Term,
    WeightConversion,
};
use serde_json::json;

use super::{load_model, print_json, GlobalArgs};

#[derive(Args, Debug, Clone)]
pub struct GraphArgs {
    /// Where the graph is kept between runs.
    #[arg(long, global = true, value_name = "DIR", env = "LLMKG_DATA")]
    pub data_dir: Option<PathBuf>,
}

impl GraphArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    fn dir(&self) -> DataDir {
        DataDir::new(self.data_dir())
    }
}

#[derive(Subcommand, Debug)]
pub enum KgCommand {
    /// Import an RDF file (N-Triples .nt, N-Quads .nq, Turtle .ttl, TriG .trig, RDF/XML .rdf,
    /// JSON-LD .jsonld); all or nothing.
    Import {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// The IRI relative IRIs in the file resolve against (default: the file's own file: URL).
        #[arg(long, value_name = "IRI")]
        base: Option<String>,
        /// Put the file's default-graph triples into this named graph (default: the default graph).
        #[arg(long, value_name = "IRI")]
        graph: Option<String>,
    },
    /// Write the graph to stdout (or --output FILE).
    Export {
        #[arg(long, value_enum, default_value_t = Format::Turtle)]
        format: Format,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Add one fact. Names without a scheme become IRIs in urn:llmkg: with a label.
    Insert(FactArgs),
    /// Remove one fact.
    Remove(FactArgs),
    /// Triples, entities and search-index size.
    Stats,
    /// Fold the change log into a new snapshot (done on its own when the log grows large).
    Compact,
    /// Set aside a damaged change (and those after it) so the graph loads at the last good one.
    Repair,
}

#[derive(Args, Debug)]
pub struct FactArgs {
    pub subject: String,
    pub predicate: String,
    pub object: String,
    /// The object is a text literal, not an entity.
    #[arg(long)]
    pub literal: bool,
    #[arg(long)]
    pub confidence: Option<f32>,
    #[arg(long)]
    pub source: Option<String>,
}

impl FactArgs {
    fn fact(&self) -> Fact {
        Fact {
            subject: self.subject.clone(),
            predicate: self.predicate.clone(),
            object: if self.literal { FactObject::Text(self.object.clone()) } else { FactObject::Entity(self.object.clone()) },
            confidence: self.confidence,
            source: self.source.clone(),
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    #[value(name = "ntriples")]
    NTriples,
    #[value(name = "nquads")]
    NQuads,
    Turtle,
    #[value(name = "trig")]
    TriG,
    #[value(name = "rdfxml")]
    RdfXml,
    #[value(name = "jsonld")]
    JsonLd,
}

impl From<Format> for RdfFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::NTriples => RdfFormat::NTriples,
            Format::NQuads => RdfFormat::NQuads,
            Format::Turtle => RdfFormat::Turtle,
            Format::TriG => RdfFormat::Trig,
            Format::RdfXml => RdfFormat::RdfXml,
            Format::JsonLd => RdfFormat::JsonLd,
        }
    }
}

impl Format {
    /// The format a file's extension names.
    pub fn of_file(path: &std::path::Path) -> Result<Format> {
        Ok(match path.extension().and_then(|e| e.to_str()) {
            Some("nt") => Format::NTriples,
            Some("nq") => Format::NQuads,
            Some("ttl") => Format::Turtle,
            Some("trig") => Format::TriG,
            Some("rdf" | "owl" | "xml") => Format::RdfXml,
            Some("jsonld") => Format::JsonLd,
            _ => bail!("cannot tell the RDF format of {} from its extension (.nt .nq .ttl .trig .rdf .jsonld); pass --format", path.display()),
        })
    }
}

/// `query --format`: the engine's serializers (the same as the HTTP `/sparql` route's).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFormat {
    /// Rows as tab-separated terms (or --json).
    Table,
    Json,
    Xml,
    Csv,
    Tsv,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    pub sparql: String,
    /// At most this many rows (0: all).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Solutions and booleans in a SPARQL 1.1 result format (json, xml, csv, tsv); graphs from
    /// CONSTRUCT/DESCRIBE then come as --graph-format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
    #[arg(long, value_enum, default_value_t = Format::Turtle)]
    pub graph_format: Format,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    pub text: String,
    #[arg(long, short, default_value_t = 5)]
    pub k: u32,
    #[arg(long, default_value = DEFAULT_EMBEDDING_MODEL)]
    pub embedding_model: String,
}

#[derive(Args, Debug)]
pub struct AskArgs {
    pub question: String,
    #[arg(long, short, default_value = DEFAULT_TEXT_MODEL)]
    pub model: String,
    #[arg(long, default_value = DEFAULT_EMBEDDING_MODEL)]
    pub embedding_model: String,
    /// Entities found by semantic search to start from.
    #[arg(long, default_value_t = 8)]
    pub entities: u32,
    /// Hops of graph expansion around them.
    #[arg(long, default_value_t = 1)]
    pub hops: u32,
    /// Facts given to the model.
    #[arg(long, default_value_t = 8)]
    pub max_facts: u32,
    #[arg(long, default_value_t = 96)]
    pub max_tokens: u32,
}

fn open(global: &GlobalArgs, graph: &GraphArgs) -> Result<(LlmkgRuntime, DataDir)> {
    let mut rt = global.open_runtime()?;
    let dir = graph.dir();
    dir.load_into(&mut rt).with_context(|| format!("loading the graph from {}", dir.path.display()))?;
    Ok((rt, dir))
}

fn load(rt: &mut LlmkgRuntime, global: &GlobalArgs, spec: &str) -> Result<()> {
    let source = global.resolve_model(spec)?;
    let options = LoadOptions { conversion: WeightConversion::Auto, context_length: Some(2048) };
    load_model(rt, global, &source, &options)?;
    Ok(())
}

pub fn run_kg(global: &GlobalArgs, graph: &GraphArgs, command: KgCommand) -> Result<()> {
    if let KgCommand::Repair = command {
        // Repair works on the files: the graph may not load at all.
        let dir = graph.dir();
        match dir.repair()? {
            None => println!("{}: every change replays; nothing to repair", dir.path.display()),
            Some((problem, moved)) => {
                println!("{}: {problem}", dir.path.display());
                for path in moved {
                    println!("set aside {}", path.display());
                }
            }
        }
        return Ok(());
    }
    let (mut rt, dir) = open(global, graph)?;
    match command {
        KgCommand::Import { file, format, base, graph } => {
            let format = match format {
                Some(f) => f,
                None => Format::of_file(&file)?,
            };
            let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let base_iri = match base {
                Some(iri) => iri,
                None => file_url(&file).with_context(|| format!("the file: URL of {}", file.display()))?,
            };
            let options = ImportOptions { base_iri: Some(base_iri), graph };
            let report = rt.kg_import(format.into(), &data, &options).with_context(|| format!("importing {}", file.display()))?;
            dir.commit(&mut rt)?;
            if global.json {
                print_json(&json::change_report(&report));
            } else {
                println!("imported {} new triples from {} ({} in the graph)", report.changed, file.display(), report.total);
            }
        }
        KgCommand::Export { format, output } => {
            let data = rt.kg_export(format.into())?;
            match output {
                Some(path) => std::fs::write(&path, &data).with_context(|| format!("writing {}", path.display()))?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&data)?;
                }
            }
        }
        KgCommand::Insert(args) => {
            let report = rt.kg_insert(&[args.fact()])?;
            dir.commit(&mut rt)?;
            print_change(global, "inserted", &report);
        }
        KgCommand::Remove(args) => {
            let report = rt.kg_remove(&[args.fact()])?;
            dir.commit(&mut rt)?;
            print_change(global, "removed", &report);
        }
        KgCommand::Stats => {
            let stats = rt.kg_stats()?;
            if global.json {
                print_json(&json!({ "data_dir": dir.path, "graph": json::graph_stats(&stats) }));
            } else {
                println!("data dir:  {}", dir.path.display());
                println!("triples:   {}", stats.triples);
                println!("entities:  {}", stats.entities);
                println!("indexed:   {} ({} waiting to be embedded on the next search)", stats.indexed, stats.pending);
            }
        }
        KgCommand::Compact => {
            let position = rt.kg_log_position()?;
            dir.compact(&mut rt, position)?;
            println!("compacted {} at change {position}", dir.path.display());
        }
        KgCommand::Repair => unreachable!("handled before the graph is loaded"),
    }
    Ok(())
}

pub fn run_query(global: &GlobalArgs, graph: &GraphArgs, args: QueryArgs) -> Result<()> {
    let (mut rt, dir) = open(global, graph)?;
    let results = match args.format {
        QueryFormat::Table => None,
        QueryFormat::Json => Some(ResultsFormat::Json),
        QueryFormat::Xml => Some(ResultsFormat::Xml),
        QueryFormat::Csv => Some(ResultsFormat::Csv),
        QueryFormat::Tsv => Some(ResultsFormat::Tsv),
    };
    if let Some(results) = results {
        let out = rt.kg_query_serialized(&args.sparql, &[], &[], results, args.graph_format.into(), args.limit)?;
        use std::io::Write;
        std::io::stdout().write_all(&out.data)?;
        if out.truncated {
            eprintln!("(more rows; raise --limit)");
        }
        return Ok(());
    }
    let result = rt.kg_query(&args.sparql, args.limit)?;
    if let QueryResult::Updated(_) = result {
        dir.commit(&mut rt)?;
    }
    if global.json {
        print_json(&json::query_result(&result));
        return Ok(());
    }
    match result {
        QueryResult::Boolean(b) => println!("{b}"),
        QueryResult::Updated(c) => println!("updated: {} triples changed ({} in the graph)", c.changed, c.total),
        QueryResult::Triples(triples) => {
            for t in triples {
                println!("{} {} {} .", show(&t.subject), show(&t.predicate), show(&t.object));
            }
        }
        QueryResult::Solutions(s) => {
            println!("{}", s.variables.iter().map(|v| format!("?{v}")).collect::<Vec<_>>().join("\t"));
            for row in &s.rows {
                println!("{}", row.iter().map(|t| t.as_ref().map(show).unwrap_or_default()).collect::<Vec<_>>().join("\t"));
            }
            if s.truncated {
                eprintln!("(more rows; raise --limit)");
            }
        }
    }
    Ok(())
}

pub fn run_search(global: &GlobalArgs, graph: &GraphArgs, args: SearchArgs) -> Result<()> {
    let (mut rt, dir) = open(global, graph)?;
    load(&mut rt, global, &args.embedding_model)?;
    let hits = rt.kg_search(&args.text, args.k)?;
    dir.save_index(&mut rt)?;
    if global.json {
        print_json(&json!(hits.iter().map(json::search_hit).collect::<Vec<_>>()));
    } else {
        for h in hits {
            println!("{:.3}  {}  <{}>", h.score, h.label, h.iri);
        }
    }
    Ok(())
}

pub fn run_ask(global: &GlobalArgs, graph: &GraphArgs, args: AskArgs) -> Result<()> {
    let (mut rt, dir) = open(global, graph)?;
    load(&mut rt, global, &args.embedding_model)?;
    load(&mut rt, global, &args.model)?;
    let options = AskOptions {
        model: String::new(),
        entities: args.entities,
        hops: args.hops,
        max_facts: args.max_facts,
        max_tokens: args.max_tokens,
        sampling: None,
    };
    let answer = rt.kg_ask(&args.question, &options)?;
    dir.save_index(&mut rt)?;
    if global.json {
        print_json(&json::answer(&answer));
        return Ok(());
    }
    println!("{}", answer.text);
    if !global.quiet {
        println!("\nsources:");
        for f in &answer.facts {
            let provenance = match (&f.source, f.confidence) {
                (Some(s), Some(c)) => format!("  [source: {s}, confidence {c}]"),
                (Some(s), None) => format!("  [source: {s}]"),
                (None, Some(c)) => format!("  [confidence {c}]"),
                (None, None) => String::new(),
            };
            println!("  {:.3}  {}{provenance}", f.score, f.sentence);
        }
    }
    Ok(())
}

fn print_change(global: &GlobalArgs, verb: &str, report: &ChangeReport) {
    if global.json {
        print_json(&json::change_report(report));
    } else {
        println!("{verb} {} triples ({} in the graph)", report.changed, report.total);
    }
}

fn show(t: &Term) -> String {
    match t {
        Term::Iri(i) => format!("<{i}>"),
        Term::BlankNode(b) => format!("_:{b}"),
        Term::Literal(l) => match &l.language {
            Some(lang) => format!("{:?}@{lang}", l.value),
            None if l.datatype.ends_with("#string") => format!("{:?}", l.value),
            None => format!("{:?}^^<{}>", l.value, l.datatype),
        },
    }
}
