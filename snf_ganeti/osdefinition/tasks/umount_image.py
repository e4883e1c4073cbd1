"""UmountImage: unmount the root filesystem."""

from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="UmountImage",
    description="Unmounts everything MountImage mounted.",
    excludable=False)


def run(ctx):
    ctx.disk.unmount_all()
