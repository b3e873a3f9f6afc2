//! Names that end up as file names: run ids, role names and inbox message ids.
//!
//! Everything here is checked before it touches a path, so no name can climb out of its
//! folder. This module must never do IO.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::macros::format_description;

use crate::StoreError;

/// Longest run id accepted.
pub const MAX_RUN_ID_LEN: usize = 128;
/// Longest role name accepted.
pub const MAX_ROLE_LEN: usize = 64;

/// Checks a run id: `[A-Za-z0-9._-]{1,128}`, not starting or ending with `.`.
///
/// The dot rule keeps `.`, `..` and hidden folders (where the store keeps temp files) out.
pub fn validate_run_id(id: &str) -> Result<(), StoreError> {
    let refuse = |reason| {
        Err(StoreError::InvalidRunId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return refuse("it is empty");
    }
    if id.len() > MAX_RUN_ID_LEN {
        return refuse("it is longer than 128 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return refuse("only ASCII letters, digits, `.`, `_` and `-` are allowed");
    }
    if id.starts_with('.') || id.ends_with('.') {
        return refuse("it must not start or end with `.`");
    }
    Ok(())
}

/// Checks a role name: `[a-z0-9_-]{1,64}`.
///
/// Role names become file names (`rollouts/<role>.jsonl`, `rollouts/<role>.<n>.jsonl`), so
/// a dot is refused: it would make rotated rollouts ambiguous. Upper case is refused too:
/// names are compared exactly everywhere (`solver` picks the Solver's prompt and tools), and
/// on a case-insensitive file system `Solver` and `solver` would share one rollout.
pub(crate) fn validate_role(role: &str) -> Result<(), StoreError> {
    let refuse = |reason| {
        Err(StoreError::InvalidRole {
            role: role.to_owned(),
            reason,
        })
    };
    if role.is_empty() {
        return refuse("it is empty");
    }
    if role.len() > MAX_ROLE_LEN {
        return refuse("it is longer than 64 characters");
    }
    if !role
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
    {
        return refuse(
            "only lower-case ASCII letters, digits, `_` and `-` are allowed (the roles are `solver`, `director` and `verifier…`)",
        );
    }
    Ok(())
}

/// A fresh run id such as `run-20261124-013512-7f3a`: the UTC time plus a random suffix.
///
/// Two ids generated in the same second differ in the suffix with high probability; the
/// store creates the folder with `create_dir` and retries with a new id on a collision.
pub fn generate_run_id() -> String {
    run_id_at(OffsetDateTime::now_utc(), fastrand::u16(..))
}

pub(crate) fn run_id_at(at: OffsetDateTime, suffix: u16) -> String {
    let format = format_description!("[year][month][day]-[hour][minute][second]");
    // The format has only numeric components, so formatting cannot fail; fall back to the
    // unix time rather than panic if it ever did.
    let stamp = at
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string());
    format!("run-{stamp}-{suffix:04x}")
}

/// The last timestamp (unix nanoseconds) handed out for an inbox message by this process.
static LAST_MESSAGE_NANOS: AtomicI64 = AtomicI64::new(0);

/// An inbox message id that sorts by creation time: `20261124T013512.123456789Z-7f3a9c21`.
///
/// Within one process the timestamps strictly increase, so messages queued back to back
/// keep their order even on a coarse clock; across processes the clock decides.
pub(crate) fn message_id() -> (String, OffsetDateTime) {
    // i64 nanoseconds last until the year 2262.
    let now =
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX - 1);
    let mut last = LAST_MESSAGE_NANOS.load(Ordering::Relaxed);
    let nanos = loop {
        let next = now.max(last.saturating_add(1));
        match LAST_MESSAGE_NANOS.compare_exchange_weak(
            last,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let format =
        format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:9]Z");
    let stamp = at.format(&format).unwrap_or_else(|_| nanos.to_string());
    (format!("{stamp}-{:08x}", fastrand::u32(..)), at)
}

/// Checks that a message id can only name a file directly inside the inbox.
pub(crate) fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn run_ids() {
        let long_ok = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases: &[(&str, bool)] = &[
            ("run-1", true),
            ("a", true),
            ("A.b_c-9", true),
            ("v1.2.3", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            (".", false),
            ("..", false),
            (".hidden", false),
            ("trailing.", false),
            ("has space", false),
            ("slash/inside", false),
            ("back\\slash", false),
            ("ünïcode", false),
            ("nul\0", false),
            ("colon:x", false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_run_id(id).is_ok(), *ok, "{id:?}");
        }
    }

    #[test]
    fn run_id_messages() {
        let messages: Vec<String> = ["", ".x", "a b"]
            .iter()
            .map(|id| validate_run_id(id).unwrap_err().to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "invalid run id ``: it is empty",
                "invalid run id `.x`: it must not start or end with `.`",
                "invalid run id `a b`: only ASCII letters, digits, `.`, `_` and `-` are allowed",
            ]
        );
    }

    #[test]
    fn roles() {
        let cases: &[(&str, bool)] = &[
            ("solver", true),
            ("verifier-2", true),
            ("director_x", true),
            ("", false),
            ("a.b", false),
            ("../x", false),
            ("a/b", false),
            ("Solver", false),
            ("verifier-A", false),
        ];
        for (role, ok) in cases {
            assert_eq!(validate_role(role).is_ok(), *ok, "{role:?}");
        }
    }

    #[test]
    fn generated_run_ids_have_the_documented_shape() {
        assert_eq!(
            run_id_at(datetime!(2026-11-24 01:35:12 UTC), 0x7f3a),
            "run-20261124-013512-7f3a"
        );
        assert_eq!(
            run_id_at(datetime!(2026-01-02 03:04:05 UTC), 0x1),
            "run-20260102-030405-0001"
        );
        let fresh = generate_run_id();
        validate_run_id(&fresh).unwrap();
        assert_eq!(fresh.len(), "run-20261124-013512-7f3a".len());
    }

    #[test]
    fn message_ids_increase_and_are_file_safe() {
        let ids: Vec<String> = (0..200).map(|_| message_id().0).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
        assert!(ids.iter().all(|id| is_message_id(id)));
        assert!(!is_message_id("../x"));
        assert!(!is_message_id(".tmp"));
        assert!(!is_message_id(""));
    }
}
