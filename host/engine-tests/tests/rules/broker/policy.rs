//! The policy of broker.md §5 and the call binding of §5.1, on every
//! example the spec and upstream's policy tests give.

use tidebase_engine::broker::actions::{Effect, bind_call, decide};

#[test]
fn every_example_of_the_spec_decides_as_specified() {
    let cases = [
        ("pull_request.create", Effect::Allow, "allow-standard"),
        ("repo.read", Effect::Allow, "allow-standard"),
        ("x.readme", Effect::Approval, "default"),
        ("deploy.delete", Effect::Approval, "approval-sensitive"),
        ("billing.charge", Effect::Approval, "approval-sensitive"),
        ("secret.read", Effect::Approval, "approval-sensitive"),
        ("iam.admin", Effect::Approval, "approval-sensitive"),
        ("repo.admin", Effect::Approval, "approval-sensitive"),
        ("db.destroy", Effect::Deny, "deny-destructive"),
        ("repo.force_push", Effect::Deny, "deny-destructive"),
        ("table.truncate", Effect::Deny, "deny-destructive"),
        ("database.destroy", Effect::Deny, "deny-destructive"),
        ("some.weird_unknown_verb", Effect::Approval, "default"),
        // Word boundaries: `_` is a word character, `.` and `-` are not.
        ("destroy_all", Effect::Approval, "default"),
        ("x.DROP-DATABASE", Effect::Deny, "deny-destructive"),
        ("repo.forcepush", Effect::Deny, "deny-destructive"),
        ("Issue.Comment", Effect::Allow, "allow-standard"),
        ("repo.read.delete", Effect::Approval, "approval-sensitive"),
    ];
    for (action, effect, rule) in cases {
        let d = decide(action, "proxy");
        assert_eq!((d.effect, d.matched_rule), (effect, rule), "{action}");
        let reason = match rule {
            "default" => "no rule matched; default posture applied".to_string(),
            r => format!("matched rule {r}"),
        };
        assert_eq!(d.reason, reason, "{action}");
        assert_eq!(d.requires_approval(), effect == Effect::Approval);
    }
}

#[test]
fn approval_forces_proxy_and_allow_keeps_the_requested_mode() {
    for action in [
        "deploy.delete",
        "billing.charge",
        "secret.read",
        "iam.admin",
    ] {
        let d = decide(action, "mint");
        assert_eq!(d.effect, Effect::Approval);
        assert_eq!(
            (d.mode.as_str(), d.forced_proxy),
            ("proxy", true),
            "{action}"
        );
        let d = decide(action, "proxy");
        assert_eq!((d.mode.as_str(), d.forced_proxy), ("proxy", false));
    }
    let d = decide("some.weird_unknown_verb", "mint");
    assert_eq!((d.mode.as_str(), d.forced_proxy), ("proxy", true));
    let d = decide("repo.read", "mint");
    assert_eq!(
        (d.effect, d.mode.as_str(), d.forced_proxy),
        (Effect::Allow, "mint", false)
    );
}

/// Upstream's invariant: whatever the action, the default posture is never
/// allow, and only the allow rule (a recognised low-risk verb) allows.
#[test]
fn nothing_unrecognised_is_ever_allowed() {
    let parts = [
        "", "x", "repo", "read", "Read", "readme", "destroy", "_", "-", ".", "é", " ",
    ];
    for a in parts {
        for b in parts {
            for c in parts {
                let action = format!("{a}{b}{c}");
                let d = decide(&action, "proxy");
                if d.matched_rule == "default" {
                    assert_eq!(d.effect, Effect::Approval, "{action:?}");
                }
                if d.effect == Effect::Allow {
                    assert_eq!(d.matched_rule, "allow-standard", "{action:?}");
                    assert!(action.to_ascii_lowercase().contains(".read"), "{action:?}");
                }
            }
        }
    }
}

#[test]
fn a_grant_binds_the_methods_of_its_verb() {
    let allowed = [
        ("pull_request.create", "POST"),
        ("pull_request.create", "put"),
        ("repo.read", "GET"),
        ("repo.read", "head"),
        ("Repo.READ", "get"),
        ("read", "GET"),
        ("repo.delete", "DELETE"),
        ("item.remove", "delete"),
        ("doc.write", "PATCH"),
        ("item.update", "POST"),
        ("custom.frobnicate", "POST"),
        ("issue.comment", "DELETE"),
        ("iam.admin", "PURGE"),
    ];
    for (action, method) in allowed {
        assert_eq!(bind_call(action, method), Ok(()), "{action} {method}");
    }
    let refused = [
        ("repo.read", "DELETE", "GET/HEAD"),
        ("repo.list", "post", "GET/HEAD"),
        ("x.search", "PUT", "GET/HEAD"),
        ("pr.open", "PATCH", "POST/PUT"),
        ("doc.write", "DELETE", "POST/PUT/PATCH"),
        ("item.update", "GET", "PUT/PATCH/POST"),
        ("deploy.delete", "GET", "DELETE"),
    ];
    for (action, method, expected) in refused {
        let upper = method.to_uppercase();
        assert_eq!(
            bind_call(action, method),
            Err(format!(
                "action '{action}' does not permit {upper} (expected {expected})"
            )),
        );
    }
}
