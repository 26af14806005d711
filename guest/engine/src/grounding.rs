//! The knowledge-graph operations that need models: keeping the label index in step with the
//! graph (embedding model), semantic search, and answers grounded in retrieved facts
//! (embedding model + text model). Pure graph operations are in [`crate::knowledge`].

use std::collections::{HashMap, HashSet};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::types::*;

/// Labels embedded per batch while indexing.
const INDEX_BATCH: usize = 32;
/// Facts collected around each entity found, before ranking.
const FACTS_PER_ENTITY: u32 = 48;

impl Engine {
    pub fn kg_insert(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        self.graph.insert(facts)
    }

    pub fn kg_remove(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        self.graph.remove(facts)
    }

    pub fn kg_query(&mut self, sparql: &str, row_limit: u32) -> Result<QueryResult> {
        self.graph.query(sparql, row_limit)
    }

    pub fn kg_update(&mut self, sparql: &str, using_graphs: &[String], using_named_graphs: &[String]) -> Result<ChangeReport> {
        self.graph.update(sparql, using_graphs, using_named_graphs)
    }

    pub fn kg_query_serialized(
        &mut self,
        sparql: &str,
        default_graphs: &[String],
        named_graphs: &[String],
        results: ResultsFormat,
        graph: RdfFormat,
        row_limit: u32,
    ) -> Result<SerializedResults> {
        self.graph.query_serialized(sparql, default_graphs, named_graphs, results, graph, row_limit)
    }

    pub fn kg_record_changes(&mut self, on: bool) {
        self.graph.record_changes(on);
    }

    pub fn kg_take_changes(&mut self) -> Vec<u8> {
        self.graph.take_changes()
    }

    pub fn kg_apply_changes(&mut self, patch: &[u8], reverse: bool) -> Result<ChangeReport> {
        self.graph.apply_changes(patch, reverse)
    }

    pub fn kg_restore(&mut self, nquads: &[u8], position: u64) -> Result<ChangeReport> {
        self.graph.restore(nquads, position)
    }

    pub fn kg_log_position(&self) -> u64 {
        self.graph.log_position()
    }

    pub fn kg_set_log_position(&mut self, position: u64) {
        self.graph.set_log_position(position);
    }

    pub fn kg_import(&mut self, format: RdfFormat, data: &[u8], options: &ImportOptions) -> Result<ChangeReport> {
        self.graph.import(format, data, options)
    }

    pub fn kg_export(&self, format: RdfFormat) -> Result<Vec<u8>> {
        self.graph.export(format)
    }

    pub fn kg_match(&self, subject: Option<&str>, predicate: Option<&str>, object: Option<&FactObject>, limit: u32) -> Result<Vec<Triple>> {
        self.graph.match_pattern(subject, predicate, object, limit)
    }

    pub fn kg_neighbors(&self, entity: &str, hops: u32, limit: u32) -> Result<Vec<Triple>> {
        self.graph.neighbors(entity, hops, limit)
    }

    pub fn kg_set_embedding_model(&mut self, model: &str) -> Result<()> {
        self.embedding_model(model)?;
        self.graph_embedding_model = Some(model.to_string());
        Ok(())
    }

    pub fn kg_stats(&self) -> Result<GraphStats> {
        let entities = self.graph.entities()?;
        let pending = entities.iter().filter(|(iri, label)| self.graph.index.label(iri) != Some(label.as_str())).count();
        Ok(GraphStats {
            triples: self.graph.len()?,
            entities: entities.len() as u64,
            indexed: self.graph.index.len() as u64,
            pending: pending as u64,
            embedding_model: self.index_model().ok(),
        })
    }

    pub fn kg_export_index(&mut self) -> Result<Vec<u8>> {
        Ok(self.graph.index.to_bytes())
    }

    /// Takes a saved index; entries whose entity or label no longer match the graph are
    /// dropped (and re-embedded) on the next search.
    pub fn kg_import_index(&mut self, data: &[u8]) -> Result<u64> {
        let index = crate::knowledge::index::LabelIndex::from_bytes(data)?;
        let n = index.len() as u64;
        self.graph.index = index;
        self.graph.index_stale = true;
        Ok(n)
    }

    pub fn kg_search(&mut self, text: &str, k: u32) -> Result<Vec<SearchHit>> {
        if text.trim().is_empty() {
            return Err(EngineError::InvalidInput("search text is empty".into()));
        }
        let query = self.embed_one(text)?;
        Ok(self.graph.index.top_k(&query, k as usize))
    }

    pub fn kg_ask(&mut self, question: &str, options: &AskOptions) -> Result<Answer> {
        if question.trim().is_empty() {
            return Err(EngineError::InvalidInput("question is empty".into()));
        }
        let model = if options.model.is_empty() {
            self.model_ids(ModelKind::TextGeneration).into_iter().next().ok_or_else(|| {
                EngineError::NotFound("ask needs a text-generation model; none is loaded".into())
            })?
        } else {
            options.model.clone()
        };
        self.text_model(&model)?;
        let question_vector = self.embed_one(question)?;
        let facts = self.retrieve(&question_vector, options)?;
        // This wording, facts in the system message as sentences, is what SmolLM2-135M followed
        // best of the forms tried (5 of 6 invented-fact questions; "answer in one sentence,
        // using these facts" made it ignore them).
        let mut prompt = String::from("You are a helpful assistant. Use these facts:\n");
        for f in &facts {
            prompt.push_str(&f.sentence);
            prompt.push('\n');
        }
        let completion = self.chat(&ChatRequest {
            model,
            messages: vec![
                ChatMessage { role: "system".into(), content: prompt },
                ChatMessage { role: "user".into(), content: question.to_string() },
            ],
            max_tokens: options.max_tokens.max(1),
            sampling: options.sampling,
            stop: vec![],
        })?;
        Ok(Answer { text: completion.text.trim().to_string(), facts, completion })
    }

    /// Facts for a question: the entities whose labels are nearest, the facts around them,
    /// ranked by how close their sentences are to the question, most relevant first.
    fn retrieve(&mut self, question: &[f32], options: &AskOptions) -> Result<Vec<GroundingFact>> {
        let hits = self.graph.index.top_k(question, options.entities.max(1) as usize);
        let mut seen = HashSet::new();
        let mut triples = Vec::new();
        for hit in &hits {
            for t in self.graph.neighbors(&hit.iri, options.hops.max(1), FACTS_PER_ENTITY)? {
                if seen.insert(t.clone()) {
                    triples.push(t);
                }
            }
        }
        if triples.is_empty() {
            return Ok(Vec::new());
        }
        let sentences: Vec<String> = triples.iter().map(|t| self.graph.verbalize(t)).collect();
        let model = self.index_model()?;
        let vectors = self.embedding_model(&model)?.embed(&sentences)?;
        let mut facts: Vec<GroundingFact> = triples
            .into_iter()
            .zip(sentences)
            .zip(vectors)
            .map(|((triple, sentence), v)| {
                let score = v.iter().zip(question).map(|(a, b)| a * b).sum();
                let (confidence, source) = self.graph.provenance(&triple);
                GroundingFact { triple, sentence, score, confidence, source }
            })
            .collect();
        facts.sort_by(|a, b| b.score.total_cmp(&a.score));
        facts.truncate(options.max_facts.max(1) as usize);
        Ok(facts)
    }

    /// The embedding model that indexes the graph.
    fn index_model(&self) -> Result<String> {
        if let Some(id) = &self.graph_embedding_model {
            if self.embedding_model(id).is_ok() {
                return Ok(id.clone());
            }
        }
        self.model_ids(ModelKind::Embedding).into_iter().next().ok_or_else(|| {
            EngineError::NotFound("semantic search needs an embedding model; load one (kind embedding) first".into())
        })
    }

    /// Embeds `text` with the index model after bringing the index up to date.
    fn embed_one(&mut self, text: &str) -> Result<Vec<f32>> {
        self.refresh_index()?;
        let model = self.index_model()?;
        let mut v = self.embedding_model(&model)?.embed(&[text.to_string()])?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Brings the label index in step with the graph: drops entities that are gone or were
    /// relabelled, embeds the new ones. Re-embeds everything if the model changed.
    pub fn refresh_index(&mut self) -> Result<()> {
        let model = self.index_model()?;
        if self.graph.index.model.as_deref() != Some(model.as_str()) {
            self.graph.index.clear(Some(model.clone()));
            self.graph.index_stale = true;
        }
        if !self.graph.index_stale {
            return Ok(());
        }
        let entities = self.graph.entities()?;
        let current: HashMap<&str, &str> = entities.iter().map(|(i, l)| (i.as_str(), l.as_str())).collect();
        let gone: Vec<String> = self
            .graph
            .index
            .iris()
            .filter(|(iri, label)| current.get(iri) != Some(label))
            .map(|(iri, _)| iri.to_string())
            .collect();
        for iri in gone {
            self.graph.index.remove(&iri);
        }
        let missing: Vec<&(String, String)> = entities.iter().filter(|(iri, _)| self.graph.index.label(iri).is_none()).collect();
        let embedder = self.embedding_model(&model)?;
        for batch in missing.chunks(INDEX_BATCH) {
            let labels: Vec<String> = batch.iter().map(|(_, l)| l.clone()).collect();
            for ((iri, label), v) in batch.iter().zip(embedder.embed(&labels)?) {
                self.graph.index.insert(iri.clone(), label.clone(), &v)?;
            }
        }
        self.graph.index_stale = false;
        Ok(())
    }
}
