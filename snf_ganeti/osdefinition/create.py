"""The OS ``create`` script: parse, plan, then copy the image and customize it.

Parameters, source and disk are all checked before the first byte is
written. After that any failure is reported as ``image-error``, and the
disk's first MiB is wiped so a half-done disk never passes for a good one.
"""

import dataclasses
import logging
import os
import re
from dataclasses import dataclass

from snf_ganeti.errors import DiskError, ImageError, OSDefinitionError
from snf_ganeti.osdefinition import copy as copy_mod
from snf_ganeti.osdefinition import commands, diskwrite, formats, params, progress, sources

log = logging.getLogger(__name__)
_QEMU_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class Plan:
    """What the create script deploys: the instance, its checked OS parameters, the image source."""

    instance: params.Instance
    params: params.OSParams
    source: sources.Source


def plan(environ, osdef):
    """Everything the environment says, checked; raises before anything is touched."""
    params.check_api(environ)
    raw = params.raw_params(environ)
    if raw.get("config_url"):
        log.info("Downloading configuration parameters from: %s", raw["config_url"])
        raw = {**raw, **sources.fetch_config(raw["config_url"], osdef.http_timeout)}
    parsed = params.parse(raw)
    instance = params.instance(environ)
    source = sources.resolve(parsed.img_id, osdef.image_dir, parsed.img_format)
    return Plan(instance, parsed, source)


def create(config, environ):
    deployment = plan(environ, config.osdefinition)
    report = progress.open_progress(config, deployment.instance.name)
    try:
        apply(deployment, config.osdefinition, report)
    except OSDefinitionError as err:
        report.emit(progress.error(err.user_message))
        raise
    except OSError as err:  # unexpected I/O trouble: still one line and image-error
        report.emit(progress.error(f"Image deployment failed: {err}"))
        raise DiskError(f"image deployment failed: {err}") from err
    finally:
        report.close()


def apply(deployment, osdef, report):
    p = deployment.params
    log.info("Processing image with ID: %s and format: %s", p.img_id, p.img_format)
    fd = diskwrite.open_disk(deployment.instance.disks[0].path)
    written = False
    try:
        opened = sources.open_image(deployment.source, p.prop("SHA256"), osdef.http_timeout)
        try:
            layout = _layout(p.img_format, opened)
            _check_fits(layout, fd, deployment.instance.disks[0])
            report.info("Starting image copy...")
            written = True
            _copy(p.img_format, layout, opened, fd, deployment.instance.disks[0].path, report,
                  osdef.progress_interval)
        finally:
            opened.close()
        report.info("Image copy finished.")
        implied = dict(layout.properties)
        merged = dataclasses.replace(p, properties=tuple(sorted({**implied,
                                                                 **dict(p.properties)}.items())))
        _customize(deployment, merged, osdef, report)
        report.info("Image customization finished successfully.")
    except BaseException:
        if written:
            diskwrite.invalidate(fd)
        raise
    finally:
        os.close(fd)


def _layout(img_format, opened):
    if img_format == "qcow2":
        if opened.path is None:
            raise ImageError("qcow2 images must come from the image store (img_id=NAME)")
        return formats.layout(img_format, formats.qcow2_size(opened.path))
    return formats.layout(img_format, opened.size, formats.boot_code())


def _check_fits(layout, fd, disk):
    capacity = diskwrite.disk_size(fd)
    if disk.size_mib and capacity > disk.size_mib << 20:
        capacity = disk.size_mib << 20
    if layout.total > capacity:
        raise DiskError(f"image size ({layout.total} bytes) exceeds the size of disk "
                        f"{disk.index} ({capacity} bytes, {disk.path})")


def _copy(img_format, layout, opened, fd, disk_path, report, interval):
    if img_format == "qcow2":
        _check_file_hash(opened)
        _qemu_convert(opened.path, disk_path, layout.total, report)
        return
    copy_mod.Copy(fd, layout.header, layout.image_size, report.copy, interval,
                  opened.sha256).run(opened.stream, opened.path)


def _check_file_hash(opened):
    if opened.sha256:
        import hashlib
        opened.stream.seek(0)
        digest = hashlib.file_digest(opened.stream, "sha256").hexdigest()
        if digest != opened.sha256.lower():
            raise ImageError(f"image checksum mismatch: sha256 is {digest}, expected "
                             f"{opened.sha256.lower()}")


def _qemu_convert(path, disk_path, total, report):
    """qemu-img writes zero runs as holes/discards itself; its -p output becomes our progress."""
    report.copy(0, total)
    proc = commands.popen(["qemu-img", "convert", "-p", "-n", "-f", "qcow2", "-O", "raw", path,
                           disk_path])
    last = 0
    for chunk in iter(lambda: proc.stdout.read1(256), b""):
        for match in _QEMU_PERCENT.finditer(chunk):
            position = int(float(match.group(1)) * total / 100)
            if last < position < total:
                last = position
                report.copy(position, total)
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise ImageError(f"qemu-img convert of {path} failed: {stderr.strip()}")
    report.copy(total, total)


def _customize(deployment, merged, osdef, report):
    if merged.all_tasks_excluded:  # not even the disk is attached, nor the tasks' code loaded
        report.warning(params.ALL_TASKS_EXCLUDED)
        return
    import tempfile  # here: a deploy that customizes nothing loads none of this (3 ms)

    from snf_ganeti.osdefinition import customize, devices
    network = customize.NetworkSettings(tuple(osdef.dhcp_tags), tuple(osdef.stateful_dhcpv6_tags),
                                        tuple(osdef.stateless_dhcpv6_tags),
                                        osdef.default_nic_config)
    os.makedirs(osdef.work_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"{deployment.instance.name}.", dir=osdef.work_dir)
    try:
        report.info("Starting customization...")
        with devices.Disk(deployment.instance.disks[0].path) as disk:
            ctx = customize.Context(disk=disk, hostname=deployment.instance.name, params=merged,
                                    nics=deployment.instance.nics, network=network,
                                    report=report, workdir=workdir)
            customize.run_all(ctx)
    finally:
        for leftover in ("root", "probe"):
            _rmdir(os.path.join(workdir, leftover))
        _rmdir(workdir)


def _rmdir(path):
    # rmdir, never rmtree: if an unmount failed, the image's files must not be deleted.
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("cannot remove %s: %s", path, err.strerror)

