//! The `file` key provider: the KEK in a 0600 file. For evaluation only.
