//! Picks the next token from logits: repeat penalty, then greedy or seeded sampling
//! (temperature, top-k, top-p) with candle's `LogitsProcessor`.

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};

use crate::error::{EngineError, Result};
use crate::types::Sampling;

/// How many recent tokens the repeat penalty looks at (llama.cpp's default).
const REPEAT_WINDOW: usize = 64;

pub struct Sampler {
    processor: LogitsProcessor,
    greedy: bool,
    temperature: f64,
    repeat_penalty: f32,
}

impl Sampler {
    pub fn new(sampling: Option<Sampling>) -> Result<Self> {
        let s = sampling.unwrap_or_default();
        let check = |ok: bool, what: &str| {
            if ok { Ok(()) } else { Err(EngineError::InvalidInput(what.to_string())) }
        };
        check(s.temperature.is_finite() && s.temperature >= 0.0, "sampling.temperature must be a finite number >= 0")?;
        check(s.top_p.is_finite() && s.top_p > 0.0 && s.top_p <= 1.0, "sampling.top-p must be in (0, 1]")?;
        check(s.repeat_penalty.is_finite() && s.repeat_penalty > 0.0, "sampling.repeat-penalty must be > 0")?;
        let temperature = s.temperature as f64;
        // The temperature is applied in `sample` (see there); candle's processor gets 1.
        let mode = if temperature == 0.0 {
            CandleSampling::ArgMax
        } else {
            match (s.top_k, s.top_p < 1.0) {
                (0, false) => CandleSampling::All { temperature: 1.0 },
                (k, false) => CandleSampling::TopK { k: k as usize, temperature: 1.0 },
                (0, true) => CandleSampling::TopP { p: s.top_p as f64, temperature: 1.0 },
                (k, true) => CandleSampling::TopKThenTopP { k: k as usize, p: s.top_p as f64, temperature: 1.0 },
            }
        };
        Ok(Sampler {
            processor: LogitsProcessor::from_sampling(s.seed, mode),
            greedy: temperature == 0.0,
            temperature,
            repeat_penalty: s.repeat_penalty,
        })
    }

    /// `history` is every token so far (prompt and generated).
    pub fn sample(&mut self, mut logits: Vec<f32>, history: &[u32]) -> Result<u32> {
        if self.repeat_penalty != 1.0 {
            let start = history.len().saturating_sub(REPEAT_WINDOW);
            let mut seen = std::collections::HashSet::new();
            for &t in &history[start..] {
                if seen.insert(t) {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = if *l >= 0.0 { *l / self.repeat_penalty } else { *l * self.repeat_penalty };
                    }
                }
            }
        }
        if self.greedy {
            // Plain argmax on the vector: no tensor round trip for every token.
            let best = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32);
            return best.ok_or_else(|| EngineError::Internal("empty logits".into()));
        }
        // Scaled relative to the best logit, so every value is in [-inf, 0] whatever the
        // temperature and penalty: a temperature of 1e-40 or a penalty of 1e-30 would otherwise
        // make infinities, and softmax of those is NaN (found by fuzzing).
        let best = logits.iter().copied().filter(|l| !l.is_nan()).fold(f32::MIN, f32::max).min(f32::MAX);
        let logits: Vec<f32> = logits
            .iter()
            .map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { ((l.min(f32::MAX) - best) as f64 / self.temperature) as f32 })
            .collect();
        let n = logits.len();
        let logits = Tensor::from_vec(logits, n, &Device::Cpu)?;
        self.processor.sample(&logits).map_err(|e| EngineError::compute("sampling", e))
    }
}
