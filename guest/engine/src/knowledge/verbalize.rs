//! Facts as short English sentences, the form a small model uses best: given "The capital of
//! Veltrania is Quorvik." SmolLM2-135M answers from it; given the bare triple it does not.

/// A sentence for subject / predicate / object as readable labels.
pub fn sentence(subject: &str, predicate: &str, object: &str, is_type: bool) -> String {
    if is_type {
        return format!("{subject} is a {object}.");
    }
    let words: Vec<&str> = predicate.split_whitespace().collect();
    let first = words.first().copied().unwrap_or("");
    let last = words.last().copied().unwrap_or("");
    const PREPOSITIONS: [&str; 10] = ["in", "of", "to", "by", "from", "with", "at", "on", "for", "as"];
    if matches!(first, "is" | "has" | "was" | "are" | "have") {
        // "is member of", "has part"
        format!("{subject} {predicate} {object}.")
    } else if words.len() > 1 && PREPOSITIONS.contains(&last) {
        // "located in", "part of"
        format!("{subject} is {predicate} {object}.")
    } else if words.len() == 1 && first.ends_with('s') && !first.ends_with("ss") {
        // a verb in the third person: "borders", "speaks"
        format!("{subject} {predicate} {object}.")
    } else {
        // a noun: "capital", "currency", "population"
        format!("The {predicate} of {subject} is {object}.")
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn predicates_read_as_english() {
        assert_eq!(sentence("Veltrania", "capital", "Quorvik", false), "The capital of Veltrania is Quorvik.");
        assert_eq!(sentence("Paris", "located in", "France", false), "Paris is located in France.");
        assert_eq!(sentence("France", "borders", "Spain", false), "France borders Spain.");
        assert_eq!(sentence("Ada", "has child", "Byron", false), "Ada has child Byron.");
        assert_eq!(sentence("France", "", "Country", true), "France is a Country.");
    }
}
