//! Parsing human sizes (`512MiB`, `2G`) and durations (`30`, `30s`, `500ms`) for limits.

use std::time::Duration;

/// Bytes in `text`: a number (decimals allowed) and an optional unit. `K`/`M`/`G`/`T`, `KiB`...
/// and `k`/`m`/`g` are powers of 1024; `KB`/`MB`/`GB`/`TB` are powers of 1000; `B` or nothing is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
            "unknown size unit `{unit}` in `{text}` (use B, KiB, MiB, GiB, K, M, G, KB, MB, GB)"
        ))
        }
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("size `{text}` is too large"));
    }
    Ok(bytes.round() as u64)
}

/// A duration: a plain number is seconds; units `ms`, `s`, `m`/`min`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)?;
    let seconds = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => {
            return Err(format!(
                "unknown duration unit `{unit}` in `{text}` (use ms, s, m, h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("duration `{text}`: {e}"))
}

/// `"1.5 GiB"` -> `(1.5, "GiB")`; the number must be non-negative.
fn split_number(text: &str) -> Result<(f64, &str), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a number in `{text}`"))?;
    Ok((number, unit.trim()))
}

/// `1536` -> `"1.5 KiB"`: sizes for people.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_are_powers_of_1024() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
    }

    #[test]
    fn decimal_units_are_powers_of_1000() {
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
    }

    #[test]
    fn a_bare_number_is_bytes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("100B"), Ok(100));
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_input() {
        assert!(parse_size("lots").unwrap_err().contains("lots"));
        assert!(parse_size("12XB").unwrap_err().contains("XB"));
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn durations_default_to_seconds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(2 << 30), "2.0 GiB");
    }
}
