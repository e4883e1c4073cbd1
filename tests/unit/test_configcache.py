"""The configuration's parse cache: used while the file is unchanged, never after."""

import datetime
import marshal
import os
import stat
import subprocess
import sys
import time

import pytest

from snf_ganeti import config as config_mod, configcache
from snf_ganeti.errors import ConfigError

pytestmark = pytest.mark.unit
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXT = "hooks:\n  strict: true\nosdefinition:\n  image_dir: /srv/images\n"


SETTLE = 0.05  # seconds; longer than a filesystem timestamp tick (at most 10 ms)


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A config file that has settled (old enough to be cached), and where its cache goes."""
    monkeypatch.setattr(configcache, "SETTLE_SECONDS", SETTLE)
    path = tmp_path / "snf-ganeti.yaml"
    path.write_text(TEXT)
    time.sleep(SETTLE)
    return str(path), str(tmp_path / "run" / "config.cache")


def cached(path, cache):
    return configcache.read(cache, path, os.stat(path))


def test_a_settled_file_is_cached_private_and_read_back(conf):
    path, cache = conf
    first = config_mod.load(path, cache)
    assert cached(path, cache) == {"hooks": {"strict": True},
                                   "osdefinition": {"image_dir": "/srv/images"}}
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600  # the config holds the broker password
    assert config_mod.load(path, cache) == first
    assert first.osdefinition.image_dir == "/srv/images"


def test_a_cache_hit_runs_no_yaml(conf):
    path, cache = conf
    config_mod.load(path, cache)
    probe = ("import sys; from snf_ganeti import config; "
             f"c = config.load({path!r}, {cache!r}); "
             "print(c.osdefinition.image_dir, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out == "/srv/images False\n"


def test_a_file_changed_just_before_it_was_read_is_not_cached(conf, monkeypatch):
    path, cache = conf
    monkeypatch.setattr(configcache, "SETTLE_SECONDS", 3600.0)
    with open(path, "a") as stream:
        stream.write("# edited\n")
    config_mod.load(path, cache)  # a second edit within its timestamp's tick would keep the key
    assert not os.path.exists(cache)
    data = config_mod.parse_yaml(open(path).read())
    assert configcache.write(cache, path, os.stat(path), data, read_at=time.time() + 3601)
    assert cached(path, cache) == data


def test_an_old_mtime_on_a_new_file_is_not_settled(conf, monkeypatch):
    path, cache = conf
    monkeypatch.setattr(configcache, "SETTLE_SECONDS", 3600.0)
    os.utime(path, (0, 0))  # as cp -p or touch -d leave it: the change time is still now
    config_mod.load(path, cache)
    assert not os.path.exists(cache)


def test_only_regular_files_are_cached(conf):
    _, cache = conf
    assert config_mod.load("/dev/null", cache) == config_mod.Config()
    assert not os.path.exists(cache)


@pytest.mark.parametrize("edit", [
    lambda p: open(p, "w").write(TEXT.replace("/srv/images", "/srv/imagez")),  # same size
    lambda p: (os.unlink(p), open(p, "w").write(TEXT.replace("/srv/images", "/srv/imagez"))),
    lambda p: os.replace(_sibling(p, TEXT.replace("/srv/images", "/srv/imagez")), p),
])
def test_any_edit_is_seen_at_once(conf, edit):
    path, cache = conf
    config_mod.load(path, cache)
    edit(path)
    assert config_mod.load(path, cache).osdefinition.image_dir == "/srv/imagez"


def _sibling(path, text):
    other = path + ".new"
    with open(other, "w") as stream:
        stream.write(text)
    return other


def test_a_timestamp_set_back_is_still_an_edit(conf):
    path, cache = conf
    config_mod.load(path, cache)
    before = os.stat(path)
    with open(path, "w") as stream:
        stream.write(TEXT.replace("/srv/images", "/srv/imagez"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    assert config_mod.load(path, cache).osdefinition.image_dir == "/srv/imagez"


def test_validation_runs_on_every_hit(conf):
    path, cache = conf
    with open(path, "w") as stream:
        stream.write("hooks:\n  strict: maybe\n")
    time.sleep(SETTLE)
    for _ in range(2):
        with pytest.raises(ConfigError, match="hooks.strict"):
            config_mod.load(path, cache)
    assert cached(path, cache) == {"hooks": {"strict": "maybe"}}


def test_another_file_misses(conf, tmp_path):
    path, cache = conf
    config_mod.load(path, cache)
    other = tmp_path / "other.yaml"
    other.write_text(TEXT.replace("/srv/images", "/srv/other"))
    assert cached(str(other), cache) is None
    assert config_mod.load(str(other), cache).osdefinition.image_dir == "/srv/other"


@pytest.mark.parametrize("spoil", [
    lambda c: open(c, "wb").write(b"not marshal"),
    lambda c: open(c, "wb").write(b""),
    lambda c: os.chmod(c, 0o620),  # group-writable: anyone in that group could have written it
])
def test_a_bad_cache_is_ignored_and_the_file_parsed(conf, spoil):
    path, cache = conf
    config_mod.load(path, cache)
    spoil(cache)
    assert cached(path, cache) is None
    assert config_mod.load(path, cache).osdefinition.image_dir == "/srv/images"


def test_a_cache_another_user_owns_is_ignored(conf, monkeypatch):
    path, cache = conf
    config_mod.load(path, cache)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(cache).st_uid + 1)
    assert cached(path, cache) is None


def test_a_cache_that_is_not_a_mapping_is_ignored(conf):
    path, cache = conf
    os.makedirs(os.path.dirname(cache))
    with open(cache, "wb") as stream:
        stream.write(marshal.dumps((configcache.key(path, os.stat(path)), ["hooks"])))
    os.chmod(cache, 0o600)
    assert cached(path, cache) is None


def test_links_in_the_cache_place_are_replaced_never_followed(conf, tmp_path):
    path, cache = conf
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.makedirs(os.path.dirname(cache))
    os.symlink(victim, cache)
    os.symlink(victim, f"{cache}.{os.getpid()}")  # where this process writes before renaming
    config_mod.load(path, cache)
    assert victim.read_text() == "precious"
    os.unlink(f"{cache}.{os.getpid()}")
    config_mod.load(path, cache)
    assert victim.read_text() == "precious" and not os.path.islink(cache)
    assert cached(path, cache) is not None


def test_a_failed_write_leaves_no_partial_copy(conf):
    path, cache = conf
    os.makedirs(cache)  # a directory where the cache goes: the rename fails
    config_mod.load(path, cache)
    assert os.listdir(os.path.dirname(cache)) == ["config.cache"]


def test_an_unwritable_cache_place_is_no_error(conf, tmp_path):
    path, _ = conf
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = str(blocker / "config.cache")  # its directory is a file
    assert config_mod.load(path, cache).osdefinition.image_dir == "/srv/images"
    assert sorted(os.listdir(tmp_path)) == ["file", "snf-ganeti.yaml"]


def test_what_marshal_cannot_hold_is_parsed_each_time(conf):
    path, cache = conf
    parsed = {"hooks": {"since": datetime.date(2026, 11, 29)}}  # YAML reads dates as dates
    assert not configcache.write(cache, path, os.stat(path), parsed, read_at=time.time())
    assert not os.path.exists(cache)


def test_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("hooks:\n  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 14\)"):
        config_mod.load(str(path))
