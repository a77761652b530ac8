//! Text input: `TextLineDataset` (the lines of files) and `decode_csv` (CSV records to
//! numeric tensors), as `tf.data.TextLineDataset`, `tf.io.decode_csv` and
//! `tf.data.experimental.CsvDataset`. Lines stay Rust `String`s: kiln's `Tensor` has no
//! string dtype, so a line becomes tensors only once decoded.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_ir::DType;

use super::pipeline::{Elements, Pipeline};
use crate::{Error, Result, Tensor};

/// One CSV column: its dtype (`F32`, `F64`, `I32` or `I64`) and the value an empty field
/// takes (TF's `record_defaults`; `None` makes the field required).
///
/// ```
/// use kiln::data::CsvColumn;
/// use kiln::DType;
/// let cols = [CsvColumn::required(DType::F32), CsvColumn::with_default(DType::I64, -1.0)];
/// # let _ = cols;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CsvColumn {
    pub dtype: DType,
    pub default: Option<f64>,
}

impl CsvColumn {
    /// A column whose fields may not be empty.
    ///
    /// ```
    /// assert_eq!(kiln::data::CsvColumn::required(kiln::DType::F64).default, None);
    /// ```
    pub fn required(dtype: DType) -> CsvColumn {
        CsvColumn { dtype, default: None }
    }

    /// A column whose empty fields read as `default`.
    ///
    /// ```
    /// assert_eq!(kiln::data::CsvColumn::with_default(kiln::DType::F32, 0.5).default, Some(0.5));
    /// ```
    pub fn with_default(dtype: DType, default: f64) -> CsvColumn {
        CsvColumn { dtype, default: Some(default) }
    }
}

/// Decodes CSV records into one tensor per column, each of shape `[records.len()]`
/// (`tf.io.decode_csv` over a batch of records): fields are separated by `delimiter`, may
/// be quoted (`"1,5"`), and an empty field takes its column's default. A record with the
/// wrong number of fields, a missing required field or a field that does not parse as its
/// column's dtype is an `Err` naming the record and the column.
///
/// ```
/// use kiln::data::{decode_csv, CsvColumn};
/// use kiln::DType;
/// let cols = [CsvColumn::required(DType::F32), CsvColumn::with_default(DType::I64, 7.0)];
/// let t = decode_csv(&["1.5,2", "-3,"], &cols, b',').unwrap();
/// assert_eq!(t[0].to_vec::<f32>().unwrap(), vec![1.5, -3.0]);
/// assert_eq!(t[1].to_vec::<i64>().unwrap(), vec![2, 7]);
/// assert!(decode_csv(&[",2"], &cols, b',').is_err());        // the first column is required
/// ```
pub fn decode_csv(records: &[&str], columns: &[CsvColumn], delimiter: u8) -> Result<Vec<Tensor>> {
    decode(records, columns, delimiter, &[records.len()])
}

/// [`decode_csv`] with each column's tensor of `shape` (`[n]`, or `[]` for one record).
fn decode(records: &[&str], columns: &[CsvColumn], delimiter: u8, shape: &[usize]) -> Result<Vec<Tensor>> {
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(records.len()); columns.len()];
    let mut ints: Vec<Vec<i64>> = vec![Vec::new(); columns.len()];
    for record in records {
        let fields = split_record(record, delimiter)?;
        if fields.len() != columns.len() {
            return Err(Error::invalid(
                "decode_csv",
                format!("expected {} fields but have {} in record {record:?}", columns.len(), fields.len()),
            ));
        }
        for (c, (field, col)) in fields.iter().zip(columns).enumerate() {
            let field = field.trim();
            let missing =
                || Error::invalid("decode_csv", format!("field {c} is required but missing in record {record:?}"));
            let bad = |what: &str| {
                Error::invalid("decode_csv", format!("field {c} of record {record:?}: {field:?} is not {what}"))
            };
            match col.dtype {
                DType::I32 | DType::I64 => ints[c].push(if field.is_empty() {
                    col.default.ok_or_else(missing)? as i64
                } else {
                    field.parse::<i64>().map_err(|_| bad("an integer"))?
                }),
                DType::F32 | DType::F64 => values[c].push(if field.is_empty() {
                    col.default.ok_or_else(missing)?
                } else {
                    field.parse::<f64>().map_err(|_| bad("a number"))?
                }),
                other => {
                    return Err(Error::UnsupportedDType {
                        op: "decode_csv",
                        dtype: other,
                        expected: "f32, f64, i32 or i64",
                    })
                }
            }
        }
    }
    let n = shape;
    columns
        .iter()
        .enumerate()
        .map(|(c, col)| match col.dtype {
            DType::F32 => Tensor::from_vec(values[c].iter().map(|&v| v as f32).collect(), n),
            DType::F64 => Tensor::from_vec(std::mem::take(&mut values[c]), n),
            DType::I32 => {
                let v: Option<Vec<i32>> = ints[c].iter().map(|&v| i32::try_from(v).ok()).collect();
                let v = v.ok_or_else(|| Error::invalid("decode_csv", format!("field {c} overflows i32")))?;
                Tensor::from_vec(v, n)
            }
            _ => Tensor::from_vec(std::mem::take(&mut ints[c]), n),
        })
        .collect()
}

/// The fields of one CSV record (quotes removed).
fn split_record(record: &str, delimiter: u8) -> Result<Vec<String>> {
    // Most records have no quotes: split them directly (a csv reader per record costs more
    // than the parsing).
    if !record.contains('"') && delimiter.is_ascii() {
        return Ok(record.split(delimiter as char).map(str::to_string).collect());
    }
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter).flexible(true).from_reader(record.as_bytes());
    let mut row = csv::StringRecord::new();
    match reader.read_record(&mut row) {
        Ok(true) => Ok(row.iter().map(str::to_string).collect()),
        Ok(false) => Ok(vec![String::new()]),
        Err(e) => Err(Error::invalid("decode_csv", format!("record {record:?}: {e}"))),
    }
}

/// The lines of text files, file after file (`tf.data.TextLineDataset`), without their
/// line endings; optionally skipping a header at the top of each file. Reading is lazy and
/// each pass reopens the files.
///
/// ```
/// use kiln::data::{CsvColumn, TextLineDataset};
/// use kiln::DType;
/// let path = std::env::temp_dir().join(format!("kiln_doc_lines_{}.csv", std::process::id()));
/// std::fs::write(&path, "x,y\n1,2\n3,\n").unwrap();
/// let lines = TextLineDataset::new(&[&path]).skip_header(1);
/// assert_eq!(lines.lines().collect::<Result<Vec<_>, _>>().unwrap(), vec!["1,2", "3,"]);
/// let cols = [CsvColumn::required(DType::F32), CsvColumn::with_default(DType::F32, 0.0)];
/// let rows = lines.decode_csv(&cols, b',').batch(2, false);
/// let b = rows.iter().next().unwrap().unwrap();
/// assert_eq!(b[1].to_vec::<f32>().unwrap(), vec![2.0, 0.0]);
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct TextLineDataset {
    files: Arc<Vec<PathBuf>>,
    header: usize,
}

impl TextLineDataset {
    /// The lines of `files`, in order.
    ///
    /// ```
    /// let d = kiln::data::TextLineDataset::new(&["missing.csv"]);
    /// assert!(d.lines().next().unwrap().is_err());         // the error names the file
    /// ```
    pub fn new<P: AsRef<std::path::Path>>(files: &[P]) -> TextLineDataset {
        let files = files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        TextLineDataset { files: Arc::new(files), header: 0 }
    }

    /// Skips the first `lines` lines of each file (a CSV header: `CsvDataset`'s `header`).
    ///
    /// ```
    /// let d = kiln::data::TextLineDataset::new(&["a.csv"]).skip_header(1);
    /// # let _ = d;
    /// ```
    pub fn skip_header(self, lines: usize) -> TextLineDataset {
        TextLineDataset { header: lines, ..self }
    }

    /// A new pass over the lines; a file that cannot be opened or read is an `Err` item
    /// naming it (and the pass goes on with the next file).
    ///
    /// ```
    /// let d = kiln::data::TextLineDataset::new::<&str>(&[]);
    /// assert_eq!(d.lines().count(), 0);
    /// ```
    pub fn lines(&self) -> Box<dyn Iterator<Item = Result<String>> + Send> {
        let (files, header) = (self.files.clone(), self.header);
        Box::new((0..files.len()).flat_map(move |i| file_lines(files[i].clone(), header)))
    }

    /// Each line decoded by [`decode_csv`] into an element of scalar tensors, one per column
    /// (`tf.data.experimental.CsvDataset`); lines that are empty are skipped.
    ///
    /// ```
    /// use kiln::data::{CsvColumn, TextLineDataset};
    /// let d = TextLineDataset::new(&["a.csv"]).decode_csv(&[CsvColumn::required(kiln::DType::F32)], b',');
    /// assert!(d.iter().next().unwrap().is_err());          // no such file
    /// ```
    pub fn decode_csv(&self, columns: &[CsvColumn], delimiter: u8) -> Pipeline {
        let (this, columns) = (self.clone(), columns.to_vec());
        Pipeline::from_fn(move || {
            let columns = columns.clone();
            let rows = this
                .lines()
                .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(move |l| decode(&[l?.as_str()], &columns, delimiter, &[]));
            Box::new(rows) as Elements
        })
    }
}

/// The lines of one file after its first `header` lines.
fn file_lines(path: PathBuf, header: usize) -> Box<dyn Iterator<Item = Result<String>> + Send> {
    match std::fs::File::open(&path) {
        Err(e) => Box::new(std::iter::once(Err(Error::Io(format!("TextLineDataset: {}: {e}", path.display()))))),
        Ok(f) => Box::new(std::io::BufReader::new(f).lines().skip(header).map(move |l| {
            l.map(|l| l.trim_end_matches('\r').to_string())
                .map_err(|e| Error::Io(format!("TextLineDataset: {}: {e}", path.display())))
        })),
    }
}
