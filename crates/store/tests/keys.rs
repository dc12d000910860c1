mod support;

use pulse_store::keys::{self, Scope};
use support::Db;

#[tokio::test]
async fn a_created_key_is_found_by_its_text_until_revoked() {
    let db = Db::new("keys").await;
    let client = db.client().await;
    let created = keys::create(&client, "wall", &[Scope::Read, Scope::Read], None)
        .await
        .expect("create");
    assert_eq!(created.key.scopes, vec![Scope::Read]);
    assert_eq!(keys::id_of(&created.secret), Some(created.key.id.as_str()));

    let found = keys::find(&client, &created.secret)
        .await
        .expect("find")
        .expect("the key is stored");
    assert_eq!(found, created.key);
    assert!(found.is_active(chrono::Utc::now()));

    // Only the digest is stored.
    let digest_hex: String = keys::digest(&created.secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let by_digest = db
        .scalar(&format!(
            "SELECT count(*) FROM api_keys WHERE key_hash = '\\x{digest_hex}'::bytea"
        ))
        .await;
    assert_eq!(by_digest, 1);

    // The same key with its last digit changed.
    let (head, last) = created.secret.split_at(created.secret.len() - 1);
    let other = format!("{head}{}", if last == "0" { "1" } else { "0" });
    assert_eq!(keys::find(&client, &other).await.expect("find"), None);

    assert!(
        keys::revoke(&client, &created.key.id)
            .await
            .expect("revoke")
    );
    assert!(!keys::revoke(&client, &created.key.id).await.expect("twice"));
    let revoked = keys::find(&client, &created.secret)
        .await
        .expect("find")
        .expect("a revoked key stays");
    assert!(!revoked.is_active(chrono::Utc::now()));
    assert_eq!(keys::list(&client).await.expect("list").len(), 1);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn the_table_refuses_unknown_and_empty_scopes() {
    let db = Db::new("keys").await;
    let client = db.client().await;
    for scopes in ["ARRAY['root']", "ARRAY[]::text[]"] {
        let refused = client
            .execute(
                &format!(
                    "INSERT INTO api_keys (id, name, key_hash, scopes) VALUES ('x', 'x', 'x', {scopes})"
                ),
                &[],
            )
            .await;
        assert!(refused.is_err(), "{scopes}");
    }
    drop(client);
    db.drop().await;
}
