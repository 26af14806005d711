//! Plain data crossing the engine's public API. These mirror the WIT records one to one, so the
//! component glue is a field-by-field copy and hosts that link the engine natively share them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    TextGeneration,
    Embedding,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    pub kind: ModelKind,
    pub architecture: String,
    pub parameters: u64,
    pub quantization: String,
    pub source_quantization: String,
    pub weight_bytes: u64,
    pub context_length: u32,
    pub embedding_length: u32,
    pub vocab_size: u32,
}

pub struct ModelFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What to do with weight blocks that have no SIMD kernel in this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightConversion {
    /// Keep block types with a SIMD kernel in this build, convert the rest to Q8_0.
    #[default]
    Auto,
    Keep,
    Q8_0,
    Q4_0,
    F16,
    /// Plain f32 weights: the reference path.
    Dequantize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    pub conversion: WeightConversion,
    /// Cap on tokens per sequence; defaults to the model's own context length.
    pub context_length: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    /// 1.0 disables nucleus sampling.
    pub top_p: f32,
    /// 0 disables top-k.
    pub top_k: u32,
    /// 1.0 disables the penalty.
    pub repeat_penalty: f32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.0, top_p: 1.0, top_k: 0, repeat_penalty: 1.0, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub model: String,
    pub prompt: String,
    pub max_tokens: u32,
    pub sampling: Option<Sampling>,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub sampling: Option<Sampling>,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    EndOfText,
    StopString,
    Length,
    ContextFull,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    pub token: u32,
    pub logprob: f32,
    pub top_token: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    pub tokens: Vec<TokenScore>,
    pub perplexity: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMemory {
    pub id: String,
    pub weight_bytes: u64,
    pub cache_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryStats {
    pub linear_memory_bytes: u64,
    pub allocated_bytes: u64,
    pub peak_allocated_bytes: u64,
    pub models: Vec<ModelMemory>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub engine_version: String,
    pub target: String,
    pub simd128: bool,
    pub relaxed_simd: bool,
}

// ---- knowledge graph ----

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literal {
    pub value: String,
    pub datatype: String,
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Term {
    Iri(String),
    Literal(Literal),
    BlankNode(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Triple {
    pub subject: Term,
    pub predicate: Term,
    pub object: Term,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FactObject {
    Entity(String),
    Text(String),
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub subject: String,
    pub predicate: String,
    pub object: FactObject,
    pub confidence: Option<f32>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeReport {
    pub changed: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Solutions {
    pub variables: Vec<String>,
    pub rows: Vec<Vec<Option<Term>>>,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Solutions(Solutions),
    Boolean(bool),
    Triples(Vec<Triple>),
    Updated(ChangeReport),
}

/// How an import reads its document (see `KnowledgeGraph::import`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The document's own IRI, against which relative IRIs resolve. None: they are an error.
    pub base_iri: Option<String>,
    /// The named graph that receives the document's default-graph triples (none: the default graph).
    pub graph: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdfFormat {
    NTriples,
    NQuads,
    Turtle,
    TriG,
    RdfXml,
    JsonLd,
}

impl RdfFormat {
    /// Formats that hold named graphs (the others hold the default graph only).
    pub fn has_datasets(self) -> bool {
        matches!(self, RdfFormat::NQuads | RdfFormat::TriG | RdfFormat::JsonLd)
    }
}

/// The SPARQL 1.1 query result formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsFormat {
    Json,
    Xml,
    Csv,
    Tsv,
}

/// Query results as bytes in a standard format, with its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedResults {
    pub media_type: String,
    pub data: Vec<u8>,
    /// More solutions or triples existed than the row limit allowed.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub iri: String,
    pub label: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AskOptions {
    /// Empty: the first loaded text-generation model.
    pub model: String,
    pub entities: u32,
    pub hops: u32,
    pub max_facts: u32,
    pub max_tokens: u32,
    pub sampling: Option<Sampling>,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions { model: String::new(), entities: 8, hops: 1, max_facts: 8, max_tokens: 96, sampling: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroundingFact {
    pub triple: Triple,
    pub sentence: String,
    pub score: f32,
    pub confidence: Option<f32>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub facts: Vec<GroundingFact>,
    pub completion: Completion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphStats {
    pub triples: u64,
    pub entities: u64,
    pub indexed: u64,
    pub pending: u64,
    pub embedding_model: Option<String>,
}
