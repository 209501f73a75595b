//! The crash harness in its short form (issue 15): the real `hutong serve` binary is killed
//! with SIGKILL at random moments while eight members file seals and change their states;
//! every acknowledged write survives and no unacknowledged one is half-applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "../examples/support/crash.rs"]
mod crash;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_server() {
    let report = crash::run(crash::CrashConfig {
        binary: env!("CARGO_BIN_EXE_hutong").into(),
        clients: 8,
        duration: std::time::Duration::from_secs(25),
        kills: 5,
    })
    .await;
    println!("{report}");
    assert!(report.kills >= 5, "{report}");
    assert!(report.ok(), "{report}");
    assert_eq!(report.found, report.acknowledged, "{report}");
}
