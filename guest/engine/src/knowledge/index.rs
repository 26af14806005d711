//! The semantic search index: one embedding per entity label, searched by an exact flat scan
//! (dot products of L2-normalised vectors; fine up to ~100k entities, which is what a component
//! holding its graph in memory serves).

use std::collections::HashMap;

use crate::error::{EngineError, Result};
use crate::types::SearchHit;

const MAGIC: &[u8; 4] = b"LKGI";
const VERSION: u32 = 1;

#[derive(Default)]
pub struct LabelIndex {
    /// The embedding model the vectors came from.
    pub model: Option<String>,
    pub dim: usize,
    entries: Vec<(String, String)>,
    /// `entries.len() * dim` floats.
    vectors: Vec<f32>,
    /// iri -> position in `entries`.
    positions: HashMap<String, usize>,
}

impl LabelIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self, model: Option<String>) {
        *self = LabelIndex { model, ..Default::default() };
    }

    /// The label indexed for `iri`, if any.
    pub fn label(&self, iri: &str) -> Option<&str> {
        self.positions.get(iri).map(|&i| self.entries[i].1.as_str())
    }

    pub fn insert(&mut self, iri: String, label: String, vector: &[f32]) -> Result<()> {
        if self.dim == 0 {
            self.dim = vector.len();
        }
        if vector.len() != self.dim {
            return Err(EngineError::Internal(format!("vector of {} dims in an index of {}", vector.len(), self.dim)));
        }
        match self.positions.get(&iri) {
            Some(&i) => {
                self.entries[i].1 = label;
                self.vectors[i * self.dim..(i + 1) * self.dim].copy_from_slice(vector);
            }
            None => {
                self.positions.insert(iri.clone(), self.entries.len());
                self.entries.push((iri, label));
                self.vectors.extend_from_slice(vector);
            }
        }
        Ok(())
    }

    /// Removes `iri` by moving the last entry into its place.
    pub fn remove(&mut self, iri: &str) {
        let Some(i) = self.positions.remove(iri) else { return };
        let last = self.entries.len() - 1;
        if i != last {
            self.entries.swap(i, last);
            let (head, tail) = self.vectors.split_at_mut(last * self.dim);
            head[i * self.dim..(i + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            self.positions.insert(self.entries[i].0.clone(), i);
        }
        self.entries.pop();
        self.vectors.truncate(last * self.dim);
    }

    pub fn iris(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(i, l)| (i.as_str(), l.as_str()))
    }

    /// The `k` entries most similar to `query` (a normalised vector), best first.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<SearchHit> {
        if self.dim == 0 || query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, usize)> =
            self.vectors.chunks_exact(self.dim).map(|v| dot(v, query)).enumerate().map(|(i, s)| (s, i)).collect();
        let k = k.min(scored.len());
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .map(|(score, i)| SearchHit { iri: self.entries[i].0.clone(), label: self.entries[i].1.clone(), score })
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.vectors.len() * 4 + self.entries.len() * 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_str(&mut out, self.model.as_deref().unwrap_or(""));
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for ((iri, label), v) in self.entries.iter().zip(self.vectors.chunks_exact(self.dim.max(1))) {
            put_str(&mut out, iri);
            put_str(&mut out, label);
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| EngineError::InvalidInput(format!("search index data: {what}"));
        let mut r = bytes;
        if take(&mut r, 4).ok_or_else(|| bad("too short"))? != MAGIC {
            return Err(bad("not an llmkg search index (bad magic)"));
        }
        let version = u32::from_le_bytes(take(&mut r, 4).ok_or_else(|| bad("truncated"))?.try_into().unwrap());
        if version != VERSION {
            return Err(bad(&format!("version {version}, this engine reads {VERSION}")));
        }
        let model = get_str(&mut r).ok_or_else(|| bad("truncated model id"))?;
        let dim = u32::from_le_bytes(take(&mut r, 4).ok_or_else(|| bad("truncated"))?.try_into().unwrap()) as usize;
        let count = u64::from_le_bytes(take(&mut r, 8).ok_or_else(|| bad("truncated"))?.try_into().unwrap());
        if dim == 0 || dim > 65536 || count > (r.len() / (dim * 4).max(1)) as u64 {
            return Err(bad(&format!("{count} vectors of {dim} dims do not fit in {} bytes", r.len())));
        }
        let mut index = LabelIndex { model: (!model.is_empty()).then_some(model), dim, ..Default::default() };
        let mut v = vec![0f32; dim];
        for n in 0..count {
            let iri = get_str(&mut r).ok_or_else(|| bad(&format!("entry {n}: truncated")))?;
            let label = get_str(&mut r).ok_or_else(|| bad(&format!("entry {n}: truncated")))?;
            let raw = take(&mut r, dim * 4).ok_or_else(|| bad(&format!("entry {n}: truncated vector")))?;
            for (x, b) in v.iter_mut().zip(raw.chunks_exact(4)) {
                *x = f32::from_le_bytes(b.try_into().unwrap());
            }
            index.insert(iri, label, &v)?;
        }
        Ok(index)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler keep SIMD lanes busy (simd128 / AVX).
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn get_str(r: &mut &[u8]) -> Option<String> {
    let len = u32::from_le_bytes(take(r, 4)?.try_into().ok()?) as usize;
    String::from_utf8(take(r, len)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn top_k_is_exact_and_ordered() {
        let mut index = LabelIndex::default();
        index.insert("a".into(), "A".into(), &unit(&[1.0, 0.0, 0.0])).unwrap();
        index.insert("b".into(), "B".into(), &unit(&[0.7, 0.7, 0.0])).unwrap();
        index.insert("c".into(), "C".into(), &unit(&[0.0, 0.0, 1.0])).unwrap();
        let hits = index.top_k(&unit(&[1.0, 0.1, 0.0]), 2);
        assert_eq!(hits.iter().map(|h| h.iri.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        index.remove("a");
        assert_eq!(index.top_k(&unit(&[1.0, 0.1, 0.0]), 1)[0].iri, "b");
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn bytes_round_trip_and_bad_bytes_are_errors() {
        let mut index = LabelIndex { model: Some("m".into()), ..Default::default() };
        index.insert("urn:x".into(), "X".into(), &[0.6, 0.8]).unwrap();
        let back = LabelIndex::from_bytes(&index.to_bytes()).unwrap();
        assert_eq!(back.model.as_deref(), Some("m"));
        assert_eq!(back.label("urn:x"), Some("X"));
        let bytes = index.to_bytes();
        assert!(LabelIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(LabelIndex::from_bytes(b"nope").is_err());
    }
}
