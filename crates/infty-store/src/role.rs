//! The roles of a run, as one type with one parser and one display.
//!
//! A role's name is what `run.json`, the journal, the rollouts (`rollouts/<role>.jsonl`),
//! `infty send --role` and the MCP config say; [`Role::parse`] is the only place a name
//! becomes a role, and [`Role::as_str`] the only place a role becomes a name again.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StoreError;
use crate::ids::validate_role;

/// One role of a run: the Solver, the Director, or a Verifier with its own name (`verifier`,
/// `verifier-1`, `verifier-gpt`).
///
/// Equality, ordering and hashing are those of the name, so a map keyed by roles can be
/// looked up with a `&str`.
#[derive(Debug, Clone)]
pub enum Role {
    /// The role that does the work.
    Solver,
    /// The role that answers direction requests.
    Director,
    /// A role that judges the deliverable; the name starts with `verifier`.
    Verifier(String),
}

impl Role {
    /// The Solver's name.
    pub const SOLVER: &'static str = "solver";
    /// The Director's name.
    pub const DIRECTOR: &'static str = "director";
    /// What every Verifier's name starts with.
    pub const VERIFIER_PREFIX: &'static str = "verifier";

    /// The role a name stands for. The name must be usable as a file name (lower-case
    /// ASCII letters, digits, `_`, `-`, at most 64 characters) and be `solver`, `director`
    /// or start with `verifier`; a role written in another case (`Solver`) is refused with
    /// the name to write instead.
    pub fn parse(name: &str) -> Result<Role, StoreError> {
        let refuse = |reason| {
            Err(StoreError::InvalidRole {
                role: name.to_owned(),
                reason,
            })
        };
        if name != name.to_ascii_lowercase() && Role::parse(&name.to_ascii_lowercase()).is_ok() {
            return refuse("role names are lower case (`solver`, `director`, `verifier…`)");
        }
        validate_role(name)?;
        match name {
            Role::SOLVER => Ok(Role::Solver),
            Role::DIRECTOR => Ok(Role::Director),
            _ if name.starts_with(Role::VERIFIER_PREFIX) => Ok(Role::Verifier(name.to_owned())),
            _ => refuse("the roles are `solver`, `director` and names starting with `verifier`"),
        }
    }

    /// The `n`th Verifier of a run made by infty (`verifier-1`, counted from 1).
    pub fn verifier(n: usize) -> Role {
        Role::Verifier(format!("{}-{n}", Role::VERIFIER_PREFIX))
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Solver => Role::SOLVER,
            Role::Director => Role::DIRECTOR,
            Role::Verifier(name) => name,
        }
    }

    /// Whether this is a Verifier.
    pub fn is_verifier(&self) -> bool {
        matches!(self, Role::Verifier(_))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(name: &str) -> Result<Role, StoreError> {
        Role::parse(name)
    }
}

impl PartialEq for Role {
    fn eq(&self, other: &Role) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Role {}

impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Role) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Role {
    fn cmp(&self, other: &Role) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Role {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for Role {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Role {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Role {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        let name = String::deserialize(deserializer)?;
        Role::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_into_roles_and_display_as_they_were_written() {
        for (name, role) in [
            ("solver", Role::Solver),
            ("director", Role::Director),
            ("verifier", Role::Verifier("verifier".into())),
            ("verifier-2", Role::verifier(2)),
            ("verifier_gpt", Role::Verifier("verifier_gpt".into())),
        ] {
            let parsed = Role::parse(name).unwrap();
            assert_eq!(parsed, role);
            assert_eq!(parsed.to_string(), name);
            assert_eq!(
                serde_json::to_string(&parsed).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{name}\"")).unwrap(),
                role
            );
        }
        assert!(Role::verifier(1).is_verifier());
        assert!(!Role::Solver.is_verifier());
    }

    #[test]
    fn a_role_lines_up_in_a_padded_column() {
        assert_eq!(format!("[{:<10}]", Role::Solver), "[solver    ]");
        assert_eq!(format!("[{:>12}]", Role::verifier(1)), "[  verifier-1]");
    }

    #[test]
    fn a_role_in_another_case_is_refused_with_the_name_to_write() {
        for name in ["Solver", "DIRECTOR", "Verifier-1"] {
            let error = Role::parse(name).unwrap_err().to_string();
            assert!(error.contains(&format!("`{name}`")), "{error}");
            assert!(error.contains("lower case"), "{error}");
        }
    }

    #[test]
    fn names_that_are_no_role_or_no_file_name_are_refused() {
        for name in ["critic", "", "verifier.1", "../solver", "solver "] {
            let error = Role::parse(name).unwrap_err();
            assert!(
                matches!(&error, StoreError::InvalidRole { role, .. } if role == name),
                "{name}: {error}"
            );
        }
        let error = serde_json::from_str::<Role>("\"critic\"").unwrap_err();
        assert!(error.to_string().contains("critic"), "{error}");
    }

    #[test]
    fn maps_keyed_by_roles_are_looked_up_by_name() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(Role::Solver, 1);
        map.insert(Role::verifier(1), 2);
        assert_eq!(map.get("solver"), Some(&1));
        assert_eq!(map.get("verifier-1"), Some(&2));
        assert_eq!(map.get("director"), None);
    }
}
