//! Integrity checks of a persist directory: every file a store wrote is read in full and checked —
//! JSON files parse (vector-store JSON also has the right shape), binary vector files have a sound
//! header, matching checksums for every section (vector payload included) and well-formed entries.
//! Nothing is modified. Leftover temporary files of an interrupted persist are noted, not problems.

use std::fs;
use std::path::{Path, PathBuf};

use super::{temp_file_pid, LOCK_FILE_NAME};
use crate::error::{StoreError, StoreResult};
use crate::json::{self, Value};
use crate::vectors::binary_format::{self, BINARY_EXTENSION};
use crate::vectors::json_format;

/// What was found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    /// "vector_store_json", "vector_store_binary", "json", "temporary".
    pub kind: &'static str,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl FileReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one file (its kind is told by its name, as the loaders tell it).
pub fn verify_file(path: &Path) -> FileReport {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = FileReport {
        path: path.to_owned(),
        kind: "json",
        problems: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(pid) = temp_file_pid(&name) {
        report.kind = "temporary";
        report.notes.push(format!(
            "temporary file left by an interrupted persist (process {pid}); safe to delete"
        ));
        return report;
    }
    if name.ends_with(&format!(".{BINARY_EXTENSION}")) {
        report.kind = "vector_store_binary";
        let stem = name.strip_suffix(&format!(".{BINARY_EXTENSION}")).unwrap_or(&name);
        let json_path = path.with_file_name(format!("{stem}.json"));
        let (problems, notes) = binary_format::verify_binary(path, Some(&json_path));
        report.problems = problems;
        report.notes = notes;
        return report;
    }
    let bytes = match super::read_file(path) {
        Ok(b) => b,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    let source = path.display().to_string();
    if name.ends_with("vector_store.json") {
        report.kind = "vector_store_json";
        match json_format::from_json(&bytes, &source) {
            Ok(store) => report.notes.push(format!("{} rows", store.len())),
            Err(e) => report.problems.push(e.to_string()),
        }
        return report;
    }
    match json::parse(&bytes, &source) {
        Ok(Value::Object(o)) => report.notes.push(format!("JSON object with {} keys", o.len())),
        Ok(v) => report.problems.push(format!(
            "{source}: expected a JSON object, found a {}",
            v.python_type_name()
        )),
        Err(e) => report.problems.push(e.to_string()),
    }
    report
}

/// Checks every store file in `dir`: `*.json`, `*.rsvec` and leftover temporary files (sorted by name).
pub fn verify_dir(dir: &Path) -> StoreResult<Vec<FileReport>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || name == LOCK_FILE_NAME {
            continue;
        }
        if name.ends_with(".json") || name.ends_with(&format!(".{BINARY_EXTENSION}")) || temp_file_pid(&name).is_some()
        {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths.iter().map(|p| verify_file(p)).collect())
}
