"""Loading profiles from YAML, inline overrides, and the profile library.

Every problem with a profile file becomes an :class:`~fedsim.errors.InputError` naming the
file, the dotted key path and what was expected (the CLI prints it and exits 2). The file is
read by :func:`fedsim.yamlio.read_yaml` (syntax errors with line, column and the key they are
near; tags other than plain YAML; duplicate keys) and schema errors are worded by
:mod:`fedsim.validation` (unknown keys with the keys allowed there and a close match, wrong
types, out-of-range values, missing keys), as for scenarios; only the profile-specific hints
(:func:`_profile_hint`) live here.

Where the built-in profiles are found (:func:`builtin_profiles_dir`), first hit wins:

1. ``$FEDSIM_HARDWARE_PROFILES`` if set (a directory);
2. ``<repo>/hardware_profiles``: the folder next to the ``fedsim`` package (source checkout
   and editable installs);
3. ``fedsim/hardware/profiles`` inside the installed package, if a build ships a copy there;
4. ``<sys.prefix>/share/fedsim/hardware_profiles`` (a wheel's data files).

If none exists the library still loads (user profiles only) and an unknown-name error says
where it looked.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fedsim.errors import InputError
from fedsim.hardware.schema import (
    DeviceProfile,
    LinkProfile,
    field_keys,
    submodel,
    yaml_keys,
)
from fedsim.validation import suggest, unknown_key_message, validate_as
from fedsim.yamlio import read_yaml

ENV_PROFILES_DIR = "FEDSIM_HARDWARE_PROFILES"
YAML_SUFFIXES = (".yaml", ".yml")


# ------------------------------------------------------------------------ error wording


def _profile_hint(loc: list[str | int], err: Mapping[str, Any]) -> str | None:
    """Profile-only wording for :func:`fedsim.validation.validate_as`: the renamed
    ``compute.utilization`` and a ``link`` that is neither a name nor a mapping."""
    kind = err["type"]
    if kind == "extra_forbidden" and loc == ["compute", "utilization"]:
        return ("compute.utilization was replaced by compute.efficiency, one fraction of "
                "peak per operator class (dense_conv, depthwise_conv, linear, "
                "elementwise): see docs/hardware.md")
    if loc == ["link"] and kind in ("model_type", "string_type"):
        return ("expected the name of a link profile (e.g. wifi, lte) or an inline link "
                f"mapping; got {err.get('input')!r}")
    return None


# ------------------------------------------------------------------------------ files

_DEVICE_MARKERS = ("class", "compute", "power", "memory", "battery", "device_class")


def _is_link_data(data: Mapping[str, Any]) -> bool:
    return "kind" in data and not any(k in data for k in _DEVICE_MARKERS)


def _read(path: Path) -> dict[str, Any]:
    return read_yaml(path, mapping_of="profile fields")


def load_profile_file(path: str | Path) -> DeviceProfile:
    """Load and validate one device profile file (its ``link`` may still be a name)."""
    path = Path(path)
    data = _read(path)
    if _is_link_data(data):
        raise InputError(
            "this is a link profile (it has 'kind'); expected a device profile with "
            f"keys {', '.join(yaml_keys(DeviceProfile))}",
            file=path,
        )
    return _validate(DeviceProfile, data, path)


def load_link_file(path: str | Path) -> LinkProfile:
    """Load and validate one link profile file."""
    path = Path(path)
    data = _read(path)
    return _validate(LinkProfile, data, path)


def load_any_file(path: str | Path) -> DeviceProfile | LinkProfile:
    """A device or a link profile, told apart by its keys (a link has ``kind``, no ``class``)."""
    path = Path(path)
    data = _read(path)
    if _is_link_data(data):
        return _validate(LinkProfile, data, path)
    return _validate(DeviceProfile, data, path)


def _validate(cls: type[BaseModel], data: dict[str, Any], path: Path) -> Any:
    return validate_as(cls, data, file=path, hint=_profile_hint)


# --------------------------------------------------------------------------- overrides


def apply_override(
    profile: DeviceProfile,
    override: Mapping[str, Any],
    *,
    file: str | Path | None = None,
    key_prefix: str = "",
) -> DeviceProfile:
    """A copy of ``profile`` with fields replaced, then validated again.

    Keys are dotted paths (``power.active_w``); a mapping value merges into a section
    (``{"power": {"active_w": 6.0}}`` is the same). ``link`` may be set to another link's
    name (resolve the result with :meth:`ProfileLibrary.resolve`). The profile keeps its
    name unless ``name`` is overridden. Errors name ``key_prefix.<dotted key>`` in ``file``.
    """
    data = profile.model_dump(by_alias=True, exclude_unset=True, mode="python")
    data = _to_plain(data)
    for key, value in override.items():
        if not isinstance(key, str) or not key:
            raise InputError(
                f"override keys must be dotted field names, got {key!r}", file=file, key=key_prefix
            )
        _set_path(data, DeviceProfile, key.split("."), value, file, key_prefix, [])
    return validate_as(DeviceProfile, data, file=file, key_prefix=key_prefix, hint=_profile_hint)


def _to_plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so the dump can be edited."""
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _set_path(
    node: dict[str, Any],
    cls: type[BaseModel],
    parts: list[str],
    value: Any,
    file: str | Path | None,
    key_prefix: str,
    done: list[str],
) -> None:
    part = parts[0]
    here = [*done, part]

    def key_of(p: list[str]) -> str:
        return ".".join(x for x in (key_prefix, *p) if x)

    keys = field_keys(cls)
    if part not in keys:
        raise InputError(unknown_key_message(part, yaml_keys(cls)), file=file, key=key_of(here))
    info = cls.model_fields[keys[part]]
    yaml_key = info.alias or keys[part]
    sub = submodel(cls, part)
    if len(parts) == 1:
        if isinstance(value, Mapping) and sub is not None and isinstance(node.get(yaml_key), dict):
            for k, v in value.items():
                _set_path(node[yaml_key], sub, str(k).split("."), v, file, key_prefix, here)
        else:
            node[yaml_key] = _to_plain(value)
        return
    if sub is None:
        raise InputError(
            f"'{part}' is a value, not a section; cannot set '{'.'.join(parts[1:])}' inside it",
            file=file,
            key=key_of([*here, parts[1]]),
        )
    child = node.get(yaml_key)
    if isinstance(child, str):
        raise InputError(
            f"'{part}' is the name '{child}', not a section; override the resolved profile "
            f"(ProfileLibrary.get) or set '{part}' to an inline mapping",
            file=file,
            key=key_of([*here, parts[1]]),
        )
    if child is None:
        child = node[yaml_key] = {}
    _set_path(child, sub, parts[1:], value, file, key_prefix, here)


# ---------------------------------------------------------------------------- library


def builtin_profiles_dir() -> Path | None:
    """The shipped ``hardware_profiles/`` folder (see the module docstring), or None."""
    for cand in _builtin_candidates():
        if cand.is_dir():
            return cand
    return None


def _builtin_candidates() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get(ENV_PROFILES_DIR)
    if env:
        out.append(Path(env))
    out.append(Path(__file__).resolve().parents[2] / "hardware_profiles")
    try:
        res = importlib.resources.files("fedsim.hardware") / "profiles"
        out.append(Path(str(res)))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - zipped installs
        pass
    out.append(Path(sys.prefix) / "share" / "fedsim" / "hardware_profiles")
    return out


def _yaml_files(root: Path) -> list[Path]:
    files = [
        p
        for p in root.rglob("*")
        if p.suffix in YAML_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files)


class ProfileLibrary:
    """Device and link profiles by name: the shipped ones plus a scenario's own.

    Later sources override earlier ones by name (a user file named ``raspberry_pi_4``
    replaces the shipped profile, a user ``lte`` link replaces the shipped link for every
    device that names it); two files with the same name in the *same* source are an error.
    Device profiles returned by :meth:`get` always carry a resolved :class:`LinkProfile`.
    """

    def __init__(
        self,
        devices: Mapping[str, DeviceProfile],
        links: Mapping[str, LinkProfile],
        origins: Mapping[tuple[str, str], Path],
        builtin_dir: Path | None = None,
    ) -> None:
        self._devices = dict(devices)
        self._links = dict(links)
        self._origins = dict(origins)
        self.builtin_dir = builtin_dir

    @classmethod
    def load(
        cls,
        extra_paths: Sequence[str | Path] = (),
        *,
        base_dir: Path | None = None,
        include_builtin: bool = True,
        source_file: str | Path | None = None,
        source_key: str = "profiles",
    ) -> ProfileLibrary:
        """Load the built-in profiles, then ``extra_paths`` (files or directories) in order.

        Relative paths are resolved against ``base_dir`` (the scenario's folder; default the
        working directory). A missing path is reported against ``source_file`` and key
        ``source_key[i]`` when given (the scenario), else against the path itself.
        """
        builtin = builtin_profiles_dir() if include_builtin else None
        roots: list[tuple[Path, bool]] = []  # (path, is_dir)
        if builtin is not None:
            roots.append((builtin, True))
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for i, raw in enumerate(extra_paths):
            p = Path(raw).expanduser()
            if not p.is_absolute():
                p = base / p
            if not p.exists():
                if source_file is not None:
                    raise InputError(
                        f"profile path '{raw}' does not exist (resolved to {p})",
                        file=source_file,
                        key=f"{source_key}[{i}]",
                    )
                raise InputError("no such profile file or directory", file=p)
            roots.append((p, p.is_dir()))

        devices: dict[str, DeviceProfile] = {}
        links: dict[str, LinkProfile] = {}
        origins: dict[tuple[str, str], Path] = {}
        for root, is_dir in roots:
            seen: dict[tuple[str, str], Path] = {}
            for f in _yaml_files(root) if is_dir else [root]:
                prof = load_any_file(f)
                kind = "link" if isinstance(prof, LinkProfile) else "device"
                ident = (kind, prof.name)
                if ident in seen:
                    raise InputError(
                        f"{kind} profile '{prof.name}' is also defined in {seen[ident]}",
                        file=f,
                        key="name",
                    )
                seen[ident] = f
                if isinstance(prof, LinkProfile):
                    links[prof.name] = prof
                else:
                    devices[prof.name] = prof
                origins[ident] = f

        lib = cls({}, links, origins, builtin)
        for name, dev in devices.items():
            lib._devices[name] = lib.resolve(dev, file=origins[("device", name)], key="link")
        return lib

    # -- queries -----------------------------------------------------------------------

    def names(self) -> list[str]:
        """Device profile names, sorted."""
        return sorted(self._devices)

    def links(self) -> list[str]:
        """Link profile names, sorted."""
        return sorted(self._links)

    def __contains__(self, name: object) -> bool:
        return name in self._devices

    def get(
        self, name: str, *, file: str | Path | None = None, key: str | None = None
    ) -> DeviceProfile:
        """The device profile ``name`` (link resolved); InputError listing known names."""
        try:
            return self._devices[name]
        except KeyError:
            raise self._unknown("hardware profile", name, self.names(), file, key) from None

    def link(
        self, name: str, *, file: str | Path | None = None, key: str | None = None
    ) -> LinkProfile:
        """The link profile ``name``; InputError listing known links."""
        try:
            return self._links[name]
        except KeyError:
            raise self._unknown("link profile", name, self.links(), file, key) from None

    def has_source(self, name: str, kind: str) -> bool:
        """Whether a ``kind`` profile called ``name`` came from a file of this library."""
        return (kind, name) in self._origins

    def source_of(self, name: str, kind: str | None = None) -> Path:
        """The file a device profile (or, failing that, a link profile) was loaded from;
        ``kind`` (``device`` or ``link``) asks for one of the two."""
        for k in ("device", "link") if kind is None else (kind,):
            if (k, name) in self._origins:
                return self._origins[(k, name)]
        raise self._unknown("profile", name, self.names() + self.links(), None, None)

    def resolve(
        self, profile: DeviceProfile, *, file: str | Path | None = None, key: str = "link"
    ) -> DeviceProfile:
        """``profile`` with a link name replaced by the library's :class:`LinkProfile`."""
        if isinstance(profile.link, LinkProfile):
            return profile
        link = self.link(profile.link, file=file, key=key)
        return profile.model_copy(update={"link": link})

    def profile_for(
        self,
        name: str,
        override: Mapping[str, Any] | None = None,
        *,
        file: str | Path | None = None,
        key_prefix: str = "",
    ) -> DeviceProfile:
        """A fleet group's profile: ``get(name)``, then ``override`` applied, link resolved.

        ``key_prefix`` is the group's key path in ``file`` (e.g. ``fleet[0]``): the name is
        reported at ``<prefix>.profile`` and override keys at ``<prefix>.override.<key>``.
        """
        pre = f"{key_prefix}." if key_prefix else ""
        prof = self.get(name, file=file, key=f"{pre}profile")
        if not override:
            return prof
        rest = dict(override)
        link_name = rest.get("link")
        if isinstance(link_name, str):
            # swap the link first, so "link.up_mbps" in the same override edits the new one
            del rest["link"]
            link = self.link(link_name, file=file, key=f"{pre}override.link")
            prof = prof.model_copy(update={"link": link})
        if rest:
            prof = apply_override(prof, rest, file=file, key_prefix=f"{pre}override")
            prof = self.resolve(prof, file=file, key=f"{pre}override.link")
        return prof

    def _unknown(
        self,
        what: str,
        name: str,
        known: list[str],
        file: str | Path | None,
        key: str | None,
    ) -> InputError:
        hint = suggest(str(name), known)
        if known:
            listing = f"known: {', '.join(known)}"
        else:
            looked = ", ".join(str(p) for p in _builtin_candidates())
            listing = f"no profiles loaded (built-in folder not found; looked in {looked})"
        return InputError(f"unknown {what} '{name}'{hint}; {listing}", file=file, key=key)
