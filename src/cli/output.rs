//! Human output of the typed responses (`--json` prints the response itself).

use hutong::domain::metering::{self, ReportRow};
use hutong::keys::ProviderStatus;
use hutong::server::control::{QuotaView, SystemSummary, TrustAnchor};
use serde::Deserialize;
use serde_json::Value;

/// Prints a response body as one JSON line.
pub fn json(v: &impl serde::Serialize) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot print JSON: {e}"),
    }
}

/// Columns on a terminal: a CJK character takes two cells (East Asian Wide and Fullwidth,
/// UAX #11), so `{:<n}`, which counts characters, would shift every column after a Chinese
/// name.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            0 | 0x0300..=0x036F | 0x200B..=0x200F => 0,
            _ => 1,
        })
        .sum()
}

/// `s` padded with spaces to `width` terminal cells (never cut).
fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(display_width(s)),
    ));
    out
}

pub fn systems(list: &[SystemSummary]) {
    let name_width = list
        .iter()
        .map(|s| display_width(&s.name))
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:<20} {:<10} {} PLATFORM",
        "APPID",
        "STATE",
        pad("NAME", name_width)
    );
    for s in list {
        println!(
            "{:<20} {:<10} {} {}",
            s.app_id,
            s.state.as_str(),
            pad(&s.name, name_width),
            s.plat_name
        );
    }
}

/// The callback check: one line per stage run, with its time and what it found.
pub fn callback_check(r: &hutong::interop::check::CheckReport) {
    println!("{} {}", r.app_id, r.url);
    for s in &r.stages {
        let mark = if s.ok { "ok  " } else { "FAIL" };
        println!(
            "{mark} {} {:>5} ms  {}",
            pad(s.stage.label(), 12),
            s.ms,
            s.note
        );
    }
}

pub fn keys(k: &ProviderStatus) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("provider: {}", k.provider);
    println!("module: {}", opt(&k.module));
    println!("slot: {}", opt(&k.slot));
    println!("kekId: {}", k.kek_id);
    match k.created_ms {
        Some(ms) => println!("created: {}", hutong::time::format_time_ms(ms)),
        None => println!("created: -"),
    }
}

/// `hutong status`, one screen.
pub fn status(r: &hutong::server::control::StatusReport) {
    use hutong::time::format_time_ms;
    let up = r.uptime_secs;
    println!("版本 version: hutong {}", r.version);
    println!(
        "运行时间 uptime: {}天 {:02}:{:02}:{:02}",
        up / 86_400,
        up / 3600 % 24,
        up / 60 % 60,
        up % 60
    );
    for l in &r.listeners {
        println!("监听 listener: {l}");
    }
    let slot = r.keys.slot.as_deref().unwrap_or("-");
    println!(
        "密钥 keys: {} (slot {slot}, KEK {})",
        r.keys.provider, r.keys.kek_id
    );
    println!("存储 store: {:.1} MiB", r.store_bytes as f64 / 1_048_576.0);
    let systems: Vec<String> = r.systems.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("接入系统 systems: {}", systems.join(", "));
    match &r.last_backup {
        None => println!("备份 last backup: 无 / none"),
        Some(b) => println!(
            "备份 last backup: {}，{:.1} MiB，{} / last good {}",
            format_time_ms(b.at_ms),
            b.bytes as f64 / 1_048_576.0,
            match (&b.error, b.verified) {
                (Some(e), _) => format!("失败 failed: {e}"),
                (None, Some(true)) => "已校验 verified".into(),
                (None, _) => "未校验 not verified".into(),
            },
            b.last_good_ms.map_or("-".into(), format_time_ms)
        ),
    }
    match r.last_checkpoint {
        Some((at, size)) => println!(
            "审计日志 audit log: {} 条，最近检查点 {} 覆盖 {size} 条 / {} entries, last checkpoint {} over {size}",
            r.audit_size,
            format_time_ms(at),
            r.audit_size,
            format_time_ms(at)
        ),
        None => println!(
            "审计日志 audit log: {} 条，尚无检查点 / no checkpoint yet",
            r.audit_size
        ),
    }
    match r.open_breakers.as_slice() {
        [] => println!("熔断 breakers open: 无 / none"),
        open => println!("熔断 breakers open: {}", open.join(", ")),
    }
    if let Some(t) = &r.tls {
        let days = (t.not_after_ms - hutong::time::now_ms()).div_euclid(86_400_000);
        println!(
            "TLS 证书 certificate: {}，有效期至 {}（{days} 天）/ valid until {} ({days} days)",
            t.subject,
            format_time_ms(t.not_after_ms),
            format_time_ms(t.not_after_ms)
        );
    }
}

pub fn admins(list: &[hutong::domain::accounts::AdminSummary]) {
    for a in list {
        let mut flags = Vec::new();
        if a.disabled {
            flags.push("已停用 disabled".to_string());
        }
        if let Some(until) = a.locked_until_ms {
            flags.push(format!(
                "锁定至 locked until {}",
                hutong::time::format_time_ms(until)
            ));
        }
        if a.must_change_password {
            flags.push("须改密码 must change password".into());
        }
        if !a.second_factor_enrolled {
            flags.push("未登记第二因素 no second factor".into());
        }
        println!("{}  {}  {}", a.username, a.role.as_str(), flags.join("; "));
    }
}

pub fn trust_anchors(list: &[TrustAnchor]) {
    for a in list {
        println!("{}  {}  (valid until {})", a.id, a.subject, a.not_after);
    }
}

pub fn quota(q: Option<&QuotaView>) {
    match q {
        None => println!("no quota"),
        Some(q) => println!(
            "{} {}/{} used, {} remaining, valid {} .. {} ({})",
            q.kind.as_str(),
            q.used,
            q.limit,
            q.remaining,
            q.valid_from,
            q.valid_until,
            q.status.as_str()
        ),
    }
}

pub fn usage(rows: &[ReportRow]) {
    println!(
        "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "DATE", "APPID", "INTERFACE", "CALLS", "OK", "FAILED", "SIGNS", "USERS"
    );
    for r in rows {
        let c = r.counts;
        println!(
            "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8} {:>6}",
            r.date,
            r.app_id,
            r.interface,
            c.calls,
            c.succeeded,
            c.failed,
            c.signatures,
            r.distinct_users
        );
    }
    let t = metering::totals(rows);
    println!(
        "{:<10}  {:<20} {:<26} {:>8} {:>8} {:>8} {:>8}",
        "total", "", "", t.calls, t.succeeded, t.failed, t.signatures
    );
}

/// The parts of a verification report (the API's `data`) that the summary prints.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ReportSummary {
    format: String,
    file_name: String,
    file_size: u64,
    sign_count: u64,
    verify_result: bool,
    error: Option<String>,
    details: Vec<DetailSummary>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DetailSummary {
    signature_type: String,
    location: String,
    sign_time: String,
    cert_owner: String,
    seal_name: String,
    seal_code: String,
    flow_vo_list: Vec<StepSummary>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StepSummary {
    step: String,
    status: i64,
    level: String,
    hint: String,
}

/// Whether the report says the document verified.
pub fn verified(report: &Value) -> bool {
    report["verifyResult"].as_bool() == Some(true)
}

pub fn report(report: &Value) -> anyhow::Result<()> {
    let r: ReportSummary = serde_json::from_value(report.clone())?;
    println!(
        "{}  {}  {} 字节  签名 {} 个  结论: {}",
        r.format,
        r.file_name,
        r.file_size,
        r.sign_count,
        if r.verify_result {
            "通过"
        } else {
            "未通过"
        }
    );
    if let Some(e) = &r.error {
        println!("  文档错误: {e}");
    }
    for (i, d) in r.details.iter().enumerate() {
        println!(
            "  #{} {} {} 签署时间 {} 签署者 {} 印章 {} {}",
            i + 1,
            d.signature_type,
            d.location,
            d.sign_time,
            d.cert_owner,
            d.seal_name,
            d.seal_code
        );
        for f in &d.flow_vo_list {
            // The level (pass, fail, warn, na) when the report has it, else the status.
            let mark = match (f.level.as_str(), f.status) {
                ("na", _) => "-",
                ("warn", _) => "!",
                ("pass", _) | ("", 1) => "✓",
                _ => "✗",
            };
            println!("     [{mark}] {:<11} {}", f.step, f.hint);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{display_width, pad};

    #[test]
    fn columns_count_terminal_cells_not_characters() {
        assert_eq!(display_width("APPID"), 5);
        assert_eq!(display_width("模拟印章系统"), 12);
        assert_eq!(display_width("ＡＢ"), 4);
        assert_eq!(pad("域名解析", 12), "域名解析    ");
        assert_eq!(display_width(&pad("模拟平台 A", 14)), 14);
        assert_eq!(pad("太长的名字", 4), "太长的名字");
    }
}
