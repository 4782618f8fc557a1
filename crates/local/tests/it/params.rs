//! The parameter store: SSM semantics, encryption at rest, file modes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_local::params::{
    NameError, ParamError, ParamStore, ParameterType, ParameterValue, PutOptions,
};
use berth_local::state_dir::StateDir;

fn store(dir: &Path) -> ParamStore {
    ParamStore::open(&StateDir::at(dir.join(".berth"))).unwrap()
}

fn secure() -> PutOptions {
    PutOptions {
        kind: Some(ParameterType::SecureString),
        ..PutOptions::default()
    }
}

fn overwrite() -> PutOptions {
    PutOptions {
        overwrite: true,
        ..PutOptions::default()
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn put_get_and_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    assert_eq!(
        params
            .put("/ecs/backend/DB_PORT", "5432", &PutOptions::default())
            .unwrap(),
        1
    );
    let got = params.get("/ecs/backend/DB_PORT", false).unwrap();
    assert_eq!(got.value, ParameterValue::Plain("5432".into()));
    assert_eq!(got.kind, ParameterType::String);
    assert_eq!(got.version, 1);

    // Without overwrite: ParameterAlreadyExists, nothing changes.
    assert!(matches!(
        params.put("/ecs/backend/DB_PORT", "1", &PutOptions::default()),
        Err(ParamError::AlreadyExists { .. })
    ));
    assert_eq!(
        params
            .put("/ecs/backend/DB_PORT", "5433", &overwrite())
            .unwrap(),
        2
    );
    assert_eq!(
        params
            .put("/ecs/backend/DB_PORT", "5434", &overwrite())
            .unwrap(),
        3
    );
    assert_eq!(
        params.get("/ecs/backend/DB_PORT", false).unwrap().value,
        ParameterValue::Plain("5434".into())
    );
    assert_eq!(
        params.get("/ecs/backend/DB_PORT:2", false).unwrap().value,
        ParameterValue::Plain("5433".into())
    );
    assert!(matches!(
        params.get("/ecs/backend/DB_PORT:9", false),
        Err(ParamError::VersionNotFound { version: 9, .. })
    ));
    let history = params.history("/ecs/backend/DB_PORT", false).unwrap();
    assert_eq!(
        history.iter().map(|p| p.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    // `/Name` and `Name` are the same parameter.
    params.put("/Single", "x", &PutOptions::default()).unwrap();
    assert!(matches!(
        params.put("Single", "y", &PutOptions::default()),
        Err(ParamError::AlreadyExists { .. })
    ));

    params.delete("/ecs/backend/DB_PORT").unwrap();
    assert!(matches!(
        params.get("/ecs/backend/DB_PORT", false),
        Err(ParamError::NotFound { .. })
    ));
    assert!(matches!(
        params.delete("/ecs/backend/DB_PORT"),
        Err(ParamError::NotFound { .. })
    ));
}

#[test]
fn name_validation_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    let put = |name: &str| params.put(name, "v", &PutOptions::default());
    assert!(matches!(
        put("has space"),
        Err(ParamError::InvalidName(NameError::Space { .. }))
    ));
    assert!(matches!(
        put("/aws/x"),
        Err(ParamError::InvalidName(NameError::Reserved { .. }))
    ));
    assert!(matches!(
        put("ssm-thing"),
        Err(ParamError::InvalidName(NameError::Reserved { .. }))
    ));
    assert!(matches!(
        put("ecs/backend"),
        Err(ParamError::InvalidName(NameError::NoLeadingSlash { .. }))
    ));
    assert!(matches!(
        put("/a/b#c"),
        Err(ParamError::InvalidName(NameError::Character {
            character: '#',
            ..
        }))
    ));
    let deep = format!("/{}", vec!["x"; 16].join("/"));
    assert!(matches!(
        put(&deep),
        Err(ParamError::InvalidName(NameError::TooDeep { .. }))
    ));
    let err = put("/aws/x").unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
    // Values: not empty, at most 4 KB.
    assert!(matches!(
        params.put("/v", "", &PutOptions::default()),
        Err(ParamError::InvalidValue { .. })
    ));
    assert!(matches!(
        params.put("/v", &"x".repeat(4097), &PutOptions::default()),
        Err(ParamError::InvalidValue { .. })
    ));
}

#[test]
fn secure_strings_are_encrypted_at_rest_with_private_files() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    let secret = "correct-horse-battery-staple";
    params
        .put("/ecs/backend/DB_PASSWORD", secret, &secure())
        .unwrap();
    params
        .put("/ecs/backend/DB_HOST", "localhost", &PutOptions::default())
        .unwrap();

    let data = fs::read(params.data_path()).unwrap();
    let data_text = String::from_utf8_lossy(&data);
    assert!(
        !data_text.contains(secret),
        "the secret is not in the data file"
    );
    assert!(
        data_text.contains("localhost"),
        "Strings are stored plainly"
    );
    assert_eq!(mode(&params.data_path()), 0o600);
    assert_eq!(mode(&params.key_path()), 0o600);
    assert_eq!(fs::read(params.key_path()).unwrap().len(), 32);
    assert_eq!(mode(&tmp.path().join(".berth/params")), 0o700);

    // Without decryption: redacted; with: the value.
    let redacted = params.get("/ecs/backend/DB_PASSWORD", false).unwrap();
    assert_eq!(redacted.value, ParameterValue::Redacted);
    assert_eq!(redacted.value.to_string(), "********");
    let clear = params.get("/ecs/backend/DB_PASSWORD", true).unwrap();
    assert_eq!(clear.value.expose(), Some(secret));
    // Even decrypted, Debug and Display never show it.
    assert!(!format!("{clear:?}").contains(secret));
    assert!(!clear.value.to_string().contains(secret));

    // Overwrite keeps the type when none is given.
    params
        .put("/ecs/backend/DB_PASSWORD", "second", &overwrite())
        .unwrap();
    let v2 = params.get("/ecs/backend/DB_PASSWORD", true).unwrap();
    assert_eq!(v2.kind, ParameterType::SecureString);
    assert_eq!(v2.version, 2);
    assert!(!String::from_utf8_lossy(&fs::read(params.data_path()).unwrap()).contains("second"));
}

#[test]
fn wrong_key_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    params.put("/s", "secret-value", &secure()).unwrap();
    fs::write(params.key_path(), [7u8; 32]).unwrap();
    let err = params.get("/s", true).unwrap_err();
    assert!(matches!(err, ParamError::Decrypt { .. }), "{err:?}");
    assert!(!err.to_string().contains("secret-value"));
    // Without decryption the metadata is still readable.
    assert_eq!(
        params.get("/s", false).unwrap().value,
        ParameterValue::Redacted
    );

    // A missing key is reported, and not silently replaced by a new one.
    fs::remove_file(params.key_path()).unwrap();
    assert!(matches!(
        params.get("/s", true),
        Err(ParamError::KeyMissing { .. })
    ));
    assert!(matches!(
        params.put("/t", "x", &secure()),
        Err(ParamError::KeyMissing { .. })
    ));
    assert!(!params.key_path().exists());

    // A damaged key file.
    fs::write(params.key_path(), b"short").unwrap();
    assert!(matches!(params.get("/s", true), Err(ParamError::Key(_))));
}

#[test]
fn ciphertext_moved_to_another_name_does_not_decrypt() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    params.put("/x/a", "alpha", &secure()).unwrap();
    params.put("/x/b", "bravo", &secure()).unwrap();
    let mut data: serde_json::Value =
        serde_json::from_slice(&fs::read(params.data_path()).unwrap()).unwrap();
    let a_value = data["parameters"]["/x/a"]["versions"][0]["value"].clone();
    data["parameters"]["/x/b"]["versions"][0]["value"] = a_value;
    fs::write(params.data_path(), serde_json::to_vec(&data).unwrap()).unwrap();
    assert!(matches!(
        params.get("/x/b", true),
        Err(ParamError::Decrypt { .. })
    ));
    assert_eq!(
        params.get("/x/a", true).unwrap().value.expose(),
        Some("alpha")
    );
}

#[test]
fn list_by_path() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    for name in [
        "/ecs/backend/DB_HOST",
        "/ecs/backend/DB_PORT",
        "/ecs/backend/deep/X",
        "/ecs/frontend/API_URL",
        "top",
    ] {
        params.put(name, "v", &PutOptions::default()).unwrap();
    }
    let names = |path: Option<&str>, recursive| -> Vec<String> {
        params
            .list(path, recursive)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(names(None, false).len(), 5);
    assert_eq!(
        names(Some("/ecs/backend"), false),
        vec!["/ecs/backend/DB_HOST", "/ecs/backend/DB_PORT"]
    );
    assert_eq!(names(Some("/ecs/backend/"), true).len(), 3);
    assert_eq!(names(Some("/ecs"), false), Vec::<String>::new());
    assert_eq!(names(Some("/ecs"), true).len(), 4);
    assert_eq!(names(Some("/"), false), vec!["top"]);
}

#[test]
fn generated_password_is_kept_and_secrets_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let params = store(tmp.path());
    let first = params
        .get_or_generate_password("/ecs/backend/DB_PASSWORD", "database password")
        .unwrap();
    let second = params
        .get_or_generate_password("/ecs/backend/DB_PASSWORD", "database password")
        .unwrap();
    assert_eq!(first, second, "never regenerated");
    assert_eq!(first.expose().len(), 32);
    let stored = params.get("/ecs/backend/DB_PASSWORD", false).unwrap();
    assert_eq!(stored.kind, ParameterType::SecureString);
    assert_eq!(stored.version, 1);

    params
        .put("/ecs/backend/DB_HOST", "127.0.0.1", &PutOptions::default())
        .unwrap();
    let secrets: BTreeMap<String, String> = [
        ("DB_HOST".to_owned(), "/ecs/backend/DB_HOST".to_owned()),
        (
            "DB_PASSWORD".to_owned(),
            "/ecs/backend/DB_PASSWORD".to_owned(),
        ),
    ]
    .into();
    let resolved = params.resolve_secrets(&secrets).unwrap();
    assert_eq!(resolved[0].0, "DB_HOST");
    assert_eq!(resolved[0].1.expose(), "127.0.0.1");
    assert_eq!(resolved[1].1, first);

    let missing: BTreeMap<String, String> = [("X".to_owned(), "/ecs/missing".to_owned())].into();
    match params.resolve_secrets(&missing) {
        Err(ParamError::NotFound { name }) => assert_eq!(name, "/ecs/missing"),
        other => panic!("{other:?}"),
    }

    // put_if_changed adds a version only for a new value.
    assert_eq!(
        params
            .put_if_changed(
                "/ecs/backend/DB_HOST",
                "127.0.0.1",
                ParameterType::String,
                None
            )
            .unwrap(),
        1
    );
    assert_eq!(
        params
            .put_if_changed(
                "/ecs/backend/DB_HOST",
                "localhost",
                ParameterType::String,
                None
            )
            .unwrap(),
        2
    );
}
