//! Architecture invariant: infty-signals depends on serde, serde_json and thiserror only.

#[test]
fn dependencies_are_serde_serde_json_and_thiserror_only() {
    let manifest = include_str!("../../Cargo.toml");
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            // Any table that adds normal dependencies counts, target-specific ones included.
            in_dependencies = line == "[dependencies]"
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            assert!(
                !line.starts_with("[dependencies."),
                "dependency table {line}"
            );
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap().trim();
            names.push(name.to_owned());
        }
    }
    names.sort();
    assert_eq!(names, ["serde", "serde_json", "thiserror"]);
}
