//! The documented provider presets, as configured.

use infty_model::{PRESET_NAMES, ProviderConfig};

#[test]
fn presets_are_documented_settings() {
    let presets: Vec<String> = PRESET_NAMES
        .iter()
        .map(|name| format!("{:#?}", ProviderConfig::preset(name).unwrap()))
        .collect();
    insta::assert_snapshot!(presets.join("\n\n"));
}

#[test]
fn preset_aliases() {
    for (alias, name) in [
        ("llama.cpp", "llamacpp"),
        ("llama-cpp", "llamacpp"),
        ("lm-studio", "lmstudio"),
    ] {
        assert_eq!(ProviderConfig::preset(alias).unwrap().name, name);
    }
}
