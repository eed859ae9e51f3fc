/// The product's sport for what a file names (GPX `<type>`, TCX `Sport`, FIT `sport`),
/// case-insensitive; anything unknown is `other`.
pub fn sport_name(raw: &str) -> &'static str {
    match raw.trim().to_ascii_lowercase().as_str() {
        "running" | "run" | "trail_running" => "run",
        "cycling" | "biking" | "ride" | "mountain_biking" | "e_biking" => "ride",
        "swimming" | "swim" => "swim",
        "walking" | "walk" => "walk",
        "hiking" | "hike" => "hike",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::sport_name;

    #[test]
    fn names_map_case_insensitively_and_the_rest_is_other() {
        for (raw, sport) in [
            ("Running", "run"),
            ("trail_running", "run"),
            ("BIKING", "ride"),
            ("e_biking", "ride"),
            ("mountain_biking", "ride"),
            ("Swim", "swim"),
            ("walking", "walk"),
            ("Hike", "hike"),
            ("Other", "other"),
            ("rowing", "other"),
            ("", "other"),
        ] {
            assert_eq!(sport_name(raw), sport, "{raw}");
        }
    }
}
