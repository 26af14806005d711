//! Tiny models written from scratch (random weights, byte-level vocabulary of ~260 tokens),
//! so tests exercise the real loading and generation code in milliseconds.

pub mod hostile;
pub mod tiny_bert;

use candle_core::quantized::QTensor;
/// The block types `TinyLlama::block_type` takes (candle's, re-exported for crates that build seeds).
pub use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};

use crate::gguf::writer::{write, TensorData};
use crate::gguf::Value;

pub struct TinyLlama {
    pub architecture: &'static str,
    pub block_type: GgmlDType,
    pub context_length: u32,
    pub seed: u64,
    /// Metadata written over (or beside) the defaults, e.g. an absurd hyperparameter.
    pub overrides: Vec<(String, Value)>,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama { architecture: "llama", block_type: GgmlDType::Q4_1, context_length: 64, seed: 7, overrides: Vec::new() }
    }
}

const HIDDEN: usize = 64;
const FFN: usize = 128;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const LAYERS: usize = 2;
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// The 256 byte-level symbols in byte order (GPT-2's bytes_to_unicode).
fn byte_symbols() -> Vec<String> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut out = vec![String::new(); 256];
    let mut extra = 0;
    for b in 0..256u32 {
        let c = if printable.contains(&b) { b } else { extra += 1; 255 + extra };
        out[b as usize] = char::from_u32(c).unwrap().to_string();
    }
    printable.clear();
    out
}

impl TinyLlama {
    pub fn vocab() -> Vec<String> {
        SPECIALS.iter().map(|s| s.to_string()).chain(byte_symbols()).chain(["Ġt".into(), "he".into(), "Ġthe".into()]).collect()
    }

    /// A complete GGUF file.
    pub fn gguf(&self) -> Vec<u8> {
        self.gguf_with_chat_template(None)
    }

    /// A complete GGUF file, with `tokenizer.chat_template` when given.
    pub fn gguf_with_chat_template(&self, chat_template: Option<&str>) -> Vec<u8> {
        let vocab = Self::vocab();
        let types: Vec<Value> = (0..vocab.len()).map(|i| Value::I32(if i < SPECIALS.len() { 3 } else { 1 })).collect();
        let arch = self.architecture;
        let k = |s: &str| format!("{arch}.{s}");
        let metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (k("block_count"), Value::U32(LAYERS as u32)),
            (k("context_length"), Value::U32(self.context_length)),
            (k("embedding_length"), Value::U32(HIDDEN as u32)),
            (k("feed_forward_length"), Value::U32(FFN as u32)),
            (k("attention.head_count"), Value::U32(HEADS as u32)),
            (k("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
            (k("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
            (k("rope.freq_base"), Value::F32(10000.0)),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(vocab.iter().map(|t| Value::String(t.clone())).collect())),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(vec![Value::String("Ġ t".into()), Value::String("h e".into()), Value::String("Ġt he".into())]),
            ),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ];
        let mut metadata: Vec<(String, Value)> =
            metadata.into_iter().chain(chat_template.map(|t| ("tokenizer.chat_template".into(), Value::String(t.into())))).collect();
        for (key, value) in &self.overrides {
            match metadata.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => metadata.push((key.clone(), value.clone())),
            }
        }
        let metadata: Vec<(&str, Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut rng = self.seed;
        let mut tensors = vec![self.matrix("token_embd.weight", HIDDEN, vocab.len(), &mut rng)];
        tensors.push(self.norm("output_norm.weight"));
        for l in 0..LAYERS {
            let p = format!("blk.{l}");
            let kv = HIDDEN / HEADS * KV_HEADS;
            tensors.push(self.norm(&format!("{p}.attn_norm.weight")));
            tensors.push(self.norm(&format!("{p}.ffn_norm.weight")));
            tensors.push(self.matrix(&format!("{p}.attn_q.weight"), HIDDEN, HIDDEN, &mut rng));
            tensors.push(self.matrix(&format!("{p}.attn_k.weight"), HIDDEN, kv, &mut rng));
            tensors.push(self.matrix(&format!("{p}.attn_v.weight"), HIDDEN, kv, &mut rng));
            tensors.push(self.matrix(&format!("{p}.attn_output.weight"), HIDDEN, HIDDEN, &mut rng));
            tensors.push(self.matrix(&format!("{p}.ffn_gate.weight"), HIDDEN, FFN, &mut rng));
            tensors.push(self.matrix(&format!("{p}.ffn_up.weight"), HIDDEN, FFN, &mut rng));
            tensors.push(self.matrix(&format!("{p}.ffn_down.weight"), FFN, HIDDEN, &mut rng));
        }
        write(&metadata, &tensors)
    }

    /// `cols` x `rows` in GGUF order (a row has `cols` values), random in [-0.5, 0.5).
    fn matrix(&self, name: &str, cols: usize, rows: usize, rng: &mut u64) -> TensorData {
        let values: Vec<f32> = (0..cols * rows).map(|_| next_uniform(rng) - 0.5).collect();
        let t = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, self.block_type).unwrap();
        TensorData { name: name.into(), dims: vec![cols, rows], dtype: self.block_type, bytes: q.data().unwrap().into_owned() }
    }

    fn norm(&self, name: &str) -> TensorData {
        let bytes = (0..HIDDEN).flat_map(|_| 1.0f32.to_le_bytes()).collect();
        TensorData { name: name.into(), dims: vec![HIDDEN], dtype: GgmlDType::F32, bytes }
    }
}

fn next_uniform(state: &mut u64) -> f32 {
    // xorshift64*: deterministic across platforms, no dependency.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (x >> 40) as f32 / (1u64 << 24) as f32
}
