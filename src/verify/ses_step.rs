//! The `signature`, `seal` and `timestamp` steps for GB/T 38540 / GM/T 0031 `SES_Signature`s,
//! shared by OFD (`Type="Seal"`) and PDF (raw SES `/Contents`).
