//! The grant policy (broker.md §5): what an action string may do, decided
//! on the action alone by the first matching rule, and which HTTP methods a
//! grant's action permits when it is used (§5.1). Matching is ASCII
//! case-insensitive; a "word" is bounded as a regex `\b` bounds it (letters,
//! digits and `_` are word characters), so `destroy_all` does not contain
//! the word `destroy` but `db.destroy` does.

/// What a rule does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Approval,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Approval => "approval",
            Effect::Deny => "deny",
        }
    }
}

/// How a rule matches an action.
enum Pattern {
    /// Contains one of these as a whole word.
    Words(&'static [&'static str]),
    /// Contains `.` immediately followed by one of these, ending a word.
    DotVerb(&'static [&'static str]),
}

struct Rule {
    id: &'static str,
    pattern: Pattern,
    effect: Effect,
    forces_proxy: bool,
}

/// Tried in order; the first match wins.
const RULES: [Rule; 3] = [
    Rule {
        id: "deny-destructive",
        pattern: Pattern::Words(&[
            "destroy",
            "wipe",
            "purge",
            "truncate",
            "drop_database",
            "drop-database",
            "dropdatabase",
            "force_push",
            "force-push",
            "forcepush",
        ]),
        effect: Effect::Deny,
        forces_proxy: false,
    },
    Rule {
        id: "approval-sensitive",
        pattern: Pattern::Words(&[
            "delete",
            "remove",
            "transfer",
            "payment",
            "charge",
            "refund",
            "deploy",
            "admin",
            "secret",
            "token",
            "grant",
            "rotate",
            "impersonate",
            "billing",
        ]),
        effect: Effect::Approval,
        forces_proxy: true,
    },
    Rule {
        id: "allow-standard",
        pattern: Pattern::DotVerb(&[
            "read", "list", "get", "search", "create", "open", "comment", "update", "write",
            "label", "assign",
        ]),
        effect: Effect::Allow,
        forces_proxy: false,
    },
];

/// When nothing matches: never allow an action nobody recognised.
const DEFAULT_EFFECT: Effect = Effect::Approval;

/// The policy's answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// `proxy` if the rule forces proxy, else the requested mode.
    pub mode: String,
    /// The rule forced proxy and `mint` was requested.
    pub forced_proxy: bool,
    /// The rule id, or `default`.
    pub matched_rule: &'static str,
    pub reason: String,
}

impl Decision {
    pub fn requires_approval(&self) -> bool {
        self.effect == Effect::Approval
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `word` occurs in `text` with a word boundary before it (when
/// `bounded_before`) and after it.
fn occurs(text: &[u8], word: &[u8], bounded_before: bool) -> bool {
    (0..text.len().saturating_sub(word.len()) + 1)
        .filter(|&at| text[at..].starts_with(word))
        .any(|at| {
            let end = at + word.len();
            let before = !bounded_before || at == 0 || !is_word_byte(text[at - 1]);
            let after = end == text.len() || !is_word_byte(text[end]);
            before && after
        })
}

impl Pattern {
    fn matches(&self, action: &[u8]) -> bool {
        match self {
            Pattern::Words(words) => words.iter().any(|w| occurs(action, w.as_bytes(), true)),
            Pattern::DotVerb(verbs) => verbs
                .iter()
                .any(|v| occurs(action, format!(".{v}").as_bytes(), false)),
        }
    }
}

/// Decide `action`, requested in `mode` (`proxy` or `mint`).
pub fn decide(action: &str, mode: &str) -> Decision {
    let lower = action.to_ascii_lowercase();
    let rule = RULES.iter().find(|r| r.pattern.matches(lower.as_bytes()));
    let (effect, forces_proxy, matched_rule, reason) = match rule {
        Some(r) => (
            r.effect,
            r.forces_proxy,
            r.id,
            format!("matched rule {}", r.id),
        ),
        None => (
            DEFAULT_EFFECT,
            true,
            "default",
            "no rule matched; default posture applied".into(),
        ),
    };
    Decision {
        effect,
        mode: if forces_proxy { "proxy" } else { mode }.into(),
        forced_proxy: forces_proxy && mode == "mint",
        matched_rule,
        reason,
    }
}

/// The methods a grant for `action` permits (§5.1): by the verb after its
/// last `.`; `None` permits any.
pub fn permitted_methods(action: &str) -> Option<&'static [&'static str]> {
    let verb = action.rsplit('.').next().unwrap_or(action).to_lowercase();
    Some(match verb.as_str() {
        "read" | "list" | "get" | "search" => &["GET", "HEAD"],
        "create" | "open" => &["POST", "PUT"],
        "write" => &["POST", "PUT", "PATCH"],
        "update" => &["PUT", "PATCH", "POST"],
        "delete" | "remove" => &["DELETE"],
        _ => return None,
    })
}

/// Refuse `method` for a grant of `action`, with upstream's message.
pub fn bind_call(action: &str, method: &str) -> Result<(), String> {
    let method = method.to_uppercase();
    match permitted_methods(action) {
        Some(allowed) if !allowed.contains(&method.as_str()) => Err(format!(
            "action '{action}' does not permit {method} (expected {})",
            allowed.join("/")
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str) -> (&'static str, Effect) {
        let d = decide(action, "proxy");
        (d.matched_rule, d.effect)
    }

    #[test]
    fn word_boundaries_follow_regex_rules() {
        assert!(occurs(b"db.destroy", b"destroy", true));
        assert!(!occurs(b"destroy_all", b"destroy", true));
        assert!(occurs(b"x-destroy-y", b"destroy", true));
        assert!(!occurs(b"undestroy", b"destroy", true));
        assert!(occurs(b"x.read", b".read", false));
        assert!(!occurs(b"x.readme", b".read", false));
        assert!(occurs(b"x.readme.read", b".read", false));
        assert!(!occurs(b"", b"x", true));
    }

    #[test]
    fn rules_apply_in_order() {
        assert_eq!(
            rule("db.destroy_and.delete"),
            ("approval-sensitive", Effect::Approval)
        );
        assert_eq!(
            rule("repo.delete.read"),
            ("approval-sensitive", Effect::Approval)
        );
        assert_eq!(rule("REPO.FORCE-PUSH"), ("deny-destructive", Effect::Deny));
        assert_eq!(
            rule("table.drop_database"),
            ("deny-destructive", Effect::Deny)
        );
        assert_eq!(rule("Repo.Read"), ("allow-standard", Effect::Allow));
        assert_eq!(rule("issue.comment"), ("allow-standard", Effect::Allow));
        assert_eq!(rule(""), ("default", Effect::Approval));
    }
}
