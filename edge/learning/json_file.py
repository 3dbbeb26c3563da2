"""Reading a JSON file that may be damaged or hostile: at most `limit` bytes are read, and
every failure is one ValueError line (saved_arrays.py does the same for .npz files)."""
import json


def load_json_file(path, limit: int):
    """The JSON value in the file at `path`; OSError if it cannot be read, ValueError (one
    line, without the path) if it is larger than `limit` bytes, not UTF-8 or not JSON."""
    try:
        with open(path, "rb") as f:
            text = f.read(limit + 1)
        if len(text) > limit:
            raise ValueError(f"larger than {limit} bytes")
        return json.loads(text)
    except RecursionError:          # a deeply nested document
        raise ValueError("JSON nested too deeply") from None
