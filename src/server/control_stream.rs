//! The one control command whose answer is a stream: `backup`. After the command line the
//! server sends frames, `kind(1) ‖ len(4, big-endian) ‖ payload`: `D` bytes of the backup
//! file, `P` a JSON [`Progress`], and last `R` the JSON [`Reply`] (sent only once the backup's
//! audit entry is durable). The CLI writes the file itself, so the server needs no write
//! access to wherever the operator keeps backups.

use super::control::{CallError, Command, ControlError, ErrorCode, Reply, Response, socket_path};
use crate::backup::{self, BackupError, Progress};
use crate::config::Config;
use crate::domain::audit_event::Actor;
use crate::keys::Keyring;
use crate::store::Store;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

const DATA: u8 = b'D';
const PROGRESS: u8 = b'P';
const REPLY: u8 = b'R';
/// Bounds one frame the CLI accepts.
const MAX_FRAME: usize = 1024 * 1024;
/// How long a frame may wait for the CLI to read it before the backup is abandoned.
const STALLED_READER: std::time::Duration = std::time::Duration::from_secs(120);
/// Frames in flight: the backup waits when the CLI writes slower than it reads.
const IN_FLIGHT: usize = 16;

impl From<BackupError> for ControlError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(s) => ControlError::from(s),
            BackupError::Keys(k) => ControlError::new(ErrorCode::KeysUnavailable, k.to_string()),
            other => ControlError::new(ErrorCode::Invalid, other.to_string()),
        }
    }
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(kind);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The backup's output: full frames go to the socket task; a closed socket ends the backup.
struct FrameSink {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl FrameSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let f = frame(DATA, &std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(f)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "控制连接已断开"))
    }
}

impl Write for FrameSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 256 * 1024 {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs a backup for a control connection and streams it back.
pub(super) async fn serve_backup(
    mut write: tokio::net::unix::OwnedWriteHalf,
    store: Store,
    keys: Arc<Keyring>,
    config: Arc<Config>,
    actor: Actor,
) {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    let s = store.clone();
    let job = tokio::task::spawn_blocking(move || {
        let progress_tx = tx.clone();
        let mut last = std::time::Instant::now();
        let mut progress = |p: Progress| {
            if last.elapsed().as_millis() >= 200
                && let Ok(json) = serde_json::to_vec(&p)
            {
                last = std::time::Instant::now();
                let _ = progress_tx.blocking_send(frame(PROGRESS, &json));
            }
        };
        let sink = FrameSink {
            tx,
            buf: Vec::new(),
        };
        let res = backup::take(&s, &keys, &config, &actor, sink, &mut progress).map(|(_, sum)| sum);
        backup::record_cli_run(&s, &res);
        res
    });
    let mut open = true;
    while let Some(f) = rx.recv().await {
        if !open {
            continue;
        }
        // A CLI that stops reading must not hold the snapshot open for ever.
        let sent = tokio::time::timeout(STALLED_READER, write.write_all(&f)).await;
        if !matches!(sent, Ok(Ok(()))) {
            // Keep draining so the backup sees the closed channel only when we drop it.
            open = false;
            rx.close();
        }
    }
    let res = job
        .await
        .map_err(|e| ControlError::internal("backup task", e))
        .and_then(|r| r.map_err(ControlError::from));
    // The backup's audit entry (or its failure's) is durable before the CLI hears the end.
    let reply: Reply = match store.commit().await {
        Err(e) => Reply::Error(ControlError::internal("backup commit", e)),
        Ok(()) => res.map(Response::Backup).into(),
    };
    if open && let Ok(json) = serde_json::to_vec(&reply) {
        let _ = write.write_all(&frame(REPLY, &json)).await;
    }
}

/// Asks a running server for a backup: file bytes go to `sink`, progress to `progress`.
/// `Ok(None)` when no server listens.
pub fn call_backup(
    data_dir: &Path,
    sink: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<Response>, CallError> {
    let path = socket_path(data_dir);
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&path) else {
        return Ok(None);
    };
    // A snapshot of a large store reads for a while between frames, never for minutes.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(300)));
    let mut line = serde_json::to_vec(&Command::Backup).map_err(CallError::Encode)?;
    line.push(b'\n');
    stream.write_all(&line).map_err(CallError::Write)?;
    let mut r = std::io::BufReader::with_capacity(512 * 1024, stream);
    let mut head = [0u8; 5];
    let mut payload = Vec::new();
    loop {
        r.read_exact(&mut head).map_err(CallError::Read)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(CallError::Read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("控制帧过长（{len} 字节）"),
            )));
        }
        payload.resize(len, 0);
        r.read_exact(&mut payload).map_err(CallError::Read)?;
        match head[0] {
            DATA => sink.write_all(&payload).map_err(CallError::Write)?,
            PROGRESS => {
                if let Ok(p) = serde_json::from_slice(&payload) {
                    progress(p);
                }
            }
            REPLY => {
                return match serde_json::from_slice(&payload).map_err(CallError::BadReply)? {
                    Reply::Ok(resp) => Ok(Some(resp)),
                    Reply::Error(e) => Err(e.into()),
                };
            }
            other => {
                return Err(CallError::Read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("未知的控制帧类型 {other:#04x}"),
                )));
            }
        }
    }
}
