"""RunCustomTask: refused here; a script from the properties never runs on the host."""

from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="RunCustomTask",
    description="snf-image runs the base64 script of the CUSTOM_TASK property. Customization "
                "here runs on the host, so the script is not run; a warning says so.")


def run(ctx):
    if ctx.prop("CUSTOM_TASK"):
        ctx.warn("CUSTOM_TASK is not run: customization runs on the host, which never executes "
                 "code that comes with an image.")
    else:
        ctx.warn("No custom task specified to run")
