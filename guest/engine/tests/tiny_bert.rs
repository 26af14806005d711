//! Behaviour of loading and embedding, on a tiny BERT the tests write themselves.

use llmkg_engine::testing::tiny_bert::*;
use llmkg_engine::*;

fn load(files: Vec<ModelFile>) -> Result<Engine, EngineError> {
    let mut engine = Engine::new();
    engine.load_model("bert", ModelKind::Embedding, files, &LoadOptions::default())?;
    Ok(engine)
}

fn texts(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
        / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
}

#[test]
fn embeddings_are_unit_vectors_and_the_same_alone_or_batched() {
    let engine = load(files("gelu", safetensors(&tensors()))).unwrap();
    let batch = texts(&["hello world", "the cat sits on the mat", "cat", ""]);
    let together = engine.embed("bert", &batch).unwrap();
    assert_eq!(together.len(), 4);
    for (i, text) in batch.iter().enumerate() {
        assert_eq!(together[i].len(), HIDDEN);
        let norm: f32 = together[i].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "text {i}: norm {norm}");
        assert_eq!(engine.embed("bert", std::slice::from_ref(text)).unwrap()[0], together[i], "text {i}");
    }
}

/// candle-transformers' `BertModel` is an independent implementation of the same network.
#[test]
fn embeddings_match_candles_bert_model() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::{BertModel, Config};
    for act in ["gelu", "gelu_new", "relu"] {
        let weights = safetensors(&tensors());
        let engine = load(files(act, weights.clone())).unwrap();
        // candle spells the tanh approximation its own way.
        let candle_act = if act == "gelu_new" { "geluapproximate" } else { act };
        let config: Config = serde_json::from_slice(&config(candle_act)).unwrap();
        let model = BertModel::load(VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).unwrap(), &config).unwrap();
        // "[CLS] the cat sits on the mat [SEP]": "on" is not in the vocabulary.
        let ids = Tensor::new(&[[2u32, 6, 7, 8, 1, 6, 9, 3]], &Device::Cpu).unwrap();
        let hidden = model.forward(&ids, &ids.zeros_like().unwrap(), None).unwrap();
        let expected: Vec<f32> = hidden.mean(1).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        let got = engine.embed("bert", &texts(&["the cat sits on the mat"])).unwrap();
        let c = cosine(&got[0], &expected);
        assert!(c >= 0.9999, "{act}: cosine {c}");
    }
}

#[test]
fn a_missing_tensor_is_an_invalid_model_that_names_it() {
    let mut t = tensors();
    t.retain(|(name, _)| name != "encoder.layer.1.output.dense.weight");
    let err = load(files("gelu", safetensors(&t))).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("encoder.layer.1.output.dense.weight") && m.contains("missing")), "{err}");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_an_invalid_model_that_names_it() {
    let mut t = tensors();
    let i = t.iter().position(|(name, _)| name == "encoder.layer.0.intermediate.dense.weight").unwrap();
    t[i].1 = vec![HIDDEN, INTER];
    let err = load(files("gelu", safetensors(&t))).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("encoder.layer.0.intermediate.dense.weight") && m.contains("shape")), "{err}");
}

#[test]
fn weights_that_are_not_safetensors_are_an_invalid_model() {
    let err = load(files("gelu", b"not safetensors at all".to_vec())).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("model.safetensors")), "{err}");
}

#[test]
fn an_unknown_activation_is_unsupported() {
    let err = load(files("swish", safetensors(&tensors()))).err().unwrap();
    assert!(matches!(&err, EngineError::Unsupported(m) if m.contains("swish")), "{err}");
}

/// Found by fuzzing: tokenizers accepts the file and panics on the first encode.
#[test]
fn a_template_naming_an_undefined_special_token_is_an_invalid_model() {
    let tokenizer = String::from_utf8(tokenizer()).unwrap().replace(r#""[SEP]":{"id":"[SEP]""#, r#""[SE'P]":{"id":"[SEP]""#);
    let mut files = files("gelu", safetensors(&tensors()));
    files[1].bytes = tokenizer.into_bytes();
    let err = load(files).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("\"[SEP]\"") && m.contains("special_tokens")), "{err}");
}

/// Found by fuzzing: tokenizers panics inside its decoder deserializer on JSON that is not JSON.
#[test]
fn a_tokenizer_json_broken_inside_the_decoder_is_an_invalid_model() {
    let tokenizer = String::from_utf8(tokenizer()).unwrap().replace(r#""decoder":null"#, r#""decoder":jull"#);
    let mut files = files("gelu", safetensors(&tensors()));
    files[1].bytes = tokenizer.into_bytes();
    let err = load(files).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("tokenizer.json: not JSON")), "{err}");
}

/// tokenizers would panic on a Precompiled normalizer whose charsmap does not decode.
#[test]
fn a_precompiled_normalizer_that_does_not_decode_is_an_invalid_model() {
    let normalizer = r#""normalizer":{"type":"Sequence","normalizers":[{"type":"Precompiled","precompiled_charsmap":"!!not base64!!"}]}"#;
    let original = String::from_utf8(tokenizer()).unwrap();
    let start = original.find(r#""normalizer":"#).unwrap();
    let end = start + original[start..].find("},").unwrap() + 1;
    let tokenizer = format!("{}{normalizer}{}", &original[..start], &original[end..]);
    let mut files = files("gelu", safetensors(&tensors()));
    files[1].bytes = tokenizer.into_bytes();
    let err = load(files).err().unwrap();
    assert!(matches!(&err, EngineError::InvalidModel(m) if m.contains("Precompiled")), "{err}");
}
