"""Where an image comes from: the local image store, http(s), or nothing (``null``).

``resolve`` is pure (img_id -> :class:`Source`); ``open_image`` does the I/O and
returns an :class:`Opened` image: a reader, its size, and its expected sha256
(from the ``SHA256`` image property or a ``<image>.sha256`` sidecar).
"""

import json
import os
import re
from dataclasses import dataclass

from snf_ganeti.errors import ImageError, InvalidOSParameter

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
SIDECAR = ".sha256"


@dataclass(frozen=True)
class Source:
    """Where the image comes from: a file in the image store, an http(s) URL, or null (none)."""

    kind: str        # local, http, null
    location: str    # file path or URL ("" for null)
    img_id: str


@dataclass
class Opened:
    """An image opened for reading: its stream and size, and the sha256 it must have, if known."""

    stream: object   # binary file object, or None for null
    size: int
    sha256: str = None
    path: str = None  # a local file: its holes can be skipped, qemu-img can read it

    def close(self):
        if self.stream is not None:
            self.stream.close()


def resolve(img_id, image_dir, img_format=None):
    if img_id == "null":
        return Source("null", "", img_id)
    if img_id.startswith(("http://", "https://")):
        return Source("http", img_id, img_id)
    if img_id.startswith("local://"):
        name = img_id[len("local://"):]
    elif img_id.startswith("file://"):
        name = img_id[len("file://"):]
    elif ":" not in img_id:
        name = img_id
    else:
        raise InvalidOSParameter("img_id", f"{img_id!r}: unsupported source (use a name in the "
                                           "image store, local://NAME, http(s)://... or null)")
    root = os.path.realpath(image_dir)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root or path == root:
        raise InvalidOSParameter("img_id", f"{img_id!r} points outside the image store {root}")
    if not os.path.exists(path) and img_format and os.path.exists(f"{path}.{img_format}"):
        path = f"{path}.{img_format}"
    return Source("local", path, img_id)


def open_image(source, sha256=None, timeout=30.0):
    if sha256 is not None and not _SHA256.match(sha256):
        raise ImageError(f"image property SHA256 {sha256!r} is not a sha256 hex digest")
    if source.kind == "null":
        return Opened(None, 0)
    if source.kind == "local":
        return _open_local(source, sha256)
    return _open_http(source, sha256, timeout)


def _open_local(source, sha256):
    try:
        stream = open(source.location, "rb")
    except FileNotFoundError:
        raise ImageError(f"image file {source.location} does not exist "
                         f"(img_id={source.img_id})") from None
    except OSError as err:
        raise ImageError(f"cannot read image file {source.location}: {err.strerror}") from None
    size = os.fstat(stream.fileno()).st_size
    if sha256 is None:
        sha256 = _sidecar_local(source.location + SIDECAR)
    return Opened(stream, size, sha256, source.location)


def _sidecar_local(path):
    try:
        with open(path, encoding="ascii", errors="replace") as stream:
            return _sidecar_digest(stream.read(), path)
    except FileNotFoundError:
        return None


def _sidecar_digest(text, where):
    digest = (text.split() or [""])[0]
    if not _SHA256.match(digest):
        raise ImageError(f"checksum file {where} does not start with a sha256 hex digest")
    return digest.lower()


def _open_http(source, sha256, timeout):
    import urllib.request  # only here: it costs a tenth of the script's start-up
    url = source.location
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.request.HTTPError as err:
        raise ImageError(f"image URL {url} answered HTTP {err.code} {err.reason}") from None
    except (urllib.request.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ImageError(f"image URL {url} is unreachable: {reason}") from None
    length = response.headers.get("Content-Length")
    if not length or not length.isdigit():
        response.close()
        raise ImageError(f"image URL {url} gives no Content-Length; the size must be known")
    if sha256 is None:
        sha256 = _sidecar_http(url + SIDECAR, timeout)
    return Opened(response, int(length), sha256)


def _sidecar_http(url, timeout):
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _sidecar_digest(response.read(4096).decode("ascii", "replace"), url)
    except urllib.request.HTTPError as err:
        if err.code == 404:
            return None
        raise ImageError(f"checksum URL {url} answered HTTP {err.code} {err.reason}") from None
    except (urllib.request.URLError, OSError) as err:
        raise ImageError(f"checksum URL {url} is unreachable: {getattr(err, 'reason', err)}") \
            from None


def fetch_config(url, timeout=30.0):
    """The parameters served at ``config_url`` (Synnefo's server-params): ``{name: str}``."""
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.request.HTTPError as err:
        raise InvalidOSParameter("config_url", f"{url} answered HTTP {err.code}") from None
    except (urllib.request.URLError, OSError) as err:
        raise InvalidOSParameter("config_url", f"{url} is unreachable: "
                                               f"{getattr(err, 'reason', err)}") from None
    except ValueError:
        raise InvalidOSParameter("config_url", f"{url} did not return JSON") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidOSParameter("config_url", f"{url} must return a JSON object of strings")
    return {k.lower(): v for k, v in data.items()}
