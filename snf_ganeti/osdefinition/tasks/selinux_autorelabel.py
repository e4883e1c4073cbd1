"""SELinuxAutorelabel: RedHat-family images relabel their files at first boot."""

from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="SELinuxAutorelabel",
    description="On RedHat-family images, creates /.autorelabel so that the files written "
                "here get SELinux labels at first boot.")


def run(ctx):
    if ctx.guest.distro() == "redhat":
        ctx.guest.write("/.autorelabel", b"", 0o644)
