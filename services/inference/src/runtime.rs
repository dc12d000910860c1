//! Loading the ONNX Runtime shared library, once per process.
//!
//! `ort` is built with `load-dynamic`: the library is found at run time (the PyPI wheel's
//! `libonnxruntime.so.1.31.1`), so the build needs no download. A relative path is resolved
//! against the working directory here, because `ort` would otherwise try the executable's folder.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// The library loaded and the process-wide environment every session is created in.
pub struct Runtime {
    pub library: PathBuf,
    pub environment: ort::environment::Environment,
}

static LOADED: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Loads ONNX Runtime from `library`; later calls return the first call's outcome.
pub fn init(library: &Path) -> Result<&'static Runtime, String> {
    LOADED
        .get_or_init(|| {
            let path = if library.is_absolute() {
                library.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| e.to_string())?
                    .join(library)
            };
            if !path.is_file() {
                return Err(format!(
                    "ONNX Runtime library not found at {} (set ORT_DYLIB_PATH)",
                    path.display()
                ));
            }
            let builder = ort::init_from(&path)
                .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
            let environment = builder
                .with_name("pulse-inference")
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
            Ok(Runtime {
                library: path,
                environment,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
