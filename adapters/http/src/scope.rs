//! Scoped credentials: each route requires one scope (the route table says which), checked by
//! `authorize::require` from the verified token's claims. API Gateway's JWT authorizer checks the same scopes first
//! (`AuthorizationScopes` in `template.yaml`, tested against the route table).

use std::collections::HashMap;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read every resource: accounts, balances, entries, transfers, batches, events, endpoints.
    Read,
    /// Move money: open accounts, create transfers, chains and batches.
    Write,
    /// Administer: webhook endpoints, their secrets, redeliveries and replays.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The scope's name (RFC 6749 section 3.3).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "ledger:read",
            Scope::Write => "ledger:write",
            Scope::Admin => "ledger:admin",
        }
    }

    /// Every name a token may carry it under: its own, and Cognito's spelling of a resource
    /// server's scope (`{identifier}/{name}`), which cannot contain `ledger:`.
    pub fn names(self) -> [&'static str; 2] {
        match self {
            Scope::Read => ["ledger:read", "ledger/read"],
            Scope::Write => ["ledger:write", "ledger/write"],
            Scope::Admin => ["ledger:admin", "ledger/admin"],
        }
    }

    /// Whether verified claims grant it: the `scope` claim (space-delimited, RFC 8693) or `scp`
    /// (a list, which API Gateway passes as `[a b]`).
    pub fn granted_by(self, claims: &HashMap<String, String>) -> bool {
        ["scope", "scp"]
            .iter()
            .filter_map(|claim| claims.get(*claim))
            .flat_map(|value| value.split([' ', ',']))
            .map(|granted| granted.trim_matches(|c| matches!(c, '[' | ']' | '"')))
            .any(|granted| self.names().contains(&granted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(name: &str, value: &str) -> HashMap<String, String> {
        HashMap::from([(name.to_owned(), value.to_owned())])
    }

    #[test]
    fn a_scope_is_granted_by_its_names_in_either_claim() {
        assert!(Scope::Read.granted_by(&claims("scope", "openid ledger:read")));
        assert!(Scope::Write.granted_by(&claims("scope", "ledger/write")));
        assert!(Scope::Admin.granted_by(&claims("scp", "[ledger:read ledger:admin]")));
        assert!(Scope::Admin.granted_by(&claims("scp", r#"["ledger:read","ledger:admin"]"#)));
    }

    #[test]
    fn no_scope_grants_another_nor_does_a_lookalike() {
        for granted in Scope::ALL {
            for required in Scope::ALL {
                let held = claims("scope", granted.name());
                assert_eq!(required.granted_by(&held), granted == required, "{granted:?} {required:?}");
            }
        }
        assert!(!Scope::Read.granted_by(&claims("scope", "ledger:reader ledger:rea")));
        assert!(!Scope::Read.granted_by(&claims("tenant_id", "ledger:read")));
        assert!(!Scope::Read.granted_by(&HashMap::new()));
    }
}
