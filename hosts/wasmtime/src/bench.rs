//! Measures the component under Wasmtime and the same engine linked natively, in one run, so
//! the wasm/native ratio is taken on one machine at one moment (this machine is shared and
//! noisy; absolute figures from different runs do not compare). Used by `llmkg bench` and by
//! the criterion benches.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::runtime::{GenerateRequest, LlmkgRuntime, LoadOptions, ModelKind, WeightConversion};

/// A 34-token prompt (SmolLM2 tokenizer) for prefill figures.
pub const PREFILL_PROMPT: &str = "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg of Mainz combined movable metal type with oil-based ink and a wooden screw press there.";
/// A prompt the model continues at length, for decode figures.
pub const DECODE_PROMPT: &str = "Once upon a time, in a small village by the sea, there lived an old fisherman who";
pub const EMBED_SENTENCE: &str = "A quick brown fox jumps over the lazy dog near the river bank.";
/// 32 sentences of mixed length (4 to 30 words), as a graph index or a RAG query batch sees them.
pub const EMBED_BATCH: [&str; 32] = [
    "Paris is the capital of France.",
    "The Amazon river flows through Brazil, Peru and Colombia before reaching the Atlantic Ocean.",
    "Photosynthesis turns light into chemical energy.",
    "Marie Curie won Nobel prizes in both physics and chemistry.",
    "A red castle on the northern hill.",
    "The stock market closed higher on Friday after a week of losses driven by fears about interest rates and weak earnings.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Who wrote the novel Pride and Prejudice?",
    "Mount Everest is the highest mountain above sea level.",
    "The library opens at nine in the morning and closes at six in the evening, except on public holidays.",
    "Cats sleep for most of the day.",
    "The Rust compiler checks ownership and borrowing at compile time, which removes whole classes of memory bugs.",
    "Tokyo hosted the Olympic Games in 1964 and again in 2021.",
    "Green tea contains less caffeine than coffee.",
    "The bridge was closed for repairs.",
    "Knowledge graphs store facts as subject, predicate and object triples that can be queried with SPARQL.",
    "Jupiter is the largest planet in the solar system.",
    "She plays the violin in the city orchestra.",
    "The museum's new exhibition shows ancient coins, jewellery and pottery found near the old harbour.",
    "How many legs does a spider have?",
    "Bread rises because yeast produces carbon dioxide.",
    "The train to Berlin leaves from platform four.",
    "Antibiotics do not work against viruses such as the common cold or the flu.",
    "An iron tower by the lake.",
    "Shakespeare was born in Stratford-upon-Avon in 1564.",
    "Electric cars are cheaper to run but often more expensive to buy than petrol cars.",
    "The garden needs watering twice a week in summer.",
    "Honey never spoils if it is stored in a sealed container.",
    "The committee will publish its final report next spring after consulting farmers, scientists and local councils.",
    "Light travels faster than sound.",
    "The old mine closed in 1987.",
    "Which language has the most native speakers in the world?",
];

/// Timings of one streamed generation.
#[derive(Debug, Clone, Copy)]
pub struct GenerationTiming {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// From the request to the first piece of text: prefill plus one decode step.
    pub first_token: Duration,
    pub total: Duration,
}

impl GenerationTiming {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.first_token.as_secs_f64()
    }
    pub fn decode_tokens_per_s(&self) -> f64 {
        let decode = self.total.saturating_sub(self.first_token).as_secs_f64();
        (self.completion_tokens.saturating_sub(1)) as f64 / decode.max(1e-9)
    }
}

/// The same operations on either side of the comparison.
pub trait Backend {
    fn name(&self) -> &'static str;
    fn load(&mut self, id: &str, kind: ModelKind, files: &[PathBuf]) -> Result<()>;
    fn timed_generation(&mut self, model: &str, prompt: &str, max_tokens: u32) -> Result<GenerationTiming>;
    fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Imports N-Triples into the graph; returns the triples in it afterwards.
    fn kg_import(&mut self, ntriples: &[u8]) -> Result<u64>;
    /// Runs a SPARQL query or update; returns the number of rows (or triples).
    fn kg_query(&mut self, sparql: &str) -> Result<usize>;
    fn kg_search(&mut self, text: &str, k: u32) -> Result<usize>;
    /// Triples with this subject (a bound pattern, no SPARQL).
    fn kg_subject(&mut self, subject: &str) -> Result<usize>;
}

/// `n_entities` entities with readable labels and `n_triples` triples among them, as
/// N-Triples: a stand-in for a real graph of that size (deterministic).
pub fn synthetic_graph(n_entities: usize, n_triples: usize) -> Vec<u8> {
    const ADJ: [&str; 16] = ["red", "ancient", "northern", "silent", "golden", "hidden", "coastal", "iron", "green", "royal", "frozen", "eastern", "wild", "sacred", "lower", "grand"];
    const NOUN: [&str; 16] = ["river", "castle", "forest", "harbor", "mountain", "library", "bridge", "valley", "tower", "market", "island", "temple", "garden", "village", "lake", "mine"];
    let mut out = String::with_capacity(n_triples * 60);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..n_entities {
        out.push_str(&format!(
            "<urn:llmkg:e{i}> <http://www.w3.org/2000/01/rdf-schema#label> \"{} {} {i}\" .\n",
            ADJ[i % 16],
            NOUN[(i / 16) % 16]
        ));
    }
    for _ in n_entities..n_triples.max(n_entities) {
        let (s, o, p) = (next() as usize % n_entities, next() as usize % n_entities, next() as usize % 20);
        out.push_str(&format!("<urn:llmkg:e{s}> <urn:llmkg:p{p}> <urn:llmkg:e{o}> .\n"));
    }
    out.into_bytes()
}

fn options() -> LoadOptions {
    LoadOptions { conversion: WeightConversion::Auto, context_length: Some(2048) }
}

/// The component under Wasmtime.
pub struct ComponentBackend(pub LlmkgRuntime);

impl Backend for ComponentBackend {
    fn name(&self) -> &'static str {
        "component (wasm)"
    }

    fn load(&mut self, id: &str, kind: ModelKind, files: &[PathBuf]) -> Result<()> {
        self.0.load_model(id, kind, files, &options(), |_, _, _| {}).map(|_| ())
    }

    fn timed_generation(&mut self, model: &str, prompt: &str, max_tokens: u32) -> Result<GenerationTiming> {
        let request = GenerateRequest { model: model.into(), prompt: prompt.into(), max_tokens, sampling: None, stop: vec![] };
        let start = Instant::now();
        let mut first = None;
        let c = self.0.stream(&request, |_| {
            first.get_or_insert_with(|| start.elapsed());
        })?;
        let total = start.elapsed();
        Ok(GenerationTiming {
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            first_token: first.unwrap_or(total),
            total,
        })
    }

    fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.0.embed(model, texts)
    }

    fn kg_import(&mut self, ntriples: &[u8]) -> Result<u64> {
        Ok(self.0.kg_import(crate::runtime::RdfFormat::NTriples, ntriples, &Default::default())?.total)
    }

    fn kg_query(&mut self, sparql: &str) -> Result<usize> {
        Ok(match self.0.kg_query(sparql, 0)? {
            crate::runtime::QueryResult::Solutions(s) => s.rows.len(),
            crate::runtime::QueryResult::Triples(t) => t.len(),
            crate::runtime::QueryResult::Boolean(b) => b as usize,
            crate::runtime::QueryResult::Updated(c) => c.changed as usize,
        })
    }

    fn kg_search(&mut self, text: &str, k: u32) -> Result<usize> {
        Ok(self.0.kg_search(text, k)?.len())
    }

    fn kg_subject(&mut self, subject: &str) -> Result<usize> {
        Ok(self.0.kg_match(Some(subject), None, None, 0)?.len())
    }
}

/// The same engine compiled natively into this process.
#[derive(Default)]
pub struct NativeBackend(pub llmkg_engine::Engine);

fn native_err(e: llmkg_engine::EngineError) -> Error {
    Error::Native(e.to_string())
}

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn load(&mut self, id: &str, kind: ModelKind, files: &[PathBuf]) -> Result<()> {
        let files = files
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(|source| Error::Io { path: p.clone(), source })?;
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Ok(llmkg_engine::ModelFile { name, bytes })
            })
            .collect::<Result<Vec<_>>>()?;
        let kind = match kind {
            ModelKind::TextGeneration => llmkg_engine::ModelKind::TextGeneration,
            ModelKind::Embedding => llmkg_engine::ModelKind::Embedding,
        };
        let options = llmkg_engine::LoadOptions { conversion: llmkg_engine::WeightConversion::Auto, context_length: Some(2048) };
        self.0.load_model(id, kind, files, &options).map(|_| ()).map_err(native_err)
    }

    fn timed_generation(&mut self, model: &str, prompt: &str, max_tokens: u32) -> Result<GenerationTiming> {
        let request = llmkg_engine::GenerateRequest { model: model.into(), prompt: prompt.into(), max_tokens, sampling: None, stop: vec![] };
        let start = Instant::now();
        let mut generation = self.0.stream(&request).map_err(native_err)?;
        let mut first = None;
        while generation.next_piece().map_err(native_err)?.is_some() {
            first.get_or_insert_with(|| start.elapsed());
        }
        let total = start.elapsed();
        let c = generation.completion();
        Ok(GenerationTiming {
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            first_token: first.unwrap_or(total),
            total,
        })
    }

    fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.0.embed(model, texts).map_err(native_err)
    }

    fn kg_import(&mut self, ntriples: &[u8]) -> Result<u64> {
        Ok(self.0.kg_import(llmkg_engine::RdfFormat::NTriples, ntriples, &Default::default()).map_err(native_err)?.total)
    }

    fn kg_query(&mut self, sparql: &str) -> Result<usize> {
        Ok(match self.0.kg_query(sparql, 0).map_err(native_err)? {
            llmkg_engine::QueryResult::Solutions(s) => s.rows.len(),
            llmkg_engine::QueryResult::Triples(t) => t.len(),
            llmkg_engine::QueryResult::Boolean(b) => b as usize,
            llmkg_engine::QueryResult::Updated(c) => c.changed as usize,
        })
    }

    fn kg_search(&mut self, text: &str, k: u32) -> Result<usize> {
        Ok(self.0.kg_search(text, k).map_err(native_err)?.len())
    }

    fn kg_subject(&mut self, subject: &str) -> Result<usize> {
        Ok(self.0.kg_match(Some(subject), None, None, 0).map_err(native_err)?.len())
    }
}

/// Medians over the runs of one backend.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub decode_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    pub first_token_ms: f64,
    pub embed_one_sentence_ms: f64,
    /// [`EMBED_BATCH`] embedded in one call.
    pub embed_batch_sentences_per_s: f64,
    pub prefill_prompt_tokens: u32,
    pub decode_tokens: u32,
}

pub struct BenchPlan<'a> {
    pub text_model: (&'a str, &'a [PathBuf]),
    pub embedding_model: (&'a str, &'a [PathBuf]),
    pub runs: usize,
    pub decode_tokens: u32,
}

/// Loads both models into `backend` and measures every figure, `plan.runs` times each, after
/// one warm-up run.
pub fn measure(backend: &mut dyn Backend, plan: &BenchPlan) -> Result<Figures> {
    let (text_id, text_files) = plan.text_model;
    let (embed_id, embed_files) = plan.embedding_model;
    backend.load(text_id, ModelKind::TextGeneration, text_files)?;
    backend.load(embed_id, ModelKind::Embedding, embed_files)?;
    let sentence = vec![EMBED_SENTENCE.to_string()];
    let batch: Vec<String> = EMBED_BATCH.iter().map(|s| s.to_string()).collect();
    backend.timed_generation(text_id, PREFILL_PROMPT, 2)?;
    backend.embed(embed_id, &sentence)?;
    backend.embed(embed_id, &batch)?;
    let (mut prefill, mut first, mut decode, mut embed, mut embed_batch) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut prompt_tokens, mut decode_tokens) = (0, 0);
    for _ in 0..plan.runs.max(1) {
        let p = backend.timed_generation(text_id, PREFILL_PROMPT, 1)?;
        prefill.push(p.prefill_tokens_per_s());
        first.push(p.first_token.as_secs_f64() * 1e3);
        prompt_tokens = p.prompt_tokens;
        let d = backend.timed_generation(text_id, DECODE_PROMPT, plan.decode_tokens)?;
        decode.push(d.decode_tokens_per_s());
        decode_tokens = d.completion_tokens;
        let t = Instant::now();
        backend.embed(embed_id, &sentence)?;
        embed.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        backend.embed(embed_id, &batch)?;
        embed_batch.push(batch.len() as f64 / t.elapsed().as_secs_f64());
    }
    Ok(Figures {
        decode_tokens_per_s: median(decode),
        prefill_tokens_per_s: median(prefill),
        first_token_ms: median(first),
        embed_one_sentence_ms: median(embed),
        embed_batch_sentences_per_s: median(embed_batch),
        prefill_prompt_tokens: prompt_tokens,
        decode_tokens,
    })
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
