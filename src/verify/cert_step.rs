//! The `certificate` step shared by PDF and OFD: signer certificate validity at signing time
//! and its chain to the configured trust anchors.
