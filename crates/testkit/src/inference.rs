//! What the inference engine loads in tests: the ONNX Runtime library and the model bundles
//! of the repository.

use std::path::{Path, PathBuf};

/// The variable naming the ONNX Runtime library (the same one the inference service reads).
pub const ORT_ENV: &str = "ORT_DYLIB_PATH";

/// The bundle the services load by default (sentiment and emotion), under `models/`.
pub const DEFAULT_MODEL_BUNDLE: &str = "pulse-minilm";

/// The repository root.
pub fn workspace_root() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/testkit → the root.
    kit.ancestors().nth(2).unwrap_or(kit).to_path_buf()
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, or where `scripts/install.sh` puts it.
pub fn ort_library() -> PathBuf {
    std::env::var_os(ORT_ENV)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".deps/onnxruntime/libonnxruntime.so.1.31.1"))
}

/// A model bundle of the repository, `models/<name>` (`model.onnx`, `tokenizer.json`,
/// `config.json`).
pub fn model_dir(name: &str) -> PathBuf {
    workspace_root().join("models").join(name)
}

/// The default model bundle, for sentiment and emotion alike.
pub fn default_model_bundle() -> PathBuf {
    model_dir(DEFAULT_MODEL_BUNDLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_holds_the_workspace_and_the_default_bundle() {
        assert!(workspace_root().join("Cargo.lock").is_file());
        assert!(default_model_bundle().join("config.json").is_file());
    }
}
