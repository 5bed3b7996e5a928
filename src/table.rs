//! Aligned text columns, for the human reports of `check` and `doctor`.

use std::io::{self, Write};

/// Writes `rows` one line each after `indent`, every column but the last padded to its widest
/// cell (counted in characters), two spaces apart.
pub fn write(out: &mut dyn Write, indent: &str, rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            match i + 1 == row.len() {
                true => line.push_str(cell),
                false => line.push_str(&format!("{cell:<width$}  ", width = widths[i])),
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell_but_the_last() {
        let rows = vec![
            vec!["a".to_owned(), "bbb".to_owned(), "c".to_owned()],
            vec!["dddd".to_owned(), "e".to_owned(), "".to_owned()],
        ];
        let mut out = Vec::new();
        write(&mut out, "  ", &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  a     bbb  c\n  dddd  e\n"
        );
    }
}
