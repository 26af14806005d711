//! llmkg-component: exports the llmkg engine as the `llmkg:engine` WIT world. Glue only:
//! each export converts WIT records to engine types, calls the engine, converts back.

use std::cell::RefCell;

use llmkg_engine as engine;
use llmkg_engine::memory::CountingAllocator;

wit_bindgen::generate!({ path: "../../wit", world: "engine" });

use exports::llmkg::engine::inference::{self, GuestTokenStream};
use exports::llmkg::engine::introspect;
use exports::llmkg::engine::knowledge as kg;
use exports::llmkg::engine::models::{self, GuestModelUpload};
use llmkg::engine::types::{Error, ModelInfo, ModelKind};

#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

thread_local! {
    static ENGINE: RefCell<engine::Engine> = RefCell::new(engine::Engine::new());
}

fn with_engine<T>(f: impl FnOnce(&mut engine::Engine) -> T) -> T {
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        e.resume();
        f(&mut e)
    })
}

struct Component;
export!(Component);

impl From<engine::EngineError> for Error {
    fn from(e: engine::EngineError) -> Self {
        use engine::EngineError as E;
        match e {
            E::InvalidModel(m) => Error::InvalidModel(m),
            E::Unsupported(m) => Error::Unsupported(m),
            E::InvalidInput(m) => Error::InvalidInput(m),
            E::NotFound(m) => Error::NotFound(m),
            E::ResourceExhausted(m) => Error::ResourceExhausted(m),
            E::QuerySyntax(m) => Error::QuerySyntax(m),
            E::Internal(m) => Error::Internal(m),
        }
    }
}

fn kind_in(k: ModelKind) -> engine::ModelKind {
    match k {
        ModelKind::TextGeneration => engine::ModelKind::TextGeneration,
        ModelKind::Embedding => engine::ModelKind::Embedding,
    }
}

fn info_out(i: engine::ModelInfo) -> ModelInfo {
    ModelInfo {
        id: i.id,
        kind: match i.kind {
            engine::ModelKind::TextGeneration => ModelKind::TextGeneration,
            engine::ModelKind::Embedding => ModelKind::Embedding,
        },
        architecture: i.architecture,
        parameters: i.parameters,
        quantization: i.quantization,
        source_quantization: i.source_quantization,
        weight_bytes: i.weight_bytes,
        context_length: i.context_length,
        embedding_length: i.embedding_length,
        vocab_size: i.vocab_size,
    }
}

fn options_in(o: models::LoadOptions) -> engine::LoadOptions {
    use models::WeightConversion as W;
    engine::LoadOptions {
        conversion: match o.conversion {
            W::Auto => engine::WeightConversion::Auto,
            W::Keep => engine::WeightConversion::Keep,
            W::Q8 => engine::WeightConversion::Q8_0,
            W::Q4 => engine::WeightConversion::Q4_0,
            W::F16 => engine::WeightConversion::F16,
            W::Dequantize => engine::WeightConversion::Dequantize,
        },
        context_length: o.context_length,
    }
}

impl models::Guest for Component {
    type ModelUpload = Upload;

    fn load_model(id: String, kind: ModelKind, files: Vec<models::ModelFile>, options: models::LoadOptions) -> Result<ModelInfo, Error> {
        let files = files.into_iter().map(|f| engine::ModelFile { name: f.name, bytes: f.bytes }).collect();
        with_engine(|e| e.load_model(&id, kind_in(kind), files, &options_in(options)))
            .map(info_out)
            .map_err(Error::from)
    }

    fn unload_model(id: String) -> Result<(), Error> {
        with_engine(|e| e.unload_model(&id)).map_err(Error::from)
    }

    fn list_models() -> Vec<ModelInfo> {
        with_engine(|e| e.list_models()).into_iter().map(info_out).collect()
    }
}

/// `model-upload`: the engine's `ModelUpload`, taken out on `finish`.
struct Upload(RefCell<Option<engine::ModelUpload>>);

impl Upload {
    fn with<T>(&self, f: impl FnOnce(&mut engine::ModelUpload) -> engine::Result<T>) -> Result<T, Error> {
        match self.0.borrow_mut().as_mut() {
            Some(u) => f(u).map_err(Error::from),
            None => Err(Error::InvalidInput("this upload has already finished".into())),
        }
    }
}

impl GuestModelUpload for Upload {
    fn new(id: String, kind: ModelKind, options: models::LoadOptions) -> Self {
        Upload(RefCell::new(Some(engine::ModelUpload::new(&id, kind_in(kind), options_in(options)))))
    }

    fn begin_file(&self, name: String, size: Option<u64>) -> Result<(), Error> {
        self.with(|u| u.begin_file(&name, size))
    }

    fn write(&self, chunk: Vec<u8>) -> Result<u64, Error> {
        self.with(|u| u.write(&chunk))
    }

    fn finish(&self) -> Result<ModelInfo, Error> {
        let upload = self.0.borrow_mut().take().ok_or_else(|| Error::InvalidInput("this upload has already finished".into()))?;
        with_engine(|e| upload.finish(e)).map(info_out).map_err(Error::from)
    }
}

fn sampling_in(s: Option<inference::Sampling>) -> Option<engine::Sampling> {
    s.map(|s| engine::Sampling {
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        repeat_penalty: s.repeat_penalty,
        seed: s.seed,
    })
}

fn generate_in(r: inference::GenerateRequest) -> engine::GenerateRequest {
    engine::GenerateRequest {
        model: r.model,
        prompt: r.prompt,
        max_tokens: r.max_tokens,
        sampling: sampling_in(r.sampling),
        stop: r.stop,
    }
}

fn chat_in(r: inference::ChatRequest) -> engine::ChatRequest {
    engine::ChatRequest {
        model: r.model,
        messages: r.messages.into_iter().map(|m| engine::ChatMessage { role: m.role, content: m.content }).collect(),
        max_tokens: r.max_tokens,
        sampling: sampling_in(r.sampling),
        stop: r.stop,
    }
}

fn completion_out(c: engine::Completion) -> inference::Completion {
    use inference::FinishReason as F;
    inference::Completion {
        text: c.text,
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        finish_reason: match c.finish_reason {
            engine::FinishReason::EndOfText => F::EndOfText,
            engine::FinishReason::StopString => F::StopString,
            engine::FinishReason::Length => F::Length,
            engine::FinishReason::ContextFull => F::ContextFull,
        },
    }
}

/// `token-stream`: a generation in progress.
struct Stream(RefCell<engine::Generation>);

impl GuestTokenStream for Stream {
    fn next(&self) -> Result<Option<String>, Error> {
        self.0.borrow_mut().next_piece().map_err(Error::from)
    }

    fn completion(&self) -> inference::Completion {
        completion_out(self.0.borrow().completion())
    }
}

impl inference::Guest for Component {
    type TokenStream = Stream;

    fn generate(request: inference::GenerateRequest) -> Result<inference::Completion, Error> {
        with_engine(|e| e.generate(&generate_in(request))).map(completion_out).map_err(Error::from)
    }

    fn stream(request: inference::GenerateRequest) -> Result<inference::TokenStream, Error> {
        let generation = with_engine(|e| e.stream(&generate_in(request)))?;
        Ok(inference::TokenStream::new(Stream(RefCell::new(generation))))
    }

    fn chat(request: inference::ChatRequest) -> Result<inference::Completion, Error> {
        with_engine(|e| e.chat(&chat_in(request))).map(completion_out).map_err(Error::from)
    }

    fn stream_chat(request: inference::ChatRequest) -> Result<inference::TokenStream, Error> {
        let generation = with_engine(|e| e.stream_chat(&chat_in(request)))?;
        Ok(inference::TokenStream::new(Stream(RefCell::new(generation))))
    }

    fn embed(model: String, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Error> {
        with_engine(|e| e.embed(&model, &texts)).map_err(Error::from)
    }

    fn embed_counted(model: String, texts: Vec<String>) -> Result<inference::Embeddings, Error> {
        let (vectors, tokens) = with_engine(|e| e.embed_counted(&model, &texts))?;
        Ok(inference::Embeddings { vectors, tokens })
    }

    fn tokenize(model: String, text: String, add_special_tokens: bool) -> Result<Vec<u32>, Error> {
        with_engine(|e| e.tokenize(&model, &text, add_special_tokens)).map_err(Error::from)
    }

    fn detokenize(model: String, tokens: Vec<u32>) -> Result<String, Error> {
        with_engine(|e| e.detokenize(&model, &tokens)).map_err(Error::from)
    }

    fn score(model: String, text: String) -> Result<inference::ScoreReport, Error> {
        let report = with_engine(|e| e.score(&model, &text))?;
        Ok(inference::ScoreReport {
            tokens: report.tokens.into_iter().map(|t| inference::TokenScore { token: t.token, logprob: t.logprob, top_token: t.top_token }).collect(),
            perplexity: report.perplexity,
        })
    }
}

impl introspect::Guest for Component {
    fn memory_stats() -> introspect::MemoryReport {
        let s = with_engine(|e| e.memory_stats());
        introspect::MemoryReport {
            linear_memory_bytes: s.linear_memory_bytes,
            allocated_bytes: s.allocated_bytes,
            peak_allocated_bytes: s.peak_allocated_bytes,
            models: s
                .models
                .into_iter()
                .map(|m| introspect::ModelMemory { id: m.id, weight_bytes: m.weight_bytes, cache_bytes: m.cache_bytes })
                .collect(),
        }
    }

    fn prepare_snapshot() {
        with_engine(|e| e.prepare_snapshot())
    }

    fn build_info() -> introspect::BuildReport {
        let b = engine::build_info();
        introspect::BuildReport { engine_version: b.engine_version, target: b.target, simd128: b.simd128, relaxed_simd: b.relaxed_simd }
    }
}

fn term_out(t: engine::Term) -> kg::Term {
    match t {
        engine::Term::Iri(i) => kg::Term::Iri(i),
        engine::Term::BlankNode(b) => kg::Term::BlankNode(b),
        engine::Term::Literal(l) => kg::Term::Literal(kg::Literal { value: l.value, datatype: l.datatype, language: l.language }),
    }
}

fn triple_out(t: engine::Triple) -> kg::Triple {
    kg::Triple { subject: term_out(t.subject), predicate: term_out(t.predicate), object: term_out(t.object) }
}

fn fact_in(f: kg::Fact) -> engine::Fact {
    engine::Fact {
        subject: f.subject,
        predicate: f.predicate,
        object: match f.object {
            kg::FactObject::Entity(e) => engine::FactObject::Entity(e),
            kg::FactObject::Text(t) => engine::FactObject::Text(t),
            kg::FactObject::Literal(l) => {
                engine::FactObject::Literal(engine::Literal { value: l.value, datatype: l.datatype, language: l.language })
            }
        },
        confidence: f.confidence,
        source: f.source,
    }
}

fn change_out(c: engine::ChangeReport) -> kg::ChangeReport {
    kg::ChangeReport { changed: c.changed, total: c.total }
}

fn format_in(f: kg::RdfFormat) -> engine::RdfFormat {
    match f {
        kg::RdfFormat::NTriples => engine::RdfFormat::NTriples,
        kg::RdfFormat::NQuads => engine::RdfFormat::NQuads,
        kg::RdfFormat::Turtle => engine::RdfFormat::Turtle,
        kg::RdfFormat::Trig => engine::RdfFormat::TriG,
        kg::RdfFormat::RdfXml => engine::RdfFormat::RdfXml,
        kg::RdfFormat::JsonLd => engine::RdfFormat::JsonLd,
    }
}

fn results_format_in(f: kg::ResultsFormat) -> engine::ResultsFormat {
    match f {
        kg::ResultsFormat::Json => engine::ResultsFormat::Json,
        kg::ResultsFormat::Xml => engine::ResultsFormat::Xml,
        kg::ResultsFormat::Csv => engine::ResultsFormat::Csv,
        kg::ResultsFormat::Tsv => engine::ResultsFormat::Tsv,
    }
}

impl kg::Guest for Component {
    fn insert(facts: Vec<kg::Fact>) -> Result<kg::ChangeReport, Error> {
        let facts: Vec<_> = facts.into_iter().map(fact_in).collect();
        with_engine(|e| e.kg_insert(&facts)).map(change_out).map_err(Error::from)
    }

    fn remove(facts: Vec<kg::Fact>) -> Result<kg::ChangeReport, Error> {
        let facts: Vec<_> = facts.into_iter().map(fact_in).collect();
        with_engine(|e| e.kg_remove(&facts)).map(change_out).map_err(Error::from)
    }

    fn query(sparql: String, row_limit: u32) -> Result<kg::QueryResult, Error> {
        let result = with_engine(|e| e.kg_query(&sparql, row_limit))?;
        Ok(match result {
            engine::QueryResult::Boolean(b) => kg::QueryResult::Boolean(b),
            engine::QueryResult::Updated(c) => kg::QueryResult::Updated(change_out(c)),
            engine::QueryResult::Triples(t) => kg::QueryResult::Triples(t.into_iter().map(triple_out).collect()),
            engine::QueryResult::Solutions(s) => kg::QueryResult::Solutions(kg::Solutions {
                variables: s.variables,
                rows: s.rows.into_iter().map(|r| r.into_iter().map(|t| t.map(term_out)).collect()).collect(),
                truncated: s.truncated,
            }),
        })
    }

    fn update(sparql: String, using_graphs: Vec<String>, using_named_graphs: Vec<String>) -> Result<kg::ChangeReport, Error> {
        with_engine(|e| e.kg_update(&sparql, &using_graphs, &using_named_graphs)).map(change_out).map_err(Error::from)
    }

    fn query_serialized(
        sparql: String,
        default_graphs: Vec<String>,
        named_graphs: Vec<String>,
        results: kg::ResultsFormat,
        graph: kg::RdfFormat,
        row_limit: u32,
    ) -> Result<kg::SerializedResults, Error> {
        let out = with_engine(|e| {
            e.kg_query_serialized(&sparql, &default_graphs, &named_graphs, results_format_in(results), format_in(graph), row_limit)
        })?;
        Ok(kg::SerializedResults { media_type: out.media_type, data: out.data, truncated: out.truncated })
    }

    fn record_changes(on: bool) {
        with_engine(|e| e.kg_record_changes(on))
    }

    fn take_changes() -> Vec<u8> {
        with_engine(|e| e.kg_take_changes())
    }

    fn apply_changes(patch: Vec<u8>, reverse: bool) -> Result<kg::ChangeReport, Error> {
        with_engine(|e| e.kg_apply_changes(&patch, reverse)).map(change_out).map_err(Error::from)
    }

    fn restore(nquads: Vec<u8>, position: u64) -> Result<kg::ChangeReport, Error> {
        with_engine(|e| e.kg_restore(&nquads, position)).map(change_out).map_err(Error::from)
    }

    fn log_position() -> u64 {
        with_engine(|e| e.kg_log_position())
    }

    fn set_log_position(position: u64) {
        with_engine(|e| e.kg_set_log_position(position))
    }

    fn import(format: kg::RdfFormat, data: Vec<u8>, options: kg::ImportOptions) -> Result<kg::ChangeReport, Error> {
        let options = engine::ImportOptions { base_iri: options.base_iri, graph: options.graph };
        with_engine(|e| e.kg_import(format_in(format), &data, &options)).map(change_out).map_err(Error::from)
    }

    fn export(format: kg::RdfFormat) -> Result<Vec<u8>, Error> {
        with_engine(|e| e.kg_export(format_in(format))).map_err(Error::from)
    }

    fn search(text: String, k: u32) -> Result<Vec<kg::SearchHit>, Error> {
        let hits = with_engine(|e| e.kg_search(&text, k))?;
        Ok(hits.into_iter().map(|h| kg::SearchHit { iri: h.iri, label: h.label, score: h.score }).collect())
    }

    fn match_pattern(subject: Option<String>, predicate: Option<String>, object: Option<kg::FactObject>, limit: u32) -> Result<Vec<kg::Triple>, Error> {
        let object = object.map(|o| fact_in(kg::Fact { subject: String::new(), predicate: String::new(), object: o, confidence: None, source: None }).object);
        let triples = with_engine(|e| e.kg_match(subject.as_deref(), predicate.as_deref(), object.as_ref(), limit))?;
        Ok(triples.into_iter().map(triple_out).collect())
    }

    fn neighbors(entity: String, hops: u32, limit: u32) -> Result<Vec<kg::Triple>, Error> {
        let triples = with_engine(|e| e.kg_neighbors(&entity, hops, limit))?;
        Ok(triples.into_iter().map(triple_out).collect())
    }

    fn ask(question: String, options: kg::AskOptions) -> Result<kg::Answer, Error> {
        let options = engine::AskOptions {
            model: options.model,
            entities: options.entities,
            hops: options.hops,
            max_facts: options.max_facts,
            max_tokens: options.max_tokens,
            sampling: sampling_in(options.sampling),
        };
        let answer = with_engine(|e| e.kg_ask(&question, &options))?;
        Ok(kg::Answer {
            text: answer.text,
            facts: answer
                .facts
                .into_iter()
                .map(|f| kg::GroundingFact {
                    triple: triple_out(f.triple),
                    sentence: f.sentence,
                    score: f.score,
                    confidence: f.confidence,
                    source: f.source,
                })
                .collect(),
            completion: completion_out(answer.completion),
        })
    }

    fn set_embedding_model(model: String) -> Result<(), Error> {
        with_engine(|e| e.kg_set_embedding_model(&model)).map_err(Error::from)
    }

    fn stats() -> kg::GraphStats {
        // Counting only reads the store; an error here would be a storage bug, shown as zeros.
        let s = with_engine(|e| e.kg_stats()).unwrap_or(engine::GraphStats {
            triples: 0,
            entities: 0,
            indexed: 0,
            pending: 0,
            embedding_model: None,
        });
        kg::GraphStats {
            triples: s.triples,
            entities: s.entities,
            indexed: s.indexed,
            pending: s.pending,
            embedding_model: s.embedding_model,
        }
    }

    fn export_index() -> Result<Vec<u8>, Error> {
        with_engine(|e| e.kg_export_index()).map_err(Error::from)
    }

    fn import_index(data: Vec<u8>) -> Result<u64, Error> {
        with_engine(|e| e.kg_import_index(&data)).map_err(Error::from)
    }
}
