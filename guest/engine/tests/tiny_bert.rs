//! Behaviour of loading and embedding, on a tiny BERT the tests write themselves.

use llmkg_engine::*;

const HIDDEN: usize = 8;
const INTER: usize = 16;
const VOCAB: [&str; 10] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat", "sits", "mat"];

fn config(hidden_act: &str) -> Vec<u8> {
    format!(
        r#"{{"vocab_size":{},"hidden_size":{HIDDEN},"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":{INTER},"hidden_act":"{hidden_act}","hidden_dropout_prob":0.0,"max_position_embeddings":16,"type_vocab_size":2,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}}"#,
        VOCAB.len()
    )
    .into_bytes()
}

fn tokenizer() -> Vec<u8> {
    let vocab: Vec<String> = VOCAB.iter().enumerate().map(|(i, t)| format!("\"{t}\":{i}")).collect();
    let special = |t: &str| format!(r#"{{"SpecialToken":{{"id":"{t}","type_id":0}}}}"#);
    format!(
        r###"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":{{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}},
        "pre_tokenizer":{{"type":"BertPreTokenizer"}},
        "post_processor":{{"type":"TemplateProcessing","single":[{cls},{{"Sequence":{{"id":"A","type_id":0}}}},{sep}],
          "pair":[{cls},{{"Sequence":{{"id":"A","type_id":0}}}},{sep},{{"Sequence":{{"id":"B","type_id":1}}}},{sep}],
          "special_tokens":{{"[CLS]":{{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]}},"[SEP]":{{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}}}}},
        "decoder":null,
        "model":{{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{{{}}}}}}}"###,
        vocab.join(","),
        cls = special("[CLS]"),
        sep = special("[SEP]"),
    )
    .into_bytes()
}

/// The tensors of a 2-layer BERT, deterministic pseudo-random values.
fn tensors() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![VOCAB.len(), HIDDEN]),
        ("embeddings.position_embeddings.weight".into(), vec![16, HIDDEN]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, HIDDEN]),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    for l in 0..2 {
        let p = format!("encoder.layer.{l}");
        for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            t.push((format!("{p}.{name}.weight"), vec![HIDDEN, HIDDEN]));
            t.push((format!("{p}.{name}.bias"), vec![HIDDEN]));
        }
        t.push((format!("{p}.intermediate.dense.weight"), vec![INTER, HIDDEN]));
        t.push((format!("{p}.intermediate.dense.bias"), vec![INTER]));
        t.push((format!("{p}.output.dense.weight"), vec![HIDDEN, INTER]));
        t.push((format!("{p}.output.dense.bias"), vec![HIDDEN]));
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.push((format!("{p}.{norm}.weight"), vec![HIDDEN]));
            t.push((format!("{p}.{norm}.bias"), vec![HIDDEN]));
        }
    }
    t
}

/// A safetensors file (8-byte header length, JSON header, little-endian f32 data).
fn safetensors(tensors: &[(String, Vec<usize>)]) -> Vec<u8> {
    let (mut header, mut data) = (Vec::new(), Vec::<u8>::new());
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            // LayerNorm weights near 1, everything else in [-0.5, 0.5).
            let v = if name.ends_with("LayerNorm.weight") { 1.0 + v * 0.2 } else { v };
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.push(format!(r#""{name}":{{"dtype":"F32","shape":{shape:?},"data_offsets":[{start},{}]}}"#, data.len()));
    }
    let header = format!("{{{}}}", header.join(",")).into_bytes();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

fn files(hidden_act: &str, weights: Vec<u8>) -> Vec<ModelFile> {
    vec![
        ModelFile { name: "config.json".into(), bytes: config(hidden_act) },
        ModelFile { name: "tokenizer.json".into(), bytes: tokenizer() },
        ModelFile { name: "model.safetensors".into(), bytes: weights },
    ]
}

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
