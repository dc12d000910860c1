"""Store an ONNX graph's weights beside it, in files small enough for a git host.

A git host refuses files over 100 MB (and warns over 50 MB); pulse-mpnet's int8 graph is 195 MB.
ONNX can keep any tensor outside the graph file (`data_location: EXTERNAL`, with a file name,
offset and length), and onnxruntime reads such tensors from files beside the graph, so a
bundle stays a directory that the service loads with `model.onnx` as before. Tensors are packed
in graph order into `model.weights.NN` files of at most `max_file_bytes` each, every tensor at
an offset aligned to 4 KiB so that onnxruntime may map it rather than copy it.

    python external_weights.py models/pulse-mpnet/model.onnx      # split in place
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
from onnx.external_data_helper import set_external_data

# Under the 50 MB at which a git host starts warning.
DEFAULT_MAX_FILE_BYTES = 48 * 1000 * 1000
ALIGN = 4096
PREFIX = "model.weights."
# Tensors this small stay in the graph file: moving them saves nothing.
MIN_EXTERNAL_BYTES = 1024


def weight_files(directory: Path) -> list[Path]:
    """The weight files of the graph in `directory`, in order."""
    return sorted(directory.glob(PREFIX + "*"))


def split(model_path: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[Path]:
    """Moves the graph's weights into `model.weights.NN` files beside it; returns those files.
    Earlier weight files of the same graph are replaced."""
    model = onnx.load(str(model_path))
    directory = model_path.parent
    for old in weight_files(directory):
        old.unlink()
    files: list[Path] = []
    handle, used = None, 0
    try:
        for tensor in model.graph.initializer:
            data = tensor.raw_data
            if len(data) < MIN_EXTERNAL_BYTES:
                continue
            if len(data) > max_file_bytes:
                raise ValueError(f"tensor {tensor.name} has {len(data)} bytes, more than "
                                 f"a weight file may hold ({max_file_bytes})")
            offset = -(-used // ALIGN) * ALIGN
            if handle is None or offset + len(data) > max_file_bytes:
                if handle is not None:
                    handle.close()
                files.append(directory / f"{PREFIX}{len(files):02d}")
                handle, offset = open(files[-1], "wb"), 0
            handle.seek(offset)
            handle.write(data)
            used = offset + len(data)
            set_external_data(tensor, location=files[-1].name, offset=offset, length=len(data))
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
    finally:
        if handle is not None:
            handle.close()
    onnx.save_model(model, str(model_path))
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="the model.onnx to split in place")
    ap.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES)
    args = ap.parse_args()
    for path in split(args.model, args.max_file_bytes):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
