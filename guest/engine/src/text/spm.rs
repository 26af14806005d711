//! SentencePiece-style tokenization from GGUF metadata (`tokenizer.ggml.model = "llama"`: Llama 2,
//! Gemma, Mistral v0.1), as llama.cpp does it so token ids match its own: special tokens are cut
//! out of the text first (longest first), spaces become U+2581, then pieces are merged pairwise,
//! the pair whose merged piece scores highest first, and what no piece covers falls back to
//! `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{EngineError, Result};

/// GGUF token types (llama.cpp `llama_token_type`).
const NORMAL: u64 = 1;
const UNKNOWN: u64 = 2;
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;
const BYTE: u64 = 6;

const SPACE: char = '\u{2581}';

pub struct SpmTokenizer {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<u64>,
    /// Piece text to id; a piece listed twice maps to its last id, as in llama.cpp.
    ids: HashMap<String, u32>,
    /// Control, user-defined and unknown tokens, longest text first: the order they are cut
    /// out of the text in.
    specials: Vec<u32>,
    byte_ids: [Option<u32>; 256],
    unknown_id: Option<u32>,
    add_space_prefix: bool,
}

/// A part of the text after the special tokens were cut out.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

impl SpmTokenizer {
    /// `file` names the model in errors.
    pub fn new(file: &str, pieces: Vec<String>, scores: Vec<f32>, types: Vec<u64>, unknown_id: Option<u32>, add_space_prefix: bool) -> Result<Self> {
        if scores.len() != pieces.len() {
            return Err(EngineError::InvalidModel(format!(
                "{file}: tokenizer.ggml.scores has {} entries for {} tokens",
                scores.len(),
                pieces.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| s.is_nan()) {
            return Err(EngineError::InvalidModel(format!("{file}: tokenizer.ggml.scores[{i}] is NaN")));
        }
        let ids: HashMap<String, u32> = pieces.iter().enumerate().map(|(i, p)| (p.clone(), i as u32)).collect();
        let mut specials: Vec<u32> = (0..pieces.len() as u32)
            .filter(|&i| matches!(types[i as usize], CONTROL | USER_DEFINED | UNKNOWN) && !pieces[i as usize].is_empty())
            .collect();
        specials.sort_by_key(|&i| std::cmp::Reverse(pieces[i as usize].len()));
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = ids.get(&format!("<0x{b:02X}>")).copied();
        }
        Ok(SpmTokenizer { pieces, scores, types, ids, specials, byte_ids, unknown_id, add_space_prefix })
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    pub fn is_special(&self, id: u32) -> bool {
        matches!(self.types.get(id as usize), Some(&(CONTROL | UNKNOWN)))
    }

    /// Token ids of `text`, special-token markers included as their single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut previous_special = true;
        for fragment in self.cut_specials(text) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    previous_special = true;
                }
                Fragment::Text(raw) => {
                    let mut escaped = String::with_capacity(raw.len() + 3);
                    if self.add_space_prefix && previous_special {
                        escaped.push(SPACE);
                    }
                    escaped.extend(raw.chars().map(|c| if c == ' ' { SPACE } else { c }));
                    self.merge_pieces(&escaped, &mut out)?;
                    previous_special = false;
                }
            }
        }
        Ok(out)
    }

    /// Splits `text` around every occurrence of a special token, longest tokens first, each
    /// taking its leftmost non-overlapping occurrences in what earlier ones left.
    fn cut_specials<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
        let mut fragments = vec![Fragment::Text(text)];
        if text.is_empty() {
            return fragments;
        }
        // Most specials cannot occur at all; skip them without a scan each.
        let mut present = [false; 256];
        for &b in text.as_bytes() {
            present[b as usize] = true;
        }
        for &id in &self.specials {
            let special = self.pieces[id as usize].as_str();
            if special.len() > text.len() || !present[special.as_bytes()[0] as usize] {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len());
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(special) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + special.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize`: characters as symbols, adjacent pairs
    /// whose concatenation is a piece merged highest score first (leftmost on ties), then each
    /// symbol written as its piece or, failing that, as byte tokens.
    fn merge_pieces(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let i = symbols.len();
            symbols.push(Symbol { start, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
            if i > 0 {
                symbols[i - 1].next = Some(i);
            }
        }
        let mut queue = BinaryHeap::new();
        for i in 1..symbols.len() {
            self.push_pair(text, &symbols, i - 1, i, &mut queue);
        }
        while let Some(pair) = queue.pop() {
            let (l, r) = (pair.left, pair.right);
            // Stale: one side was merged into another symbol since this pair was queued.
            if symbols[l].len == 0 || symbols[r].len == 0 || symbols[l].len + symbols[r].len != pair.len {
                continue;
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(n) = symbols[r].next {
                symbols[n].prev = Some(l);
            }
            if let Some(p) = symbols[l].prev {
                self.push_pair(text, &symbols, p, l, &mut queue);
            }
            if let Some(n) = symbols[l].next {
                self.push_pair(text, &symbols, l, n, &mut queue);
            }
        }
        let mut at = (!symbols.is_empty()).then_some(0);
        while let Some(i) = at {
            let s = &symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                // Only single characters can be missing: merges only make known pieces.
                None => {
                    for &b in piece.as_bytes() {
                        match (self.byte_ids[b as usize], self.unknown_id) {
                            (Some(id), _) | (None, Some(id)) => out.push(id),
                            (None, None) => {
                                return Err(EngineError::InvalidInput(format!(
                                    "the text has {piece:?}, which the vocabulary has no piece, byte token or unknown token for"
                                )))
                            }
                        }
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }

    fn push_pair(&self, text: &str, symbols: &[Symbol], left: usize, right: usize, queue: &mut BinaryHeap<Pair>) {
        let (l, r) = (&symbols[left], &symbols[right]);
        let merged = &text[l.start..r.start + r.len];
        if let Some(&id) = self.ids.get(merged) {
            queue.push(Pair { score: self.scores[id as usize], left, right, len: merged.len() });
        }
    }

    /// Text of `ids`: byte tokens as their bytes, U+2581 as spaces; control and unknown tokens
    /// left out when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let Some(piece) = self.pieces.get(id as usize) else {
                return Err(EngineError::InvalidInput(format!("token id {id} is outside the vocabulary of {}", self.pieces.len())));
            };
            match self.types[id as usize] {
                CONTROL | UNKNOWN if skip_special => {}
                BYTE => match byte_of(piece) {
                    Some(b) => bytes.push(b),
                    None => bytes.extend_from_slice(piece.as_bytes()),
                },
                NORMAL => {
                    for c in piece.chars() {
                        let c = if c == SPACE { ' ' } else { c };
                        bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                }
                _ => bytes.extend_from_slice(piece.as_bytes()),
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The byte of a `<0xXX>` piece.
fn byte_of(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

struct Symbol {
    start: usize,
    /// Bytes of text this symbol covers; 0 once merged into its left neighbour.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of two adjacent symbols.
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Pair {
    /// The highest score pops first; among equal scores, the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}
