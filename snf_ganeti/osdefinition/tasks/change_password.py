"""ChangePassword: the users' password (hashed here) and their SSH authorized keys."""

import datetime
import secrets
import string

from snf_ganeti.errors import CustomizationError
from snf_ganeti.osdefinition import commands
from snf_ganeti.osdefinition.customize import TaskInfo

TASK = TaskInfo(
    name="ChangePassword",
    description="Sets the password of every user in the image property USERS (default root) "
                "in /etc/shadow: img_passwd hashed (PASSWD_HASHING_METHOD sha512, sha256 or md5; "
                "default sha512) or img_passwd_hash verbatim. Appends auth_keys to each user's "
                "authorized keys file (sshd_config's AuthorizedKeysFile, default "
                "~/.ssh/authorized_keys; directory 0700, file 0600, owned by the user).",
    examples=(('{"USERS": "root user"}', "both root and user get the password and keys"),))
OPENSSL_METHOD = {"sha512": "-6", "sha256": "-5", "md5": "-1"}
_SALT = string.ascii_letters + string.digits + "./"


def run(ctx):
    params = ctx.params
    if not (params.passwd or params.passwd_hash or params.auth_keys):
        ctx.warn("Task ChangePassword will not run. No password or key is set")
        return
    users = (ctx.prop("USERS") or "").split()
    if not users:
        ctx.warn("No USERS image property; changing the password of root")
        users = ["root"]
    if params.passwd or params.passwd_hash:
        set_passwords(ctx, users, params.passwd_hash or hash_password(
            params.passwd, (ctx.prop("PASSWD_HASHING_METHOD") or "sha512").lower()))
    if params.auth_keys:
        for user in users:
            add_keys(ctx, user, params.auth_keys)


def hash_password(password, method):
    if method not in OPENSSL_METHOD:
        raise CustomizationError(TASK.name, f"PASSWD_HASHING_METHOD {method!r} is not one of "
                                            f"{', '.join(OPENSSL_METHOD)}")
    salt = "".join(secrets.choice(_SALT) for _ in range(16))
    # The password goes through stdin: never on a command line other users can read.
    return commands.run(["openssl", "passwd", OPENSSL_METHOD[method], "-salt", salt, "-stdin"],
                        lambda text: CustomizationError(TASK.name, text),
                        input=password + "\n").strip()


def set_passwords(ctx, users, hashed):
    if not ctx.guest.exists("/etc/shadow"):
        raise CustomizationError(TASK.name, "No /etc/shadow found!")
    lines = ctx.guest.read("/etc/shadow").splitlines()
    today = str((datetime.date.today() - datetime.date(1970, 1, 1)).days)
    for user in users:
        index = next((i for i, l in enumerate(lines) if l.split(":", 1)[0] == user), None)
        if index is None:
            raise CustomizationError(TASK.name, f"User: `{user}' does not exist (not present in "
                                                "/etc/shadow).")
        fields = lines[index].split(":")
        fields += [""] * (9 - len(fields))
        fields[1], fields[2] = hashed, today
        lines[index] = ":".join(fields)
    ctx.guest.rewrite("/etc/shadow", "\n".join(lines) + "\n")


def keys_file(ctx, user):
    pattern = "%h/.ssh/authorized_keys"
    if ctx.guest.exists("/etc/ssh/sshd_config"):
        for line in ctx.guest.read("/etc/ssh/sshd_config").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].lower() == "authorizedkeysfile":
                pattern = words[1]
                break
    path = pattern.replace("%%", "\0").replace("%h", user.home).replace(
        "%u", user.name).replace("\0", "%")
    return path if path.startswith("/") else f"{user.home.rstrip('/')}/{path}"


def add_keys(ctx, name, keys):
    user = ctx.guest.users().get(name)
    if user is None:
        raise CustomizationError(TASK.name, f"User: `{name}' does not exist (not present in "
                                            "/etc/passwd)")
    path = keys_file(ctx, user)
    directory = path.rsplit("/", 1)[0] or "/"
    ctx.guest.makedirs(directory, 0o700, user.uid, user.gid)
    old = ctx.guest.read(path) if ctx.guest.exists(path) else ""
    if old and not old.endswith("\n"):
        old += "\n"
    ctx.guest.write(path, old + keys.strip("\n") + "\n", 0o600, user.uid, user.gid)
