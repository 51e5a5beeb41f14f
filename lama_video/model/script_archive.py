"""Read the tensors of a TorchScript archive as data, without running any of its code.

A ``torch.jit.save`` archive is a zip holding the module's code (``code/``) and a pickle of the
module objects (``data.pkl``) whose tensors point at raw storages (``data/N``). ``torch.jit.load``
compiles and runs that code (``__setstate__``, ``forward``), and TorchScript can write files, so a
TorchScript file is a program, not weights. This module only parses the pickle, with an
unpickler that builds nothing but inert records, tensors and plain containers: every ``__torch__``
class becomes an :class:`_ScriptObject` recording its attributes, and any other global is refused.
What comes out is a flat ``{dotted.name: tensor}`` dict, like ``module.state_dict()``.

Pickle opcodes that call a callable (REDUCE, NEWOBJ, BUILD) can only reach what
:meth:`_ArchiveUnpickler.find_class` returns, which is the standard way to restrict an unpickler
(Python's ``pickle`` documentation, "Restricting Globals").
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["ScriptArchiveError", "read_script_tensors"]

# Storage classes a TorchScript pickle may name, and the dtype of their elements.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

# No pickle of a real model holds more objects than this; a bound keeps a crafted file cheap.
_MAX_OBJECTS = 1_000_000
# Bytes of tensor data read from one archive (big-lama's generator: 204 MB).
_MAX_TENSOR_BYTES = 4 << 30


class ScriptArchiveError(ValueError):
    """The file is not a TorchScript archive this reader understands (or is malformed)."""


class _ScriptObject:
    """Inert record of a TorchScript object: its class name and attributes, nothing else."""

    __slots__ = ("attrs", "custom_state", "qualname")

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname
        self.attrs: dict[str, Any] = {}
        self.custom_state = False

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.attrs.update(state)
        else:  # the class restores itself with its own __setstate__ code: not plain data
            self.custom_state = True


def _script_class(qualname: str) -> Callable[..., _ScriptObject]:
    """A stand-in for the ``__torch__`` class ``qualname``, usable by NEWOBJ (``cls.__new__``)."""

    class _Record(_ScriptObject):
        __slots__ = ()

        def __new__(cls, *args: Any) -> _Record:
            obj = object.__new__(cls)
            _ScriptObject.__init__(obj, qualname)
            return obj

        def __init__(self, *args: Any) -> None:  # NEWOBJ does not call it; REDUCE might
            pass

    return _Record


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(
    storage: Tensor,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> Tensor:
    """What ``torch._utils._rebuild_tensor_v2`` does, on our 1-D storage tensor, checked."""
    if not (
        isinstance(storage_offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
    ):
        raise ScriptArchiveError("malformed tensor record")
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True) if n > 0)
    if storage_offset < 0 or (all(n > 0 for n in size) and last >= storage.numel()):
        raise ScriptArchiveError("a tensor reaches past the end of its storage")
    return torch.as_strided(storage, size, stride, storage_offset).clone()


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a TorchScript archive into inert records and tensors."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._root = root
        self._storages: dict[str, Tensor] = {}
        self._bytes_read = 0

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _script_class(f"{module}.{name}")
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing the global {module}.{name}")

    def persistent_load(self, pid: Any) -> Tensor:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, numel = pid
        if key in self._storages:
            return self._storages[key]
        if not key.isdigit():
            raise pickle.UnpicklingError(f"unsafe storage key {key[:40]!r}")
        dtype = storage_type.dtype
        n_bytes = numel * torch.empty((), dtype=dtype).element_size()
        self._bytes_read += n_bytes
        if numel < 0 or self._bytes_read > _MAX_TENSOR_BYTES:
            raise pickle.UnpicklingError("the tensors add up to more than 4 GiB")
        try:
            member = self._zf.getinfo(f"{self._root}/data/{key}")
            if member.file_size != n_bytes:
                raise pickle.UnpicklingError(
                    f"storage {key} holds {member.file_size} bytes, its record says {n_bytes}"
                )
            with self._zf.open(member) as fh:
                raw = fh.read(n_bytes + 1)  # never more than the record says (zip bombs)
        except KeyError as err:
            raise pickle.UnpicklingError(f"storage {key} is missing from the archive") from err
        if len(raw) != n_bytes:
            raise pickle.UnpicklingError(
                f"storage {key} holds {len(raw)} bytes, its record says {n_bytes}"
            )
        tensor = (
            torch.frombuffer(bytearray(raw), dtype=dtype)
            if n_bytes
            else torch.empty(0, dtype=dtype)
        )
        self._storages[key] = tensor
        return tensor


def _archive_root(names: list[str]) -> str:
    roots = {n.split("/", 1)[0] for n in names if n.endswith("/data.pkl") and n.count("/") == 1}
    if len(roots) != 1:
        raise ScriptArchiveError("no single <archive>/data.pkl in the zip")
    return roots.pop()


def read_script_tensors(path: Path) -> dict[str, Tensor]:
    """Tensors of a TorchScript archive by their dotted attribute names, without running it.

    Args:
        path: a ``torch.jit.save`` file.

    Returns:
        ``{"generator.model.1.ffc.convl2l.weight": tensor, ...}``: every tensor attribute of the
        saved module tree (parameters and buffers), named like ``state_dict()`` names them.

    Raises:
        ScriptArchiveError: not a TorchScript archive, or one that holds anything besides
            modules, tensors and plain values (the message says what).
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            root = _archive_root(names)
            byteorder = f"{root}/byteorder"
            if byteorder in names and zf.read(byteorder).strip() not in (b"little", b""):
                raise ScriptArchiveError("big-endian archives are not supported")
            info = zf.getinfo(f"{root}/data.pkl")
            if info.file_size > 64 << 20:  # big-lama's is ~100 KB
                raise ScriptArchiveError("data.pkl is implausibly large")
            data = zf.read(info)
            top = _ArchiveUnpickler(data, zf, root).load()
    except ScriptArchiveError:
        raise
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        RuntimeError,
    ) as err:
        raise ScriptArchiveError(str(err) or type(err).__name__) from err
    if not isinstance(top, _ScriptObject):
        raise ScriptArchiveError(f"the archive holds a {type(top).__name__}, not a module")
    out: dict[str, Tensor] = {}
    _collect(top, "", out, seen=set())
    return out


def _collect(obj: _ScriptObject, prefix: str, out: dict[str, Tensor], seen: set[int]) -> None:
    if id(obj) in seen or len(seen) > _MAX_OBJECTS:
        return
    seen.add(id(obj))
    if obj.custom_state:
        raise ScriptArchiveError(
            f"{obj.qualname} restores itself with its own __setstate__ code, not plain attributes"
        )
    for name, value in obj.attrs.items():
        if not isinstance(name, str):
            continue
        if isinstance(value, Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _collect(value, f"{prefix}{name}.", out, seen)
