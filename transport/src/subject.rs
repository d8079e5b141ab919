//! Subjects and patterns, as NATS has them: tokens separated by dots; in a pattern, `*`
//! stands for one token and `>` (the last token) for one or more. Redis pub/sub has glob
//! patterns instead, whose `*` also crosses dots: [`redis_glob`] gives a glob that matches
//! at least what the pattern does, and the subscriber keeps what [`matches()`] accepts.

use crate::TransportError;

/// The longest subject or pattern (bytes).
pub const MAX_SUBJECT: usize = 255;

/// Checks a subject to publish on: non-empty tokens of printable characters, no
/// whitespace, no wildcards.
pub fn check_subject(subject: &str) -> Result<(), TransportError> {
    check(subject, "subject", false)
}

/// Checks a pattern to subscribe with: as a subject, with `*` tokens anywhere and a `>`
/// token last.
pub fn check_pattern(pattern: &str) -> Result<(), TransportError> {
    check(pattern, "pattern", true)
}

fn check(s: &str, what: &'static str, wildcards: bool) -> Result<(), TransportError> {
    let bad = |problem: String| Err(TransportError::Invalid { what, problem });
    if s.is_empty() || s.len() > MAX_SUBJECT {
        return bad(format!("1 to {MAX_SUBJECT} bytes, got {}", s.len()));
    }
    let tokens: Vec<&str> = s.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return bad(format!("'{s}' has an empty token"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad(format!("'{s}' has whitespace or a control character"));
        }
        let wild = *t == "*" || *t == ">";
        if wild && !wildcards {
            return bad(format!("'{s}' has a wildcard token"));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return bad(format!("'{s}': '>' must be the last token"));
        }
        if !wild && (t.contains('*') || t.contains('>')) {
            return bad(format!("'{s}': '*' and '>' are whole tokens"));
        }
    }
    Ok(())
}

/// Whether `subject` is one of those `pattern` names.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The subject of an app's quorum messages (throttles, roll calls, `pub_quorum`'s), which a
/// bridge relays both ways between PostgreSQL's quorum channel and the transport:
/// `_quorum.<app>`. The leading `_` token keeps it apart from publishes topics (the
/// completions' subjects).
pub fn quorum(app: &str) -> String {
    format!("{QUORUM}.{app}")
}

/// The subject of an app's activation notices (`{app_id, version}`, as PostgreSQL's
/// `hotmesh_activated` carries them), which a bridge relays from PostgreSQL:
/// `_activated.<app>`.
pub fn activated(app: &str) -> String {
    format!("{ACTIVATED}.{app}")
}

/// Every app's activation notices, as a pattern.
pub const ACTIVATED_ALL: &str = "_activated.>";

const QUORUM: &str = "_quorum";
const ACTIVATED: &str = "_activated";

/// A Redis glob that matches every subject `pattern` matches (and maybe more: `*` crosses
/// dots in a glob), the literal parts escaped.
pub fn redis_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    for (i, t) in pattern.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        match t {
            "*" | ">" => out.push('*'),
            _ => {
                for c in t.chars() {
                    if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_is_one_token_and_a_chevron_the_rest() {
        assert!(matches("orders.*", "orders.new"));
        assert!(!matches("orders.*", "orders.new.eu"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches("orders.>", "orders.new"));
        assert!(matches("orders.>", "orders.new.eu"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("*.new", "orders.new"));
        assert!(matches("orders.new", "orders.new"));
        assert!(!matches("orders.new", "orders.old"));
        assert!(matches(">", "a.b.c"));
    }

    #[test]
    fn subjects_and_patterns_are_checked() {
        assert!(check_subject("orders.new").is_ok());
        assert!(check_subject("orders.*").is_err());
        assert!(check_subject("orders..new").is_err());
        assert!(check_subject("orders new").is_err());
        assert!(check_subject("").is_err());
        assert!(check_subject(&"a".repeat(MAX_SUBJECT + 1)).is_err());
        assert!(check_pattern("orders.*.eu").is_ok());
        assert!(check_pattern("orders.>").is_ok());
        assert!(check_pattern("orders.>.eu").is_err());
        assert!(check_pattern("orders.a*").is_err());
    }

    #[test]
    fn quorum_and_activation_subjects_name_the_app_apart_from_topics() {
        assert_eq!(quorum("orders"), "_quorum.orders");
        assert_eq!(activated("orders"), "_activated.orders");
        assert!(check_subject(&quorum("orders")).is_ok());
        assert!(check_pattern(ACTIVATED_ALL).is_ok());
        assert!(matches(ACTIVATED_ALL, &activated("orders")));
        assert!(matches(ACTIVATED_ALL, &activated("a.b")));
        assert!(!matches(ACTIVATED_ALL, &quorum("orders")));
        // an app id that is no subject token is refused where it is used
        assert!(check_subject(&quorum("my app")).is_err());
    }

    #[test]
    fn a_redis_glob_covers_the_pattern_with_its_literals_escaped() {
        assert_eq!(redis_glob("orders.*"), "orders.*");
        assert_eq!(redis_glob("orders.>"), "orders.*");
        assert_eq!(redis_glob("a?b.[x].*"), "a\\?b.\\[x\\].*");
    }
}
