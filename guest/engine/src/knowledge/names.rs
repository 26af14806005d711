//! Plain names <-> IRIs in the default namespace, and readable labels for IRIs.

/// The default namespace for plain names ("Veltrania" -> `urn:llmkg:Veltrania`). A URN, so no
/// host name is implied and nothing ever looks like something to fetch.
pub const NAMESPACE: &str = "urn:llmkg:";
pub const RDFS_LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
pub const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
pub const RDF_LANG_STRING: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";

/// Characters percent-encoded in local names: IRI delimiters and what Turtle/SPARQL would
/// need escaped. The demo KB generator (scripts/make-demo-kb.py) applies the same rule.
const ENCODED: &str = "<>\"{}|^`\\%#?/[]@!$&'()*+,;=";

/// A full IRI (has a scheme such as `urn:` or `https:`) stays as it is; a plain name is mapped
/// into [`NAMESPACE`]: trimmed, whitespace runs become `_`, delimiters are percent-encoded.
pub fn to_iri(name: &str) -> String {
    if has_scheme(name) {
        return name.to_string();
    }
    let mut out = String::from(NAMESPACE);
    let mut in_space = false;
    for c in name.trim().chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if c.is_control() || ENCODED.contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `scheme:` followed by something, where the scheme is a letter then letters, digits, `+-.`,
/// and the rest has no whitespace ("Note: x" is a plain name, "urn:isbn:1" an IRI).
pub fn has_scheme(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !rest.starts_with(' ')
        && !s.chars().any(char::is_whitespace)
}

/// A readable name for an IRI without a label: the part after the namespace (or the last
/// `/`, `#` or `:`), decoded, `_` as spaces.
pub fn readable(iri: &str) -> String {
    let local = iri
        .strip_prefix(NAMESPACE)
        .unwrap_or_else(|| iri.rsplit(['/', '#', ':']).next().unwrap_or(iri));
    percent_decode(local).replace('_', " ")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_map_into_the_namespace() {
        assert_eq!(to_iri("New York"), "urn:llmkg:New_York");
        assert_eq!(to_iri("  Côte d'Ivoire "), "urn:llmkg:Côte_d%27Ivoire");
        assert_eq!(to_iri("a/b #c"), "urn:llmkg:a%2Fb_%23c");
    }

    #[test]
    fn full_iris_pass_through() {
        assert_eq!(to_iri("https://example.org/x"), "https://example.org/x");
        assert_eq!(to_iri("urn:isbn:123"), "urn:isbn:123");
        assert_eq!(to_iri("Note: x"), "urn:llmkg:Note:_x");
    }

    #[test]
    fn readable_names_invert_the_mapping() {
        assert_eq!(readable(&to_iri("Côte d'Ivoire")), "Côte d'Ivoire");
        assert_eq!(readable("https://example.org/people#Ada_Lovelace"), "Ada Lovelace");
    }
}
