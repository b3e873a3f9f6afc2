//! Property tests: nothing panics, and a valid signal in prose is recovered.

use infty_signals::{
    DirectionRequest, FinalDelivery, SolverSignal, parse_directive, parse_solver_signal,
    parse_verdict,
};
use proptest::prelude::*;

/// Text biased towards the bytes that matter to extraction.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just(":".to_owned()),
            Just(",".to_owned()),
            Just("```json\n".to_owned()),
            Just("\"type\"".to_owned()),
            Just("\"direction_request\"".to_owned()),
            Just("\"prompt\"".to_owned()),
            Just("null".to_owned()),
            Just("\r\n".to_owned()),
            "\\PC{0,4}",
        ],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

/// Prose with no braces: anything a model might write around its JSON.
fn prose() -> impl Strategy<Value = String> {
    "[^{}]{0,200}"
}

fn signal() -> impl Strategy<Value = SolverSignal> {
    let text = "\\PC*[^\\s]\\PC*";
    prop_oneof![
        text.prop_map(|prompt| SolverSignal::DirectionRequest(DirectionRequest { prompt })),
        (text, proptest::option::of(text)).prop_map(|(deliverable_path, summary)| {
            SolverSignal::FinalDelivery(FinalDelivery {
                deliverable_path,
                summary,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn no_input_panics(text in any::<String>()) {
        let _ = parse_solver_signal(&text);
        let _ = parse_directive(&text);
        let _ = parse_verdict(&text);
    }

    #[test]
    fn no_jsonish_input_panics(text in jsonish()) {
        let _ = parse_solver_signal(&text);
        let _ = parse_directive(&text);
        let _ = parse_verdict(&text);
    }

    #[test]
    fn a_signal_in_prose_is_recovered(
        before in prose(),
        after in prose(),
        signal in signal(),
        fenced in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let json = if pretty {
            serde_json::to_string_pretty(&signal).unwrap()
        } else {
            serde_json::to_string(&signal).unwrap()
        };
        let body = if fenced { format!("\n```json\n{json}\n```\n") } else { json };
        let reply = format!("{before}{body}{after}");
        prop_assert_eq!(parse_solver_signal(&reply), Ok(signal));
    }

    #[test]
    fn serialized_signals_round_trip(signal in signal()) {
        let json = serde_json::to_string(&signal).unwrap();
        prop_assert_eq!(parse_solver_signal(&json), Ok(signal.clone()));
        prop_assert_eq!(serde_json::from_str::<SolverSignal>(&json).unwrap(), signal);
    }
}
