//! Splitting a run's stdout into record lines exactly as the built-in `exec_wasi` does with
//! `fgets(buf, buf_size)`: a line is cut every `buf_size - 1` bytes, one trailing `\n` is
//! removed from each piece, empty lines give empty records, and a final line without `\n`
//! still counts. Unlike the built-in (which uses `strnlen`), bytes after a NUL are kept.

/// Iterator over the record lines of `stdout`.
pub fn record_lines(stdout: &[u8], buf_size: usize) -> impl Iterator<Item = &[u8]> {
    let max = buf_size.saturating_sub(1).max(1);
    let mut rest = stdout;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let window = &rest[..rest.len().min(max)];
        let take = window.iter().position(|&b| b == b'\n').map_or(window.len(), |i| i + 1);
        let (piece, tail) = rest.split_at(take);
        rest = tail;
        Some(piece.strip_suffix(b"\n").unwrap_or(piece))
    })
}

#[cfg(test)]
mod tests {
    use super::record_lines;

    fn lines(s: &str, n: usize) -> Vec<String> {
        record_lines(s.as_bytes(), n).map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    #[test]
    fn plain_lines_and_final_line_without_newline() {
        assert_eq!(lines("a\nbb\nccc", 4096), ["a", "bb", "ccc"]);
        assert_eq!(lines("a\n", 4096), ["a"]);
        assert_eq!(lines("", 4096), Vec::<String>::new());
    }

    #[test]
    fn empty_lines_are_records() {
        assert_eq!(lines("\n\nx\n", 4096), ["", "", "x"]);
    }

    #[test]
    fn long_lines_split_like_fgets() {
        // fgets(buf, 5) reads at most 4 bytes per call.
        assert_eq!(lines("abcdefghij\nk\n", 5), ["abcd", "efgh", "ij", "k"]);
        // A piece that fills the buffer exactly leaves the newline for the next call.
        assert_eq!(lines("abcd\nx", 5), ["abcd", "", "x"]);
    }

    #[test]
    fn nul_bytes_are_kept() {
        let v: Vec<&[u8]> = record_lines(b"a\0b\n", 4096).collect();
        assert_eq!(v, [&b"a\0b"[..]]);
    }
}
