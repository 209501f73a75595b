//! The memory plan of a PDF verification, made from the raw bytes before lopdf parses
//! anything (issue 12 point 5).
//!
//! lopdf materialises every object of a file, and the verification holds up to three such
//! views (the final document, the rescanned one and a signed revision). A few bytes per object
//! in the file cost hundreds in memory, so a file with a million tiny objects appended after
//! its signature took gigabytes. The coverage step must judge every object added after a
//! signature, so skipping them is not an option: the file is counted first and refused when
//! the views it needs would exceed its budget.
//!
//! Must not interpret signatures or parse objects: it only counts object headers.

use memchr::memmem;

use crate::verify::VerifyOptions;

/// Memory one parsed object takes in a lopdf `Document`, measured on tiny appended objects
/// (about 780 bytes each with the map and cross-reference bookkeeping), rounded up.
const BYTES_PER_OBJECT: u64 = 800;
/// Parsed views a verification may hold at once: final, rescanned, signed revision.
const VIEWS: u64 = 3;
/// Budget every file gets whatever its size, so small genuine files with many small objects
/// (object streams pack hundreds per KiB) are never refused.
const MIN_BUDGET: u64 = 128 * 1024 * 1024;
/// Bytes inspected around an `/ObjStm` for its `/N`.
const OBJSTM_WINDOW: usize = 512;

/// What the file declares, counted without parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Census {
    /// `N G obj` headers plus the `/N` of every object stream.
    pub objects: u64,
}

impl Census {
    pub(crate) fn of(bytes: &[u8]) -> Self {
        let mut objects = 0u64;
        for pos in memmem::find_iter(bytes, b"obj") {
            if is_object_header(bytes, pos) {
                objects += 1;
            }
        }
        for pos in memmem::find_iter(bytes, b"/ObjStm") {
            objects = objects.saturating_add(objstm_count(bytes, pos));
        }
        Census { objects }
    }

    /// Memory the parsed views of these objects need.
    pub(crate) fn planned_bytes(&self) -> u64 {
        self.objects
            .saturating_mul(BYTES_PER_OBJECT)
            .saturating_mul(VIEWS)
    }
}

/// The memory a verification of `len` bytes may plan for: 4 × the file, at least
/// [`MIN_BUDGET`], never more than the configured hard cap.
pub(crate) fn memory_budget(len: usize, opts: &VerifyOptions) -> u64 {
    (len as u64)
        .saturating_mul(4)
        .max(MIN_BUDGET)
        .min(opts.max_memory_bytes)
}

/// Refuses a file whose objects would not fit its memory budget, with the figures.
pub(crate) fn check(bytes: &[u8], opts: &VerifyOptions) -> Result<Census, String> {
    let census = Census::of(bytes);
    recheck(census.objects, bytes.len(), opts)?;
    Ok(census)
}

/// [`check`] for a known number of objects in a file of `len` bytes.
pub(crate) fn recheck(objects: u64, len: usize, opts: &VerifyOptions) -> Result<(), String> {
    let census = Census { objects };
    let budget = memory_budget(len, opts);
    let mib = |b: u64| b.div_ceil(1024 * 1024);
    if census.objects > opts.max_pdf_objects as u64 {
        return Err(format!(
            "PDF 含约 {} 个对象，超过上限 {}，为保护平台未予解析",
            census.objects, opts.max_pdf_objects
        ));
    }
    if census.planned_bytes() > budget {
        return Err(format!(
            "PDF 含约 {} 个对象，验证约需 {} MiB 内存，超过本文件的内存预算 {} MiB（文件大小的 4 倍，至少 {} MiB，上限 {} MiB），为保护平台未予解析",
            census.objects,
            mib(census.planned_bytes()),
            mib(budget),
            mib(MIN_BUDGET),
            mib(opts.max_memory_bytes),
        ));
    }
    Ok(())
}

/// `obj` at `pos` is a header when it follows `digits ws digits ws` and is not the start of
/// `objstm`-like words (ISO 32000-1 §7.3.10: `N G obj`).
fn is_object_header(bytes: &[u8], pos: usize) -> bool {
    if bytes
        .get(pos + 3)
        .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let mut i = pos;
    let skip_ws = |i: &mut usize| {
        let start = *i;
        while *i > 0 && is_ws(bytes[*i - 1]) {
            *i -= 1;
        }
        *i < start
    };
    let skip_digits = |i: &mut usize| {
        let start = *i;
        while *i > 0 && bytes[*i - 1].is_ascii_digit() && start - *i < 20 {
            *i -= 1;
        }
        *i < start
    };
    skip_ws(&mut i) && skip_digits(&mut i) && skip_ws(&mut i) && skip_digits(&mut i)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c' | b'\0')
}

/// The `/N` of the object stream whose dictionary holds `/ObjStm` at `pos`; the dictionary
/// is bounded by the preceding `obj` and the following `stream` within a small window.
fn objstm_count(bytes: &[u8], pos: usize) -> u64 {
    let from = pos.saturating_sub(OBJSTM_WINDOW);
    let to = (pos + OBJSTM_WINDOW).min(bytes.len());
    let before = &bytes[from..pos];
    let start = memmem::rfind(before, b"obj").map_or(from, |p| from + p + 3);
    let after = &bytes[pos..to];
    let end = memmem::find(after, b"stream").map_or(to, |p| pos + p);
    let dict = &bytes[start..end];
    let mut best = 0u64;
    for n in memmem::find_iter(dict, b"/N") {
        let rest = &dict[n + 2..];
        // `/N` exactly, not `/Names` and the like.
        if rest.first().is_some_and(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        let digits: Vec<u8> = rest
            .iter()
            .skip_while(|b| is_ws(**b))
            .take_while(|b| b.is_ascii_digit())
            .take(12)
            .copied()
            .collect();
        if let Some(v) = std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse().ok())
        {
            best = best.max(v);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_object_streams_are_counted() {
        let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj [1] endobj\n\
            3 0 obj\n<< /Type /ObjStm /N 25 /First 10 >>\nstream\nxx\nendstream\nendobj\n";
        assert_eq!(Census::of(pdf).objects, 3 + 25);
        // `endobj`, `objects` in text and a lone `obj` are no headers.
        assert_eq!(Census::of(b"endobj (objects) obj 1 obj").objects, 0);
    }

    #[test]
    fn budget_is_four_times_the_file_within_floor_and_cap() {
        let opts = VerifyOptions::default();
        assert_eq!(memory_budget(1000, &opts), MIN_BUDGET);
        assert_eq!(memory_budget(100 << 20, &opts), 400 << 20);
        let capped = VerifyOptions {
            max_memory_bytes: 256 << 20,
            ..VerifyOptions::default()
        };
        assert_eq!(memory_budget(100 << 20, &capped), 256 << 20);
    }

    #[test]
    fn a_file_of_tiny_objects_is_refused_with_figures() {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        for i in 1..=60_000 {
            pdf.extend(format!("{i} 0 obj [{i}] endobj\n").as_bytes());
        }
        let e = check(&pdf, &VerifyOptions::default()).unwrap_err();
        assert!(e.contains("60000 个对象") && e.contains("内存预算"), "{e}");
        pdf.truncate(20_000);
        assert!(check(&pdf, &VerifyOptions::default()).is_ok());
    }
}
