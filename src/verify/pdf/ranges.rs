//! `ByteRange`: validating a signature's ranges against the file and slicing the covered
//! bytes.
//!
//! Must not decide what an uncovered gap means (that is `coverage`) or verify digests.

use lopdf::Object;

/// Most byte ranges one signature may list.
const MAX_RANGES: usize = 16;

/// The validated byte ranges of a signature, as (start, length) pairs inside the file.
pub(crate) fn byte_ranges(
    sig: &lopdf::Dictionary,
    file_len: usize,
) -> Result<Vec<(usize, usize)>, String> {
    let arr = match sig.get(b"ByteRange") {
        Ok(Object::Array(a)) => a,
        _ => return Err("签名字典缺少 ByteRange".into()),
    };
    if arr.is_empty() || arr.len() % 2 != 0 || arr.len() > MAX_RANGES * 2 {
        return Err("ByteRange 元素个数错误".into());
    }
    let mut out = Vec::new();
    for pair in arr.chunks(2) {
        let (Some(Object::Integer(start)), Some(Object::Integer(len))) =
            (pair.first(), pair.get(1))
        else {
            return Err("ByteRange 含非整数".into());
        };
        let start = usize::try_from(*start).map_err(|_| "ByteRange 含负数".to_string())?;
        let len = usize::try_from(*len).map_err(|_| "ByteRange 含负数".to_string())?;
        let end = start.checked_add(len).ok_or("ByteRange 溢出")?;
        if end > file_len {
            return Err(format!("ByteRange 超出文件长度（{end} > {file_len}）"));
        }
        out.push((start, len));
    }
    Ok(out)
}

/// The covered bytes as slices.
pub(crate) fn covered<'a>(bytes: &'a [u8], ranges: &[(usize, usize)]) -> Vec<&'a [u8]> {
    ranges
        .iter()
        .filter_map(|(s, l)| bytes.get(*s..s.saturating_add(*l)))
        .collect()
}
