//! A tiny BERT written from scratch (10-word WordPiece vocabulary, two layers of width 8,
//! deterministic pseudo-random f32 weights): the three files an embedding model is loaded from.

use crate::ModelFile;

pub const HIDDEN: usize = 8;
pub const INTER: usize = 16;
pub const VOCAB: [&str; 10] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat", "sits", "mat"];

pub fn config(hidden_act: &str) -> Vec<u8> {
    format!(
        r#"{{"vocab_size":{},"hidden_size":{HIDDEN},"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":{INTER},"hidden_act":"{hidden_act}","hidden_dropout_prob":0.0,"max_position_embeddings":16,"type_vocab_size":2,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}}"#,
        VOCAB.len()
    )
    .into_bytes()
}

pub fn tokenizer() -> Vec<u8> {
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
pub fn tensors() -> Vec<(String, Vec<usize>)> {
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
pub fn safetensors(tensors: &[(String, Vec<usize>)]) -> Vec<u8> {
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

pub fn files(hidden_act: &str, weights: Vec<u8>) -> Vec<ModelFile> {
    vec![
        ModelFile { name: "config.json".into(), bytes: config(hidden_act) },
        ModelFile { name: "tokenizer.json".into(), bytes: tokenizer() },
        ModelFile { name: "model.safetensors".into(), bytes: weights },
    ]
}
