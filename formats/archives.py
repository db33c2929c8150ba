"""Safe extraction of uploaded .zip / .tar / .tar.gz archives of a model folder.

Every member is checked before anything is written: no absolute paths, no `..`, no links, no
device files or fifos, no pickle or code files. Data is streamed in chunks and counted as it is
written, so a decompression bomb stops at the cap whatever sizes the archive claims.
"""

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from formats import FormatError
from formats.names import refuse_unsafe_name

CHUNK = 1024**2
MAX_MEMBERS = 10_000
# Total uncompressed bytes may not exceed this many times the archive's own size; model weights
# barely compress (about 1.1x), so 100x leaves room for text files while stopping bombs.
MAX_RATIO = 100

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise FormatError(f"archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise FormatError(f"archive member {name!r} points outside the archive (..)")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise FormatError(f"archive member {name!r} has an empty name")
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, archive_bytes: int, max_bytes: int, max_ratio: int):
        self.cap = min(max_bytes, max(archive_bytes, 1) * max_ratio)
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.cap:
            raise FormatError(
                f"archive expands past {self.cap} bytes (a decompression bomb, or a model too "
                "large to upload as an archive); extraction stopped"
            )


def _copy(src: BinaryIO, dest: Path, budget: _Budget) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as out:
        while chunk := src.read(CHUNK):
            budget.take(len(chunk))
            out.write(chunk)


def _zip_members(zf: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, PurePosixPath]]:
    for info in zf.infolist():
        path = _safe_member_path(info.filename)
        mode = info.external_attr >> 16
        if mode and (stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
            raise FormatError(f"archive member {info.filename!r} is a link or special file")
        yield info, path


def _tar_members(tf: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, PurePosixPath]]:
    for info in tf:
        path = _safe_member_path(info.name)
        if info.issym() or info.islnk():
            raise FormatError(f"archive member {info.name!r} is a link")
        if not (info.isfile() or info.isdir()):
            raise FormatError(f"archive member {info.name!r} is a device, fifo or special file")
        yield info, path


def extract_archive(archive: Path, dest: Path, *, max_bytes: int,
                    max_ratio: int = MAX_RATIO) -> None:
    """Extracts `archive` into the empty folder `dest`, writing at most `max_bytes`; raises
    FormatError on anything hostile (the caller removes `dest` then)."""
    budget = _Budget(archive.stat().st_size, max_bytes, max_ratio)
    count = 0
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info, path in _zip_members(zf):
                    count += 1
                    if count > MAX_MEMBERS:
                        raise FormatError(f"archive has more than {MAX_MEMBERS} members")
                    if info.is_dir():
                        (dest / path).mkdir(parents=True, exist_ok=True)
                        continue
                    refuse_unsafe_name(path.name)
                    with zf.open(info) as src:
                        _copy(src, dest / path, budget)
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive, mode="r:*") as tf:
                for info, path in _tar_members(tf):
                    count += 1
                    if count > MAX_MEMBERS:
                        raise FormatError(f"archive has more than {MAX_MEMBERS} members")
                    if info.isdir():
                        (dest / path).mkdir(parents=True, exist_ok=True)
                        continue
                    refuse_unsafe_name(path.name)
                    src = tf.extractfile(info)
                    if src is None:
                        raise FormatError(f"archive member {info.name!r} cannot be read")
                    with src:
                        _copy(src, dest / path, budget)
        else:
            raise FormatError(f"{archive.name}: not a .zip, .tar or .tar.gz archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise FormatError(f"archive has two members named {Path(exc.filename).name}") from None
        raise FormatError(f"{archive.name} is not a readable archive: {exc}") from None


def single_root(folder: Path) -> Path:
    """An archive of `my-model/…` has one top folder; the model is inside it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith("__MACOSX")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder
