//! The secret goes out with the request and nowhere else: not back to the
//! guest, not into the database in plaintext, not into receipts, events,
//! errors, resources or Debug output.

use super::upstream::{Upstream, url_encode};
use super::{SECRET, allow, connect, connect_with, get, in_step, receipts, refused, send};
use crate::rig::Rig;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use sqlx::{Connection, Row, SqliteConnection};
use tidebase_engine::{EgressRequest, Injection, NewResource};

/// Every form of the secret that must not leak.
fn forms() -> Vec<String> {
    vec![
        SECRET.to_string(),
        STANDARD.encode(SECRET),
        URL_SAFE.encode(SECRET),
        URL_SAFE_NO_PAD.encode(SECRET),
        url_encode(SECRET),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{what} holds the secret as {form:?}: {text}"
        );
    }
}

#[tokio::test]
async fn the_credential_replaces_the_guests_and_reaches_the_upstream() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (_, act) = in_step(&rig, allow(&["api"])).await;
    let guest = |name: &str, value: &str| (name.to_string(), value.as_bytes().to_vec());
    let req = EgressRequest {
        method: "POST".into(),
        url: format!("{}/echo", up.base),
        headers: vec![
            guest("Authorization", "Bearer guest-token"),
            guest("cookie", "session=guest"),
            guest("proxy-authorization", "Basic Z3Vlc3Q="),
            guest("idempotency-key", "guest-key"),
            guest("x-custom", "kept"),
        ],
        body: b"{\"a\":1}".to_vec(),
    };
    send(&rig, &act, req).await.unwrap();
    let seen = &up.hits("/echo")[0];
    let header = |name: &str| {
        let values = seen.headers.get_all(name).iter();
        values
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(header("authorization"), [format!("Bearer {SECRET}")]);
    assert_eq!(header("idempotency-key"), ["fetch-key"], "the step's key");
    assert_eq!(header("x-custom"), ["kept"]);
    assert!(header("cookie").is_empty() && header("proxy-authorization").is_empty());
}

#[tokio::test]
async fn a_query_credential_replaces_the_guests_and_stays_out_of_receipts() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    let injection = Injection::Query {
        param: "key".into(),
    };
    connect_with(&rig, "api", &up.base, injection).await;
    let (run, act) = in_step(&rig, allow(&["api"])).await;
    let answer = get(&rig, &act, &format!("{}/echo?key=guest&x=1", up.base))
        .await
        .unwrap();
    let query = up.hits("/echo")[0].query.clone().unwrap();
    assert_eq!(query, format!("x=1&key={}", form_encode(SECRET)));
    assert_clean("the answer", &String::from_utf8_lossy(&answer.body));
    let receipt = &receipts(&rig, &run.id).await[0];
    assert_eq!(receipt.path, "/echo");
    assert_clean("the receipt", &serde_json::to_string(receipt).unwrap());
}

/// `application/x-www-form-urlencoded`, as the broker's URL library writes it.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_echoed_secret_is_redacted_in_every_form() {
    let rig = Rig::open(None, true).await;
    let up = Upstream::start().await;
    connect(&rig, "api", &up.base).await;
    let (_, act) = in_step(&rig, allow(&["api"])).await;
    let answer = get(&rig, &act, &format!("{}/echo", up.base)).await.unwrap();
    let body = String::from_utf8(answer.body).unwrap();
    assert_clean("the body", &body);
    assert_eq!(body.matches("[REDACTED]").count(), 4, "{body}");
    assert!(body.starts_with("plain=Bearer [REDACTED]\n"), "{body}");
    for (name, value) in &answer.headers {
        assert_clean(name, &String::from_utf8_lossy(value));
    }
    let header = |n: &str| {
        answer
            .headers
            .iter()
            .find(|(name, _)| name == n)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(header("x-echo"), b"Bearer [REDACTED]");
    assert!(header("set-cookie").ends_with(b"[REDACTED]"));
    let names: Vec<_> = answer.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains(&"content-length"),
        "the body changed length"
    );
}

#[tokio::test]
async fn no_output_and_no_database_column_holds_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tidebase.db");
    let rig = Rig::open(Some(&db), true).await;
    let up = Upstream::start().await;
    let new = NewResource {
        name: "api".into(),
        base_url: Some(up.base.clone()),
        methods: vec![],
        paths: vec![],
        secret: Some(SECRET.into()),
        injection: Injection::default(),
        ..NewResource::default()
    };
    assert_clean("Debug of NewResource", &format!("{new:?}"));
    let resource = rig.engine.connect_resource(new).await.unwrap();
    assert!(resource.has_secret);
    assert_eq!(resource.injection["format"], "Bearer {secret}");
    // A query-injected secret on a failed call must not reach the error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    connect_with(
        &rig,
        "q",
        &gone,
        Injection::Query {
            param: "key".into(),
        },
    )
    .await;
    let (run, act) = in_step(&rig, allow(&["api", "q"])).await;
    get(&rig, &act, &format!("{}/echo", up.base)).await.unwrap();
    let refusal = refused(get(&rig, &act, &format!("{gone}/x?n=1")).await);
    assert_clean("a refusal", &format!("{refusal} {refusal:?}"));

    let listed = rig.engine.resources().await.unwrap();
    assert_clean("resources", &serde_json::to_string(&listed).unwrap());
    assert_clean("Debug of resources", &format!("{listed:?}"));
    let detail = rig.engine.run_detail(&run.id).await.unwrap();
    assert_clean("run detail and events", &detail.to_string());
    let audit = receipts(&rig, &run.id).await;
    assert_eq!(audit.len(), 2);
    assert_clean("receipts", &serde_json::to_string(&audit).unwrap());

    let dump = dump_text_and_blobs(&db).await;
    assert!(dump.len() > 100, "the scan read the tables");
    for form in forms() {
        let found = dump.windows(form.len()).any(|w| w == form.as_bytes());
        assert!(!found, "a database column holds {form:?}");
    }
    drop(rig);
    for suffix in ["", "-wal", "-shm"] {
        let file = std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default();
        let found = file.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        assert!(!found, "the database file{suffix} holds the secret");
    }
}

/// Every text and blob value of every table of the SQLite file, concatenated.
async fn dump_text_and_blobs(db: &std::path::Path) -> Vec<u8> {
    let url = format!("sqlite://{}", db.display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut dump = Vec::new();
    for table in tables {
        let info = format!("SELECT name FROM pragma_table_info('{table}')");
        let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(info))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for column in columns {
            let select = format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\" \
                 WHERE typeof(\"{column}\") IN ('text', 'blob')"
            );
            for row in sqlx::query(sqlx::AssertSqlSafe(select))
                .fetch_all(&mut conn)
                .await
                .unwrap()
            {
                dump.extend(row.get::<Vec<u8>, _>(0));
                dump.push(b'\n');
            }
        }
    }
    dump
}
