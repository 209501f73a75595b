//! The dashboard's 24-hour chart of API calls and errors, drawn server-side as SVG: no script,
//! no external library, and only numbers and fixed labels go into the markup.

use std::fmt::Write;

const W: f64 = 1100.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// `hours`: (hour start in ms, calls, errors), oldest first.
pub fn calls_svg(hours: &[(i64, u64, u64)]) -> String {
    let max = hours.iter().map(|h| h.1).max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / hours.len().max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="最近 24 小时 API 调用与错误" xmlns="http://www.w3.org/2000/svg">"##
    );
    // Grid lines and y labels at 0, the middle (when it is a whole number) and max.
    let mut ticks = vec![(0.0, 0), (1.0, max)];
    if max % 2 == 0 && max >= 2 {
        ticks.push((0.5, max / 2));
    }
    for (frac, label) in ticks {
        let y = TOP + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d9dee5" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#5b6675" text-anchor="end">{label}</text>"##,
            W - 8.0,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, (start_ms, calls, errors)) in hours.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let bw = slot * 0.7;
        let ch = plot_h * (*calls as f64) / max as f64;
        let eh = plot_h * (*errors as f64) / max as f64;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{ch:.1}" fill="#3b6ea5"><title>{calls} 次调用，{errors} 次错误</title></rect>"##,
            TOP + plot_h - ch
        );
        if *errors > 0 {
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{eh:.1}" fill="#c0392b"/>"##,
                TOP + plot_h - eh
            );
        }
        if i % 3 == 0 {
            // Hour of day in the platform time zone (UTC+8).
            let hour = (start_ms / 3_600_000 + 8).rem_euclid(24);
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#5b6675" text-anchor="middle">{hour:02}:00</text>"##,
                x + bw / 2.0,
                H - 8.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_per_hour_and_errors_in_red() {
        let hours: Vec<_> = (0..24)
            .map(|h| (h * 3_600_000, h as u64, (h % 2) as u64))
            .collect();
        let svg = calls_svg(&hours);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 24);
        assert_eq!(svg.matches("#c0392b").count(), 12);
        assert!(!svg.contains("style="), "CSP forbids inline style");
    }
}
