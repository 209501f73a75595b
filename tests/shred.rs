//! Tenant destruction with the `file` key provider: the tenant KEKs are files in the key
//! directory, and deleting one makes an older copy of the database unreadable for that
//! tenant (SPEC §6.2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/shred.rs"]
mod shred;

#[test]
fn destroyed_tenant_is_unreadable_in_a_restored_older_backup_with_the_file_provider() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hutong::config::Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.data_dir = dir.path().to_path_buf();
    let keyring = hutong::keys::Keyring::init(&config).unwrap();
    let keys = dir.path().join("keys");
    shred::destroyed_tenant_is_unreadable_in_an_older_copy(dir.path(), &keyring, &config);
    // The key directory holds B's two tenant keys only.
    let left = std::fs::read_dir(keys.join("tenants")).unwrap().count();
    assert_eq!(left, 2);
}
